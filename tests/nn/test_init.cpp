// Initializers: reproducible from the seed, and their sample statistics match the formulas.
// Every statistical bound is 6 standard errors of the statistic for the sample size used
// (a fixed seed makes each check deterministic; 6 sigma makes the bound meaningful, not lucky).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "nn/init.h"
#include "nn/linear.h"
#include "nn_test_util.h"

using namespace pf;

namespace {

struct Stats {
  double mean = 0, var = 0, min = 1e30, max = -1e30;
};

Stats stats_of(const Tensor& t) {
  Stats s;
  const double n = static_cast<double>(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) {
    s.mean += t.data()[i];
    s.min = std::min<double>(s.min, t.data()[i]);
    s.max = std::max<double>(s.max, t.data()[i]);
  }
  s.mean /= n;
  for (int64_t i = 0; i < t.numel(); ++i) s.var += (t.data()[i] - s.mean) * (t.data()[i] - s.mean);
  s.var /= n;
  return s;
}

constexpr int64_t kOut = 256, kIn = 512;  // N = 131072 samples
const double kN = static_cast<double>(kOut * kIn);

// U(-b, b): mean 0 (se b / sqrt(3N)); variance b^2/3 (se sqrt(4/45) b^2 / sqrt(N)); every
// sample within [-b, b], and the extremes within 1e-3 b of the bounds (P(miss) = (1-5e-4)^N ~ 1e-29).
void expect_uniform(const Tensor& t, double b) {
  Stats s = stats_of(t);
  EXPECT_LE(std::fabs(s.mean), 6 * b / std::sqrt(3 * kN));
  EXPECT_NEAR(s.var, b * b / 3, 6 * std::sqrt(4.0 / 45.0) * b * b / std::sqrt(kN));
  EXPECT_GE(s.min, -b * (1 + 1e-6));  // 1e-6: the bound itself is rounded to float
  EXPECT_LE(s.max, b * (1 + 1e-6));
  EXPECT_LT(s.min, -b * (1 - 1e-3));
  EXPECT_GT(s.max, b * (1 - 1e-3));
}

// N(0, sd^2): mean se sd / sqrt(N); variance se sqrt(2) sd^2 / sqrt(N).
void expect_normal(const Tensor& t, double sd) {
  Stats s = stats_of(t);
  EXPECT_LE(std::fabs(s.mean), 6 * sd / std::sqrt(kN));
  EXPECT_NEAR(s.var, sd * sd, 6 * std::sqrt(2.0) * sd * sd / std::sqrt(kN));
}

using InitFn = std::function<void(Tensor&, Generator&)>;

}  // namespace

TEST(Init, SameSeedSameTensorDifferentSeedDifferentTensor) {
  const std::vector<InitFn> inits = {
      [](Tensor& t, Generator& g) { normal_(t, g, 0.5f, 2.f); },
      [](Tensor& t, Generator& g) { uniform_(t, g, -1.f, 3.f); },
      [](Tensor& t, Generator& g) { xavier_uniform_(t, g); },
      [](Tensor& t, Generator& g) { xavier_normal_(t, g); },
      [](Tensor& t, Generator& g) { kaiming_uniform_(t, g); },
      [](Tensor& t, Generator& g) { kaiming_normal_(t, g); },
  };
  for (size_t k = 0; k < inits.size(); ++k) {
    Tensor a({8, 16}), b({8, 16}), c({8, 16});
    Generator ga(42), gb(42), gc(43);
    inits[k](a, ga);
    inits[k](b, gb);
    inits[k](c, gc);
    EXPECT_TRUE(test::bitwise_equal(a, b)) << "init " << k;
    EXPECT_FALSE(test::bitwise_equal(a, c)) << "init " << k;
  }
  // A whole layer, too.
  Generator g1(7), g2(7);
  Linear l1(5, 3, true, g1), l2(5, 3, true, g2);
  EXPECT_TRUE(test::bitwise_equal(l1.weight.value(), l2.weight.value()));
  EXPECT_TRUE(test::bitwise_equal(l1.bias.value(), l2.bias.value()));
}

TEST(Init, NormalAndUniformMatchTheirParameters) {
  Generator g(1);
  Tensor t({kOut, kIn});
  uniform_(t, g, -0.25f, 0.25f);
  expect_uniform(t, 0.25);
  normal_(t, g, 0.f, 3.f);
  expect_normal(t, 3.0);
  normal_(t, g, 5.f, 0.5f);
  EXPECT_NEAR(stats_of(t).mean, 5.0, 6 * 0.5 / std::sqrt(kN));
}

TEST(Init, XavierMatchesGlorotFormula) {
  Generator g(2);
  Tensor t({kOut, kIn});
  for (float gain : {1.f, 2.f}) {
    xavier_uniform_(t, g, gain);
    expect_uniform(t, gain * std::sqrt(6.0 / (kIn + kOut)));
    xavier_normal_(t, g, gain);
    expect_normal(t, gain * std::sqrt(2.0 / (kIn + kOut)));
  }
}

TEST(Init, KaimingMatchesHeFormula) {
  Generator g(3);
  Tensor t({kOut, kIn});
  for (float a : {0.f, std::sqrt(5.f)}) {
    const double sd = std::sqrt(2.0 / (1.0 + a * a)) / std::sqrt(static_cast<double>(kIn));
    kaiming_uniform_(t, g, a);
    expect_uniform(t, std::sqrt(3.0) * sd);
    kaiming_normal_(t, g, a);
    expect_normal(t, sd);
  }
}

TEST(Init, FansFollowPyTorchConventions) {
  EXPECT_EQ(fan_in_out(Tensor({6, 4})), (std::pair<int64_t, int64_t>{4, 6}));
  EXPECT_EQ(fan_in_out(Tensor({6, 4, 3})), (std::pair<int64_t, int64_t>{12, 18}));
  Tensor v({5});
  Generator g(1);
  EXPECT_THROW(xavier_uniform_(v, g), std::invalid_argument);
  EXPECT_THROW(kaiming_normal_(v, g), std::invalid_argument);
}

TEST(Init, ZerosOnesAndLinearDefault) {
  Tensor t = Tensor::full({3, 2}, 5.f);
  zeros_(t);
  EXPECT_EQ(t.to_vector(), std::vector<float>(6, 0.f));
  ones_(t);
  EXPECT_EQ(t.to_vector(), std::vector<float>(6, 1.f));
  // nn.Linear's default: weight and bias in U(-1/sqrt(in), 1/sqrt(in)).
  Generator g(4);
  Linear lin(kIn, kOut, true, g);
  expect_uniform(lin.weight.value(), 1.0 / std::sqrt(static_cast<double>(kIn)));
  for (float b : lin.bias.value().to_vector()) EXPECT_LE(std::fabs(b), 1.0 / std::sqrt(static_cast<double>(kIn)));
}
