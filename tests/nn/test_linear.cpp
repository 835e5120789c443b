// Linear: forward values against a hand computation, shapes, and finite-difference gradients.
#include <gtest/gtest.h>

#include "nn/linear.h"
#include "nn_test_util.h"

using namespace pf;

TEST(Linear, ForwardMatchesHandComputation) {
  Generator gen(1);
  Linear lin(3, 2, true, gen);
  lin.weight.value().copy_from(Tensor::from_vector({1, 2, 3, -1, 0, 0.5f}, {2, 3}));
  lin.bias.value().copy_from(Tensor::from_vector({0.25f, -2}, {2}));
  // x: (2, 2, 3), two leading axes.
  Tensor x = Tensor::from_vector({1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1}, {2, 2, 3});
  Var y = lin.forward(Var(x));
  ASSERT_EQ(y.shape(), (Shape{2, 2, 2}));
  test::expect_close(y.value(), {1.25f, -3, 2.25f, -2, 3.25f, -1.5f, 6.25f, -2.5f}, 0, 0, "y");
  // A single vector.
  Var v = lin.forward(Var(Tensor::from_vector({1, 1, 1}, {3})));
  ASSERT_EQ(v.shape(), (Shape{2}));
  test::expect_close(v.value(), {6.25f, -2.5f}, 0, 0, "v");
}

TEST(Linear, WithoutBiasRegistersOnlyTheWeight) {
  Generator gen(1);
  Linear lin(4, 5, false, gen);
  EXPECT_FALSE(lin.bias.defined());
  auto named = lin.named_parameters();
  ASSERT_EQ(named.size(), 1u);
  EXPECT_EQ(named[0].first, "weight");
  EXPECT_EQ(named[0].second.shape(), (Shape{5, 4}));
  Var x(test::randn({3, 4}, 2));
  Tensor expected = Tensor::zeros({3, 5});
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t o = 0; o < 5; ++o)
      for (int64_t k = 0; k < 4; ++k) expected.at({i, o}) += x.value().at({i, k}) * lin.weight.value().at({o, k});
  EXPECT_LT(max_abs_diff(lin.forward(x).value(), expected), 1e-6f);
}

TEST(Linear, ShapeErrorNamesBothShapes) {
  Generator gen(1);
  Linear lin(4, 5, true, gen);
  try {
    lin.forward(Var(Tensor({2, 3})));
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("(2, 3)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(5, 4)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Linear(0, 3, true, gen), std::invalid_argument);
}

TEST(Linear, GradientsMatchFiniteDifferences) {
  Generator gen(3);
  Linear lin(4, 3, true, gen);
  // The gradcheck's Vars replace the module's handles, so gradients land on them.
  auto f = [&lin](const std::vector<Var>& v) {
    lin.weight = v[1];
    lin.bias = v[2];
    return lin.forward(v[0]);
  };
  test::check_gradients(f, {test::randn({2, 5, 4}, 4), lin.weight.value().clone(), lin.bias.value().clone()});
}
