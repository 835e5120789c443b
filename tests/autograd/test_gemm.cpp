// gemm(): every transpose combination, leading dimensions, alpha and beta, against a double-precision
// reference; the bf16 path against the exact product of bf16-rounded inputs and against fp32 within
// the bound that bf16's 8-bit significand gives; the primitive cache; calls from parallel regions.
#include "autograd/gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "base/random.h"
#include "autograd/parallel.h"
#include "autograd/tensor.h"

namespace pf {
namespace {

// Unit roundoff of bf16: 8 significant bits (7 stored + the implicit one), round to nearest.
constexpr double kBf16U = 1.0 / 256.0;

struct Problem {
  bool ta, tb;
  int64_t M, N, K, lda, ldb, ldc;
  float alpha, beta;
  std::vector<float> A, B, C0;
};

Problem make(bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t pad, float alpha, float beta, uint64_t seed) {
  Problem p{ta, tb, M, N, K, (ta ? M : K) + pad, (tb ? K : N) + pad, N + pad, alpha, beta, {}, {}, {}};
  Generator g(seed);
  auto fill = [&](std::vector<float>& v, int64_t n) {
    Tensor t = Tensor::randn({n}, g);
    v.assign(t.data(), t.data() + n);
  };
  fill(p.A, (ta ? K : M) * p.lda);
  fill(p.B, (tb ? N : K) * p.ldb);
  fill(p.C0, M * p.ldc);
  return p;
}

float at_a(const Problem& p, const std::vector<float>& A, int64_t i, int64_t k) {
  return p.ta ? A[k * p.lda + i] : A[i * p.lda + k];
}
float at_b(const Problem& p, const std::vector<float>& B, int64_t k, int64_t j) {
  return p.tb ? B[j * p.ldb + k] : B[k * p.ldb + j];
}

// Reference in double: C = alpha op(A) op(B) + beta C0; also sum_k |a_ik b_kj| per element.
void reference(const Problem& p, const std::vector<float>& A, const std::vector<float>& B, std::vector<double>& C,
               std::vector<double>& absC) {
  C.assign(p.M * p.N, 0.0);
  absC.assign(p.M * p.N, 0.0);
  for (int64_t i = 0; i < p.M; ++i)
    for (int64_t j = 0; j < p.N; ++j) {
      double s = 0.0, a = 0.0;
      for (int64_t k = 0; k < p.K; ++k) {
        const double t = static_cast<double>(at_a(p, A, i, k)) * at_b(p, B, k, j);
        s += t;
        a += std::abs(t);
      }
      C[i * p.N + j] = p.alpha * s + p.beta * static_cast<double>(p.C0[i * p.ldc + j]);
      absC[i * p.N + j] = std::abs(p.alpha) * a + std::abs(p.beta * p.C0[i * p.ldc + j]);
    }
}

std::vector<float> run(const Problem& p, Precision prec = Precision::process) {
  std::vector<float> C = p.C0;
  gemm(p.ta, p.tb, p.M, p.N, p.K, p.alpha, p.A.data(), p.lda, p.B.data(), p.ldb, p.beta, C.data(), p.ldc, prec);
  return C;
}

// Largest |got - want| / (sum |terms|), over the (M, N) block; also checks the padding is untouched.
double max_rel_error(const Problem& p, const std::vector<float>& got, const std::vector<double>& want,
                     const std::vector<double>& scale) {
  double worst = 0.0;
  for (int64_t i = 0; i < p.M; ++i) {
    for (int64_t j = 0; j < p.N; ++j) {
      const double e = std::abs(got[i * p.ldc + j] - want[i * p.N + j]) / std::max(scale[i * p.N + j], 1e-30);
      worst = std::max(worst, e);
    }
    for (int64_t j = p.N; j < p.ldc; ++j) EXPECT_EQ(got[i * p.ldc + j], p.C0[i * p.ldc + j]) << "padding written";
  }
  return worst;
}

struct Shape3 {
  int64_t M, N, K;
};
// From below the small-product cut-over (Eigen) to sizes oneDNN blocks and threads.
const Shape3 kShapes[] = {{3, 5, 7}, {17, 33, 9}, {64, 65, 128}, {130, 257, 96}, {256, 200, 512}};

TEST(Gemm, Fp32MatchesDoubleReferenceForEveryLayout) {
  MatmulPrecisionGuard fp32(Precision::fp32);
  uint64_t seed = 1;
  for (const Shape3& s : kShapes)
    for (int t = 0; t < 4; ++t)
      for (int64_t pad : {0, 3})
        for (auto [alpha, beta] : {std::pair{1.0f, 0.0f}, {1.0f, 1.0f}, {0.5f, -0.75f}}) {
          Problem p = make(t & 1, t & 2, s.M, s.N, s.K, pad, alpha, beta, seed++);
          std::vector<double> want, scale;
          reference(p, p.A, p.B, want, scale);
          // fp32 accumulation of K terms: a few K u32 in the worst case, far less in practice.
          EXPECT_LT(max_rel_error(p, run(p), want, scale), 4e-6 * std::sqrt(static_cast<double>(s.K)))
              << "M" << s.M << " N" << s.N << " K" << s.K << " ta" << p.ta << " tb" << p.tb << " pad" << pad
              << " alpha" << alpha << " beta" << beta;
        }
}

TEST(Gemm, ZeroInnerDimensionScalesC) {
  Problem p = make(false, false, 4, 5, 0, 0, 1.0f, 0.5f, 7);
  std::vector<float> C = run(p);
  for (int64_t i = 0; i < 20; ++i) EXPECT_EQ(C[i], 0.5f * p.C0[i]);
}

TEST(Gemm, Bf16IsTheExactProductOfRoundedInputs) {
  if (!bf16_supported()) GTEST_SKIP() << bf16_unsupported_reason();
  MatmulPrecisionGuard bf16(Precision::bf16);
  uint64_t seed = 100;
  for (const Shape3& s : kShapes) {
    if (s.M * s.N * s.K < 512) continue;  // tiny products stay fp32 (gemm.cpp: kSmallProduct)
    for (int t = 0; t < 4; ++t) {
      Problem p = make(t & 1, t & 2, s.M, s.N, s.K, 2, 1.0f, 1.0f, seed++);
      std::vector<float> Ar = p.A, Br = p.B;
      round_to_bf16(Ar.data(), static_cast<int64_t>(Ar.size()));
      round_to_bf16(Br.data(), static_cast<int64_t>(Br.size()));
      std::vector<double> want_rounded, scale, want_exact, scale_exact;
      reference(p, Ar, Br, want_rounded, scale);
      reference(p, p.A, p.B, want_exact, scale_exact);
      const std::vector<float> got = run(p);
      // The products of bf16 numbers are exact in fp32; only the fp32 accumulation errs.
      EXPECT_LT(max_rel_error(p, got, want_rounded, scale), 4e-6 * std::sqrt(static_cast<double>(s.K)));
      // Against the unrounded product: each input within u of itself, so each term within 2u + u^2.
      const double err = max_rel_error(p, got, want_exact, scale_exact);
      EXPECT_LT(err, 2 * kBf16U + kBf16U * kBf16U + 4e-6 * std::sqrt(static_cast<double>(s.K)));
      EXPECT_GT(err, 1e-4) << "bf16 product indistinguishable from fp32: was the bf16 path taken?";
      // Forcing fp32 at the call site ignores the process setting.
      EXPECT_LT(max_rel_error(p, run(p, Precision::fp32), want_exact, scale_exact),
                4e-6 * std::sqrt(static_cast<double>(s.K)));
    }
  }
}

TEST(Gemm, PreconvertedBf16OperandsGiveTheSameBits) {
  if (!bf16_supported()) GTEST_SKIP() << bf16_unsupported_reason();
  MatmulPrecisionGuard bf16(Precision::bf16);
  for (int t = 0; t < 4; ++t) {
    Problem p = make(t & 1, t & 2, 70, 50, 90, 3, 1.0f, 1.0f, 300 + t);
    const int64_t a_rows = p.ta ? p.K : p.M, a_cols = p.ta ? p.M : p.K;
    const int64_t b_rows = p.tb ? p.N : p.K, b_cols = p.tb ? p.K : p.N;
    std::vector<uint16_t> a16(a_rows * a_cols), b16(b_rows * b_cols);
    to_bf16(p.A.data(), a_rows, a_cols, p.lda, a16.data());
    to_bf16(p.B.data(), b_rows, b_cols, p.ldb, b16.data());
    const std::vector<float> want = run(p);
    for (int which = 0; which < 3; ++which) {  // A given, B given, both given
      std::vector<float> C = p.C0;
      const bool ga = which != 1, gb = which != 0;
      gemm_bf16(p.ta, p.tb, p.M, p.N, p.K, p.alpha, ga ? nullptr : p.A.data(), ga ? a16.data() : nullptr,
                ga ? a_cols : p.lda, gb ? nullptr : p.B.data(), gb ? b16.data() : nullptr, gb ? b_cols : p.ldb,
                p.beta, C.data(), p.ldc);
      EXPECT_EQ(C, want) << "layout " << t << ", pre-converted " << which;
    }
  }
}

// gemm_bias: C = op(A) op(B) + bias row, C overwritten (whatever it held), padding untouched; in fp32
// against the double reference, in bf16 against the product of the rounded inputs; A given already in
// bf16 gives the same bits as A converted by the call; and a bf16 operand for an fp32 product is refused.
TEST(Gemm, BiasIsAddedToEveryRowAndCIsOverwritten) {
  std::vector<Precision> precisions = {Precision::fp32};
  if (bf16_supported()) precisions.push_back(Precision::bf16);
  uint64_t seed = 400;
  for (Precision precision : precisions)
    for (const Shape3& s : kShapes)
      for (int t = 0; t < 4; ++t) {
        const bool bf16 = precision == Precision::bf16 && s.M * s.N * s.K >= 512;
        Problem p = make(t & 1, t & 2, s.M, s.N, s.K, 2, 1.0f, 1.0f, seed++);
        Generator g(seed++);
        const Tensor bias = Tensor::randn({s.N}, g);
        std::vector<float> C = p.C0;  // garbage in the block: must be overwritten
        for (int64_t i = 0; i < s.M; ++i)
          for (int64_t j = 0; j < s.N; ++j) p.C0[i * p.ldc + j] = bias.data()[j];  // the reference's "beta C0"
        std::vector<float> Ar = p.A, Br = p.B;
        if (bf16) {
          round_to_bf16(Ar.data(), static_cast<int64_t>(Ar.size()));
          round_to_bf16(Br.data(), static_cast<int64_t>(Br.size()));
        }
        std::vector<double> want, scale;
        reference(p, Ar, Br, want, scale);
        gemm_bias(p.ta, p.tb, s.M, s.N, s.K, p.A.data(), nullptr, p.lda, p.B.data(), p.ldb, bias.data(), C.data(),
                  p.ldc, precision);
        EXPECT_LT(max_rel_error(p, C, want, scale), 4e-6 * std::sqrt(static_cast<double>(s.K)))
            << precision_name(precision) << " M" << s.M << " N" << s.N << " K" << s.K << " layout " << t;
        if (bf16) {
          const int64_t a_rows = p.ta ? p.K : p.M, a_cols = p.ta ? p.M : p.K;
          std::vector<uint16_t> a16(a_rows * a_cols);
          to_bf16(p.A.data(), a_rows, a_cols, p.lda, a16.data());
          std::vector<float> C16 = p.C0;
          gemm_bias(p.ta, p.tb, s.M, s.N, s.K, nullptr, a16.data(), a_cols, p.B.data(), p.ldb, bias.data(),
                    C16.data(), p.ldc, precision);
          for (int64_t i = 0; i < s.M; ++i)
            for (int64_t j = 0; j < s.N; ++j) ASSERT_EQ(C16[i * p.ldc + j], C[i * p.ldc + j]) << "pre-converted A";
        }
      }
  std::vector<uint16_t> a16(64 * 64);
  std::vector<float> B(64 * 64), bias(64), C(64 * 64);
  EXPECT_THROW(gemm_bias(false, false, 64, 64, 64, nullptr, a16.data(), 64, B.data(), 64, bias.data(), C.data(), 64,
                         Precision::fp32),
               std::invalid_argument);
}

TEST(Gemm, RoundToBf16RoundsToNearestEven) {
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even significand (1).
  float v[4] = {1.0f + 1.0f / 256.0f, 1.0f + 3.0f / 256.0f, -2.5f, 1e-9f};
  round_to_bf16(v, 4);
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_EQ(v[1], 1.0f + 4.0f / 256.0f);
  EXPECT_EQ(v[2], -2.5f);
  EXPECT_NEAR(v[3], 1e-9f, 1e-9f * kBf16U);
}

TEST(Gemm, PrecisionNamesParse) {
  EXPECT_EQ(parse_precision("fp32"), Precision::fp32);
  EXPECT_EQ(parse_precision("bf16"), Precision::bf16);
  EXPECT_THROW(parse_precision("fp16"), std::invalid_argument);
  if (!bf16_supported()) {
    EXPECT_THROW(set_matmul_precision(Precision::bf16), std::runtime_error);
    EXPECT_EQ(matmul_precision(), Precision::fp32);
  }
}

TEST(Gemm, OnePrimitivePerCallShape) {
  if (std::string(gemm_backend()) != "onednn") GTEST_SKIP() << "Eigen backend";
  Problem p = make(false, true, 48, 40, 56, 1, 1.0f, 0.0f, 5);
  run(p);
  const int64_t after_first = gemm_primitive_count();
  for (int i = 0; i < 5; ++i) run(p);
  EXPECT_EQ(gemm_primitive_count(), after_first);
  Problem q = make(false, true, 48, 40, 57, 1, 1.0f, 0.0f, 6);  // another K: another primitive
  run(q);
  EXPECT_EQ(gemm_primitive_count(), after_first + 1);
}

TEST(Gemm, CallsFromInsideAParallelRegionMatchSequentialCalls) {
  set_num_threads(2);
  for (Precision prec : {Precision::fp32, Precision::bf16}) {
    if (prec == Precision::bf16 && !bf16_supported()) continue;
    MatmulPrecisionGuard guard(prec);
    std::vector<Problem> ps;
    for (int i = 0; i < 8; ++i) ps.push_back(make(i & 1, i & 2, 64, 48, 80, 0, 1.0f, 0.0f, 50 + i));
    std::vector<std::vector<float>> seq(8), par(8);
    for (int i = 0; i < 8; ++i) seq[i] = run(ps[i]);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < 8; ++i) par[i] = run(ps[i]);
    for (int i = 0; i < 8; ++i) {
      std::vector<double> want, scale;
      reference(ps[i], ps[i].A, ps[i].B, want, scale);
      const double tol = (prec == Precision::bf16 ? 2 * kBf16U + kBf16U * kBf16U : 0.0) + 4e-6 * std::sqrt(80.0);
      EXPECT_LT(max_rel_error(ps[i], par[i], want, scale), tol) << i;
      EXPECT_LT(max_rel_error(ps[i], seq[i], want, scale), tol) << i;
    }
  }
}

}  // namespace
}  // namespace pf
