// Batcher: the interface the two corpus kinds (text windows, protein records) implement, and the
// options they share. DataModule (data/data_module.h) owns one and is what the trainer uses.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data/batch.h"
#include "data/cursor.h"
#include "data/data_config.h"

namespace pf {

struct BatchOptions {
  int64_t seq_len = 0;     // T
  int64_t batch_size = 0;  // B
  Objective objective = Objective::Causal;
  bool pack = false;  // proteins: records end to end instead of one per row
  double mask_prob = 0.15;
  uint64_t seed = 0;
  uint64_t dataset = 0;  // the dataset's content fingerprint (data/prepared.h); part of the cursor fingerprint
};

class Batcher {
 public:
  virtual ~Batcher() = default;
  // The next (B,T) training batch; advances the cursor.
  virtual Batch next_train_batch() = 0;
  // Deterministic batches over the validation set, in order, from the start each call (at most
  // max_batches of them when max_batches > 0). Independent of the training cursor. The last batch may
  // have fewer rows than batch_size and its last row may be padded.
  virtual std::vector<Batch> eval_batches(int64_t max_batches) const = 0;
  virtual DataCursor cursor() const = 0;
  // Throws std::invalid_argument (leaving the batcher unchanged) if the cursor was saved for another
  // dataset or other batching settings, or is corrupt.
  virtual void restore(const DataCursor& cursor) = 0;
};

// Independent generator seeds from one user seed: stream 1 = training draws, 2 = evaluation masking,
// 3 = epoch orders (further mixed with the epoch number).
uint64_t derive_seed(uint64_t seed, uint64_t stream);
inline constexpr uint64_t kTrainStream = 1, kEvalStream = 2, kOrderStream = 3;

// A pseudo-random permutation of [0, n) drawn from a seed, evaluated per index in O(1) memory (a
// four-round Feistel network on the next power of four, cycle-walking back into [0, n)): epoch
// orders of corpora with millions of records need no index array.
class IndexPermutation {
 public:
  IndexPermutation() = default;
  IndexPermutation(uint64_t n, uint64_t seed);
  uint64_t size() const { return n_; }
  uint64_t operator()(uint64_t i) const;  // i < size()

 private:
  uint64_t n_ = 0, mask_ = 0;
  int half_ = 0;
  uint64_t keys_[4] = {0, 0, 0, 0};
};

// A (B,T) batch of padding: inputs pad, targets kIgnoreIndex, key_mask 0. Rows are then filled in.
Batch padded_batch(int64_t batch, int64_t seq, int32_t pad_id);

// Hash of everything that must match for a saved cursor to mean the same stream.
uint64_t batching_fingerprint(const BatchOptions& options, std::string_view corpus_kind, int64_t items, int64_t tokens);

}  // namespace pf
