// Short depthwise convolution (math in performer/short_conv.h). The work is B T C K multiply-adds, small
// beside the projections around it, so what it costs is memory traffic: the forward reads x once and
// writes y once (directly in the head-major layout when asked, which saves split_heads' copy), and the
// backward makes dx and the weight gradient in one pass over gy and x, in blocks of rows whose partial
// weight sums are added in block order (the same bits for any thread count). Channels run innermost
// with the taps transposed to (K, C), so every inner loop reads contiguous memory.
#include "performer/short_conv.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "autograd/parallel.h"

namespace pf {

namespace {

void check_args(const char* op, const Tensor& x, const Tensor& weight, int64_t heads) {
  if (x.dim() != 3) throw_shape_error(op, "x must be (B, T, C)", x.shape(), weight.shape());
  if (weight.dim() != 2 || weight.size(0) != x.size(2) || weight.size(1) < 1)
    throw_shape_error(op, "weight must be (C, K) with the C of x and K >= 1", weight.shape(), x.shape());
  if (heads < 1 || x.size(2) % heads != 0)
    throw std::invalid_argument(std::string(op) + ": " + std::to_string(heads) + " heads must divide the " +
                                std::to_string(x.size(2)) + " channels of x " + shape_str(x.shape()));
}

// (C, K) -> (K, C).
Tensor transpose_taps(const Tensor& w) {
  const int64_t C = w.size(0), K = w.size(1);
  Tensor t({K, C});
  for (int64_t c = 0; c < C; ++c)
    for (int64_t k = 0; k < K; ++k) t.data()[k * C + c] = w.data()[c * K + k];
  return t;
}

// Sizes, and where row (b, t)'s channels h D .. (h + 1) D - 1 sit in the output: (B, H, T, D), which for
// H = 1 is (B, T, C).
struct Geometry {
  int64_t B, T, C, K, p, H, D;
  int64_t out(int64_t b, int64_t t, int64_t h) const { return ((b * H + h) * T + t) * D; }
  int64_t in(int64_t b, int64_t t, int64_t h) const { return (b * T + t) * C + h * D; }
};

// Rows per block of the backward: at least 64, and at most 256 blocks, so the partial weight sums stay
// small. It depends on the shape only, never on the thread count.
int64_t backward_block_rows(int64_t rows) { return std::max<int64_t>(64, (rows + 255) / 256); }

void fma_row(const float* __restrict w, const float* __restrict src, int64_t n, float* __restrict out) {
  for (int64_t i = 0; i < n; ++i) out[i] += w[i] * src[i];
}

// heads = 0: the plain (B, T, C) output; heads >= 1: (B, H, T, C / H).
Var short_conv_impl(const char* op, const Var& x, const Var& weight, bool causal, int64_t heads) {
  const bool head_major = heads > 0;
  heads = std::max<int64_t>(heads, 1);
  check_args(op, x.value(), weight.value(), heads);
  const int64_t C = x.size(2);
  const Geometry g{x.size(0), x.size(1), C, weight.size(1), short_conv_center(weight.size(1), causal), heads,
                   C / heads};
  const Tensor xv = x.value();
  const Tensor wt = transpose_taps(weight.value());  // (K, C): tap k of every channel, contiguous
  Tensor y = Tensor::empty(head_major ? Shape{g.B, heads, g.T, g.D} : Shape{g.B, g.T, C});
  // y[b, t] = sum_k wt[k] o x[b, t + k - p], k ascending, from 0: rows are independent. Each piece of
  // D outputs is cleared just before its taps, while in cache (no separate pass over y).
  parallel_for(
      g.B * g.T,
      [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t b = r / g.T, t = r % g.T;
          for (int64_t h = 0; h < g.H; ++h) {
            std::fill_n(y.data() + g.out(b, t, h), g.D, 0.0f);
            for (int64_t k = 0; k < g.K; ++k) {
              const int64_t s = t + k - g.p;
              if (s >= 0 && s < g.T) fma_row(wt.data() + k * C + h * g.D, xv.data() + g.in(b, s, h), g.D, y.data() + g.out(b, t, h));
            }
          }
        }
      },
      rows_grain(C * g.K));
  const bool grad = needs_grad({&x, &weight});
  return make_result(std::move(y), grad, op, [xs = x.slot_ptr(), ws = weight.slot_ptr(), xv, wt, g](const Tensor& gy) {
    const bool want_dx = xs->requires_grad, want_dw = ws->requires_grad;
    // dx: a fresh gradient buffer is overwritten (each piece cleared in cache before its taps), an
    // existing one accumulated into.
    float beta = 1.0f;
    float* dx = want_dx ? xs->grad_for_overwrite(&beta).data() : nullptr;
    const int64_t rows = g.B * g.T, block = backward_block_rows(rows), blocks = (rows + block - 1) / block;
    const int64_t KC = g.K * g.C;
    std::vector<float> partial(want_dw ? static_cast<size_t>(blocks * KC) : 0);
    parallel_for(
        blocks,
        [&](int64_t i0, int64_t i1) {
          for (int64_t i = i0; i < i1; ++i) {
            float* acc = want_dw ? partial.data() + i * KC : nullptr;  // acc[k C + c]
            for (int64_t r = i * block; r < std::min(rows, (i + 1) * block); ++r) {
              const int64_t b = r / g.T, t = r % g.T;
              for (int64_t h = 0; h < g.H; ++h) {
                if (dx && beta == 0.0f) std::fill_n(dx + g.in(b, t, h), g.D, 0.0f);
                for (int64_t k = 0; k < g.K; ++k) {
                  // dx[b, t] += wt[k] o gy[b, t - k + p] (the taps reversed), k ascending.
                  const int64_t s = t - k + g.p;
                  if (dx && s >= 0 && s < g.T)
                    fma_row(wt.data() + k * g.C + h * g.D, gy.data() + g.out(b, s, h), g.D, dx + g.in(b, t, h));
                  // dw[., k] += x[b, t + k - p] o gy[b, t].
                  const int64_t u = t + k - g.p;
                  if (acc && u >= 0 && u < g.T)
                    fma_row(xv.data() + g.in(b, u, h), gy.data() + g.out(b, t, h), g.D, acc + k * g.C + h * g.D);
                }
              }
            }
          }
        },
        1);
    if (!want_dw) return;
    std::vector<float> sum(static_cast<size_t>(KC), 0.0f);
    for (int64_t i = 0; i < blocks; ++i)
      for (int64_t j = 0; j < KC; ++j) sum[j] += partial[i * KC + j];
    float* dw = ws->grad_buffer().data();
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t k = 0; k < g.K; ++k) dw[c * g.K + k] += sum[k * g.C + c];
  });
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
  return short_conv_impl("short_conv", x, weight, causal, 0);
}

Var short_conv_heads(const Var& x, const Var& weight, bool causal, int64_t heads) {
  if (heads < 1) throw std::invalid_argument("short_conv_heads: heads must be >= 1, got " + std::to_string(heads));
  return short_conv_impl("short_conv_heads", x, weight, causal, heads);
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
