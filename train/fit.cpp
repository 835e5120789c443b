#include "train/fit.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>

#include "train/metrics.h"
#include "train/run_directory.h"

namespace pf {

namespace {

std::string fmt(const char* format, double a) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, a);
  return buf;
}

}  // namespace

FitResult fit(Trainer& trainer, const FitOptions& options) {
  const TrainConfig& cfg = trainer.config();
  FitResult result;
  std::unique_ptr<RunDirectory> dir;
  std::unique_ptr<MetricsLog> log;
  if (!options.out_dir.empty()) {
    dir = std::make_unique<RunDirectory>(options.out_dir);
    dir->create();
    log = std::make_unique<MetricsLog>(dir->metrics_path());
  }
  auto say = [&](const std::string& text) {
    if (options.progress) options.progress->message(text);
  };

  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const double elapsed_before = trainer.progress().elapsed_s;
  const int64_t first_step = trainer.progress().step;
  int64_t tokens_this_run = 0;
  int64_t saved_step = -1;
  auto seconds = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };

  auto save = [&] {
    const int64_t s = trainer.progress().step;
    if (!dir || saved_step == s) return;
    trainer.progress().elapsed_s = elapsed_before + seconds();
    result.last_checkpoint = dir->save(trainer.checkpoint(), cfg.keep);
    saved_step = s;
  };

  // One evaluation: a metrics line and a message (best = a new lowest validation loss).
  auto report_eval = [&](int64_t step, const EvalMetrics& m, bool best) {
    if (log) {
      JsonLine line;
      line.add("type", "eval")
          .add("step", step)
          .add("val_loss", m.loss)
          .add("val_bits_per_token", m.bits_per_token)
          .add("val_perplexity", m.perplexity)
          .add("val_accuracy", m.accuracy)
          .add("val_tokens", m.tokens);
      if (m.has_bits_per_byte()) line.add("val_bits_per_byte", m.bits_per_byte).add("val_bytes", m.bytes);
      log->write(line.add("best", best).add("elapsed_s", elapsed_before + seconds()));
    }
    say("eval step " + std::to_string(step) + ": val loss " + fmt("%.4f", m.loss) + " | " +
        fmt("%.3f", m.bits_per_token) + " bits/token | " +
        (m.has_bits_per_byte() ? fmt("%.4f", m.bits_per_byte) + " bits/byte | " : std::string()) + "ppl " + fmt("%.2f", m.perplexity) + " | acc " +
        fmt("%.1f%%", 100.0 * m.accuracy) + (best ? " (best)" : ""));
  };

  // A fresh run evaluates once before training: the starting point of the validation curve (near
  // ln V for a new model). It never counts as the best.
  if (first_step == 0 && cfg.eval_every > 0 && !trainer.done() && trainer.has_validation())
    report_eval(0, trainer.evaluate(), false);

  // A run resumed with its time already used up: nothing to train (give a larger --time-limit).
  if (cfg.time_limit > 0.0 && elapsed_before >= cfg.time_limit && !trainer.done()) {
    save();
    result.status = FitStatus::TimeLimit;
    result.step = trainer.progress().step;
    return result;
  }

  while (!trainer.done()) {
    const StepResult r = trainer.step();
    if (options.after_step) options.after_step(trainer, r);
    tokens_this_run += r.tokens;
    const double run_s = seconds();
    const double elapsed = elapsed_before + run_s;
    const double tokens_per_s = run_s > 0 ? static_cast<double>(tokens_this_run) / run_s : 0.0;
    const int64_t steps_this_run = r.step - first_step;
    double eta = steps_this_run > 0
                     ? run_s / static_cast<double>(steps_this_run) * static_cast<double>(cfg.steps - r.step)
                     : 0.0;
    if (cfg.time_limit > 0.0) eta = std::min(eta, std::max(0.0, cfg.time_limit - elapsed));
    result.step = r.step;
    const bool out_of_time = cfg.time_limit > 0.0 && elapsed >= cfg.time_limit && r.step < cfg.steps;
    const bool finished = r.step >= cfg.steps || out_of_time;

    if (r.skipped) {
      const int64_t in_row = trainer.progress().nonfinite_in_row;
      if (log)
        log->write(JsonLine()
                       .add("type", "skip")
                       .add("step", r.step)
                       .add("reason", r.skip_reason)
                       .add("loss", r.loss)
                       .add("grad_norm", r.grad_norm)
                       .add("lr", r.lr)
                       .add("in_a_row", in_row)
                       .add("elapsed_s", elapsed));
      say("step " + std::to_string(r.step) + ": " + r.skip_reason + " (loss " + fmt("%g", r.loss) + ", grad norm " +
          fmt("%g", r.grad_norm) + "); update skipped, parameters unchanged" +
          (r.targets > 0 ? " (" + std::to_string(in_row) + " in a row)" : ""));
      if (in_row >= cfg.max_nonfinite) {
        save();
        result.status = FitStatus::NonFinite;
        result.seconds = seconds();
        return result;
      }
    } else if (r.step % cfg.log_every == 0 || finished) {
      if (log)
        log->write(JsonLine()
                       .add("type", "train")
                       .add("step", r.step)
                       .add("loss", r.loss)
                       .add("bits_per_token", r.loss / std::log(2.0))
                       .add("lr", r.lr)
                       .add("grad_norm", r.grad_norm)
                       .add("tokens", trainer.progress().tokens)
                       .add("tokens_per_s", tokens_per_s)
                       .add("elapsed_s", elapsed));
    }
    if (options.progress)
      options.progress->step(r.step, r.loss, r.lr, tokens_per_s, elapsed, eta, r.step % cfg.log_every == 0 || finished);

    if ((cfg.eval_every > 0 && r.step % cfg.eval_every == 0) || finished) {
      if (trainer.has_validation()) {
        const EvalMetrics m = trainer.evaluate();
        TrainProgress& p = trainer.progress();
        const bool best = m.loss < p.best_val_loss;
        if (best) {
          p.best_val_loss = m.loss;
          p.best_step = r.step;
        }
        result.evaluated = true;
        result.last_eval = m;
        report_eval(r.step, m, best);
        if (best && dir) {
          p.elapsed_s = elapsed_before + seconds();
          result.best_checkpoint = dir->save_best(trainer.checkpoint());
        }
      }
    }
    if ((cfg.save_every > 0 && r.step % cfg.save_every == 0) || finished) save();

    if (out_of_time) {
      result.status = FitStatus::TimeLimit;
      result.seconds = seconds();
      return result;
    }
    const bool stop_here = options.stop_at > 0 && r.step >= options.stop_at;
    if (!finished && (stop_here || (options.should_stop && options.should_stop()))) {
      save();
      result.status = FitStatus::Stopped;
      result.seconds = seconds();
      return result;
    }
  }
  save();  // a run resumed at its last step (nothing to do) still leaves a checkpoint
  result.status = FitStatus::Finished;
  result.step = trainer.progress().step;
  result.seconds = seconds();
  return result;
}

}  // namespace pf
