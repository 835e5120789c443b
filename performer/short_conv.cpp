// Short depthwise convolution (math in performer/short_conv.h). The work is B T C K multiply-adds,
// small beside the projections around it, so the loops stay plain (channels innermost).
#include "performer/short_conv.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace pf {

namespace {

void check_args(const char* op, const Tensor& x, const Tensor& weight) {
  if (x.dim() != 3) throw_shape_error(op, "x must be (B, T, C)", x.shape(), weight.shape());
  if (weight.dim() != 2 || weight.size(0) != x.size(2) || weight.size(1) < 1)
    throw_shape_error(op, "weight must be (C, K) with the C of x and K >= 1", weight.shape(), x.shape());
}

}  // namespace

Tensor short_conv_identity(int64_t C, int64_t K, bool causal) {
  if (C < 1 || K < 1)
    throw std::invalid_argument("short_conv_identity: C and K must be >= 1, got " + std::to_string(C) + ", " +
                                std::to_string(K));
  Tensor w({C, K});
  const int64_t p = short_conv_center(K, causal);
  for (int64_t c = 0; c < C; ++c) w.data()[c * K + p] = 1.0f;
  return w;
}

Var short_conv(const Var& x, const Var& weight, bool causal) {
  check_args("short_conv", x.value(), weight.value());
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), K = weight.size(1);
  const int64_t p = short_conv_center(K, causal);
  const Tensor xv = x.value(), wv = weight.value();
  Tensor y({B, T, C});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      float* yr = y.data() + (b * T + t) * C;
      for (int64_t k = 0; k < K; ++k) {
        const int64_t s = t + k - p;
        if (s < 0 || s >= T) continue;
        const float* xr = xv.data() + (b * T + s) * C;
        for (int64_t c = 0; c < C; ++c) yr[c] += wv.data()[c * K + k] * xr[c];
      }
    }
  const bool grad = needs_grad({&x, &weight});
  return make_result(std::move(y), grad, "short_conv",
                     [xs = x.slot_ptr(), ws = weight.slot_ptr(), xv, wv, B, T, C, K, p](const Tensor& gy) {
                       float* dx = xs->requires_grad ? xs->grad_buffer().data() : nullptr;
                       float* dw = ws->requires_grad ? ws->grad_buffer().data() : nullptr;
                       for (int64_t b = 0; b < B; ++b)
                         for (int64_t t = 0; t < T; ++t) {
                           const float* g = gy.data() + (b * T + t) * C;
                           for (int64_t k = 0; k < K; ++k) {
                             const int64_t s = t + k - p;
                             if (s < 0 || s >= T) continue;
                             if (dx) {
                               float* d = dx + (b * T + s) * C;
                               for (int64_t c = 0; c < C; ++c) d[c] += wv.data()[c * K + k] * g[c];
                             }
                             if (dw) {
                               const float* xr = xv.data() + (b * T + s) * C;
                               for (int64_t c = 0; c < C; ++c) dw[c * K + k] += xr[c] * g[c];
                             }
                           }
                         }
                     });
}

void ShortConvState::reset(int64_t B, int64_t C, int64_t K) {
  if (B < 1 || C < 1 || K < 1) throw std::invalid_argument("ShortConvState::reset: B, C and K must be >= 1");
  history = Tensor({B, K - 1, C});
}

Tensor short_conv_step(ShortConvState& state, const Tensor& x_t, const Tensor& weight) {
  if (x_t.dim() != 2) throw_shape_error("short_conv_step", "x_t must be (B, C)", x_t.shape(), weight.shape());
  const int64_t B = x_t.size(0), C = x_t.size(1);
  if (weight.dim() != 2 || weight.size(0) != C)
    throw_shape_error("short_conv_step", "weight must be (C, K) with the C of x_t", weight.shape(), x_t.shape());
  const int64_t K = weight.size(1);
  if (!state.history.defined() || state.history.shape() != Shape{B, K - 1, C})
    throw_shape_error("short_conv_step", "state does not match; call state.reset(B, C, K)",
                      state.history.defined() ? state.history.shape() : Shape{}, Shape{B, K - 1, C});
  Tensor y({B, C});
  for (int64_t b = 0; b < B; ++b) {
    float* h = state.history.data() + b * (K - 1) * C;  // rows: positions t - K + 1 .. t - 1
    const float* x = x_t.data() + b * C;
    float* yr = y.data() + b * C;
    for (int64_t k = 0; k + 1 < K; ++k)
      for (int64_t c = 0; c < C; ++c) yr[c] += weight.data()[c * K + k] * h[k * C + c];
    for (int64_t c = 0; c < C; ++c) yr[c] += weight.data()[c * K + K - 1] * x[c];
    if (K > 1) {
      std::copy(h + C, h + (K - 1) * C, h);
      std::copy(x, x + C, h + (K - 2) * C);
    }
  }
  return y;
}

}  // namespace pf
