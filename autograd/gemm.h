// One GEMM entry point for the whole project: C = alpha * op(A) op(B) + beta * C, row-major.
// op(X) is X or X^T. Backed by oneDNN's matmul primitive when the build found oneDNN (PF_USE_DNNL),
// otherwise by Eigen's own product. Both are deterministic for a fixed thread count.
//
// Precision. Inputs and outputs are always fp32 in memory. The process-wide matmul precision says
// how the products are computed:
//   fp32  fp32 inputs, fp32 accumulation (the default).
//   bf16  both inputs rounded to bfloat16 (8-bit mantissa, round to nearest even) just before the
//         product, fp32 accumulation, fp32 output: the rule of PyTorch's CPU autocast for matmuls.
//         Needs oneDNN and a CPU with AVX512-BF16 (set_matmul_precision refuses otherwise).
// A call site that must stay exact whatever the setting passes Precision::fp32 (FAVOR+'s feature
// projection does: its result goes through exp, which would turn a relative input error into an
// absolute one).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>

#include "base/enum_names.h"

namespace pf {

enum class Precision {
  fp32,
  bf16,
  process,  // whatever set_matmul_precision() chose (the default argument of gemm)
};

template <>
struct EnumNames<Precision> {  // process is not a name: it is whatever was set
  static constexpr std::array<std::pair<Precision, const char*>, 2> table{
      {{Precision::fp32, "fp32"}, {Precision::bf16, "bf16"}}};
};

// The names of the table above (Precision::process: the name of the process-wide setting); parse throws
// std::invalid_argument naming the value.
Precision parse_precision(const std::string& name);
const char* precision_name(Precision p);

// Whether this build and this CPU can run bf16 products (oneDNN linked, AVX512-BF16 or AMX-BF16
// present), and if not, why (empty when it can).
bool bf16_supported();
std::string bf16_unsupported_reason();

// Process-wide setting read by every gemm(..., Precision::process). Throws std::runtime_error with
// bf16_unsupported_reason() when bf16 is asked for and cannot run. Not to be changed while products
// run on other threads.
void set_matmul_precision(Precision p);
Precision matmul_precision();

// Sets the precision for a scope and restores the previous one.
class MatmulPrecisionGuard {
 public:
  explicit MatmulPrecisionGuard(Precision p) : prev_(matmul_precision()) { set_matmul_precision(p); }
  ~MatmulPrecisionGuard() { set_matmul_precision(prev_); }
  MatmulPrecisionGuard(const MatmulPrecisionGuard&) = delete;
  MatmulPrecisionGuard& operator=(const MatmulPrecisionGuard&) = delete;

 private:
  Precision prev_;
};

// A is (M, K) after op, B is (K, N) after op, C is (M, N). lda/ldb/ldc are row strides.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc, Precision precision = Precision::process);

// bf16 operands kept between products (a Linear layer's saved input): the raw bits of the stored
// matrix, rows x cols, dense (leading dimension cols).
// to_bf16: converts (parallel over rows; the same rounding as the products use).
void to_bf16(const float* src, int64_t rows, int64_t cols, int64_t ld, uint16_t* dst);
// gemm with Precision::bf16 where either operand may be given already converted (A16 / B16 instead
// of A / B; pass nullptr for the other form). Equal, bit for bit, to gemm(..., Precision::bf16) on
// the fp32 originals. Needs bf16_supported().
void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               const uint16_t* A16, int64_t lda, const float* B, const uint16_t* B16, int64_t ldb, float beta,
               float* C, int64_t ldc);
// C = op(A) op(B) + bias, with bias a row of N floats added to every row of C (overwritten): the
// Linear layer's forward, the bias added by the product's kernel instead of by a pass of its own. When
// the product runs in bf16, A may be given already converted (A16, dense; A is then not read).
void gemm_bias(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, const uint16_t* A16,
               int64_t lda, const float* B, int64_t ldb, const float* bias, float* C, int64_t ldc,
               Precision precision = Precision::process);
// Whether gemm(..., process precision) of this size runs in bf16 (large enough, precision bf16).
bool gemm_uses_bf16(int64_t M, int64_t N, int64_t K, Precision precision = Precision::process);

// Name of the backend compiled in ("onednn" or "eigen").
const char* gemm_backend();

// How many distinct oneDNN matmul primitives this process has made (each call shape once; 0 with the
// Eigen backend). For the benchmarks' reports and the cache test.
int64_t gemm_primitive_count();

// Rounds n floats to bfloat16 and back (round to nearest even), in place: what a bf16 product does
// to its inputs. For tests and reference computations.
void round_to_bf16(float* x, int64_t n);

}  // namespace pf
