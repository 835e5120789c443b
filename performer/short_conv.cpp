// Short depthwise convolution (math in performer/short_conv.h). The work is B T C K multiply-adds,
// small beside the projections around it: rows split over the threads, channels innermost with the
// taps transposed to (K, C) so the inner loops run over contiguous memory.
#include "performer/short_conv.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "autograd/parallel.h"

namespace pf {

namespace {

void check_args(const char* op, const Tensor& x, const Tensor& weight) {
  if (x.dim() != 3) throw_shape_error(op, "x must be (B, T, C)", x.shape(), weight.shape());
  if (weight.dim() != 2 || weight.size(0) != x.size(2) || weight.size(1) < 1)
    throw_shape_error(op, "weight must be (C, K) with the C of x and K >= 1", weight.shape(), x.shape());
}

// (C, K) -> (K, C).
Tensor transpose_taps(const Tensor& w) {
  const int64_t C = w.size(0), K = w.size(1);
  Tensor t({K, C});
  for (int64_t c = 0; c < C; ++c)
    for (int64_t k = 0; k < K; ++k) t.data()[k * C + c] = w.data()[c * K + k];
  return t;
}

// out (C) += sum_k wt[k] o src[row + dir (k - p)] over the taps that stay inside row's sequence (row =
// b T + t): dir = +1 is the convolution, dir = -1 its transpose (the gradient with respect to x).
void add_taps(const float* src, const float* wt, int64_t row, int64_t T, int64_t C, int64_t K, int64_t p, int dir,
              float* out) {
  const int64_t t = row % T;
  for (int64_t k = 0; k < K; ++k) {
    const int64_t s = t + dir * (k - p);
    if (s < 0 || s >= T) continue;
    const float* xr = src + (row - t + s) * C;
    const float* w = wt + k * C;
    for (int64_t c = 0; c < C; ++c) out[c] += w[c] * xr[c];
  }
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
  const Tensor xv = x.value();
  const Tensor wt = transpose_taps(weight.value());  // (K, C): tap k of every channel, contiguous
  Tensor y({B, T, C});
  // y[b, t] = sum_k wt[k] o x[b, t + k - p]: rows are independent.
  parallel_for(
      B * T,
      [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) add_taps(xv.data(), wt.data(), r, T, C, K, p, +1, y.data() + r * C);
      },
      rows_grain(C * K));
  const bool grad = needs_grad({&x, &weight});
  return make_result(std::move(y), grad, "short_conv", [xs = x.slot_ptr(), ws = weight.slot_ptr(), xv, wt, B, T, C, K,
                                                        p](const Tensor& gy) {
    // dx[b, s] += sum_k wt[k] o gy[b, s - k + p] (the taps reversed): rows independent again.
    if (xs->requires_grad) {
      float* dx = xs->grad_buffer().data();
      parallel_for(
          B * T,
          [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) add_taps(gy.data(), wt.data(), r, T, C, K, p, -1, dx + r * C);
          },
          rows_grain(C * K));
    }
    // dw[c, k] += sum_{b, t} x[b, t + k - p, c] gy[b, t, c]: one task per tap, so every sum runs over the
    // rows in the same order for any thread count.
    if (ws->requires_grad) {
      float* dw = ws->grad_buffer().data();
      parallel_for(
          K,
          [&](int64_t k0, int64_t k1) {
            std::vector<float> acc(static_cast<size_t>(C));
            for (int64_t k = k0; k < k1; ++k) {
              std::fill(acc.begin(), acc.end(), 0.0f);
              for (int64_t b = 0; b < B; ++b)
                for (int64_t t = std::max<int64_t>(0, p - k); t < std::min(T, T + p - k); ++t) {
                  const float* g = gy.data() + (b * T + t) * C;
                  const float* xr = xv.data() + (b * T + t + k - p) * C;
                  for (int64_t c = 0; c < C; ++c) acc[c] += xr[c] * g[c];
                }
              for (int64_t c = 0; c < C; ++c) dw[c * K + k] += acc[c];
            }
          },
          1);
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
