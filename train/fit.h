// fit(): a whole run around a Trainer, the loop performer-train runs.
//
// A fresh run is evaluated once before its first step. After every step: a metrics line every log_every steps (and for
// every skipped step); the progress line; evaluation every eval_every steps and at the end (a new best validation loss
// also writes best.ckpt); a checkpoint every save_every steps and at the end, keeping the last `keep`. The loop stops
// early, with a checkpoint, when options.stop_at is reached, when config.run.time_limit seconds of training wall time
// (elapsed_s, summed over resumed runs) have passed (then like the end of the run: evaluation and checkpoint), when options.should_stop() says so (SIGINT / SIGTERM), or
// after max_nonfinite non-finite steps in a row.
//
// Data parallel (train/distributed.h): every rank calls fit() with its own trainer; the time limit and
// should_stop are agreed by all ranks (any rank's true stops every rank after the same step); give
// out_dir and progress on rank 0 only.
//
// The step's metrics line is written before that step's evaluation line and before that step's
// checkpoint, so a checkpoint at step s always has every line of steps <= s on disk; resuming drops
// the later lines (MetricsLog::truncate_after) and the file reads as if the run had never stopped.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "train/evaluate.h"
#include "train/progress.h"
#include "train/trainer.h"

namespace pf {

struct FitOptions {
  std::string out_dir;                  // checkpoints and metrics.jsonl go here ("" = no files)
  int64_t stop_at = 0;                  // stop with a checkpoint after this step (0 = run to config.schedule.total_steps)
  std::function<bool()> should_stop;    // polled after every step (data parallel: true on any rank stops all)
  ProgressPrinter* progress = nullptr;  // null = quiet
  // Called after every step, right after Trainer::step() returned and before its metrics line,
  // evaluation and checkpoint: a place for the caller's own logic between steps (logging, changing
  // the learning-rate options, editing parameters in place through Var::mutable_value() ...).
  // Whatever it changes is what the evaluation and the checkpoint of that step see.
  std::function<void(Trainer&, const StepResult&)> after_step;
};

enum class FitStatus {
  Finished,   // reached config.schedule.total_steps
  TimeLimit,  // training wall time reached config.run.time_limit (evaluated and saved like Finished)
  Stopped,    // stop_at or should_stop
  NonFinite,  // max_nonfinite non-finite steps in a row
};

struct FitResult {
  FitStatus status = FitStatus::Finished;
  int64_t step = 0;
  std::string last_checkpoint;  // "" if none was written
  std::string best_checkpoint;
  bool evaluated = false;
  EvalMetrics last_eval;
  double seconds = 0.0;  // wall time of this call
};

FitResult fit(Trainer& trainer, const FitOptions& options);

}  // namespace pf
