// performer-train: see train/USAGE.md. Exit codes: 0 done (or stopped by --stop-at), 1 I/O or
// internal error, 2 bad flags / refused checkpoint / bad data / the output directory in use by
// another performer-train, 3 stopped after repeated non-finite steps, 128 + signal after a clean
// stop on SIGINT (130) or SIGTERM (143). Under mpirun every rank runs this program (train/distributed.h);
// rank 0 prints and writes the run directory, the others print errors only.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>
#include <thread>

#include "autograd/gemm.h"
#include "autograd/parallel.h"
#include "base/atomic_file.h"
#include "base/format.h"
#include "distributed/comm.h"
#include "train/checkpoint.h"
#include "train/cli.h"
#include "train/config_file.h"
#include "train/distributed.h"
#include "train/distributed_cli.h"
#include "train/fit.h"
#include "train/memory_estimate.h"
#include "train/metrics.h"
#include "train/progress.h"
#include "train/run_directory.h"
#include "train/signals.h"
#include "train/trainer.h"

namespace {

// Ends the run from any phase: the message (if any) on stderr, then `code` from main.
struct Exit {
  int code;
};

// Data parallel: errors in the flags are the same on every rank and only rank 0 prints them; from the
// file checks on, an error may be one rank's own, and every rank prints its errors (named).
bool g_errors_from_every_rank = false;

void print_error(const std::string& message) {
  if (pf::dist::rank() == 0 || g_errors_from_every_rank) {
    std::fprintf(pf::error_stream(), "performer-train: %serror: %s\n", pf::rank_prefix().c_str(), message.c_str());
    std::fflush(pf::error_stream());  // an MPI_Abort may follow
  }
}

[[noreturn]] void exit_with(int code, const std::string& message) {
  print_error(message);
  throw Exit{code};
}

// How a resumed run is continued: under mpirun with the same number of ranks.
std::string resume_command(const pf::TrainConfig& config) {
  return (pf::dist::size() > 1 ? "mpirun -np " + std::to_string(pf::dist::size()) + " " : "") +
         "performer-train --resume " + pf::shell_quote(config.run.out);
}

std::string timestamped_run_dir() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "runs/%Y%m%d-%H%M%S", &tm);
  return std::filesystem::absolute(buf).string();
}

// What the command line asks for, checked before anything is written.
struct Plan {
  pf::TrainConfig config;
  std::optional<pf::Checkpoint> ckpt;  // set when resuming
  std::string resume_path;
};

pf::TrainConfig resume_config(const pf::TrainCli& cli, Plan& plan) {
  if (cli.requested.count("init-from"))
    exit_with(2, "--init-from starts a new run from a file's weights; it cannot be combined with --resume "
                 "(a resumed run continues its checkpoint's weights)");
  std::string from = cli.resume_from;
  if (from.empty()) {
    if (!cli.requested.count("out"))
      exit_with(2, "--resume without a value continues the run in --out; give --out DIR or --resume DIR|FILE");
    from = cli.fresh_config().run.out;
  }
  plan.resume_path = pf::resolve_resume_path(from);
  g_errors_from_every_rank = true;  // reading a file: may fail on one rank only
  plan.ckpt = pf::load_checkpoint(plan.resume_path);
  g_errors_from_every_rank = false;
  pf::TrainConfig config = pf::merge_for_resume(plan.ckpt->config, cli, plan.resume_path);
  if (!cli.requested.count("out")) config.run.out = std::filesystem::absolute(plan.resume_path).parent_path().string();
  return config;
}

// Phase 1: the configuration (fresh or resumed), validated; --print-config ends here.
Plan choose_config(const pf::TrainCli& cli) {
  Plan plan;
  try {
    if (cli.resume) {
      plan.config = resume_config(cli, plan);
    } else {
      plan.config = cli.fresh_config();
      if (plan.config.run.out.empty()) plan.config.run.out = timestamped_run_dir();
    }
    plan.config.distributed.world_size = pf::dist::size();  // recorded; mpirun -np decides it
    plan.config.validate();
    if (cli.print_config) {
      std::fputs(pf::to_config_file(plan.config).c_str(), stdout);
      throw Exit{0};
    }
    g_errors_from_every_rank = true;
    plan.config.check_files();
    pf::check_memory(plan.config, pf::dist::local_size());  // before anything is allocated or written
    if (cli.stop_at < 0) exit_with(2, "--stop-at " + std::to_string(cli.stop_at) + ": must be >= 1");
  } catch (const pf::CheckpointError& e) {
    exit_with(2, std::string("cannot resume: ") + e.what());
  } catch (const Exit&) {
    throw;
  } catch (const std::exception& e) {
    exit_with(2, e.what());
  }
  return plan;
}

// Phase 2: the output directory is ours alone (locked) and holds no other run, unless --overwrite.
// Returns whether the run writes into a directory other than the one it resumes from. Data
// parallel: only rank 0 touches the run directory.
bool claim_run_directory(const pf::TrainCli& cli, const Plan& plan, const pf::RunDirectory& dir, pf::RunLock& lock) {
  const pf::TrainConfig& config = plan.config;
  const bool root = pf::dist::rank() == 0;
  // One process writes into a run directory at a time: the lock is held until this process ends
  // (released by the kernel however it ends). An existing directory is locked before anything else
  // looks at it; a new one right after it is created.
  try {
    if (root && std::filesystem::is_directory(config.run.out)) lock = dir.lock();
  } catch (const pf::RunInUseError& e) {
    exit_with(2, e.what());
  } catch (const std::exception& e) {
    exit_with(1, e.what());
  }
  // A fresh run, or a resume into another directory, must not mix with a run already there.
  const bool foreign_out =
      !cli.resume || std::filesystem::weakly_canonical(config.run.out) !=
                         std::filesystem::weakly_canonical(std::filesystem::absolute(plan.resume_path).parent_path());
  if (root && foreign_out && dir.holds_run() && !cli.overwrite)
    exit_with(2, "--out " + config.run.out +
                     " already holds a run (checkpoints or metrics.jsonl). Continue it with `performer-train "
                     "--resume " +
                     pf::shell_quote(config.run.out) + "`, start over there with --overwrite, or choose another --out.");
  return foreign_out;
}

// Phase 3: data, model and optimizer (from the checkpoint when resuming), made one rank of the job
// under mpirun (parallel_note: what the banner should say about it). Returns the load time.
double make_trainer(const pf::TrainCli& cli, const Plan& plan, std::unique_ptr<pf::Trainer>& trainer,
                    std::string& parallel_note) {
  const pf::TrainConfig& config = plan.config;
  std::fprintf(stderr, "performer-train: %s\n",
               cli.resume ? ("resuming " + plan.resume_path + " at step " + std::to_string(plan.ckpt->progress.step)).c_str()
               : config.run.init_from.empty() ? "starting a new run"
                                          : ("starting a new run from the weights of " + config.run.init_from).c_str());
  std::fprintf(stderr, "loading data: %s\n", config.data.train_files.size() == 1 ? config.data.train_files[0].c_str() : "(several files)");
  const auto load_start = std::chrono::steady_clock::now();
  try {
    pf::apply_process_settings(config);  // --threads and --precision, for the whole process
    if (config.run.threads == 0 && pf::dist::size() > 1) pf::set_num_threads(pf::default_threads_per_rank());
    // Under mpirun rank 0 prepares the dataset (or finds it in the cache) while the others wait; then
    // every rank maps the same files.
    const bool staged = pf::dist::size() > 1;
    if (staged && pf::dist::rank() != 0) pf::dist::barrier();
    trainer = plan.ckpt ? std::make_unique<pf::Trainer>(config, *plan.ckpt) : std::make_unique<pf::Trainer>(config);
    if (staged && pf::dist::rank() == 0) pf::dist::barrier();
    parallel_note = pf::enable_data_parallel(*trainer, plan.ckpt ? &*plan.ckpt : nullptr);  // collective
  } catch (const pf::CheckpointError& e) {
    exit_with(2, std::string("cannot resume: ") + e.what());
  } catch (const std::exception& e) {
    exit_with(2, e.what());
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
}

// Phase 4: from here on the output directory changes (rank 0 only).
void prepare_run_directory(const pf::TrainCli& cli, const Plan& plan, const pf::Trainer& trainer,
                           const pf::RunDirectory& dir, pf::RunLock& lock, bool foreign_out) {
  if (pf::dist::rank() != 0) return;
  try {
    dir.create();
    if (!lock.held()) lock = dir.lock();
    if (cli.overwrite && foreign_out) dir.clear();
    dir.remove_stale_temp_files();
    if (plan.ckpt) pf::MetricsLog::truncate_after(dir.metrics_path(), plan.ckpt->progress.step);
    pf::write_file_atomic(dir.config_path(), pf::to_config_file(plan.config));
    // The SentencePiece model of the run (also embedded in every checkpoint).
    if (trainer.data().vocab().kind() == pf::VocabKind::SentencePiece)
      pf::write_file_atomic(plan.config.run.out + "/tokenizer.model", trainer.data().vocab().model_proto());
  } catch (const pf::RunInUseError& e) {
    exit_with(2, e.what());
  } catch (const std::exception& e) {
    exit_with(1, e.what());
  }
}

void print_validation_banner(const pf::TrainConfig& config, pf::Trainer& trainer) {
  if (!trainer.has_validation()) {
    if (config.data.val_files.empty() && config.data.val_fraction > 0)
      std::fprintf(stderr,
                   "validation: none (the --val-fraction %g split of this small corpus holds nothing to score; give "
                   "--val-data or more data)\n",
                   config.data.val_fraction);
    else
      std::fprintf(stderr, "validation: none (give --val-data or --val-fraction > 0)\n");
    return;
  }
  const double h = pf::unigram_entropy(trainer.eval_batches(), trainer.data().vocab().size());
  int64_t targets = 0, bytes = 0;
  for (const pf::Batch& b : trainer.eval_batches()) {
    targets += b.num_targets();
    bytes += b.target_bytes;
  }
  if (bytes > 0)
    std::fprintf(stderr,
                 "validation reports nats/token and bits per byte of the original text: total nats / ln 2 / %lld "
                 "bytes (the held-out bytes the %lld scored tokens stand for)\n",
                 static_cast<long long>(bytes), static_cast<long long>(targets));
  std::fprintf(stderr,
               "validation: %zu batches%s, %lld target tokens scored per evaluation (%s); unigram entropy %.4f nats "
               "(%.3f bits)/token: the loss of a model that only knows token frequencies\n",
               trainer.eval_batches().size(), config.run.eval_batches > 0 ? " (at most --eval-batches)" : "",
               static_cast<long long>(targets),
               trainer.data().format() == pf::Format::Fasta
                   ? (config.data.pack ? "records end to end" : "every token of each record, in windows of --seq-len")
                   : "every token, in windows of --seq-len",
               h, h / std::log(2.0));
}

// Phase 5: what is about to run, on stderr.
void print_banner(const pf::TrainCli& cli, const pf::TrainConfig& config, pf::Trainer& trainer, double load_s,
                  const std::string& parallel_note) {
  if (!parallel_note.empty()) std::fprintf(stderr, "performer-train: note: %s\n", parallel_note.c_str());
  std::fprintf(stderr, "data: %s (loaded in %.1f s)\n", trainer.data().describe().c_str(), load_s);
  std::fprintf(stderr, "dataset: %s\n", trainer.data().dataset_summary().c_str());
  for (const std::string& w : trainer.data().warnings())
    std::fprintf(stderr, "performer-train: warning: %s\n", w.c_str());
  std::fprintf(stderr, "model: %s parameters; %s\n",
               pf::human_count(static_cast<double>(trainer.model().num_parameters())).c_str(),
               trainer.model().config().describe().c_str());
  std::fprintf(stderr, "training: %lld steps of %lld x %lld tokens%s, %s lr %g (%s, warmup %s), %d threads, %s products (%s)\n",
               static_cast<long long>(config.schedule.total_steps), static_cast<long long>(config.data.batch_size),
               static_cast<long long>(config.data.seq_len),
               config.run.grad_accum > 1 ? (" x " + std::to_string(config.run.grad_accum) + " accumulated").c_str() : "",
               pf::enum_name(config.optimizer.kind), config.schedule.lr, pf::enum_name(config.schedule.kind),
               (std::to_string(config.effective_warmup()) + (config.schedule.warmup < 0 ? " = min(50, steps / 10)" : "")).c_str(),
               pf::get_num_threads(), pf::precision_name(pf::Precision::process), pf::gemm_backend());
  print_validation_banner(config, trainer);
  std::fprintf(stderr, "parallel: %s\n", pf::parallel_summary(config.data.batch_size, pf::get_num_threads()).c_str());
  std::fprintf(stderr, "output: %s%s\n", config.run.out.c_str(),
               cli.resume || cli.requested.count("out") ? ""
                                                       : " (no --out given: runs/<date>-<time> under the current "
                                                         "directory)");
}

// Phase 6: the loop (train/fit.h), stopped cleanly by SIGINT / SIGTERM.
pf::FitResult train(const pf::TrainCli& cli, const pf::TrainConfig& config, pf::Trainer& trainer,
                    const pf::RunDirectory& dir) {
  pf::install_stop_handlers();
  pf::ProgressPrinter progress(stderr, config.schedule.total_steps);
  pf::FitOptions options;
  const bool root = pf::dist::rank() == 0;
  options.out_dir = root ? config.run.out : "";
  options.stop_at = cli.stop_at;
  options.should_stop = [] { return pf::stop_requested(); };  // a signal on any rank stops every rank (fit)
  options.progress = root ? &progress : nullptr;
  try {
    pf::FitResult result = pf::fit(trainer, options);
    progress.finish();
    return result;
  } catch (const std::exception& e) {
    progress.finish();
    std::string message = e.what();
    const std::string latest = dir.latest();
    if (!latest.empty())
      message += "\nthe newest checkpoint on disk is " + latest + "; once the cause is fixed, resume with:\n  " +
                 resume_command(config);
    exit_with(1, message);
  }
}

// Phase 7a: a run that ended early (non-finite steps, a signal, --stop-at): what happened, how to go on.
int report_early_stop(const pf::TrainConfig& config, const pf::Trainer& trainer, const pf::FitResult& result) {
  const std::string resume_cmd = resume_command(config);
  if (result.status == pf::FitStatus::NonFinite) {
    std::fprintf(stderr,
                 "performer-train: stopped: %lld non-finite steps in a row (last at step %lld); the parameters were "
                 "never updated with them. Lower --lr, raise --warmup or set --clip. The last good state is in %s\n",
                 static_cast<long long>(trainer.progress().nonfinite_in_row), static_cast<long long>(result.step),
                 result.last_checkpoint.c_str());
    return 3;
  }
  const int sig = static_cast<int>(pf::dist::max(pf::stop_signal()));  // the signal any rank received
  if (sig != 0) {
    std::fprintf(stderr,
                 "performer-train: interrupted by %s after step %lld of %lld; checkpoint written to %s\n"
                 "resume with:\n  %s\n",
                 pf::signal_name(sig), static_cast<long long>(result.step), static_cast<long long>(config.schedule.total_steps),
                 result.last_checkpoint.c_str(), resume_cmd.c_str());
    return 128 + sig;
  }
  std::fprintf(stderr,
               "performer-train: stopped after step %lld of %lld (--stop-at); checkpoint written to %s\n"
               "resume with:\n  %s\n",
               static_cast<long long>(result.step), static_cast<long long>(config.schedule.total_steps),
               result.last_checkpoint.c_str(), resume_cmd.c_str());
  return 0;
}

// Phase 7b: a finished (or time-limited) run: results, a sample, where the files are.
void print_summary(const pf::TrainConfig& config, pf::Trainer& trainer, const pf::FitResult& result,
                   const pf::RunDirectory& dir) {
  const std::string resume_cmd = resume_command(config);
  if (result.status == pf::FitStatus::TimeLimit)
    std::printf("time limit: stopped at step %lld of %lld after %s of training (--time-limit %g s); resume with a "
                "larger --time-limit to go on:\n  %s --time-limit SECONDS\n",
                static_cast<long long>(result.step), static_cast<long long>(config.schedule.total_steps),
                pf::format_duration(trainer.progress().elapsed_s).c_str(), config.run.time_limit, resume_cmd.c_str());
  else
    std::printf("finished %lld steps in %s (%s this run)\n", static_cast<long long>(result.step),
                pf::format_duration(trainer.progress().elapsed_s).c_str(), pf::format_duration(result.seconds).c_str());
  if (result.evaluated) {
    const pf::EvalMetrics& m = result.last_eval;
    std::printf(
        "validation: loss %.4f nats/token | %.3f bits/token | perplexity %.2f | accuracy %.1f%% (%lld tokens)\n",
        m.loss, m.bits_per_token, m.perplexity, 100.0 * m.accuracy, static_cast<long long>(m.tokens));
    if (m.has_bits_per_byte())
      std::printf("validation: %.4f bits per byte of the original text (%lld bytes)\n", m.bits_per_byte,
                  static_cast<long long>(m.bytes));
    std::printf("best validation loss %.4f at step %lld\n", trainer.progress().best_val_loss,
                static_cast<long long>(trainer.progress().best_step));
  }
  const bool causal = trainer.model().config().causal;
  if (pf::dist::rank() == 0 && config.run.sample_tokens > 0 && causal) {
    bool stopped = false;
    const std::string text = trainer.sample(config.run.sample_tokens, &stopped);
    std::printf("sample%s:\n", stopped ? " (ended at <eos>)" : "");
    std::fwrite(text.data(), 1, text.size(), stdout);  // bytes: a 0x00 token is text too
    std::fputc('\n', stdout);
  }
  const std::string last = pf::shell_quote(result.last_checkpoint);
  std::printf("checkpoint: %s\n", result.last_checkpoint.c_str());
  if (!result.best_checkpoint.empty() || std::filesystem::exists(dir.best_path()))
    std::printf("best checkpoint: %s\n", dir.best_path().c_str());
  std::printf("metrics: %s\n", dir.metrics_path().c_str());
  std::printf("evaluate: performer-eval --checkpoint %s --data FILE\n", last.c_str());
  if (causal) std::printf("generate: performer-generate --checkpoint %s --prompt TEXT --tokens 200\n", last.c_str());
}

int run(int argc, char** argv) {
  pf::ParseOutcome parsed = pf::parse_train_cli(argc, argv);
  if (!parsed.ok) return parsed.exit_code;
  const pf::TrainCli& cli = parsed.cli;
  const Plan plan = choose_config(cli);
  const pf::RunDirectory dir(plan.config.run.out);
  pf::RunLock lock;
  const bool foreign_out = claim_run_directory(cli, plan, dir, lock);
  std::unique_ptr<pf::Trainer> trainer;
  std::string parallel_note;
  const double load_s = make_trainer(cli, plan, trainer, parallel_note);
  if (trainer->done()) {
    std::fprintf(stderr,
                 "the run is already complete: step %lld of --steps %lld. Give a larger --steps to train further.\n",
                 static_cast<long long>(trainer->progress().step), static_cast<long long>(plan.config.schedule.total_steps));
    return 0;
  }
  prepare_run_directory(cli, plan, *trainer, dir, lock, foreign_out);
  print_banner(cli, plan.config, *trainer, load_s, parallel_note);
  const pf::FitResult result = train(cli, plan.config, *trainer, dir);
  if (result.status == pf::FitStatus::NonFinite || result.status == pf::FitStatus::Stopped)
    return report_early_stop(plan.config, *trainer, result);
  print_summary(plan.config, *trainer, result, dir);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int code = 0;
  try {
    pf::dist::init(&argc, &argv);
    pf::quiet_unless_root();  // data parallel: rank 0 prints, the other ranks print errors only
    code = run(argc, argv);
  } catch (const Exit& e) {
    code = e.code;
  } catch (const std::exception& e) {
    print_error(e.what());
    code = 1;
  }
  // Errors (1, 2) may be seen by some ranks only while the others wait in a collective: end the whole
  // job. Every other outcome is reached by all ranks at the same step.
  if ((code == 1 || code == 2) && pf::dist::size() > 1) pf::dist::abort(code);
  pf::dist::finalize();
  return code;
}
