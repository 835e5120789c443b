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

}  // namespace pf::kernels
