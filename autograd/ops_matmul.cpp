// Matrix products on top of gemm(): one GEMM when the right operand is 2-D (the Linear-layer
// case), else one GEMM per batch element, parallel over the batch.
#include <stdexcept>

#include "autograd/gemm.h"
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
  // Saves both operands (handles): dA = dC op(B)^T, dB = op(A)^T dC, adjusted for transposes.
  return make_result(std::move(out), needs_grad({&a, &b}), "matmul",
                     [a = a.impl_ptr(), b = b.impl_ptr(), d, ta, tb](const Tensor& g) {
                       const int64_t M = d.M, N = d.N, K = d.K, batch = d.batch;
                       const float* pa = a->value.data();
                       const float* pb = b->value.data();
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

}  // namespace pf
