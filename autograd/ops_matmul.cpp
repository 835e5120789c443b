// Matrix products on top of gemm(): one GEMM when the right operand is 2-D (the Linear-layer
// case), else one GEMM per batch element, parallel over the batch.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "autograd/gemm.h"
#include "autograd/kernels.h"
#include "autograd/ops.h"
#include "autograd/parallel.h"

namespace pf {

namespace {

struct MatmulDims {
  int64_t batch = 1;  // product of leading dims of a
  int64_t M = 0, K = 0, N = 0;
  bool b_shared = false;  // b is 2-D and shared by every batch element
  Shape out;
};

MatmulDims matmul_dims(const Shape& a, const Shape& b, bool ta, bool tb) {
  if (a.size() < 2 || b.size() < 2) throw_shape_error("matmul", "operands must have at least 2 dimensions", a, b);
  MatmulDims d;
  const size_t na = a.size();
  d.M = ta ? a[na - 1] : a[na - 2];
  d.K = ta ? a[na - 2] : a[na - 1];
  const size_t nb = b.size();
  int64_t kb = tb ? b[nb - 1] : b[nb - 2];
  d.N = tb ? b[nb - 2] : b[nb - 1];
  if (kb != d.K) throw_shape_error("matmul", "inner dimensions differ", a, b);
  for (size_t i = 0; i + 2 < na; ++i) d.batch *= a[i];
  if (nb == 2) {
    d.b_shared = true;
  } else if (nb != na || !std::equal(a.begin(), a.end() - 2, b.begin())) {
    throw_shape_error("matmul", "batch dimensions differ (right operand must be 2-D or match)", a, b);
  }
  d.out = Shape(a.begin(), a.end() - 2);
  d.out.push_back(d.M);
  d.out.push_back(d.N);
  return d;
}

// C[i] (+)= op(A[i]) op(B[i]) for every batch element i. Strides of 0 reuse one matrix.
void batched_gemm(int64_t batch, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t a_rows,
                  int64_t a_cols, int64_t stride_a, const float* B, int64_t b_cols, int64_t stride_b, float beta,
                  float* C, int64_t stride_c) {
  (void)a_rows;
  if (batch == 1) {
    gemm(ta, tb, M, N, K, 1.0f, A, a_cols, B, b_cols, beta, C, N);
    return;
  }
  // Many small products: one per thread; a few large ones: let the GEMM use the threads.
  if (batch >= get_num_threads() && M * N * K < (int64_t{1} << 24)) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < batch; ++i)
      gemm(ta, tb, M, N, K, 1.0f, A + i * stride_a, a_cols, B + i * stride_b, b_cols, beta, C + i * stride_c, N);
  } else {
    for (int64_t i = 0; i < batch; ++i)
      gemm(ta, tb, M, N, K, 1.0f, A + i * stride_a, a_cols, B + i * stride_b, b_cols, beta, C + i * stride_c, N);
  }
}

}  // namespace

Var matmul(const Var& a, const Var& b, bool ta, bool tb) {
  const MatmulDims d = matmul_dims(a.shape(), b.shape(), ta, tb);
  const int64_t M = d.M, N = d.N, K = d.K, batch = d.batch;
  const int64_t a_cols = a.shape().back(), b_cols = b.shape().back();
  Tensor out = Tensor::empty(d.out);
  if (d.b_shared && !ta) {
    // (batch*M, K) x (K, N): one large GEMM.
    gemm(false, tb, batch * M, N, K, 1.0f, a.value().data(), a_cols, b.value().data(), b_cols, 0.0f, out.data(), N);
  } else {
    batched_gemm(batch, ta, tb, M, N, K, a.value().data(), 0, a_cols, M * K, b.value().data(), b_cols,
                 d.b_shared ? 0 : K * N, 0.0f, out.data(), M * N);
  }
  // dA = dC op(B)^T, dB = op(A)^T dC, adjusted for transposes: saves (shares) each operand only if the
  // other one wants a gradient.
  const bool rg = needs_grad({&a, &b});
  Tensor av = rg && b.requires_grad() ? a.value() : Tensor(), bv = rg && a.requires_grad() ? b.value() : Tensor();
  return make_result(std::move(out), rg, "matmul",
                     [a = a.slot_ptr(), b = b.slot_ptr(), av, bv, d, ta, tb](const Tensor& g) {
                       const int64_t M = d.M, N = d.N, K = d.K, batch = d.batch;
                       const float* pa = av.defined() ? av.data() : nullptr;
                       const float* pb = bv.defined() ? bv.data() : nullptr;
                       const float* pg = g.data();
                       const int64_t sb = d.b_shared ? 0 : K * N;
                       if (a->requires_grad) {
                         float* ga = a->grad_buffer().data();
                         // A (M,K) [or (K,M) if ta]. dA = dC op(B)^T, or its transpose.
                         if (!ta) {
                           if (d.b_shared) {
                             gemm(false, !tb, batch * M, K, N, 1.0f, pg, N, pb, tb ? K : N, 1.0f, ga, K);
                           } else {
#pragma omp parallel for schedule(static) if (batch >= 2)
                             for (int64_t i = 0; i < batch; ++i)
                               gemm(false, !tb, M, K, N, 1.0f, pg + i * M * N, N, pb + i * sb, tb ? K : N, 1.0f,
                                    ga + i * M * K, K);
                           }
                         } else {
                           // dA (K,M) = op(B) dC^T
#pragma omp parallel for schedule(static) if (batch >= 2)
                           for (int64_t i = 0; i < batch; ++i)
                             gemm(tb, true, K, M, N, 1.0f, pb + i * sb, tb ? K : N, pg + i * M * N, N, 1.0f,
                                  ga + i * M * K, M);
                         }
                       }
                       if (b->requires_grad) {
                         float* gb = b->grad_buffer().data();
                         if (d.b_shared && !ta) {
                           // One GEMM over the stacked batch.
                           if (!tb) gemm(true, false, K, N, batch * M, 1.0f, pa, K, pg, N, 1.0f, gb, N);
                           else gemm(true, false, N, K, batch * M, 1.0f, pg, N, pa, K, 1.0f, gb, K);
                         } else if (d.b_shared) {
                           // ta with shared b: accumulate batch by batch (serial: same output).
                           for (int64_t i = 0; i < batch; ++i) {
                             if (!tb) gemm(false, false, K, N, M, 1.0f, pa + i * M * K, M, pg + i * M * N, N, 1.0f, gb, N);
                             else gemm(true, true, N, K, M, 1.0f, pg + i * M * N, N, pa + i * M * K, M, 1.0f, gb, K);
                           }
                         } else {
#pragma omp parallel for schedule(static) if (batch >= 2)
                           for (int64_t i = 0; i < batch; ++i) {
                             const float* ai = pa + i * M * K;
                             const float* gi = pg + i * M * N;
                             float* bi = gb + i * K * N;
                             // dB = op(A)^T dC  (K,N), or (dC^T op(A)) (N,K) when tb.
                             if (!tb) gemm(!ta, false, K, N, M, 1.0f, ai, ta ? M : K, gi, N, 1.0f, bi, N);
                             else gemm(true, ta, N, K, M, 1.0f, gi, N, ai, ta ? M : K, 1.0f, bi, K);
                           }
                         }
                       }
                     });
}

namespace {

// Column sums of g (rows, out_f) added into db, parallel over column blocks (fixed order per column).
void add_column_sums(const float* pg, int64_t rows, int64_t out_f, float* db) {
  parallel_for(
      out_f,
      [&](int64_t s, int64_t e) {
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t j = s; j < e; ++j) db[j] += pg[r * out_f + j];
      },
      64);
}

// The bf16 bits of x's value, for bf16 products that read x: converted once per recorded value and
// kept on its gradient slot, so that the three projections of one input (q, k, v) share one copy, and
// the copy lives exactly as long as the slot (the backward closures that read it). Only values
// produced by recorded ops (never written by users) are cached; anything else is converted per call.
Tensor bf16_bits(const Var& x, int64_t rows, int64_t cols) {
  GradSlot* slot = x.slot();
  const bool cache = !x.is_leaf();
  if (cache && slot->bf16_value.defined() && slot->bf16_version == x.version()) return slot->bf16_value;
  Tensor bits = Tensor::empty({(rows * cols + 1) / 2});
  to_bf16(x.value().data(), rows, cols, cols, reinterpret_cast<uint16_t*>(bits.data()));
  if (cache) {
    slot->bf16_value = bits;
    slot->bf16_version = x.version();
  }
  return bits;
}

const uint16_t* bits_of(const Tensor& t) { return t.defined() ? reinterpret_cast<const uint16_t*>(t.data()) : nullptr; }

}  // namespace

Var linear(const Var& x, const Var& w, const Var& b) {
  if (w.dim() != 2 || x.dim() < 1 || x.shape().back() != w.shape()[1])
    throw_shape_error("linear", "input (..., in) and weight (out, in) disagree", x.shape(), w.shape());
  const int64_t in = w.shape()[1], out_f = w.shape()[0];
  const bool has_bias = b.defined();
  if (has_bias && b.shape() != Shape{out_f}) throw_shape_error("linear", "bias must be (out)", b.shape(), w.shape());
  const int64_t rows = x.numel() / in;
  Shape os = x.shape();
  os.back() = out_f;
  Tensor out = Tensor::empty(os);
  float* po = out.data();
  const bool rg = needs_grad({&x, &w}) || (has_bias && needs_grad({&b}));
  // In bf16, x is rounded to bf16 for the product anyway: convert it once (shared by the projections
  // of one input), and save that copy for dW = g^T x, which would round x the same way. The backward
  // reads the same bits the fp32 value would have given, at half the memory.
  const bool bf16_forward = gemm_uses_bf16(rows, out_f, in);
  const bool bf16_dw = gemm_uses_bf16(out_f, in, rows), bf16_dx = gemm_uses_bf16(rows, in, out_f);
  const bool save_x16 = rg && w.requires_grad() && bf16_dw;  // dW reads x's bf16 bits
  Tensor x16;
  if (bf16_forward || save_x16) x16 = bf16_bits(x, rows, in);
  const uint16_t* px16 = bf16_forward ? bits_of(x16) : nullptr;
  if (has_bias) {  // the bias added by the product itself
    gemm_bias(false, true, rows, out_f, in, px16 ? nullptr : x.value().data(), px16, in, w.value().data(), in,
              b.value().data(), po, out_f);
  } else if (px16) {
    gemm_bf16(false, true, rows, out_f, in, 1.0f, nullptr, px16, in, w.value().data(), nullptr, in, 0.0f, po, out_f);
  } else {
    gemm(false, true, rows, out_f, in, 1.0f, x.value().data(), in, w.value().data(), in, 0.0f, po, out_f);
  }
  // Saved: W if dx is wanted; x (fp32, or its bf16 bits when dW runs in bf16) if dW is wanted.
  // dx = g W, dW = g^T x, db = sum of g over rows. g is converted to bf16 once when both of its
  // products run in bf16 (the same bits each would have converted on its own).
  Tensor wv = rg && x.requires_grad() ? w.value() : Tensor();
  Tensor xv = rg && w.requires_grad() && !bf16_dw ? x.value() : Tensor();
  if (!save_x16) x16 = Tensor();
  return make_result(std::move(out), rg, "linear",
                     [x = x.slot_ptr(), w = w.slot_ptr(), b = has_bias ? b.slot_ptr() : nullptr, wv, xv, x16, rows,
                      in, out_f, bf16_dw, bf16_dx](const Tensor& g) {
                       const float* pg = g.data();
                       float beta = 1.0f;
                       Tensor g16;
                       if (w->requires_grad && bf16_dw && (!x->requires_grad || bf16_dx)) {
                         g16 = Tensor::empty({(rows * out_f + 1) / 2});
                         to_bf16(pg, rows, out_f, out_f, reinterpret_cast<uint16_t*>(g16.data()));
                       }
                       const uint16_t* pg16 = bits_of(g16);
                       if (x->requires_grad) {
                         float* dx = x->grad_for_overwrite(&beta).data();
                         if (pg16 && bf16_dx) {
                           gemm_bf16(false, false, rows, in, out_f, 1.0f, nullptr, pg16, out_f, wv.data(), nullptr, in,
                                     beta, dx, in);
                         } else {
                           gemm(false, false, rows, in, out_f, 1.0f, pg, out_f, wv.data(), in, beta, dx, in);
                         }
                       }
                       if (w->requires_grad) {
                         float* dw = w->grad_for_overwrite(&beta).data();
                         if (bf16_dw) {
                           gemm_bf16(true, false, out_f, in, rows, 1.0f, pg16 ? nullptr : pg, pg16, out_f, nullptr,
                                     bits_of(x16), in, beta, dw, in);
                         } else {
                           gemm(true, false, out_f, in, rows, 1.0f, pg, out_f, xv.data(), in, beta, dw, in);
                         }
                       }
                       if (b && b->requires_grad) add_column_sums(pg, rows, out_f, b->grad_buffer().data());
                     });
}


namespace {

// a = dropout(gelu(h)) with the mask of generator word `base` (drop false: a = gelu(h)).
Tensor gelu_dropout_values(const Tensor& h, bool drop, uint64_t base, float keep, float scale) {
  Tensor a = Tensor::empty(h.shape());
  kernels::gelu(h.data(), a.data(), h.numel());
  if (drop) kernels::apply_dropout_mask(a.data(), a.numel(), base, keep, scale);
  return a;
}

// The same activation as bf16 bits (dense), for a product that runs in bf16: computed in L1-sized
// blocks and rounded as it is made, so the fp32 activation (the model's largest) is never stored
// and read back. Bit for bit to_bf16(gelu_dropout_values(...)): the same parallel split, and blocks
// of a multiple of the vector width inside it, so gelu's vectorized and scalar elements are the same.
Tensor gelu_dropout_bf16(const Tensor& h, bool drop, uint64_t base, float keep, float scale) {
  const int64_t n = h.numel();
  Tensor bits = Tensor::empty({(n + 1) / 2});
  uint16_t* out = reinterpret_cast<uint16_t*>(bits.data());
  const float* ph = h.data();
  parallel_for(n, [&](int64_t s, int64_t e) {
    constexpr int64_t kBlock = 2048;
    alignas(64) float buf[kBlock];
    for (int64_t b = s; b < e; b += kBlock) {
      const int64_t m = std::min(kBlock, e - b);
      kernels::gelu(ph + b, buf, m);  // m < the parallel grain: runs on this thread
      if (drop) kernels::dropout_block(buf, buf, m, base, b, keep, scale);
      to_bf16(buf, 1, m, m, out + b);
    }
  });
  return bits;
}

// The forward product of gelu_linear: out = a W^T + b with a = dropout(gelu(h)).
Tensor gelu_linear_forward(const Tensor& h, const Var& w, const Var& b, bool drop, uint64_t base, float keep,
                           float scale, bool bf16) {
  const int64_t in = w.shape()[1], out_f = w.shape()[0], rows = h.numel() / in;
  if (!bf16) {
    NoGradGuard values_only;
    return linear(Var(gelu_dropout_values(h, drop, base, keep, scale)), w, b).value();
  }
  const Tensor a16 = gelu_dropout_bf16(h, drop, base, keep, scale);
  Shape os = h.shape();
  os.back() = out_f;
  Tensor out = Tensor::empty(os);
  if (b.defined()) {
    gemm_bias(false, true, rows, out_f, in, nullptr, bits_of(a16), in, w.value().data(), in, b.value().data(),
              out.data(), out_f);
  } else {
    gemm_bf16(false, true, rows, out_f, in, 1.0f, nullptr, bits_of(a16), in, w.value().data(), nullptr, in, 0.0f,
              out.data(), out_f);
  }
  return out;
}

}  // namespace

Var gelu_linear(const Var& h, const Var& w, const Var& b, float p, bool training, Generator* gen) {
  if (p < 0.0f || p >= 1.0f) throw std::invalid_argument("gelu_linear: p must be in [0, 1), got " + std::to_string(p));
  const bool drop = training && p > 0.0f;
  if (drop && !gen) throw std::invalid_argument("gelu_linear: dropout in training needs a Generator");
  const float keep = 1.0f - p, scale = 1.0f / keep;
  const uint64_t base = drop ? gen->next_u64() : 0;  // the one draw dropout() would make
  const bool has_bias = b.defined();
  const int64_t in = w.shape()[1], out_f = w.shape()[0], rows = h.numel() / in;
  // In bf16 (all three products the same size, so all in bf16 or none): the activation is made in
  // bf16 directly, forward and backward, and g is converted once for dW and da.
  const bool bf16 = gemm_uses_bf16(rows, out_f, in) && gemm_uses_bf16(out_f, in, rows) &&
                    gemm_uses_bf16(rows, in, out_f);
  Tensor out = gelu_linear_forward(h.value(), w, b, drop, base, keep, scale, bf16);
  const bool rg = needs_grad({&h, &w, &b});
  // Saves h (and W when dh is wanted); gelu(h) and the mask are recomputed: dW = g^T a, db = sum of g
  // over rows, da = g W, dh = gelu'(h) (mask * scale * da): the separate ops' products and formulas.
  Tensor wv = rg && h.requires_grad() ? w.value() : Tensor();
  return make_result(std::move(out), rg, "gelu_linear",
                     [h = h.slot_ptr(), w = w.slot_ptr(), b = has_bias ? b.slot_ptr() : nullptr, hv = h.value(), wv,
                      drop, base, keep, scale, rows, in, out_f, bf16](const Tensor& g) {
                       const float* pg = g.data();
                       float beta = 1.0f;
                       Tensor g16;
                       if (bf16) {
                         g16 = Tensor::empty({(rows * out_f + 1) / 2});
                         to_bf16(pg, rows, out_f, out_f, reinterpret_cast<uint16_t*>(g16.data()));
                       }
                       // dW first, so that the recomputed activation is freed before da is made.
                       if (w->requires_grad) {
                         float* dw = w->grad_for_overwrite(&beta).data();
                         if (bf16) {
                           const Tensor a16 = gelu_dropout_bf16(hv, drop, base, keep, scale);
                           gemm_bf16(true, false, out_f, in, rows, 1.0f, nullptr, bits_of(g16), out_f, nullptr,
                                     bits_of(a16), in, beta, dw, in);
                         } else {
                           const Tensor a = gelu_dropout_values(hv, drop, base, keep, scale);
                           gemm(true, false, out_f, in, rows, 1.0f, pg, out_f, a.data(), in, beta, dw, in);
                         }
                       }
                       if (h->requires_grad) {
                         Tensor da = Tensor::empty(hv.shape());
                         if (bf16) {
                           gemm_bf16(false, false, rows, in, out_f, 1.0f, nullptr, bits_of(g16), out_f, wv.data(),
                                     nullptr, in, 0.0f, da.data(), in);
                         } else {
                           gemm(false, false, rows, in, out_f, 1.0f, pg, out_f, wv.data(), in, 0.0f, da.data(), in);
                         }
                         float* pda = da.data();
                         if (drop) kernels::apply_dropout_mask(pda, da.numel(), base, keep, scale);
                         kernels::gelu_backward(hv.data(), pda, pda, da.numel());  // in place: d = g gelu'(x)
                         h->accumulate_grad(std::move(da));
                       }
                       if (b && b->requires_grad) add_column_sums(pg, rows, out_f, b->grad_buffer().data());
                     });
}

}  // namespace pf
