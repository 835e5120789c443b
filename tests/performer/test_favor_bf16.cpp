// FAVOR+ with bf16 products (causal and bidirectional, both feature kinds) against the same kernel in
// fp32. The bound is derived from bf16's unit roundoff u = 2^-8: the feature projection stays fp32
// (autograd/gemm.h); every later product rounds its two inputs, and an output is a ratio
// sum_j w_ij v_j / sum_j w_ij of positive weights w_ij (phi(q_i).phi(k_j), up to three roundings: the
// two features and the weight matrix L) times v_j (one rounding), so the numerator is within
// 4u sum_j w_ij |v_j| and the denominator within 3u of itself: |out - out_fp32| <= 7u sum_j w_ij |v_j| /
// sum_j w_ij, which is the fp32 output for |v|. Gradients: normwise within 16u (the backward chains
// at most two more rounded products per term); bf16 must differ from fp32 (the path is taken).
#include <gtest/gtest.h>

#include <cmath>
#include <tuple>

#include "autograd/gemm.h"
#include "performer/favor_kernels.h"
#include "test_favor_util.h"

using namespace pf;

namespace {

constexpr double kU = 1.0 / 256.0;

struct Outputs {
  Tensor out, dq, dk, dv;
};

Outputs run(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& w, bool causal, const FavorOptions& opt,
        Precision p) {
  MatmulPrecisionGuard guard(p);
  Var vq(q.clone(), true), vk(k.clone(), true), vv(v.clone(), true);
  Var out = favor_attention(vq, vk, vv, w, causal, opt);
  Outputs r;
  r.out = out.value().clone();
  out.backward(test::randn(out.shape(), 99));
  r.dq = vq.grad().clone();
  r.dk = vk.grad().clone();
  r.dv = vv.grad().clone();
  return r;
}

double norm(const Tensor& t) {
  double s = 0.0;
  for (int64_t i = 0; i < t.numel(); ++i) s += double(t.data()[i]) * t.data()[i];
  return std::sqrt(s);
}

double norm_diff(const Tensor& a, const Tensor& b) {
  double s = 0.0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double d = double(a.data()[i]) - b.data()[i];
    s += d * d;
  }
  return std::sqrt(s);
}

TEST(FavorBf16, WithinTheBoundOfFp32) {
  if (!bf16_supported()) GTEST_SKIP() << bf16_unsupported_reason();
  const int64_t B = 2, H = 2, T = 200, D = 32, Dv = 32, M = 64;
  for (FeatureKind kind : {FeatureKind::Softmax, FeatureKind::Relu})
    for (bool causal : {true, false}) {
      Generator gen(7);
      Tensor q = Tensor::randn({B, H, T, D}, gen, 0.0f, 0.8f), k = Tensor::randn({B, H, T, D}, gen, 0.0f, 0.8f);
      Tensor v = Tensor::randn({B, H, T, Dv}, gen);
      Tensor w = orthogonal_random_features(M, D, gen);
      Tensor v_abs = v.clone();
      for (int64_t i = 0; i < v_abs.numel(); ++i) v_abs.data()[i] = std::fabs(v_abs.data()[i]);
      FavorOptions opt;
      opt.kind = kind;
      opt.chunk_size = 64;
      const std::string what = std::string(kind == FeatureKind::Softmax ? "softmax" : "relu") +
                               (causal ? "/causal" : "/bidirectional");
      const Outputs f32 = run(q, k, v, w, causal, opt, Precision::fp32);
      const Outputs b16 = run(q, k, v, w, causal, opt, Precision::bf16);
      const Outputs scale = run(q, k, v_abs, w, causal, opt, Precision::fp32);
      double worst = 0.0, max_diff = 0.0;
      for (int64_t i = 0; i < f32.out.numel(); ++i) {
        const double d = std::fabs(double(b16.out.data()[i]) - f32.out.data()[i]);
        max_diff = std::max(max_diff, d);
        worst = std::max(worst, d / (7 * kU * scale.out.data()[i] + 1e-6));
      }
      EXPECT_LE(worst, 1.0) << what << ": an output is outside 7u of fp32";
      EXPECT_GT(max_diff, 0.0) << what << ": bf16 identical to fp32";
      for (auto [a, b, name] : {std::tuple{&b16.dq, &f32.dq, "dq"}, {&b16.dk, &f32.dk, "dk"}, {&b16.dv, &f32.dv, "dv"}}) {
        const double rel = norm_diff(*a, *b) / norm(*b);
        EXPECT_LT(rel, 16 * kU) << what << " " << name;
        EXPECT_GT(rel, 0.0) << what << " " << name;
      }
    }
}

// The feature projection U = sigma X W^T stays fp32 under bf16 products: exp() turns its absolute error
// into a relative error of the features. With queries of norm ~24 (|u| up to ~20) a bf16 projection
// errs by ~2^-9 |u| ~ 0.04; an fp32 one stays within D 2^-24 sum_e |sigma x_e w_e|.
TEST(FavorBf16, FeatureProjectionStaysFp32) {
  if (!bf16_supported()) GTEST_SKIP() << bf16_unsupported_reason();
  const int64_t n = 64, D = 64, M = 32;
  Generator gen(11);
  const Tensor x = Tensor::randn({n, D}, gen, 0.0f, 3.0f);
  const Tensor w = orthogonal_random_features(M, D, gen);
  FavorOptions opt;
  opt.kind = FeatureKind::Softmax;
  MatmulPrecisionGuard guard(Precision::bf16);
  favor_detail::FeatureMap map(opt, D, M, w.data());
  std::vector<float> u(static_cast<size_t>(n * M)), h(static_cast<size_t>(n)), a(static_cast<size_t>(n));
  map.project(x.data(), n, u.data(), h.data(), a.data());
  double worst = 0.0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t f = 0; f < M; ++f) {
      double exact = 0.0, mag = 0.0;
      for (int64_t e = 0; e < D; ++e) {
        const double t = static_cast<double>(map.sigma) * x.data()[i * D + e] * w.data()[f * D + e];
        exact += t;
        mag += std::fabs(t);
      }
      worst = std::max(worst, std::fabs(u[static_cast<size_t>(i * M + f)] - exact) / (D * std::ldexp(1.0, -24) * mag));
    }
  EXPECT_LE(worst, 1.0) << "the projection is not computed in fp32 under bf16 products";
}

}  // namespace
