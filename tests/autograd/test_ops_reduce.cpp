#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "test_util.h"

using namespace pf;
using test::check_gradients;

TEST(Reduce, SumAndMeanForward) {
  Var a(Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}));
  EXPECT_FLOAT_EQ(sum(a).item(), 21.0f);
  EXPECT_FLOAT_EQ(mean(a).item(), 3.5f);
  test::expect_values(sum(a, 0).value(), {5, 7, 9});
  test::expect_values(sum(a, 1).value(), {6, 15});
  test::expect_values(sum(a, -1).value(), {6, 15});
  EXPECT_EQ(sum(a, 1, true).shape(), (Shape{2, 1}));
  EXPECT_EQ(sum(a, 1, false).shape(), (Shape{2}));
  test::expect_values(mean(a, 0).value(), {2.5f, 3.5f, 4.5f});
  test::expect_values(mean(a, 1, true).value(), {2, 5});
  EXPECT_THROW(sum(a, 2), std::invalid_argument);
}

TEST(Reduce, MaxForwardAndArgmaxGradient) {
  Var a(Tensor::from_vector({1, 9, 3, 7, 5, 6}, {2, 3}), true);
  Var m = max(a, 1);
  test::expect_values(m.value(), {9, 7});
  test::expect_values(max(a, 0).value(), {7, 9, 6});
  sum(m).backward();
  test::expect_values(a.grad(), {0, 1, 0, 1, 0, 0});
}

TEST(Reduce, Gradients) {
  auto x = test::randn({3, 4, 5}, 31);
  Tensor ramp = Tensor::empty({3, 4, 5});
  for (int64_t i = 0; i < 60; ++i) ramp.data()[i] = 0.1f * static_cast<float>((i * 37) % 60) - 3.0f;
  check_gradients([](const std::vector<Var>& a) { return sum(a[0]); }, {x});
  check_gradients([](const std::vector<Var>& a) { return mean(a[0]); }, {x});
  for (int axis : {0, 1, 2, -1}) {
    for (bool keep : {false, true}) {
      check_gradients([axis, keep](const std::vector<Var>& a) { return sum(a[0], axis, keep); }, {x});
      check_gradients([axis, keep](const std::vector<Var>& a) { return mean(a[0], axis, keep); }, {x});
      // Values 0.1 apart (a shuffled ramp): a step of 1e-2 along a unit direction moves no
      // element by more than 0.01, so no arg-max changes inside the finite difference.
      check_gradients([axis, keep](const std::vector<Var>& a) { return max(a[0], axis, keep); }, {ramp});
    }
  }
}

TEST(Reduce, SumOfLargeTensorIsAccurate) {
  // 1e6 copies of 0.1: float accumulation would drift; the double accumulator does not.
  Var a(Tensor::full({1000000}, 0.1f));
  EXPECT_NEAR(sum(a).item(), 100000.0f * 1.0000000015f, 0.05f);
}
