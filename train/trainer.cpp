#include "train/trainer.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "autograd/ops.h"
#include "autograd/parallel.h"
#include "nn/clip.h"
#include "data/tokenizer.h"
#include "performer/generate.h"
#include "train/distributed.h"
#include "distributed/comm.h"
#include "data/token_file.h"
#include "train/interop.h"

namespace pf {

namespace {

// Validates before anything heavy happens (the data load comes next in the initializer list).
// Changes no process-wide setting (apply_process_settings does, by name).
const TrainConfig& checked(const TrainConfig& c) {
  c.validate();
  c.check_files();
  return c;
}

// A resumed run tokenizes with the checkpoint's own tokenizer (never a new one trained on the data). A
// --tokenizer-model in the configuration must be that same model, byte for byte.
DataConfig resume_data_config(const TrainConfig& c, const Checkpoint& ckpt) {
  DataConfig d = c.data_config();
  if (ckpt.vocab.kind() != VocabKind::SentencePiece) return d;
  d.tokenizer.proto = ckpt.vocab.model_proto();
  if (!c.data.tokenizer.model.empty()) {
    const auto file = SentencePieceModel::from_file(c.data.tokenizer.model);
    if (file->proto() != d.tokenizer.proto)
      throw CheckpointError("--tokenizer-model " + c.data.tokenizer.model + " (" + std::to_string(file->size()) +
                            " pieces, fnv1a64 " + file->hash_hex() +
                            ") is not the tokenizer embedded in the checkpoint (" +
                            std::to_string(ckpt.vocab.sentencepiece_model()->size()) + " pieces, fnv1a64 " +
                            ckpt.vocab.sentencepiece_model()->hash_hex() +
                            "); a run keeps its tokenizer: give the tokenizer.model of the run directory, or the "
                            "model the run started from");
  }
  return d;
}

}  // namespace

void apply_process_settings(const TrainConfig& c) {
  c.validate();
  if (c.run.threads > 0) set_num_threads(static_cast<int>(c.run.threads));
  set_matmul_precision(c.matmul_precision());
}

std::unique_ptr<Optimizer> make_optimizer(const TrainConfig& c, NamedParameters params) {
  return make_optimizer(c.optimizer, std::move(params), c.schedule.lr);
}

Trainer::Trainer(const TrainConfig& config)
    : config_(checked(config)), data_(config_.data_config()), schedule_(config_.schedule_config()) {
  model_ = std::make_unique<PerformerLM>(config_.model_config(data_.vocab().size()));
  if (!config_.run.init_from.empty()) init_from_file(config_.run.init_from);
  model_->set_recompute_blocks(config_.run.recompute_blocks);
  model_->train();
  build_optimizer();
  rng_.seed(config_.run.seed ^ 0x7261696e65720000ull);  // "trainer": a stream apart from model and data seeds
  progress_.lr = learning_rate_at(schedule_, 0);
}

Trainer::Trainer(const TrainConfig& config, const Checkpoint& ckpt)
    : config_(checked(config)), data_(resume_data_config(config_, ckpt)), schedule_(config_.schedule_config()) {
  ModelConfig mc = ckpt.model_config;
  mc.dropout = static_cast<float>(config_.model.dropout);  // Free flags may change on resume
  mc.redraw_every = config_.model.redraw_every;
  model_ = std::make_unique<PerformerLM>(mc);
  model_->set_recompute_blocks(config_.run.recompute_blocks);
  model_->train();
  build_optimizer();
  restore(ckpt, *model_, *optimizer_, data_);
  // The model the flags describe must be the checkpoint's, field by field (kernel_eps, key shift,
  // seed ... included), not only in the fields that decide the parameter shapes.
  const std::string mismatch =
      model_config_mismatch(ckpt.model_config, config_.model_config(data_.vocab().size()), "from the flags");
  if (!mismatch.empty())
    throw CheckpointError("the checkpoint's model differs from the model the flags describe: " + mismatch);
  try {
    rng_.set_state(ckpt.trainer_rng);
  } catch (const std::exception& e) {
    throw CheckpointError(std::string("checkpoint trainer generator: ") + e.what());
  }
  progress_ = ckpt.progress;
  progress_.lr = learning_rate_at(schedule_, std::min(progress_.step, config_.schedule.total_steps));
}

void Trainer::init_from_file(const std::string& path) {
  try {
    const Safetensors file = load_safetensors(path);
    check_import(file, path);  // the file's own content first: metadata keys, tokenizer, finite values
    const auto vocab = file.metadata.find("vocab");
    if (vocab != file.metadata.end() && vocab->second != data_.vocab().name())
      throw SafetensorsError(path + ": the weights were trained with the '" + vocab->second +
                             "' vocabulary but the data uses '" + data_.vocab().name() + "'");
    const auto tok = file.metadata.find("tokenizer_fnv1a64");
    const SentencePieceModel* spm = data_.vocab().sentencepiece_model();
    if (file.metadata.count("tokenizer") && !spm)
      throw SafetensorsError(path + ": the weights were trained with a SentencePiece tokenizer (metadata tokenizer) "
                                    "but the data uses the '" + data_.vocab().name() + "' vocabulary");
    if (tok != file.metadata.end() && spm && tok->second != spm->hash_hex())
      throw SafetensorsError(path + ": the weights were trained with another SentencePiece model (fnv1a64 " +
                             tok->second + ") than the data's (" + spm->hash_hex() +
                             "); give that model with --tokenizer-model");
    load_safetensors_into(*model_, file, path, "from the flags");
  } catch (const std::exception& e) {
    throw std::invalid_argument(std::string("--init-from ") + e.what());
  }
}

void Trainer::build_optimizer() {
  schedule_.validate();
  optimizer_ = make_optimizer(config_, model_->named_parameters());
}

void Trainer::forward_backward(StepResult& r) {
  // Fetch every micro-batch first so each one's loss can be weighted by its share of the targets:
  // the accumulated gradient is then that of the mean over all targets of the step.
  std::vector<Batch> micro;
  micro.reserve(static_cast<size_t>(config_.run.grad_accum));
  for (int64_t i = 0; i < config_.run.grad_accum; ++i) micro.push_back(data_.next_train_batch());
  for (const Batch& b : micro) {
    r.targets += b.num_targets();
    for (uint8_t m : b.key_mask) r.tokens += m;
  }
  double loss_sum = 0.0;  // nats, summed over the step's targets
  if (r.targets > 0) {
    Batch local;
    for (const Batch& global : micro) {
      const Batch& b = dp_ ? (local = dp_->local_rows(global)) : global;  // data parallel: this rank's rows
      const int64_t n = b.num_targets();
      if (n == 0) continue;
      Var loss = batch_loss(*model_, b);  // mean over this micro-batch's targets
      loss_sum += static_cast<double>(loss.item()) * static_cast<double>(n);
      Var scaled = mul_scalar(loss, static_cast<float>(static_cast<double>(n) / static_cast<double>(r.targets)));
      scaled.backward();
    }
  }
  if (dp_) loss_sum = dp_->reduce_step(loss_sum);  // and the gradients, summed over ranks
  r.loss = r.targets > 0 ? loss_sum / static_cast<double>(r.targets) : 0.0;
}

StepResult Trainer::step() {
  StepResult r;
  // Redraw the FAVOR+ projections between optimizer steps: at the start of the step that follows
  // every redraw_every-th, so that evaluations and checkpoints at step s see the projection that
  // step s trained with (and a resumed run redraws exactly where the straight run does).
  r.redrawn = model_->maybe_redraw(progress_.step);
  r.step = progress_.step + 1;
  r.lr = learning_rate_at(schedule_, progress_.step);
  optimizer_->set_lr(static_cast<float>(r.lr));
  optimizer_->zero_grad();

  forward_backward(r);
  const std::vector<Var> params = model_->parameters();
  r.grad_norm = config_.optimizer.clip > 0 ? clip_grad_norm(params, static_cast<float>(config_.optimizer.clip)) : grad_norm(params);

  if (r.targets == 0) {
    r.skipped = true;
    r.skip_reason = "no targets in batch";
  } else if (!std::isfinite(r.loss)) {
    r.skipped = true;
    r.skip_reason = "non-finite loss";
  } else if (!std::isfinite(r.grad_norm)) {
    r.skipped = true;
    r.skip_reason = "non-finite gradient norm";
  }

  if (r.skipped) {
    if (r.targets > 0) {
      ++progress_.nonfinite_in_row;
      ++progress_.skipped_steps;
    }
  } else {
    optimizer_->step();
    progress_.nonfinite_in_row = 0;
  }
  optimizer_->zero_grad();
  progress_.tokens += r.tokens;
  progress_.step = r.step;
  progress_.lr = learning_rate_at(schedule_, std::min(progress_.step, config_.schedule.total_steps));
  if (dp_) {
    dp_->after_step(*model_);  // rank 0 collects every rank's generator state for its checkpoints
    r.comm_ms = dp_->comm_ms();
  }
  return r;
}

const std::vector<Batch>& Trainer::eval_batches() {
  if (!eval_loaded_) {
    eval_batches_ = data_.eval_batches(config_.run.eval_batches);
    eval_loaded_ = true;
  }
  return eval_batches_;
}

EvalMetrics Trainer::evaluate() {
  const EvalMetrics m = dp_ ? dp_->evaluate(*model_, eval_batches()) : pf::evaluate(*model_, eval_batches());
  if (m.tokens > 0) progress_.last_val_loss = m.loss;
  return m;
}

Checkpoint Trainer::checkpoint() const {
  Checkpoint c = make_checkpoint(*model_, *optimizer_, data_, progress_, &config_, &rng_);
  if (dp_) c.rank_model_rngs = dp_->rank_rng_states();
  return c;
}

void Trainer::set_data_parallel(std::shared_ptr<DataParallel> dp) {
  dp_ = std::move(dp);
  config_.distributed.world_size = dp_ ? dp_->size() : 1;
}

int Trainer::world_size() const {
  return dp_ ? dp_->size() : 1;
}

std::string Trainer::sample(int64_t max_tokens, bool* stopped_at_end) {
  if (stopped_at_end) *stopped_at_end = false;
  if (!model_->config().causal || max_tokens <= 0) return "";
  const Vocab& vocab = data_.vocab();
  std::vector<int32_t> prompt;
  if (vocab.bos_id() >= 0) {
    prompt.push_back(vocab.bos_id());
  } else {
    // The first 32 tokens (bytes or subwords) of the validation text, else a newline.
    const std::vector<Batch>& val = eval_batches();
    if (!val.empty())
      for (int64_t t = 0; t < std::min<int64_t>(32, val[0].seq); ++t) {
        const int32_t id = val[0].inputs[static_cast<size_t>(t)];
        if (id == vocab.pad_id()) break;
        prompt.push_back(id);
      }
    if (prompt.empty()) prompt = vocab.kind() == VocabKind::SentencePiece ? vocab.encode("\n") : std::vector<int32_t>{'\n'};
  }
  if (model_->config().positions == PositionKind::Learned)
    max_tokens = std::min<int64_t>(max_tokens, model_->config().max_seq_len - static_cast<int64_t>(prompt.size()) + 1);
  if (max_tokens <= 0) return "";
  SamplingOptions opt;
  opt.temperature = 0.8f;
  const bool was_training = model_->is_training();
  model_->eval();
  const std::vector<int32_t> out = generate(*model_, prompt, max_tokens, opt, rng_, vocab.eos_id());
  model_->train(was_training);
  if (stopped_at_end) *stopped_at_end = vocab.eos_id() >= 0 && static_cast<int64_t>(out.size()) < max_tokens;
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), out.begin(), out.end());
  return vocab.decode(all, /*skip_special=*/true);
}

std::string enable_data_parallel(Trainer& trainer, const Checkpoint* resumed) {
  const int size = dist::size(), rank = dist::rank();
  const int64_t saved_size = resumed ? resumed->config.distributed.world_size : size;
  std::string note;
  if (resumed && saved_size != size)
    note = "the checkpoint was written by " + std::to_string(saved_size) + (saved_size == 1 ? " process" : " ranks") +
           " and this run has " + std::to_string(size) +
           (size == 1 ? " process" : " ranks") +
           ": training continues from it, but not bit for bit (gradients are summed in another order and the "
           "per-rank dropout streams are re-derived)";
  if (size == 1) return note;

  // Every rank must train on the same bytes: compare the prepared datasets' content fingerprints.
  const uint64_t mine = trainer.data().fingerprint();
  uint64_t root = mine;
  dist::broadcast(&root, sizeof root, 0);
  if (dist::any(mine != root))
    throw std::invalid_argument(mine != root ? "this rank's data (dataset fingerprint " + hex64(mine) +
                                                   ") differs from rank 0's (" + hex64(root) +
                                                   "); every rank must be given the same --data"
                                             : std::string("another rank's data differs from rank 0's; every rank "
                                                           "must be given the same --data"));
  PerformerLM& model = trainer.model();
  auto dp = std::make_shared<DataParallel>(model);
  // Rank 0's weights, buffers (random projections) and generators everywhere.
  dp->sync().broadcast_from_root();
  std::string rng = model.rng_state();
  dist::broadcast(rng, 0);
  model.set_rng_state(rng);
  // Then each rank's own dropout stream.
  const uint64_t seed = trainer.config().run.seed;
  if (!resumed) {
    model.dropout_generator().seed(rank_dropout_seed(seed, rank));
  } else if (saved_size == size && static_cast<int>(resumed->rank_model_rngs.size()) == size) {
    model.set_rng_state(resumed->rank_model_rngs[static_cast<size_t>(rank)]);
  } else if (rank > 0 || saved_size > 1) {
    // Another rank count: rank 0 of a one-process checkpoint keeps its stream; the others start
    // streams of their own, apart from those of earlier steps.
    const uint64_t step = static_cast<uint64_t>(resumed->progress.step);
    model.dropout_generator().seed(rank_dropout_seed(seed ^ (step * 0xD1B54A32D192ED03ull), rank));
  }
  trainer.set_data_parallel(dp);
  dp->after_step(model);  // a checkpoint before the first step holds every rank's state too
  return note;
}

}  // namespace pf
