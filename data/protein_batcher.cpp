#include "data/protein_batcher.h"

#include <algorithm>
#include <stdexcept>

#include "data/masking.h"

namespace pf {

namespace {

// Token k of record r framed as [bos, residues..., eos]; framed length = length + 2.
int32_t framed_token(const ProteinCorpus& corpus, int64_t r, int64_t k, const Vocab& vocab) {
  const int64_t len = corpus.length(r);
  if (k == 0) return vocab.bos_id();
  if (k == len + 1) return vocab.eos_id();
  return corpus.tokens(r)[static_cast<size_t>(k - 1)];
}

// Fills row b of `batch` from `n` framed tokens in buf: causal inputs/targets shifted by one, or masked.
void fill_row(Batch& batch, int64_t b, const std::vector<int32_t>& buf, int64_t n, Objective objective,
              const Vocab& vocab, double mask_prob, Generator& rng) {
  const int64_t T = batch.seq;
  int32_t* in = batch.inputs.data() + b * T;
  int32_t* tg = batch.targets.data() + b * T;
  uint8_t* km = batch.key_mask.data() + b * T;
  if (objective == Objective::Causal) {
    const int64_t m = n - 1;  // real positions: each input has its next token as target
    std::copy(buf.begin(), buf.begin() + m, in);
    std::copy(buf.begin() + 1, buf.begin() + n, tg);
    std::fill(km, km + m, uint8_t{1});
  } else {
    std::copy(buf.begin(), buf.begin() + n, in);
    std::fill(km, km + n, uint8_t{1});
    apply_mlm_mask({in, static_cast<size_t>(n)}, {tg, static_cast<size_t>(n)}, {km, static_cast<size_t>(n)}, vocab,
                   mask_prob, rng);
  }
}

void shrink_rows(Batch& batch, int64_t rows) {
  batch.batch = rows;
  const auto n = static_cast<size_t>(rows * batch.seq);
  batch.inputs.resize(n);
  batch.targets.resize(n);
  batch.key_mask.resize(n);
}

}  // namespace

ProteinBatcher::ProteinBatcher(std::shared_ptr<const ProteinCorpus> train_corpus, std::vector<int64_t> train_records,
                               std::shared_ptr<const ProteinCorpus> val_corpus, std::vector<int64_t> val_records,
                               Vocab vocab, BatchOptions options)
    : train_corpus_(std::move(train_corpus)),
      val_corpus_(std::move(val_corpus)),
      train_records_(std::move(train_records)),
      val_records_(std::move(val_records)),
      vocab_(std::move(vocab)),
      options_(options),
      rng_(derive_seed(options.seed, kTrainStream)) {
  init();
}

ProteinBatcher::ProteinBatcher(std::shared_ptr<const ProteinCorpus> train_corpus,
                               std::shared_ptr<const ProteinCorpus> val_corpus, Vocab vocab, BatchOptions options)
    : train_corpus_(std::move(train_corpus)),
      val_corpus_(std::move(val_corpus)),
      all_train_(true),
      all_val_(true),
      vocab_(std::move(vocab)),
      options_(options),
      rng_(derive_seed(options.seed, kTrainStream)) {
  init();
}

void ProteinBatcher::init() {
  const int64_t residues = all_train_ ? train_corpus_->residues() : [&] {
    int64_t sum = 0;
    for (int64_t r : train_records_) sum += train_corpus_->length(r);
    return sum;
  }();
  fingerprint_ = batching_fingerprint(options_, "protein", train_count(), residues);
  order_ = epoch_order(0);
}

int64_t ProteinBatcher::val_count() const {
  if (val_corpus_ == nullptr) return 0;
  return all_val_ ? val_corpus_->size() : static_cast<int64_t>(val_records_.size());
}

IndexPermutation ProteinBatcher::epoch_order(int64_t epoch) const {
  const uint64_t seed = derive_seed(derive_seed(options_.seed, kOrderStream), static_cast<uint64_t>(epoch));
  return IndexPermutation(static_cast<uint64_t>(train_count()), seed);
}

void ProteinBatcher::next_record() {
  record_offset_ = 0;
  if (++position_ == train_count()) {
    ++epoch_;
    position_ = 0;
    order_ = epoch_order(epoch_);
  }
}

Batch ProteinBatcher::next_train_batch() {
  if (train_count() == 0)
    throw std::logic_error("ProteinBatcher::next_train_batch: this data has no training records (evaluation only)");
  const int64_t B = options_.batch_size, T = options_.seq_len;
  const bool causal = options_.objective == Objective::Causal;
  const int64_t W = T + (causal ? 1 : 0);  // framed tokens per row
  const ProteinCorpus& corpus = *train_corpus_;
  Batch batch = padded_batch(B, T, vocab_.pad_id());
  std::vector<int32_t> buf(static_cast<size_t>(W));  // (W) framed tokens of one row
  for (int64_t b = 0; b < B; ++b) {
    int64_t n = 0;
    if (options_.pack) {
      // Read W tokens of the stream; a causal row gives its last one back (it is the next row's first
      // input), so the stream advances by T per row.
      int64_t r = current_record();
      for (; n < W; ++n) {
        buf[static_cast<size_t>(n)] = framed_token(corpus, r, record_offset_, vocab_);
        if (causal && n == W - 1) break;  // peek only
        if (++record_offset_ == corpus.length(r) + 2) {
          next_record();
          r = current_record();
        }
      }
      n = W;
    } else {
      const int64_t r = current_record();
      const int64_t framed = corpus.length(r) + 2;
      n = std::min(framed, W);
      const int64_t offset = framed > W ? static_cast<int64_t>(rng_.below(static_cast<uint64_t>(framed - W + 1))) : 0;
      for (int64_t k = 0; k < n; ++k) buf[static_cast<size_t>(k)] = framed_token(corpus, r, offset + k, vocab_);
      next_record();
    }
    fill_row(batch, b, buf, n, options_.objective, vocab_, options_.mask_prob, rng_);
  }
  return batch;
}

std::vector<Batch> ProteinBatcher::eval_batches(int64_t max_batches) const {
  std::vector<Batch> batches;
  const auto val_n = static_cast<size_t>(val_count());
  if (val_n == 0) return batches;
  const int64_t B = options_.batch_size, T = options_.seq_len;
  const bool causal = options_.objective == Objective::Causal;
  const int64_t W = T + (causal ? 1 : 0);
  const ProteinCorpus& corpus = *val_corpus_;
  Generator rng(derive_seed(options_.seed, kEvalStream));
  std::vector<int32_t> buf(static_cast<size_t>(W));
  size_t position = 0;  // next validation record
  int64_t offset = 0;   // next framed token of that record
  auto done = [&] { return position == val_n; };
  while (!done() && (max_batches <= 0 || static_cast<int64_t>(batches.size()) < max_batches)) {
    Batch batch = padded_batch(B, T, vocab_.pad_id());
    int64_t rows = 0;
    for (; rows < B && !done(); ++rows) {
      int64_t n = 0;
      if (options_.pack) {
        while (n < W && !done()) {
          const int64_t r = val_record(static_cast<int64_t>(position));
          buf[static_cast<size_t>(n++)] = framed_token(corpus, r, offset, vocab_);
          if (causal && n == W) break;  // peek: the next row starts with this token
          if (++offset == corpus.length(r) + 2) {
            offset = 0;
            ++position;
          }
        }
        if (causal && n < 2) break;  // a lone final token has nothing to predict
      } else {
        // Consecutive windows of the record, stride T: a causal row reads one token beyond its inputs
        // (its last target), so every framed token but the first is predicted exactly once.
        const int64_t r = val_record(static_cast<int64_t>(position));
        const int64_t framed = corpus.length(r) + 2;
        n = std::min(framed - offset, W);
        for (int64_t k = 0; k < n; ++k) buf[static_cast<size_t>(k)] = framed_token(corpus, r, offset + k, vocab_);
        offset += T;
        if (offset + (causal ? 1 : 0) >= framed) {
          offset = 0;
          ++position;
        }
      }
      fill_row(batch, rows, buf, n, options_.objective, vocab_, options_.mask_prob, rng);
    }
    if (rows == 0) break;
    shrink_rows(batch, rows);
    batches.push_back(std::move(batch));
  }
  return batches;
}

DataCursor ProteinBatcher::cursor() const {
  DataCursor c;
  c.epoch = epoch_;
  c.position = position_;
  c.record_offset = record_offset_;
  c.rng_state = rng_.state();
  c.fingerprint = fingerprint_;
  return c;
}

void ProteinBatcher::restore(const DataCursor& cursor) {
  if (cursor.fingerprint != fingerprint_)
    throw std::invalid_argument(
        "protein data cursor was saved for a different corpus or batching settings (records, seq_len, "
        "batch_size, objective, pack, mask_prob, seed, val split); resume with the same data configuration");
  if (cursor.epoch < 0 || cursor.position < 0 || cursor.position >= train_count())
    throw std::invalid_argument("protein data cursor is corrupt (epoch " + std::to_string(cursor.epoch) +
                                ", position " + std::to_string(cursor.position) + ")");
  IndexPermutation order = epoch_order(cursor.epoch);
  const int64_t framed = train_corpus_->length(train_record(static_cast<int64_t>(order(static_cast<uint64_t>(cursor.position))))) + 2;
  if (cursor.record_offset < 0 || cursor.record_offset >= framed || (!options_.pack && cursor.record_offset != 0))
    throw std::invalid_argument("protein data cursor is corrupt (record offset " +
                                std::to_string(cursor.record_offset) + ")");
  Generator rng;
  rng.set_state(cursor.rng_state);  // throws on a bad state before anything changes
  rng_ = rng;
  epoch_ = cursor.epoch;
  position_ = cursor.position;
  record_offset_ = cursor.record_offset;
  order_ = order;
}

}  // namespace pf
