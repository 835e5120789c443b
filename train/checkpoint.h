// Checkpoints: one file holds everything a run needs to continue bit for bit.
//
// File layout (version 1), all integers little-endian fixed width (cereal binary):
//   header   "PFCPPBIN" (8 bytes), kind "checkpoint" (uint64 length + bytes), uint32 version
//            (autograd/serialize.h: tells "not our file", "wrong kind" and "too new" apart)
//   frame    uint64 payload size, uint32 CRC-32 (zlib) of the payload
//   payload  cereal binary archive of, in order:
//              config         TrainConfig as key -> text (every flag; train/train_config.h)
//              model_config   ModelConfig (shape, attention kind, seed ...)
//              vocab          Vocab (name and every token)
//              model_state    every parameter and buffer by dotted name (random projections included)
//              model_rng      PerformerLM::rng_state(): projection and dropout generators, draw counter
//              optimizer      the optimizer's own archive (kind, step count, per-name state)
//              progress       step (= schedule position), tokens, elapsed time, best validation loss ...
//              trainer_rng    the trainer's Generator (samples)
//              data_cursor    DataCursor (epoch, position, data generator state, fingerprint)
//              [rank_rngs]    data-parallel runs only: every rank's model_rng (vector of strings)
// Loading reads the whole file, checks the header, that the size matches the frame (else
// "truncated"), and the CRC (else "corrupt"), and only then parses the payload; nothing is
// changed anywhere until all of that passed. Writing is atomic (base/atomic_file.h).
//
// In a user's own loop:
//   pf::save_checkpoint("run/step-100.ckpt", model, optimizer, data, step);
//   pf::Checkpoint c = pf::load_checkpoint("run/step-100.ckpt");
//   pf::restore(c, model, optimizer, data);  // or pf::make_model(c) for a model built from the file
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>

#include "base/random.h"
#include "data/cursor.h"
#include "data/data_module.h"
#include "data/vocab.h"
#include "nn/module.h"
#include "nn/optimizer.h"
#include "performer/config.h"
#include "performer/model.h"
#include "train/train_config.h"

namespace pf {

inline constexpr const char* kCheckpointKind = "checkpoint";
inline constexpr uint32_t kCheckpointVersion = 1;

// Where a run stands; saved in checkpoints.
struct TrainProgress {
  int64_t step = 0;        // optimizer steps done (skipped non-finite steps included): the schedule position
  double lr = 0.0;         // learning rate of the next step (recomputed from step; kept for inspection)
  int64_t tokens = 0;      // training targets consumed
  double elapsed_s = 0.0;  // training wall time of every run so far
  double best_val_loss = std::numeric_limits<double>::infinity();
  int64_t best_step = -1;
  double last_val_loss = std::numeric_limits<double>::quiet_NaN();
  int64_t nonfinite_in_row = 0;  // consecutive skipped non-finite steps
  int64_t skipped_steps = 0;     // all skipped non-finite steps

  bool operator==(const TrainProgress&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(step, lr, tokens, elapsed_s, best_val_loss, best_step, last_val_loss, nonfinite_in_row, skipped_steps);
  }
};

struct Checkpoint {
  TrainConfig config;
  ModelConfig model_config;
  Vocab vocab;
  StateDict model_state;        // parameters and buffers by dotted name (own copies)
  std::string model_rng;        // PerformerLM::rng_state()
  std::string optimizer_state;  // Optimizer::save archive
  TrainProgress progress;
  std::string trainer_rng;  // Generator::state() of the trainer's generator
  DataCursor data_cursor;
  // Data-parallel runs (train/distributed.h): every rank's PerformerLM::rng_state(), index = rank
  // (model_rng is rank 0's). Empty for one process; stored after the data cursor only when not empty,
  // so one-process checkpoints are unchanged and older files read as one process.
  std::vector<std::string> rank_model_rngs;
};

// Any problem reading a checkpoint. The message names the file and says which problem: not a
// checkpoint, wrong kind, unsupported version, truncated, corrupt (checksum), or a content that does
// not fit (e.g. a model shape that differs from the flags given).
class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The bytes of a checkpoint file, and back. `source` names the file in error messages.
std::string serialize_checkpoint(const Checkpoint& c);
Checkpoint parse_checkpoint(const std::string& bytes, const std::string& source);

// Atomic write (base/atomic_file.h); throws std::runtime_error on I/O errors.
void save_checkpoint(const std::string& path, const Checkpoint& c);
// Throws CheckpointError.
Checkpoint load_checkpoint(const std::string& path);

// A checkpoint of the live objects (copies of their state). `config` describes the run; when null it
// is reconstructed from the model's and data's configs and the optimizer's kind and lr.
Checkpoint make_checkpoint(const PerformerLM& model, const Optimizer& optimizer, const DataModule& data,
                           const TrainProgress& progress, const TrainConfig* config = nullptr,
                           const Generator* trainer_rng = nullptr);
// The one-call form for user loops: make_checkpoint + save_checkpoint.
void save_checkpoint(const std::string& path, const PerformerLM& model, const Optimizer& optimizer,
                     const DataModule& data, int64_t step);

// A model built from the checkpoint's model config, with its weights, buffers and generators.
std::unique_ptr<PerformerLM> make_model(const Checkpoint& c);
// Every ModelConfig field of the checkpoint that differs from the model's (all but dropout and
// redraw_every, which a resumed run may change), as "kernel_eps 0.001 in the checkpoint, 1e-06 <model_name>,
// ..."; "" when they agree.
std::string model_config_mismatch(const ModelConfig& checkpoint, const ModelConfig& model,
                                  const std::string& model_name = "in this model");
// Loads the state into existing objects. Everything is checked (model config, parameter names and
// shapes, optimizer kind and names, vocabulary and data cursor) before anything changes; throws
// CheckpointError naming the mismatch.
void restore(const Checkpoint& c, PerformerLM& model, Optimizer& optimizer, DataModule& data);
void restore_model(const Checkpoint& c, PerformerLM& model);
void restore_optimizer(const Checkpoint& c, Optimizer& optimizer);

// The optimizer archive as bytes, and loading it back (validated by Optimizer::load).
std::string optimizer_state_bytes(const Optimizer& optimizer);
void load_optimizer_state_bytes(Optimizer& optimizer, const std::string& bytes);

// A TrainConfig describing objects made without one (user loops).
TrainConfig config_from(const ModelConfig& model, const DataConfig& data, const Optimizer* optimizer);

}  // namespace pf
