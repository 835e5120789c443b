// FAVOR+ as an estimator of softmax attention: the error falls as M grows, orthogonal features beat
// iid ones, and the eps floor does not take over the denominator on keys with a wide spread of norms
// and a few outliers (the measured pitfall in docs/ARCHITECTURE.md, "Shifts").
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "test_favor_util.h"

using namespace pf;

namespace {

using Data = test::QKV;

// q, k entries N(0, scale^2): q.k / sqrt(D) ~ N(0, scale^4), v entries N(0, 1).
Data make_data(int64_t H, int64_t T, int64_t D, int64_t Dv, float scale, uint64_t seed) {
  Generator gen(seed);
  return test::random_qkv(1, H, T, D, Dv, scale, gen);
}

// Mean relative row error of FAVOR+ (the causal and the bidirectional kernel, averaged) against exact
// softmax attention.
struct Problem {
  Data data;
  Tensor exact_causal, exact_bidir;
  double error(const Tensor& w) const {
    NoGradGuard no_grad;
    const FavorOptions opt;
    const Tensor c = favor_attention(Var(data.q), Var(data.k), Var(data.v), w, true, opt).value();
    const Tensor b = favor_attention(Var(data.q), Var(data.k), Var(data.v), w, false, opt).value();
    return 0.5 * (test::mean_row_rel_error(c, exact_causal) + test::mean_row_rel_error(b, exact_bidir));
  }
};

std::vector<Problem> make_problems(int count, int64_t D, float scale) {
  std::vector<Problem> ps;
  for (int s = 0; s < count; ++s) {
    Problem p;
    p.data = make_data(4, 96, D, 16, scale, 10 + s);
    p.exact_causal = test::exact_attention(p.data.q, p.data.k, p.data.v, true);
    p.exact_bidir = test::exact_attention(p.data.q, p.data.k, p.data.v, false);
    ps.push_back(std::move(p));
  }
  return ps;
}

}  // namespace

// Positive random features estimate exp(q'.k') with a relative variance of order exp(|q' + k'|^2) / M
// (paper, Lemma 2): the error falls like M^(-1/2), a factor 0.5 for every 4x more features, but more
// slowly while a few heavy-tailed draws dominate the mean. D = 16, entries N(0, 0.7^2): logits
// q.k / sqrt(D) with standard deviation 0.49, |q'|^2 ~ 2. Measured factors per 4x: 0.62, 0.74, 0.62; the
// test asks for < 0.8 at every step, and < 0.35 mean relative error at M = 1024. (With N(0, 1) entries
// in D = 32 the same estimator still has a mean relative error near 1 at M = 1024: FAVOR+ needs
// moderate query and key norms.)
TEST(FavorAccuracy, ErrorFallsAsFeaturesGrow) {
  const int kSeeds = 8;
  const int64_t D = 16;
  const std::vector<Problem> problems = make_problems(kSeeds, D, 0.7f);
  double previous = 0.0;
  for (int64_t m : {16, 64, 256, 1024}) {
    double err = 0.0;
    for (int s = 0; s < kSeeds; ++s) {
      Generator gen(1000 * m + s);
      err += problems[s].error(orthogonal_random_features(m, D, gen)) / kSeeds;
    }
    std::printf("M = %4ld: mean relative error %.4f\n", long(m), err);
    if (previous > 0.0) {
      EXPECT_LT(err, 0.8 * previous) << "M = " << m;
    }
    previous = err;
  }
  EXPECT_LT(previous, 0.35);
}

namespace {

using FeatureDraw = Tensor (*)(int64_t m, int64_t d, Generator& gen);

// The paired design of the two tests below: over 32 problems (D = 16, entries N(0, 0.5^2)), a fresh W per
// problem for each kind (seeds seed_better + s and seed_worse + s, scaled by M); the mean error of `better`
// must be lower and the paired difference must exceed 3 standard errors, at every M.
void expect_lower_error(const char* better_name, FeatureDraw better, uint64_t seed_better, const char* worse_name,
                        FeatureDraw worse, uint64_t seed_worse, std::initializer_list<int64_t> ms) {
  const int kSeeds = 32;
  const int64_t D = 16;
  const std::vector<Problem> problems = make_problems(kSeeds, D, 0.5f);
  for (int64_t m : ms) {
    std::vector<double> diff;
    double good = 0.0, bad = 0.0;
    for (int s = 0; s < kSeeds; ++s) {
      Generator g_good(seed_better * m + s), g_bad(seed_worse * m + s);
      const double e_good = problems[s].error(better(m, D, g_good));
      const double e_bad = problems[s].error(worse(m, D, g_bad));
      good += e_good / kSeeds;
      bad += e_bad / kSeeds;
      diff.push_back(e_bad - e_good);
    }
    double mean = 0.0, var = 0.0;
    for (double x : diff) mean += x / kSeeds;
    for (double x : diff) var += (x - mean) * (x - mean) / (kSeeds - 1);
    const double se = std::sqrt(var / kSeeds);
    std::printf("M = %4ld: %s %.4f, %s %.4f, paired difference %.4f (standard error %.4f)\n", long(m), better_name,
                good, worse_name, bad, mean, se);
    EXPECT_LT(good, bad) << "M = " << m;
    EXPECT_GT(mean, 3.0 * se) << "M = " << m;
  }
}

Tensor antithetic_orthogonal(int64_t m, int64_t d, Generator& gen) { return antithetic_random_features(m, d, gen); }

}  // namespace

// Orthogonal features lower the estimator's variance (paper, Theorem 2: the MSE drops by a term of
// relative size ~2 / (D + 2), largest for small |q' + k'|). The advantage is a few percent of the error,
// so it is measured as a paired difference over 32 problems (same data, a fresh W per problem for each
// kind) and must exceed 3 standard errors of that difference at every M: a test a no-better estimator
// would pass with probability ~1e-3. D = 16, entries N(0, 0.5^2). Measured t-statistics: 4.1, 5.2, 5.5.
TEST(FavorAccuracy, OrthogonalFeaturesBeatIid) {
  expect_lower_error("orthogonal", orthogonal_random_features, 1000, "iid", iid_random_features, 5000, {64, 256, 1024});
}

// Antithetic pairs [V; -V] (the paper's hyperbolic estimator) at the same feature count M: MSE smaller by
// the factor (1 - exp(-|q' + k'|^2)) (features.h), so the error must be lower. Same paired design as above,
// against plain orthogonal features. Entries N(0, 0.5^2), D = 16, so |q' + k'|^2 ~ 2 and the factor ~0.85
// on the MSE, more where q' and k' point apart. Measured: error 18-21% lower, t-statistics 3.5, 4.6, 5.6
// (paired, 32 problems) at M = 32, 64, 128.
TEST(FavorAccuracy, AntitheticFeaturesBeatPlainOrthogonal) {
  expect_lower_error("antithetic", antithetic_orthogonal, 7000, "orthogonal", orthogonal_random_features, 9000,
                     {32, 64, 128});
}

namespace {

// Queries with entries N(0, 0.5^2); keys with entries N(0, key_scale^2) (key_scale 3: |k'|^2 ~ 72, so the
// key shifts a(k) = max_f u_f - |k'|^2 / 2 spread over tens of nats) and, optionally, outliers at
// positions 10, 100, 200 aligned with a feature row: k' = 8 w_f / |w_f|, a(k) ~ 8 |w_f| - 32 ~ 32,
// some 30 nats above a typical key: with one shared shift every other key's exponential is ~e^-30,
// far under eps = 1e-6.
struct OutlierCase {
  Tensor q, k, w;
};

OutlierCase make_outlier_case(int64_t H, int64_t T, int64_t D, int64_t M, float key_scale, bool outliers,
                              uint64_t seed) {
  Generator gen(seed);
  OutlierCase c;
  c.w = orthogonal_random_features(M, D, gen);
  c.q = Tensor::randn({1, H, T, D}, gen, 0.0f, 0.5f);
  c.k = Tensor::randn({1, H, T, D}, gen, 0.0f, key_scale);
  const float root = std::pow(float(D), 0.25f);
  for (int64_t h = 0; h < H && outliers; ++h)
    for (int64_t t : {10, 100, 200}) {
      const int64_t f = (t * 7 + h) % M;
      double n = 0.0;
      for (int64_t e = 0; e < D; ++e) n += double(c.w.data()[f * D + e]) * c.w.data()[f * D + e];
      for (int64_t e = 0; e < D; ++e)
        c.k.data()[(h * T + t) * D + e] = static_cast<float>(8.0 * root * c.w.data()[f * D + e] / std::sqrt(n));
    }
  return c;
}

// The bound on the eps share of query i's denominator with per-key shifts (see the test), in double:
// beta / (1 + beta) with beta = eps (1 + sum_f Eq_f + M eps) / min_f Eq_f, Eq = exp(u - max u).
std::vector<double> eps_share_bounds(const Tensor& q, const Tensor& w, double eps) {
  const int64_t D = q.size(-1), rows = q.numel() / D, M = w.size(0);
  const double sigma = std::pow(double(D), -0.25);
  std::vector<double> bound(rows), u(M);
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t f = 0; f < M; ++f) {
      double dot = 0.0;
      for (int64_t e = 0; e < D; ++e) dot += double(w.data()[f * D + e]) * q.data()[i * D + e];
      u[f] = sigma * dot;
    }
    const double mx = *std::max_element(u.begin(), u.end());
    double rho = 1.0, sum = 0.0;
    for (double x : u) {
      rho = std::min(rho, std::exp(x - mx));
      sum += std::exp(x - mx);
    }
    const double beta = eps * (1.0 + sum + M * eps) / rho;
    bound[i] = beta / (1.0 + beta);
  }
  return bound;
}

}  // namespace

// The share of the causal denominator that eps makes up, measured on the kernel itself:
// share_i = 1 - den_i(eps = 0) / den_i(eps) (favor_denominator, same shifts).
// The bound. With per-key shifts every key's features Ek_j (before eps, over M^(-1/2)) have largest entry
// 1, and so do the query's Eq_i. Per key j, with w_ij = exp(s_j - r_i) and m = M^(-1/2):
//   signal_j = m^2 w_ij Eq_i . Ek_j,   eps part_j = m^2 w_ij eps (sum Ek_j + sum Eq_i + M eps).
// With rho_i = min_f Eq_if: Eq_i . Ek_j >= rho_i sum Ek_j, and Eq_i . Ek_j >= Eq_i at key j's top feature
// >= rho_i. So eps part_j <= beta_i signal_j with beta_i = eps (1 + sum Eq_i + M eps) / rho_i, for every
// key whatever its norm, and share_i <= beta_i / (1 + beta_i): a property of the query alone. For these
// queries (|q'|^2 ~ 2) the bound averages 0.021. With a shared shift the second inequality fails (a key
// far below the shift has top feature exp(a_j - r_j) << 1) and the bound does not hold: that is the pitfall.
TEST(FavorAccuracy, EpsFloorDoesNotDominateTheCausalDenominator) {
  const int64_t H = 2, T = 256, D = 64, M = 128;
  for (float key_scale : {1.0f, 3.0f})
    for (bool outliers : {false, true}) {
      const OutlierCase c = make_outlier_case(H, T, D, M, key_scale, outliers, 77);
      const std::vector<double> bound = eps_share_bounds(c.q, c.w, 1e-6);
      double share_mean[2] = {0.0, 0.0}, bound_mean = 0.0;
      int64_t above_bound[2] = {0, 0};
      for (KeyShift shift : {KeyShift::PerKey, KeyShift::Shared}) {
        const int s = shift == KeyShift::PerKey ? 0 : 1;
        FavorOptions with_eps, no_eps;
        with_eps.key_shift = no_eps.key_shift = shift;
        no_eps.eps = 0.0f;
        const Tensor d1 = favor_denominator(c.q, c.k, c.w, true, with_eps);  // (1, H, T)
        const Tensor d0 = favor_denominator(c.q, c.k, c.w, true, no_eps);
        const int64_t n = d1.numel();
        for (int64_t i = 0; i < n; ++i) {
          const double share = 1.0 - double(d0.data()[i]) / d1.data()[i];
          share_mean[s] += share / n;
          // 1e-5: the float rounding of the two denominators (~1e-6 relative each).
          if (share > bound[i] + 1e-5) ++above_bound[s];
          if (s == 0) bound_mean += bound[i] / n;
        }
      }
      std::printf(
          "keys N(0, %.0f^2)%s: eps share of the denominator, mean: per-key %.2e (bound %.2e), shared %.2e; "
          "queries above the bound: per-key %ld, shared %ld\n",
          key_scale, outliers ? " with outliers" : "", share_mean[0], bound_mean, share_mean[1], long(above_bound[0]),
          long(above_bound[1]));
      EXPECT_EQ(above_bound[0], 0) << "per-key shifts must obey the derived bound";
      EXPECT_LE(share_mean[0], bound_mean);
      EXPECT_LT(bound_mean, 0.03);
      if (outliers) {
        // The pitfall is real on these inputs: the shared shift breaks the bound for most queries and
        // eps makes up a far larger share of the denominator.
        EXPECT_GT(above_bound[1], H * T / 2);
        EXPECT_GT(share_mean[1], 10.0 * share_mean[0]);
      }
    }
}
