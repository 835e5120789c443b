#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "base/random.h"

#include "autograd/gemm.h"
#include "autograd/ops.h"
#include "test_util.h"

using namespace pf;
using test::check_gradients;

namespace {
// Plain triple loop: the independent reference for every product below.
Tensor naive(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const int64_t M = ta ? a.size(1) : a.size(0), K = ta ? a.size(0) : a.size(1);
  const int64_t N = tb ? b.size(0) : b.size(1);
  Tensor c({M, N});
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += (ta ? a.at({k, i}) : a.at({i, k})) * (tb ? b.at({j, k}) : b.at({k, j}));
      c.at({i, j}) = static_cast<float>(s);
    }
  return c;
}
}  // namespace

TEST(Matmul, TwoDimensionalAllTransposes) {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      Tensor a = ta ? test::randn({5, 3}, 1) : test::randn({3, 5}, 1);
      Tensor b = tb ? test::randn({4, 5}, 2) : test::randn({5, 4}, 2);
      Tensor c = matmul(Var(a), Var(b), ta, tb).value();
      EXPECT_EQ(c.shape(), (Shape{3, 4}));
      EXPECT_LT(max_abs_diff(c, naive(a, b, ta, tb)), 1e-5f) << ta << tb;
    }
}

TEST(Matmul, BatchedAndBroadcastRightOperand) {
  Tensor a = test::randn({2, 3, 4, 5}, 3), b = test::randn({2, 3, 5, 6}, 4), w = test::randn({5, 6}, 5);
  Tensor c = matmul(Var(a), Var(b)).value();
  Tensor cw = matmul(Var(a), Var(w)).value();
  EXPECT_EQ(c.shape(), (Shape{2, 3, 4, 6}));
  for (int64_t i = 0; i < 6; ++i) {
    Tensor ai = a.reshape({6, 4, 5}).narrow0(i, 1).reshape({4, 5}).clone();
    Tensor bi = b.reshape({6, 5, 6}).narrow0(i, 1).reshape({5, 6}).clone();
    Tensor ci = c.reshape({6, 4, 6}).narrow0(i, 1).reshape({4, 6}).clone();
    Tensor cwi = cw.reshape({6, 4, 6}).narrow0(i, 1).reshape({4, 6}).clone();
    EXPECT_LT(max_abs_diff(ci, naive(ai, bi, false, false)), 1e-5f);
    EXPECT_LT(max_abs_diff(cwi, naive(ai, w, false, false)), 1e-5f);
  }
}

TEST(Matmul, ShapeErrorsNameBothShapes) {
  try {
    matmul(Var(Tensor::zeros({3, 4})), Var(Tensor::zeros({5, 6})));
    FAIL();
  } catch (const std::invalid_argument& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("matmul"), std::string::npos);
    EXPECT_NE(m.find("(3, 4)"), std::string::npos);
    EXPECT_NE(m.find("(5, 6)"), std::string::npos);
  }
  EXPECT_THROW(matmul(Var(Tensor::zeros({2, 3, 4})), Var(Tensor::zeros({3, 4, 5}))), std::invalid_argument);
  EXPECT_THROW(matmul(Var(Tensor::zeros({4})), Var(Tensor::zeros({4, 5}))), std::invalid_argument);
}

TEST(Matmul, Gradients) {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      Tensor a = ta ? test::randn({5, 3}, 6) : test::randn({3, 5}, 6);
      Tensor b = tb ? test::randn({4, 5}, 7) : test::randn({5, 4}, 7);
      check_gradients([ta, tb](const std::vector<Var>& x) { return matmul(x[0], x[1], ta, tb); }, {a, b});
      // Batched, same leading dims.
      Tensor ab = ta ? test::randn({2, 5, 3}, 8) : test::randn({2, 3, 5}, 8);
      Tensor bb = tb ? test::randn({2, 4, 5}, 9) : test::randn({2, 5, 4}, 9);
      check_gradients([ta, tb](const std::vector<Var>& x) { return matmul(x[0], x[1], ta, tb); }, {ab, bb});
      // Batched left, shared 2-D right.
      check_gradients([ta, tb](const std::vector<Var>& x) { return matmul(x[0], x[1], ta, tb); }, {ab, b});
    }
}

TEST(Gemm, AccumulatesWithBeta) {
  Tensor a = test::randn({3, 2}, 1), b = test::randn({2, 4}, 2);
  Tensor c = Tensor::ones({3, 4});
  gemm(false, false, 3, 4, 2, 2.0f, a.data(), 2, b.data(), 4, 1.0f, c.data(), 4);
  Tensor ref = naive(a, b, false, false);
  for (int64_t i = 0; i < 12; ++i) EXPECT_NEAR(c.data()[i], 1.0f + 2.0f * ref.data()[i], 1e-5f);
}

TEST(Matmul, LargeProductIsDeterministic) {
  // Same inputs, same thread count: bit-identical results (needed for exact resume).
  Tensor a = test::randn({256, 192}, 10), b = test::randn({192, 320}, 11);
  Tensor c1 = matmul(Var(a), Var(b)).value(), c2 = matmul(Var(a), Var(b)).value();
  EXPECT_EQ(std::memcmp(c1.data(), c2.data(), c1.numel() * sizeof(float)), 0);
  EXPECT_LT(max_abs_diff(c1, naive(a, b, false, false)), 1e-4f);
}

TEST(Linear, FusedEqualsMatmulPlusBias) {
  Tensor x = test::randn({2, 3, 5}, 20), w = test::randn({4, 5}, 21), b = test::randn({4}, 22);
  Tensor y = linear(Var(x), Var(w), Var(b)).value();
  Tensor ref = add(matmul(Var(x), Var(w), false, true), Var(b)).value();
  EXPECT_EQ(y.shape(), (Shape{2, 3, 4}));
  EXPECT_LT(max_abs_diff(y, ref), 1e-5f);
  Tensor nobias = linear(Var(x), Var(w), Var()).value();
  EXPECT_LT(max_abs_diff(nobias, matmul(Var(x), Var(w), false, true).value()), 1e-5f);
  EXPECT_THROW(linear(Var(x), Var(test::randn({4, 6}, 1)), Var(b)), std::invalid_argument);
}

TEST(Linear, Gradients) {
  check_gradients([](const std::vector<Var>& a) { return linear(a[0], a[1], a[2]); },
                  {test::randn({2, 3, 5}, 23), test::randn({4, 5}, 24), test::randn({4}, 25)});
  check_gradients([](const std::vector<Var>& a) { return linear(a[0], a[1], Var()); },
                  {test::randn({3, 5}, 26), test::randn({4, 5}, 27)});
}

// ---- gelu_linear: linear(dropout(gelu(h))) in one node that saves only h

namespace {
struct GeluLinearRun {
  std::vector<std::vector<float>> results;  // output, then the gradients of h, W, b
  std::string gen_state;                    // the generator after the forward
  int64_t held = 0;                         // bytes the graph holds beyond the output and the leaves
};

GeluLinearRun run_gelu_linear(bool fused, float p, bool training, Precision precision) {
  MatmulPrecisionGuard guard(precision);
  Generator gen(77);
  Var h0(test::randn({6, 37, 48}, 31), true);
  Var w(test::randn({24, 48}, 32, 0.3f), true), b(test::randn({24}, 33), true);
  const Tensor r = test::randn({6, 37, 24}, 34);
  GeluLinearRun run;
  Var loss;
  {
    const int64_t base = live_tensor_bytes();
    Var y;
    {
      Var h = mul_scalar(h0, 1.0f);  // a recorded value, as fc1's output is
      y = fused ? gelu_linear(h, w, b, p, training, &gen) : linear(dropout(gelu(h), p, training, gen), w, b);
    }
    run.held = live_tensor_bytes() - base - y.numel() * 4;
    run.gen_state = gen.state();
    run.results.push_back(y.value().to_vector());
    loss = sum(mul(y, Var(r)));
  }
  loss.backward();
  for (const Var* v : {&h0, &w, &b}) run.results.push_back(v->grad().to_vector());
  return run;
}
}  // namespace

// The fused node against the three separate ops: output, every gradient and the generator's stream
// bit for bit, with dropout in training, dropout off in evaluation, and no dropout; in fp32 and bf16.
// What it holds: h alone (the separate ops also hold gelu(h), its dropped-out copy and the mask).
TEST(GeluLinear, EqualsTheSeparateOpsBitForBitAndHoldsOnlyItsInput) {
  std::vector<Precision> precisions = {Precision::fp32};
  if (bf16_supported()) precisions.push_back(Precision::bf16);
  const int64_t h_bytes = 6 * 37 * 48 * 4;
  for (Precision precision : precisions)
    for (auto [p, training] : {std::pair{0.0f, true}, std::pair{0.3f, true}, std::pair{0.3f, false}}) {
      SCOPED_TRACE(std::string(precision_name(precision)) + " p " + std::to_string(p) +
                   (training ? " training" : " eval"));
      const GeluLinearRun fused = run_gelu_linear(true, p, training, precision);
      const GeluLinearRun separate = run_gelu_linear(false, p, training, precision);
      ASSERT_EQ(fused.results.size(), separate.results.size());
      for (size_t i = 0; i < fused.results.size(); ++i) EXPECT_EQ(fused.results[i], separate.results[i]) << i;
      EXPECT_EQ(fused.gen_state, separate.gen_state);
      EXPECT_EQ(fused.held, h_bytes);
      EXPECT_GE(separate.held, h_bytes + h_bytes / 2) << "the separate ops hold gelu(h) (or its bf16 copy) as well";
    }
}

TEST(GeluLinear, Gradients) {
  check_gradients([](const std::vector<Var>& a) { return gelu_linear(a[0], a[1], a[2]); },
                  {test::randn({2, 3, 5}, 35), test::randn({4, 5}, 36), test::randn({4}, 37)});
  // With dropout: the same mask on every evaluation (a fresh generator of one seed each time).
  check_gradients(
      [](const std::vector<Var>& a) {
        Generator gen(5);
        return gelu_linear(a[0], a[1], Var(), 0.4f, true, &gen);
      },
      {test::randn({3, 6}, 38), test::randn({4, 6}, 39)});
  EXPECT_THROW(gelu_linear(Var(test::randn({2, 5}, 1)), Var(test::randn({4, 5}, 2)), Var(), 0.5f, true, nullptr),
               std::invalid_argument);
}
