#include "data/text_batcher.h"

#include <algorithm>
#include <stdexcept>

#include "data/masking.h"

namespace pf {

TextBatcher::TextBatcher(std::shared_ptr<const TextCorpus> train_corpus, TextRange train,
                         std::shared_ptr<const TextCorpus> val_corpus, TextRange val, Vocab vocab, BatchOptions options)
    : train_corpus_(std::move(train_corpus)),
      val_corpus_(std::move(val_corpus)),
      train_(train),
      val_(val),
      vocab_(std::move(vocab)),
      options_(options),
      rng_(derive_seed(options.seed, kTrainStream)) {
  // Empty: evaluation only (next_train_batch throws). Shorter than a window: every row is the whole
  // training text, padded. A causal row needs two bytes (one input, one target).
  const int64_t min_bytes = options_.objective == Objective::Causal ? 2 : 1;
  if (train_.size() > 0 && train_.size() < min_bytes)
    throw std::invalid_argument("text: the training part has " + std::to_string(train_.size()) +
                                " byte; a causal model needs at least 2 (one to read, one to predict); give more "
                                "text (--data) or hold out less (--val-fraction)");
  windows_per_epoch_ = std::max<int64_t>(1, train_.size() / options_.seq_len);
  fingerprint_ = batching_fingerprint(options_, "text", 1, train_.size());
}

int64_t TextBatcher::window() const {
  return options_.seq_len + (options_.objective == Objective::Causal ? 1 : 0);
}

Batch TextBatcher::next_train_batch() {
  if (train_.size() == 0)
    throw std::logic_error("TextBatcher::next_train_batch: this data has no training part (evaluation only)");
  const bool causal = options_.objective == Objective::Causal;
  const int64_t B = options_.batch_size, T = options_.seq_len;
  const int64_t W = std::min(window(), train_.size());  // bytes read per row (all of a short text)
  const int64_t n = W - (causal ? 1 : 0);               // real positions per row (T unless the text is short)
  Batch batch = padded_batch(B, T, vocab_.pad_id());
  std::vector<int32_t> buf(static_cast<size_t>(W));  // (W) one window
  const auto starts = static_cast<uint64_t>(train_.size() - W + 1);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t offset = train_.begin + static_cast<int64_t>(rng_.below(starts));
    train_corpus_->copy_tokens(offset, W, buf.data());
    int32_t* in = batch.inputs.data() + b * T;
    int32_t* tg = batch.targets.data() + b * T;
    uint8_t* km = batch.key_mask.data() + b * T;
    std::fill(km, km + n, uint8_t{1});
    std::copy(buf.begin(), buf.begin() + n, in);
    if (causal)
      std::copy(buf.begin() + 1, buf.begin() + W, tg);
    else
      apply_mlm_mask({in, static_cast<size_t>(n)}, {tg, static_cast<size_t>(n)}, {km, static_cast<size_t>(n)}, vocab_,
                     options_.mask_prob, rng_);
    if (++position_ == windows_per_epoch_) {
      ++epoch_;
      position_ = 0;
    }
  }
  return batch;
}

std::vector<Batch> TextBatcher::eval_batches(int64_t max_batches) const {
  std::vector<Batch> batches;
  if (val_corpus_ == nullptr) return batches;
  const int64_t B = options_.batch_size, T = options_.seq_len;
  const bool causal = options_.objective == Objective::Causal;
  Generator rng(derive_seed(options_.seed, kEvalStream));
  std::vector<int32_t> buf(static_cast<size_t>(T + 1));
  int64_t start = val_.begin;
  // A causal row needs one byte beyond its inputs; a masked row needs only its inputs.
  auto more = [&] { return causal ? start + 1 < val_.end : start < val_.end; };
  while (more() && (max_batches <= 0 || static_cast<int64_t>(batches.size()) < max_batches)) {
    Batch batch = padded_batch(B, T, vocab_.pad_id());
    int64_t rows = 0;
    for (; rows < B && more(); ++rows, start += T) {
      const int64_t n = std::min(T, val_.end - start - (causal ? 1 : 0));  // real positions in this row
      val_corpus_->copy_tokens(start, n + (causal ? 1 : 0), buf.data());
      int32_t* in = batch.inputs.data() + rows * T;
      int32_t* tg = batch.targets.data() + rows * T;
      uint8_t* km = batch.key_mask.data() + rows * T;
      std::copy(buf.begin(), buf.begin() + n, in);
      std::fill(km, km + n, uint8_t{1});
      if (causal) {
        std::copy(buf.begin() + 1, buf.begin() + n + 1, tg);
        batch.target_bytes += std::max<int64_t>(0, val_corpus_->bytes(start + 1, n));
      } else {
        apply_mlm_mask({in, static_cast<size_t>(n)}, {tg, static_cast<size_t>(n)}, {km, static_cast<size_t>(n)}, vocab_,
                       options_.mask_prob, rng);
      }
    }
    batch.batch = rows;
    batch.inputs.resize(static_cast<size_t>(rows * T));
    batch.targets.resize(static_cast<size_t>(rows * T));
    batch.key_mask.resize(static_cast<size_t>(rows * T));
    batches.push_back(std::move(batch));
  }
  return batches;
}

DataCursor TextBatcher::cursor() const {
  DataCursor c;
  c.epoch = epoch_;
  c.position = position_;
  c.record_offset = 0;
  c.rng_state = rng_.state();
  c.fingerprint = fingerprint_;
  return c;
}

void TextBatcher::restore(const DataCursor& cursor) {
  if (cursor.fingerprint != fingerprint_)
    throw std::invalid_argument(
        "text data cursor was saved for a different corpus or batching settings (seq_len, batch_size, "
        "objective, mask_prob, seed, val split); resume with the same data configuration");
  if (cursor.epoch < 0 || cursor.position < 0 || cursor.position >= windows_per_epoch_ || cursor.record_offset != 0)
    throw std::invalid_argument("text data cursor is corrupt (epoch " + std::to_string(cursor.epoch) + ", position " +
                                std::to_string(cursor.position) + ")");
  Generator rng;
  rng.set_state(cursor.rng_state);  // throws on a bad state before anything changes
  rng_ = rng;
  epoch_ = cursor.epoch;
  position_ = cursor.position;
}

}  // namespace pf
