// Element-wise kernels shared by more than one op (internal to autograd/; not part of the ops API).
#pragma once

#include <cstdint>

#include "base/random.h"

namespace pf::kernels {

// y = gelu(x) (tanh approximation), n elements, parallel. gelu() and gelu_linear() both use it, so a
// fused op reproduces the separate ops bit for bit.
void gelu(const float* x, float* y, int64_t n);
// d = g * gelu'(x), n elements, parallel.
void gelu_backward(const float* x, const float* g, float* d, int64_t n);

// x[i] = x[i] * scale where dropout_keeps(base, i, keep), else 0; n elements, in place, parallel.
void apply_dropout_mask(float* x, int64_t n, uint64_t base, float keep, float scale);

// Whether dropout keeps element i of a call whose one generator draw was `base`: the top 24 bits of
// splitmix64's i-th output from that word, read as u in [0, 1), below keep = 1 - p. A function of
// (base, i) only: the same for every thread count, and recomputable in a backward pass.
inline bool dropout_keeps(uint64_t base, int64_t i, float keep) {
  const uint64_t h = mix64(base + static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull);
  return static_cast<float>(h >> 40) * (1.0f / 16777216.0f) < keep;
}

// The same test on the integer: u = h >> 40 < 2^24 keep exactly when u < ceil(2^24 keep) (u is an
// integer and 2^24 keep is exact in float), so a block needs no float conversion per element.
inline uint64_t dropout_threshold(float keep) {
  const float t = keep * 16777216.0f;
  const uint64_t c = static_cast<uint64_t>(t);
  return static_cast<float>(c) < t ? c + 1 : c;
}

// y[j] = x[j] * scale if dropout_keeps(base, i0 + j, keep), else 0, for j < n, on this thread (y may be
// x). Branch-free, so that the hash vectorizes: a branch on a random bit mispredicts on every p-th
// element. Bit for bit the per-element form.
inline void dropout_block(const float* x, float* y, int64_t n, uint64_t base, int64_t i0, float keep, float scale) {
  const uint64_t threshold = dropout_threshold(keep);
  for (int64_t j = 0; j < n; ++j) {
    const uint64_t h = mix64(base + static_cast<uint64_t>(i0 + j) * 0x9E3779B97F4A7C15ull);
    const float v = x[j] * scale;
    y[j] = (h >> 40) < threshold ? v : 0.0f;
  }
}

}  // namespace pf::kernels
