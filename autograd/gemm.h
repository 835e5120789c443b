// One GEMM entry point for the whole project: C = alpha * op(A) op(B) + beta * C, row-major.
// op(X) is X or X^T. Backed by OpenBLAS's cblas_sgemm when the build found it (PF_USE_BLAS),
// otherwise by Eigen's own product. Both are deterministic for a fixed thread count.
#pragma once

#include <cstdint>

namespace pf {

// A is (M, K) after op, B is (K, N) after op, C is (M, N). lda/ldb/ldc are row strides.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Name of the backend compiled in ("openblas" or "eigen").
const char* gemm_backend();

}  // namespace pf
