#include "train/fit.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>

#include "distributed/comm.h"
#include "train/metrics.h"
#include "train/run_directory.h"

namespace pf {

namespace {

std::string fmt(const char* format, double a) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, a);
  return buf;
}

// The loop of fit(), one short phase per method: open the outputs, evaluate before a fresh run,
// then per step: log it, maybe evaluate, maybe save, maybe stop.
class FitLoop {
 public:
  FitLoop(Trainer& trainer, const FitOptions& options)
      : trainer_(trainer),
        options_(options),
        cfg_(trainer.config()),
        start_(Clock::now()),
        elapsed_before_(trainer.progress().elapsed_s),
        first_step_(trainer.progress().step) {}

  FitResult run() {
    open_outputs();
    // A fresh run evaluates once before training: the starting point of the validation curve (near
    // ln V for a new model). It never counts as the best.
    if (first_step_ == 0 && cfg_.run.eval_every > 0 && !trainer_.done() && trainer_.has_validation())
      report_eval(0, trainer_.evaluate(), false);
    // A run resumed with its time already used up: nothing to train (give a larger --time-limit).
    if (cfg_.run.time_limit > 0.0 && elapsed_before_ >= cfg_.run.time_limit && !trainer_.done()) {
      save();
      result_.step = trainer_.progress().step;
      return finish(FitStatus::TimeLimit);
    }
    while (!trainer_.done()) {
      const StepResult r = trainer_.step();
      if (options_.after_step) options_.after_step(trainer_, r);
      if (const auto status = after(r)) return finish(*status);
    }
    save();  // a run resumed at its last step (nothing to do) still leaves a checkpoint
    result_.step = trainer_.progress().step;
    return finish(FitStatus::Finished);
  }

 private:
  using Clock = std::chrono::steady_clock;

  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

  void say(const std::string& text) {
    if (options_.progress) options_.progress->message(text);
  }

  void open_outputs() {
    if (options_.out_dir.empty()) return;
    dir_ = std::make_unique<RunDirectory>(options_.out_dir);
    dir_->create();
    log_ = std::make_unique<MetricsLog>(dir_->metrics_path());
  }

  FitResult finish(FitStatus status) {
    result_.status = status;
    result_.seconds = seconds();
    return result_;
  }

  void save() {
    const int64_t s = trainer_.progress().step;
    if (!dir_ || saved_step_ == s) return;
    trainer_.progress().elapsed_s = elapsed_before_ + seconds();
    result_.last_checkpoint = dir_->save(trainer_.checkpoint(), cfg_.run.keep);
    saved_step_ = s;
  }

  // Everything after one step: its lines, evaluation, checkpoint; a status when the loop ends here.
  std::optional<FitStatus> after(const StepResult& r) {
    tokens_this_run_ += r.tokens;
    const double run_s = seconds();
    const double elapsed = elapsed_before_ + run_s;
    result_.step = r.step;
    bool out_of_time = cfg_.run.time_limit > 0.0 && elapsed >= cfg_.run.time_limit && r.step < cfg_.schedule.total_steps;
    if (trainer_.world_size() > 1) out_of_time = dist::any(out_of_time);  // every rank stops at the same step
    const bool finished = r.step >= cfg_.schedule.total_steps || out_of_time;
    if (r.skipped) {
      if (log_skip(r, elapsed)) {
        save();
        return FitStatus::NonFinite;
      }
    } else if (r.step % cfg_.run.log_every == 0 || finished) {
      log_train(r, run_s, elapsed);
    }
    show_progress(r, run_s, elapsed, finished);
    if ((cfg_.run.eval_every > 0 && r.step % cfg_.run.eval_every == 0) || finished) evaluate(r.step);
    if ((cfg_.run.save_every > 0 && r.step % cfg_.run.save_every == 0) || finished) save();
    if (out_of_time) return FitStatus::TimeLimit;
    const bool stop_here = options_.stop_at > 0 && r.step >= options_.stop_at;
    bool asked = !finished && !stop_here && options_.should_stop && options_.should_stop();
    // Data parallel: a stop asked on any rank (a signal) stops every rank after the same step.
    if (trainer_.world_size() > 1 && !finished && !stop_here) asked = dist::any(asked);
    if (!finished && (stop_here || asked)) {
      save();
      return FitStatus::Stopped;
    }
    return std::nullopt;
  }

  double tokens_per_s(double run_s) const {
    return run_s > 0 ? static_cast<double>(tokens_this_run_) / run_s : 0.0;
  }

  // A skipped step's line and message; true when max_nonfinite skips in a row end the run.
  bool log_skip(const StepResult& r, double elapsed) {
    const int64_t in_row = trainer_.progress().nonfinite_in_row;
    if (log_)
      log_->write(JsonLine()
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
    return in_row >= cfg_.run.max_nonfinite;
  }

  void log_train(const StepResult& r, double run_s, double elapsed) {
    if (!log_) return;
    JsonLine line;
    line.add("type", "train")
        .add("step", r.step)
        .add("loss", r.loss)
        .add("bits_per_token", r.loss / std::log(2.0))
        .add("lr", r.lr)
        .add("grad_norm", r.grad_norm)
        .add("tokens", trainer_.progress().tokens)
        .add("tokens_per_s", tokens_per_s(run_s))
        .add("elapsed_s", elapsed);
    if (trainer_.world_size() > 1) line.add("comm_ms", r.comm_ms);
    log_->write(line);
  }

  void show_progress(const StepResult& r, double run_s, double elapsed, bool finished) {
    if (!options_.progress) return;
    const int64_t steps_this_run = r.step - first_step_;
    double eta = steps_this_run > 0
                     ? run_s / static_cast<double>(steps_this_run) * static_cast<double>(cfg_.schedule.total_steps - r.step)
                     : 0.0;
    if (cfg_.run.time_limit > 0.0) eta = std::min(eta, std::max(0.0, cfg_.run.time_limit - elapsed));
    options_.progress->step(r.step, r.loss, r.lr, tokens_per_s(run_s), elapsed, eta,
                            r.step % cfg_.run.log_every == 0 || finished);
  }

  // Validation at this step; a new best also writes best.ckpt.
  void evaluate(int64_t step) {
    if (!trainer_.has_validation()) return;
    const EvalMetrics m = trainer_.evaluate();
    TrainProgress& p = trainer_.progress();
    const bool best = m.loss < p.best_val_loss;
    if (best) {
      p.best_val_loss = m.loss;
      p.best_step = step;
    }
    result_.evaluated = true;
    result_.last_eval = m;
    report_eval(step, m, best);
    if (best && dir_) {
      p.elapsed_s = elapsed_before_ + seconds();
      result_.best_checkpoint = dir_->save_best(trainer_.checkpoint());
    }
  }

  // One evaluation: a metrics line and a message (best = a new lowest validation loss).
  void report_eval(int64_t step, const EvalMetrics& m, bool best) {
    if (log_) {
      JsonLine line;
      line.add("type", "eval")
          .add("step", step)
          .add("val_loss", m.loss)
          .add("val_bits_per_token", m.bits_per_token)
          .add("val_perplexity", m.perplexity)
          .add("val_accuracy", m.accuracy)
          .add("val_tokens", m.tokens);
      if (m.has_bits_per_byte()) line.add("val_bits_per_byte", m.bits_per_byte).add("val_bytes", m.bytes);
      log_->write(line.add("best", best).add("elapsed_s", elapsed_before_ + seconds()));
    }
    say("eval step " + std::to_string(step) + ": val loss " + fmt("%.4f", m.loss) + " | " +
        fmt("%.3f", m.bits_per_token) + " bits/token | " +
        (m.has_bits_per_byte() ? fmt("%.4f", m.bits_per_byte) + " bits/byte | " : std::string()) + "ppl " + fmt("%.2f", m.perplexity) + " | acc " +
        fmt("%.1f%%", 100.0 * m.accuracy) + (best ? " (best)" : ""));
  }

  Trainer& trainer_;
  const FitOptions& options_;
  const TrainConfig& cfg_;
  const Clock::time_point start_;
  const double elapsed_before_;
  const int64_t first_step_;
  int64_t tokens_this_run_ = 0;
  int64_t saved_step_ = -1;
  std::unique_ptr<RunDirectory> dir_;
  std::unique_ptr<MetricsLog> log_;
  FitResult result_;
};

}  // namespace

FitResult fit(Trainer& trainer, const FitOptions& options) { return FitLoop(trainer, options).run(); }

}  // namespace pf
