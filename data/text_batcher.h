// TextBatcher: (B,T) windows of a byte stream.
//
// Training: each row is a window at an offset drawn uniformly from the training range (seeded, with
// replacement). Causal: inputs = bytes [o, o+T), targets = bytes [o+1, o+T+1) (next token). Masked LM:
// inputs = bytes [o, o+T) corrupted as in data/masking.h. No padding in training rows, except when the
// whole training text is shorter than a window: then every row is that text, padded to T.
// "Epoch" is bookkeeping only: one epoch = floor(train bytes / T) windows, i.e. about one pass's worth
// of tokens.
// Evaluation: consecutive non-overlapping windows from the start of the validation range to its end
// (stride T); the last window is padded (targets kIgnoreIndex, key_mask 0) so every validation byte is
// predicted exactly once (causal: every byte but the first, which has no context).
#pragma once

#include <memory>

#include "data/batcher.h"
#include "base/random.h"
#include "data/text_corpus.h"
#include "data/vocab.h"

namespace pf {

class TextBatcher : public Batcher {
 public:
  // An empty training range means evaluation only (next_train_batch throws std::logic_error). Throws
  // std::invalid_argument if a causal training range has a single byte (nothing to predict).
  TextBatcher(std::shared_ptr<const TextCorpus> train_corpus, TextRange train,
              std::shared_ptr<const TextCorpus> val_corpus, TextRange val, Vocab vocab, BatchOptions options);

  Batch next_train_batch() override;
  std::vector<Batch> eval_batches(int64_t max_batches) const override;
  DataCursor cursor() const override;
  void restore(const DataCursor& cursor) override;

 private:
  int64_t window() const;  // bytes read per row: T+1 causal, T masked

  std::shared_ptr<const TextCorpus> train_corpus_, val_corpus_;
  TextRange train_, val_;
  Vocab vocab_;
  BatchOptions options_;
  int64_t windows_per_epoch_ = 1;
  uint64_t fingerprint_ = 0;

  Generator rng_;
  int64_t epoch_ = 0, position_ = 0;
};

}  // namespace pf
