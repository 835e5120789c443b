// ProteinBatcher: (B,T) rows of protein records framed as [bos, residues..., eos].
//
// Order: each epoch visits every training record once, in a permutation drawn from (seed, epoch)
// (IndexPermutation, data/batcher.h: no index array, so millions of records cost no memory); a batch
// may straddle two epochs.
//
// Per-record rows (default): one framed record per row. Causal: the row holds up to T+1 framed tokens,
// inputs = tokens[0..n-1), targets = tokens[1..n); masked LM: up to T framed tokens, corrupted as in
// data/masking.h. A shorter record is padded: inputs pad, targets kIgnoreIndex, key_mask 0. A longer
// record is cropped to a window at a uniformly random offset in training (so every part of a long
// protein is seen over epochs; a crop may cut off bos and/or eos). Evaluation scores ALL of it: a
// longer record fills consecutive rows of T positions (stride T; a causal row also reads the next
// token as its last target), so every framed token is predicted exactly once (causal: all but bos),
// the later windows without the context of the earlier ones.
//
// Packed rows (pack = true): framed records run end to end (... eos bos ...) through the rows with no
// padding and no cropping (a long record continues in the next row). Causal rows advance by T tokens
// and also read one more as the last target. Packed rows let attention see across record boundaries;
// that is the price of no padding.
//
// Evaluation walks the validation records in file order, independent of the training cursor; masked-
// LM evaluation uses its own fixed-seed generator, so the same positions are masked every time.
#pragma once

#include <memory>
#include <vector>

#include "data/batcher.h"
#include "data/protein_corpus.h"
#include "base/random.h"
#include "data/vocab.h"

namespace pf {

class ProteinBatcher : public Batcher {
 public:
  // No training records means evaluation only: next_train_batch throws std::logic_error.
  ProteinBatcher(std::shared_ptr<const ProteinCorpus> train_corpus, std::vector<int64_t> train_records,
                 std::shared_ptr<const ProteinCorpus> val_corpus, std::vector<int64_t> val_records, Vocab vocab,
                 BatchOptions options);
  // Every record of train_corpus trains and every record of val_corpus (may be null) validates.
  ProteinBatcher(std::shared_ptr<const ProteinCorpus> train_corpus, std::shared_ptr<const ProteinCorpus> val_corpus,
                 Vocab vocab, BatchOptions options);

  Batch next_train_batch() override;
  std::vector<Batch> eval_batches(int64_t max_batches) const override;
  DataCursor cursor() const override;
  void restore(const DataCursor& cursor) override;

 private:
  IndexPermutation epoch_order(int64_t epoch) const;  // permutation of the training records
  int64_t train_count() const { return all_train_ ? train_corpus_->size() : static_cast<int64_t>(train_records_.size()); }
  int64_t val_count() const;
  int64_t train_record(int64_t i) const { return all_train_ ? i : train_records_[static_cast<size_t>(i)]; }
  int64_t val_record(int64_t i) const { return all_val_ ? i : val_records_[static_cast<size_t>(i)]; }
  int64_t current_record() const { return train_record(static_cast<int64_t>(order_(static_cast<uint64_t>(position_)))); }
  void next_record();                                 // advance position_, wrapping into a new epoch
  void init();

  std::shared_ptr<const ProteinCorpus> train_corpus_, val_corpus_;
  std::vector<int64_t> train_records_, val_records_;
  bool all_train_ = false, all_val_ = false;  // every record of the corpus (no index list)
  Vocab vocab_;
  BatchOptions options_;
  uint64_t fingerprint_ = 0;

  // Training state (the cursor): order_ is a pure function of epoch_.
  Generator rng_;
  int64_t epoch_ = 0, position_ = 0, record_offset_ = 0;
  IndexPermutation order_;
};

}  // namespace pf
