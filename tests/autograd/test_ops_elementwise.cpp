#include <gtest/gtest.h>

#include <cmath>

#include "autograd/ops.h"
#include "test_util.h"

using namespace pf;
using test::check_gradients;

namespace {
Var v(std::vector<float> x, Shape s) { return Var(Tensor::from_vector(x, s)); }
}  // namespace

TEST(Binary, ForwardSameShape) {
  Var a = v({1, 2, 3}, {3}), b = v({4, 5, 6}, {3});
  test::expect_values(add(a, b).value(), {5, 7, 9});
  test::expect_values(sub(a, b).value(), {-3, -3, -3});
  test::expect_values(mul(a, b).value(), {4, 10, 18});
  test::expect_values(div(a, b).value(), {0.25f, 0.4f, 0.5f});
}

TEST(Binary, BroadcastBiasOverRowsAndScalars) {
  Var a = v({1, 2, 3, 4, 5, 6}, {2, 3}), bias = v({10, 20, 30}, {3});
  test::expect_values(add(a, bias).value(), {11, 22, 33, 14, 25, 36});
  test::expect_values(add(bias, a).value(), {11, 22, 33, 14, 25, 36});
  test::expect_values(mul(a, Var(Tensor::scalar(2.0f))).value(), {2, 4, 6, 8, 10, 12});
  // General broadcasting: (2, 1) against (1, 3) -> (2, 3).
  Var col = v({1, 2}, {2, 1}), row = v({10, 20, 30}, {1, 3});
  Var s = add(col, row);
  EXPECT_EQ(s.shape(), (Shape{2, 3}));
  test::expect_values(s.value(), {11, 21, 31, 12, 22, 32});
  test::expect_values((a + 1.0f).value(), {2, 3, 4, 5, 6, 7});
  test::expect_values((a * 0.5f).value(), {0.5f, 1, 1.5f, 2, 2.5f, 3});
}

TEST(Binary, IncompatibleShapesNameBoth) {
  try {
    add(Var(Tensor::zeros({2, 3})), Var(Tensor::zeros({4})));
    FAIL();
  } catch (const std::invalid_argument& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("add"), std::string::npos);
    EXPECT_NE(m.find("(2, 3)"), std::string::npos);
    EXPECT_NE(m.find("(4,)"), std::string::npos);
  }
}

TEST(Binary, Gradients) {
  auto a = test::randn({3, 4}, 1), b = test::randn({3, 4}, 2), bias = test::randn({4}, 3),
       col = test::randn({3, 1}, 4), pos = test::rand({3, 4}, 5, 0.5f, 2.0f), posb = test::rand({4}, 6, 0.5f, 2.0f);
  check_gradients([](const std::vector<Var>& x) { return add(x[0], x[1]); }, {a, b});
  check_gradients([](const std::vector<Var>& x) { return add(x[0], x[1]); }, {a, bias});
  check_gradients([](const std::vector<Var>& x) { return sub(x[0], x[1]); }, {a, col});
  check_gradients([](const std::vector<Var>& x) { return sub(x[0], x[1]); }, {bias, a});
  check_gradients([](const std::vector<Var>& x) { return mul(x[0], x[1]); }, {a, b});
  check_gradients([](const std::vector<Var>& x) { return mul(x[0], x[1]); }, {a, bias});
  check_gradients([](const std::vector<Var>& x) { return div(x[0], x[1]); }, {a, pos});
  check_gradients([](const std::vector<Var>& x) { return div(x[0], x[1]); }, {a, posb});
  check_gradients([](const std::vector<Var>& x) { return mul(x[0], x[1]); }, {col, test::randn({1, 4}, 7)});
}

TEST(Unary, Forward) {
  Var a = v({-1.0f, 0.0f, 2.0f}, {3});
  test::expect_values(neg(a).value(), {1, 0, -2});
  test::expect_values(add_scalar(a, 1.5f).value(), {0.5f, 1.5f, 3.5f});
  test::expect_values(mul_scalar(a, 3.0f).value(), {-3, 0, 6});
  test::expect_values(exp(a).value(), {std::exp(-1.0f), 1.0f, std::exp(2.0f)}, 1e-5f);
  test::expect_values(tanh(a).value(), {std::tanh(-1.0f), 0.0f, std::tanh(2.0f)});
  test::expect_values(sigmoid(a).value(), {1 / (1 + std::exp(1.0f)), 0.5f, 1 / (1 + std::exp(-2.0f))});
  test::expect_values(relu(a).value(), {0, 0, 2});
  // GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
  auto g = [](float x) { return 0.5f * x * (1 + std::tanh(0.7978845608f * (x + 0.044715f * x * x * x))); };
  test::expect_values(gelu(a).value(), {g(-1.0f), 0.0f, g(2.0f)});
  test::expect_values(gelu(a).value(), {-0.158808f, 0.0f, 1.954598f}, 1e-5f);  // published values
  Var p = v({0.25f, 1.0f, 4.0f}, {3});
  test::expect_values(log(p).value(), {std::log(0.25f), 0.0f, std::log(4.0f)});
  test::expect_values(sqrt(p).value(), {0.5f, 1.0f, 2.0f});
  test::expect_values(pow(p, 1.5f).value(), {0.125f, 1.0f, 8.0f}, 1e-5f);
}

TEST(Unary, Gradients) {
  auto x = test::randn({4, 5}, 11);
  auto pos = test::rand({4, 5}, 12, 0.5f, 2.0f);
  check_gradients([](const std::vector<Var>& a) { return neg(a[0]); }, {x});
  check_gradients([](const std::vector<Var>& a) { return add_scalar(a[0], 2.0f); }, {x});
  check_gradients([](const std::vector<Var>& a) { return mul_scalar(a[0], -1.5f); }, {x});
  check_gradients([](const std::vector<Var>& a) { return exp(a[0]); }, {x});
  check_gradients([](const std::vector<Var>& a) { return log(a[0]); }, {pos});
  check_gradients([](const std::vector<Var>& a) { return sqrt(a[0]); }, {pos});
  check_gradients([](const std::vector<Var>& a) { return pow(a[0], 2.5f); }, {pos});
  check_gradients([](const std::vector<Var>& a) { return tanh(a[0]); }, {x});
  check_gradients([](const std::vector<Var>& a) { return sigmoid(a[0]); }, {x});
  check_gradients([](const std::vector<Var>& a) { return gelu(a[0]); }, {x});
  // relu: keep inputs away from the kink at 0 (finite differences straddling it are wrong).
  Tensor away = x.clone();
  for (int64_t i = 0; i < away.numel(); ++i) away.data()[i] += away.data()[i] > 0 ? 0.2f : -0.2f;
  check_gradients([](const std::vector<Var>& a) { return relu(a[0]); }, {away});
}

TEST(Elementwise, LargeTensorsUseThreadsDeterministically) {
  // Above the parallel grain: the result must equal the serial definition exactly.
  Tensor a = test::randn({300000}, 21), b = test::randn({300000}, 22);
  Tensor c = mul(Var(a), Var(b)).value();
  for (int64_t i = 0; i < a.numel(); i += 997) EXPECT_EQ(c.data()[i], a.data()[i] * b.data()[i]);
}
