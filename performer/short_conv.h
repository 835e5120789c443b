// Short depthwise convolution along time, per channel (the "short convolution" of Based and of the
// flash-linear-attention layers, applied to q, k and v after their projections; performer/attention_layer.h).
//
// x (B, T, C), weight (C, K) -> y (B, T, C):
//   y[b, t, c] = sum_{k < K} weight[c, k] x[b, t + k - p, c]      (x = 0 outside [0, T))
// with p = K - 1 (causal: position t reads t - K + 1 .. t) or p = K / 2 (centered, for bidirectional
// models: K = 3 reads t - 1 .. t + 1; K = 4 reads t - 2 .. t + 1). The identity is weight[c, p] = 1, the
// other taps 0 (short_conv_identity), the initialization the model uses, so a fresh model with the
// convolution computes what one without it computes.
#pragma once

#include <cstdint>

#include "autograd/tensor.h"
#include "autograd/var.h"

namespace pf {

// The tap that reads position t itself.
inline int64_t short_conv_center(int64_t K, bool causal) { return causal ? K - 1 : K / 2; }

// (C, K) with weight[c, short_conv_center(K, causal)] = 1 and 0 elsewhere.
Tensor short_conv_identity(int64_t C, int64_t K, bool causal);

// A fused autograd node (gradients for x and weight). Throws std::invalid_argument on bad shapes.
Var short_conv(const Var& x, const Var& weight, bool causal);

// split_heads(short_conv(x, weight, causal), heads) in one pass, (B, H, T, C / H), the same bits: the
// convolution writes the head-major layout the attention kernels read, so the option costs no extra
// copy of q, k or v (nn/attention.h).
Var short_conv_heads(const Var& x, const Var& weight, bool causal, int64_t heads);

// Recurrent form of the causal convolution for generation: the last K - 1 inputs, oldest first,
// zeros before position 0.
struct ShortConvState {
  Tensor history;  // (B, K - 1, C)
  void reset(int64_t B, int64_t C, int64_t K);
};

// x_t (B, C) at the next position -> y_t (B, C) (no grad); equals row t of short_conv(x, weight, true).
Tensor short_conv_step(ShortConvState& state, const Tensor& x_t, const Tensor& weight);

}  // namespace pf
