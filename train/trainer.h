// Trainer: the training loop of performer-train as a library object.
//
// It owns the data (DataModule), the model (PerformerLM) and the optimizer, and does one optimizer
// step at a time:
//   model.maybe_redraw(step)   (FAVOR+ projections are redrawn between optimizer steps only)
//   lr = schedule(step); zero_grad; for each of grad_accum micro-batches: forward, loss, backward;
//   clip; (skip if the loss or the gradient norm is not finite) optimizer step; step += 1
// Evaluation, checkpoints and samples are separate calls; train/fit.h strings them into a run with an
// output directory, and performer-train is a thin command line around that.
//
//   pf::TrainConfig cfg;                 // or parse_train_cli(...)
//   cfg.data.train_files = {"corpus.txt"}; cfg.schedule.total_steps = 200;
//   pf::Trainer trainer(cfg);
//   while (!trainer.done()) {
//     pf::StepResult r = trainer.step();
//     if (r.step % 50 == 0) std::printf("%lld %.3f\n", (long long)r.step, trainer.evaluate().loss);
//   }
//   pf::save_checkpoint("final.ckpt", trainer.checkpoint());
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/random.h"
#include "data/batch.h"
#include "data/data_module.h"
#include "nn/optimizer.h"
#include "nn/schedule.h"
#include "performer/model.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/loss.h"
#include "train/train_config.h"

namespace pf {

// The process-wide settings a run asks for: --threads (when > 0) as the worker thread count and
// --precision as the matrix-product precision (autograd/parallel.h, autograd/gemm.h). Constructing a
// Trainer changes neither: call this first (performer-train does), or set them yourself.
void apply_process_settings(const TrainConfig& c);

struct StepResult {
  int64_t step = 0;         // the step just done, 1-based (= progress().step afterwards)
  double loss = 0.0;        // mean over this step's targets; NaN if not finite
  double grad_norm = 0.0;   // global norm before clipping
  double lr = 0.0;          // learning rate used
  int64_t tokens = 0;       // real (non-padding) input tokens processed
  int64_t targets = 0;      // tokens that contributed to the loss
  bool skipped = false;     // no update was applied
  std::string skip_reason;  // "non-finite loss", "non-finite gradient norm", "no targets in batch"
  bool redrawn = false;     // the random projections were redrawn before this step
  double comm_ms = 0.0;     // data-parallel runs: time spent summing gradients and losses over ranks
};

// The optimizer a config asks for, over these parameters (sgd: momentum, weight decay; adam and
// adamw: betas, weight decay; decay skips biases, norms, embeddings and learned feature projections).
std::unique_ptr<Optimizer> make_optimizer(const TrainConfig& config, NamedParameters params);

class DataParallel;

class Trainer {
 public:
  // A fresh run. Validates the config, checks the files, loads the data, builds the model from
  // Generator(seed), then, with config.run.init_from, copies the weights of that safetensors file into it
  // (train/interop.h: the file's model must be the one the config describes; std::invalid_argument
  // naming --init-from, the file and each differing field or tensor otherwise). threads > 0 sets the
  // process-wide thread count.
  explicit Trainer(const TrainConfig& config);
  // Continues a checkpoint. `config` is the run's config (normally the checkpoint's own, possibly
  // with Free flags changed; see train/cli.h); throws CheckpointError if the checkpoint does not fit.
  Trainer(const TrainConfig& config, const Checkpoint& checkpoint);

  const TrainConfig& config() const { return config_; }
  PerformerLM& model() { return *model_; }
  const PerformerLM& model() const { return *model_; }
  Optimizer& optimizer() { return *optimizer_; }
  DataModule& data() { return data_; }
  const DataModule& data() const { return data_; }
  const TrainProgress& progress() const { return progress_; }
  TrainProgress& progress() { return progress_; }
  Generator& generator() { return rng_; }
  bool done() const { return progress_.step >= config_.schedule.total_steps; }

  // One optimizer step (see the header comment). A non-finite loss or gradient norm leaves the
  // parameters and the optimizer state exactly as they were and counts progress().nonfinite_in_row.
  StepResult step();

  // Loss, bits per token, perplexity and accuracy on the first eval_batches validation batches
  // (the same batches every time); records the value in progress(). Empty metrics without validation data.
  EvalMetrics evaluate();
  const std::vector<Batch>& eval_batches();
  bool has_validation() { return !eval_batches().empty(); }

  // Everything needed to continue (train/checkpoint.h).
  Checkpoint checkpoint() const;

  // Data parallel over the ranks of an MPI job: set by enable_data_parallel (train/distributed.h).
  void set_data_parallel(std::shared_ptr<DataParallel> dp);
  int world_size() const;

  // A sample from the model (causal models only; "" for masked LM): proteins start from <bos> and stop
  // at <eos>; text continues the start of the validation (else training) text. Uses the trainer's
  // generator, which is saved in checkpoints.
  std::string sample(int64_t max_tokens, bool* stopped_at_end = nullptr);

 private:
  void build_optimizer();
  // The step's micro-batches through forward and backward: fills r.tokens, r.targets, r.loss and
  // leaves the gradient of the mean loss over all the step's targets in the parameters.
  void forward_backward(StepResult& r);
  void init_from_file(const std::string& path);

  TrainConfig config_;
  DataModule data_;
  std::unique_ptr<PerformerLM> model_;
  std::unique_ptr<Optimizer> optimizer_;
  ScheduleConfig schedule_;
  Generator rng_;
  TrainProgress progress_;
  std::vector<Batch> eval_batches_;
  bool eval_loaded_ = false;
  std::shared_ptr<DataParallel> dp_;  // null: one process
};

// Makes the trainer one replica of the job (see train/distributed.h); collective: every rank calls it
// right after building its Trainer. `resumed` is the checkpoint the trainer was built from (null for a
// fresh run). With one rank it does nothing and returns "".
// Returns a note for the log when the run resumes a checkpoint of another number of ranks.
std::string enable_data_parallel(Trainer& trainer, const Checkpoint* resumed);

}  // namespace pf
