#include "data/batcher.h"

#include <algorithm>
#include <bit>
#include <stdexcept>

#include "base/hash.h"
#include "base/random.h"

namespace pf {

uint64_t derive_seed(uint64_t seed, uint64_t stream) {
  return mix64(seed ^ mix64(stream));
}

Batch padded_batch(int64_t batch, int64_t seq, int32_t pad_id) {
  Batch b;
  b.batch = batch;
  b.seq = seq;
  const auto n = static_cast<size_t>(batch * seq);
  b.inputs.assign(n, pad_id);
  b.targets.assign(n, kIgnoreIndex);
  b.key_mask.assign(n, 0);
  return b;
}

uint64_t batching_fingerprint(const BatchOptions& options, std::string_view corpus_kind, int64_t items,
                              int64_t tokens) {
  uint64_t h = fnv1a64(corpus_kind);
  for (uint64_t v :
       {static_cast<uint64_t>(items), static_cast<uint64_t>(tokens), static_cast<uint64_t>(options.seq_len),
        static_cast<uint64_t>(options.batch_size), static_cast<uint64_t>(options.objective),
        static_cast<uint64_t>(options.pack), std::bit_cast<uint64_t>(options.mask_prob), options.seed,
        options.dataset})
    h = mix64(h ^ v);
  return h;
}

IndexPermutation::IndexPermutation(uint64_t n, uint64_t seed) : n_(n) {
  int bits = 0;
  while (bits < 64 && (uint64_t{1} << bits) < n) ++bits;
  half_ = std::max(1, (bits + 1) / 2);
  mask_ = (uint64_t{1} << half_) - 1;
  for (int r = 0; r < 4; ++r) keys_[r] = mix64(seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(r + 1));
}

uint64_t IndexPermutation::operator()(uint64_t i) const {
  if (i >= n_) throw std::out_of_range("IndexPermutation: index " + std::to_string(i) + " of " + std::to_string(n_));
  uint64_t x = i;
  do {  // cycle-walking: the Feistel network permutes [0, 4^half); repeat until the value is below n
    uint64_t left = x >> half_, right = x & mask_;
    for (const uint64_t key : keys_) {
      const uint64_t next = left ^ (mix64(right ^ key) & mask_);
      left = right;
      right = next;
    }
    x = (left << half_) | right;
  } while (x >= n_);
  return x;
}

}  // namespace pf
