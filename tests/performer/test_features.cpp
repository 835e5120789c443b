// Random projections for FAVOR+: orthogonal blocks, chi-distributed row norms, iid baseline, seeding.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

#include "base/random.h"
#include "performer/features.h"

using namespace pf;

namespace {

double row_dot(const Tensor& w, int64_t i, int64_t j) {
  const int64_t d = w.size(1);
  double s = 0.0;
  for (int64_t c = 0; c < d; ++c) s += double(w.data()[i * d + c]) * w.data()[j * d + c];
  return s;
}

double row_norm(const Tensor& w, int64_t i) {
  return std::sqrt(row_dot(w, i, i));
}

// |cos| of the angle between rows i and j.
double abs_cos(const Tensor& w, int64_t i, int64_t j) {
  return std::fabs(row_dot(w, i, j)) / (row_norm(w, i) * row_norm(w, j));
}

// Mean and variance of the chi distribution with d degrees of freedom (the norm of a N(0, I_d) vector):
// mean = sqrt(2) Gamma((d+1)/2) / Gamma(d/2), variance = d - mean^2.
double chi_mean(int64_t d) {
  return std::sqrt(2.0) * std::exp(std::lgamma((d + 1) / 2.0) - std::lgamma(d / 2.0));
}
double chi_var(int64_t d) {
  return static_cast<double>(d) - chi_mean(d) * chi_mean(d);
}

}  // namespace

TEST(OrthogonalFeatures, RowsInsideEachBlockAreOrthogonal) {
  Generator gen(1);
  const int64_t m = 80, d = 16;  // 5 full blocks
  Tensor w = orthogonal_random_features(m, d, gen);
  ASSERT_EQ(w.shape(), (Shape{m, d}));
  // The Q factor is computed in double and rounded to float: cosines are at float rounding (~1e-7).
  for (int64_t b = 0; b < m / d; ++b)
    for (int64_t i = 0; i < d; ++i)
      for (int64_t j = i + 1; j < d; ++j)
        EXPECT_LT(abs_cos(w, b * d + i, b * d + j), 1e-5) << b << " " << i << " " << j;
  // Different blocks are independent draws, not orthogonal to each other: for independent uniform
  // directions in R^16 |cos| has standard deviation 1/4, so 256 pairs all under 0.05 is impossible.
  double largest = 0.0;
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = 0; j < d; ++j) largest = std::max(largest, abs_cos(w, i, d + j));
  EXPECT_GT(largest, 0.05);
}

TEST(OrthogonalFeatures, RowNormsFollowTheChiDistribution) {
  Generator gen(2);
  const int64_t m = 2048, d = 16;
  Tensor w = orthogonal_random_features(m, d, gen);
  double sum = 0.0, sq = 0.0;
  for (int64_t i = 0; i < m; ++i) {
    const double n = row_norm(w, i);
    sum += n;
    sq += n * n;
  }
  const double mean = sum / m, var = sq / m - mean * mean;
  // The m norms are iid chi_d: the sample mean has standard deviation sqrt(var / m) (~0.016 here);
  // 6 of those is a bound a correct draw exceeds with probability ~2e-9. chi_16 is close to normal
  // (var ~0.49, fourth central moment ~3 var^2), so the sample variance has standard deviation about
  // sqrt(2 var^2 / m) ~0.015: the bound 0.15 is 10 of them.
  const double mu = chi_mean(d), sigma = std::sqrt(chi_var(d) / m);
  EXPECT_NEAR(mean, mu, 6.0 * sigma) << "chi mean " << mu;
  EXPECT_NEAR(var, chi_var(d), 0.15);
  // Scaling by the norms must not be the block's own norm (all rows would have norm 1).
  EXPECT_NEAR(mu, std::sqrt(d - 0.5), 0.01);
}

TEST(OrthogonalFeatures, MNotAMultipleOfD) {
  Generator gen(3);
  const int64_t m = 37, d = 16;  // blocks of 16, 16, 5 rows
  Tensor w = orthogonal_random_features(m, d, gen);
  ASSERT_EQ(w.shape(), (Shape{m, d}));
  for (int64_t i = 32; i < m; ++i)
    for (int64_t j = i + 1; j < m; ++j) EXPECT_LT(abs_cos(w, i, j), 1e-5);
  for (int64_t i = 0; i < m; ++i) EXPECT_TRUE(std::isfinite(row_norm(w, i)) && row_norm(w, i) > 0.0);
  // Fewer features than dimensions: one truncated block.
  Tensor small = orthogonal_random_features(5, d, gen);
  ASSERT_EQ(small.shape(), (Shape{5, d}));
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t j = i + 1; j < 5; ++j) EXPECT_LT(abs_cos(small, i, j), 1e-5);
}

TEST(OrthogonalFeatures, SameSeedSameMatrixOtherSeedOtherMatrix) {
  Generator a(7), b(7), c(8);
  Tensor wa = orthogonal_random_features(40, 16, a), wb = orthogonal_random_features(40, 16, b);
  Tensor wc = orthogonal_random_features(40, 16, c);
  EXPECT_EQ(wa.to_vector(), wb.to_vector());
  EXPECT_NE(wa.to_vector(), wc.to_vector());
  EXPECT_TRUE(a == b);  // the generators advanced identically
  // A second draw from the same generator is a different matrix (a redraw).
  EXPECT_NE(orthogonal_random_features(40, 16, a).to_vector(), wa.to_vector());
}

TEST(IidFeatures, StandardGaussianRows) {
  Generator gen(4);
  const int64_t m = 512, d = 32;
  Tensor w = iid_random_features(m, d, gen);
  ASSERT_EQ(w.shape(), (Shape{m, d}));
  double sum = 0.0, sq = 0.0;
  const int64_t n = m * d;
  for (int64_t i = 0; i < n; ++i) {
    sum += w.data()[i];
    sq += double(w.data()[i]) * w.data()[i];
  }
  const double mean = sum / n, var = sq / n - mean * mean;
  // n = 16384 entries: mean ~ N(0, 1/n) (sd 0.0078), sample variance sd sqrt(2/n) = 0.011; 6 sd bounds.
  EXPECT_NEAR(mean, 0.0, 6.0 / std::sqrt(double(n)));
  EXPECT_NEAR(var, 1.0, 6.0 * std::sqrt(2.0 / n));
  // Not orthogonal: |cos| of independent directions in R^32 has sd ~0.18; 496 pairs all < 0.05 is impossible.
  double largest = 0.0;
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = i + 1; j < d; ++j) largest = std::max(largest, abs_cos(w, i, j));
  EXPECT_GT(largest, 0.05);
  Generator again(4);
  EXPECT_EQ(iid_random_features(m, d, again).to_vector(), w.to_vector());
}

TEST(Features, RejectsEmptyShapes) {
  Generator gen(5);
  EXPECT_THROW(orthogonal_random_features(0, 16, gen), std::invalid_argument);
  EXPECT_THROW(orthogonal_random_features(16, 0, gen), std::invalid_argument);
  EXPECT_THROW(iid_random_features(-1, 4, gen), std::invalid_argument);
}

TEST(AntitheticFeatures, PairsAreNegatedOrthogonalRows) {
  Generator g(21);
  const Tensor w = antithetic_random_features(12, 8, g);
  ASSERT_EQ(w.shape(), (Shape{12, 8}));
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t j = 0; j < 8; ++j) EXPECT_EQ(w.data()[(i + 6) * 8 + j], -w.data()[i * 8 + j]);
  // The first half is an orthogonal draw: distinct rows are orthogonal.
  for (int64_t a = 0; a < 6; ++a)
    for (int64_t b = a + 1; b < 6; ++b) {
      double dot = 0.0;
      for (int64_t j = 0; j < 8; ++j) dot += double(w.data()[a * 8 + j]) * w.data()[b * 8 + j];
      EXPECT_NEAR(dot, 0.0, 1e-4);
    }
  EXPECT_THROW(antithetic_random_features(7, 8, g), std::invalid_argument);
}
