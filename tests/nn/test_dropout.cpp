// Dropout: identity in eval and for p = 0; in training zeroes about p of the values and scales
// the rest by 1/(1-p); masks come from the shared generator (reproducible from its state).
#include <gtest/gtest.h>

#include <cmath>

#include "nn/dropout.h"
#include "nn_test_util.h"

using namespace pf;

TEST(Dropout, IdentityInEvalAndForZeroP) {
  auto gen = std::make_shared<Generator>(1);
  Dropout d(0.5f, gen);
  Var x(test::randn({4, 8}, 2), true);
  d.eval();
  const Generator before = *gen;
  Var y = d.forward(x);
  EXPECT_TRUE(test::bitwise_equal(y.value(), x.value()));
  EXPECT_TRUE(*gen == before) << "eval must not draw random numbers";
  Dropout zero(0.f, nullptr);
  EXPECT_TRUE(test::bitwise_equal(zero.forward(x).value(), x.value()));
}

TEST(Dropout, TrainingZeroesAboutPAndScalesSurvivors) {
  const float p = 0.25f;
  auto gen = std::make_shared<Generator>(3);
  Dropout d(p, gen);
  const int64_t n = 100000;
  Var x(Tensor::full({n}, 2.f), true);
  Var y = d.forward(x);
  int64_t dropped = 0;
  for (float v : y.value().to_vector()) {
    if (v == 0.f)
      ++dropped;
    else
      EXPECT_FLOAT_EQ(v, 2.f / (1.f - p));
  }
  // Binomial(n, p): standard error sqrt(p (1 - p) / n) = 0.0014; 6 sigma.
  EXPECT_NEAR(double(dropped) / n, p, 6 * std::sqrt(p * (1 - p) / n));
  // The gradient passes through the same mask.
  sum(y).backward();
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(x.grad().data()[i], y.value().data()[i] == 0.f ? 0.f : 1.f / (1.f - p));
}

TEST(Dropout, MasksAreReproducibleFromTheGeneratorState) {
  auto gen = std::make_shared<Generator>(5);
  Dropout d(0.5f, gen);
  Var x(Tensor::ones({64}));
  const std::string state = gen->state();
  Tensor a = d.forward(x).value().clone();
  Tensor b = d.forward(x).value().clone();
  EXPECT_FALSE(test::bitwise_equal(a, b)) << "consecutive masks should differ";
  gen->set_state(state);
  EXPECT_TRUE(test::bitwise_equal(d.forward(x).value(), a));
}

TEST(Dropout, ValidatesP) {
  auto gen = std::make_shared<Generator>(1);
  EXPECT_THROW(Dropout(-0.1f, gen), std::invalid_argument);
  EXPECT_THROW(Dropout(1.f, gen), std::invalid_argument);
  EXPECT_THROW(Dropout(0.1f, nullptr), std::invalid_argument);
}
