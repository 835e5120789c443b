#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "base/random.h"
#include "autograd/kernels.h"
#include "autograd/ops.h"
#include "autograd/parallel.h"
#include "test_util.h"

using namespace pf;
using test::check_gradients;

TEST(Softmax, ForwardRowsSumToOneAndStable) {
  Var a(Tensor::from_vector({1, 2, 3, 1000, 1000, 1000}, {2, 3}));
  Tensor s = softmax(a).value();
  float e1 = std::exp(1.0f), e2 = std::exp(2.0f), e3 = std::exp(3.0f), z = e1 + e2 + e3;
  test::expect_values(s, {e1 / z, e2 / z, e3 / z, 1 / 3.f, 1 / 3.f, 1 / 3.f});
  Tensor l = log_softmax(a).value();
  test::expect_values(l, {std::log(e1 / z), std::log(e2 / z), std::log(e3 / z), -std::log(3.f), -std::log(3.f),
                          -std::log(3.f)},
                      1e-5f);
}

TEST(Softmax, Gradients) {
  auto x = test::randn({3, 5}, 51);
  check_gradients([](const std::vector<Var>& a) { return softmax(a[0]); }, {x});
  check_gradients([](const std::vector<Var>& a) { return log_softmax(a[0]); }, {x});
  check_gradients([](const std::vector<Var>& a) { return softmax(a[0]); }, {test::randn({2, 3, 4}, 52)});
}

// Composed layer norm from primitive ops: the reference the fused op is compared with.
static Var layer_norm_composed(const Var& x, const Var& w, const Var& b, float eps) {
  Var mu = mean(x, -1, true);
  Var xc = x - mu;
  Var var = mean(xc * xc, -1, true);
  return xc / sqrt(var + eps) * w + b;
}

TEST(LayerNorm, FusedEqualsComposed) {
  Tensor x = test::randn({4, 3, 8}, 53, 2.0f), w = test::randn({8}, 54), b = test::randn({8}, 55);
  Var xv(x.clone(), true), wv(w.clone(), true), bv(b.clone(), true);
  Var y = layer_norm(xv, wv, bv, 1e-5f);
  Var xr(x.clone(), true), wr(w.clone(), true), br(b.clone(), true);
  Var yr = layer_norm_composed(xr, wr, br, 1e-5f);
  EXPECT_LT(max_abs_diff(y.value(), yr.value()), 1e-5f);
  Tensor seed = test::randn(y.shape(), 56);
  y.backward(seed);
  yr.backward(seed);
  EXPECT_LT(max_abs_diff(xv.grad(), xr.grad()), 1e-4f);
  EXPECT_LT(max_abs_diff(wv.grad(), wr.grad()), 1e-4f);
  EXPECT_LT(max_abs_diff(bv.grad(), br.grad()), 1e-4f);
}

TEST(LayerNorm, Gradients) {
  auto f = [](const std::vector<Var>& a) { return layer_norm(a[0], a[1], a[2], 1e-5f); };
  check_gradients(f, {test::randn({3, 6}, 57), test::randn({6}, 58), test::randn({6}, 59)});
  EXPECT_THROW(layer_norm(Var(Tensor::zeros({2, 4})), Var(Tensor::ones({3})), Var(Tensor::zeros({4}))),
               std::invalid_argument);
}

TEST(Embedding, GatherAndScatterAddWithRepeats) {
  Var w(Tensor::arange(12).reshape({4, 3}), true);
  Var e = embedding(w, {2, 0, 2}, {3});
  EXPECT_EQ(e.shape(), (Shape{3, 3}));
  test::expect_values(e.value(), {6, 7, 8, 0, 1, 2, 6, 7, 8});
  e.backward(Tensor::ones({3, 3}));
  test::expect_values(w.grad(), {1, 1, 1, 0, 0, 0, 2, 2, 2, 0, 0, 0});  // id 2 used twice
  EXPECT_THROW(embedding(w, {4}, {1}), std::out_of_range);
  EXPECT_THROW(embedding(w, {0, 1}, {3}), std::invalid_argument);
}

TEST(Embedding, Gradients) {
  std::vector<int32_t> ids = {1, 3, 1, 0, 2, 1};
  check_gradients([ids](const std::vector<Var>& a) { return embedding(a[0], ids, {2, 3}); },
                  {test::randn({4, 5}, 60)});
}

static Var cross_entropy_composed(const Var& logits, const std::vector<int32_t>& targets, int32_t ignore) {
  const int64_t V = logits.shape().back(), rows = logits.numel() / V;
  Tensor onehot({rows, V});
  int64_t count = 0;
  for (int64_t r = 0; r < rows; ++r)
    if (targets[r] != ignore) {
      onehot.at({r, targets[r]}) = 1.0f;
      ++count;
    }
  Var lp = log_softmax(reshape(logits, {rows, V}));
  return -sum(lp * Var(onehot)) / static_cast<float>(count);
}

TEST(CrossEntropy, FusedEqualsComposedWithIgnoreIndex) {
  Tensor x = test::randn({2, 3, 7}, 61, 3.0f);
  std::vector<int32_t> t = {1, 6, kIgnoreIndex, 0, 3, kIgnoreIndex};
  Var a(x.clone(), true), b(x.clone(), true);
  Var l1 = cross_entropy(a, t), l2 = cross_entropy_composed(b, t, kIgnoreIndex);
  EXPECT_NEAR(l1.item(), l2.item(), 1e-5f);
  l1.backward();
  l2.backward();
  EXPECT_LT(max_abs_diff(a.grad(), b.grad()), 1e-6f);
  // Uniform logits: the loss is log(V).
  EXPECT_NEAR(cross_entropy(Var(Tensor::zeros({4, 256})), {0, 1, 2, 3}).item(), std::log(256.0f), 1e-5f);
}

TEST(CrossEntropy, StableForHugeLogitsAndAllIgnored) {
  Var x(Tensor::from_vector({1000, 0, -1000}, {1, 3}), true);
  EXPECT_NEAR(cross_entropy(x, {0}).item(), 0.0f, 1e-6f);
  Var l = cross_entropy(x, {kIgnoreIndex});
  EXPECT_EQ(l.item(), 0.0f);
  l.backward();
  for (float g : x.grad().to_vector()) EXPECT_EQ(g, 0.0f);
  EXPECT_THROW(cross_entropy(x, {3}), std::out_of_range);
  EXPECT_THROW(cross_entropy(x, {0, 1}), std::invalid_argument);
}

TEST(CrossEntropy, Gradients) {
  std::vector<int32_t> t = {2, kIgnoreIndex, 0, 4};
  check_gradients([t](const std::vector<Var>& a) { return cross_entropy(a[0], t); }, {test::randn({4, 5}, 62)});
}

TEST(Dropout, IdentityInEvalAndScaledInTraining) {
  Generator g(1);
  Var x(Tensor::ones({10000}));
  Var e = dropout(x, 0.3f, false, g);
  EXPECT_TRUE(e.value().shares_storage_with(x.value()));
  Var d = dropout(x, 0.3f, true, g);
  int64_t zeros = 0;
  for (float v : d.value().to_vector()) {
    if (v == 0.0f) ++zeros;
    else EXPECT_NEAR(v, 1.0f / 0.7f, 1e-6f);
  }
  // Binomial(10000, 0.3): sd 45.8; 5 sigma.
  EXPECT_NEAR(zeros, 3000, 5 * 45.8);
  EXPECT_THROW(dropout(x, 1.0f, true, g), std::invalid_argument);
}

TEST(Dropout, GradientUsesTheSameMask) {
  // The op draws a fresh mask per call, so the check fixes one mask by re-seeding each call.
  auto f = [](const std::vector<Var>& a) {
    Generator g(77);
    return dropout(a[0], 0.4f, true, g);
  };
  check_gradients(f, {test::randn({5, 6}, 63)});
}

// The mask is a function of one generator draw and the element index: the same for any thread
// count, one draw per call, and neighbouring elements independent.
TEST(Dropout, MaskIsTheSameForEveryThreadCountAndCostsOneDraw) {
  const int threads_before = get_num_threads();
  Var x(Tensor::ones({200000}));
  set_num_threads(1);
  Generator g1(9);
  Tensor one = dropout(x, 0.5f, true, g1).value();
  set_num_threads(2);
  Generator g2(9);
  Tensor two = dropout(x, 0.5f, true, g2).value();
  set_num_threads(threads_before);
  ASSERT_EQ(one.numel(), two.numel());
  EXPECT_EQ(std::memcmp(one.data(), two.data(), sizeof(float) * one.numel()), 0);
  Generator advanced(9);
  advanced.next_u64();
  EXPECT_TRUE(g1 == advanced) << "dropout should draw exactly one word from the generator";
}

TEST(Dropout, NeighbouringElementsAreIndependent) {
  const float p = 0.3f;
  Generator g(21);
  const int64_t n = 400000;
  Tensor d = dropout(Var(Tensor::ones({n})), p, true, g).value();
  int64_t both = 0, dropped = 0;
  for (int64_t i = 0; i < n; ++i) {
    dropped += d.data()[i] == 0.0f;
    if (i + 1 < n) both += d.data()[i] == 0.0f && d.data()[i + 1] == 0.0f;
  }
  // Binomial(n, p) and about Binomial(n, p^2): 6 sigma each.
  EXPECT_NEAR(double(dropped) / n, p, 6 * std::sqrt(p * (1 - p) / n));
  EXPECT_NEAR(double(both) / n, p * p, 6 * std::sqrt(p * p * (1 - p * p) / n));
}

// The branch-free block (an integer threshold instead of a float per element) keeps exactly the
// elements dropout_keeps keeps, at keep values whose 2^24 keep is an integer (0.5, 0.75) and is not
// (0.9, 0.8, 1/3, 0.1): an off-by-one threshold shows at the u = 2^24 keep boundary of the first kind
// and at its neighbours of the second. The boundary itself is also checked directly.
TEST(Dropout, BlockKeepsExactlyWhatThePerElementTestKeeps) {
  for (float keep : {0.5f, 0.75f, 0.9f, 0.8f, 1.0f / 3.0f, 0.1f, 0.999f}) {
    const uint64_t t = kernels::dropout_threshold(keep);
    EXPECT_LT(static_cast<float>(t - 1) * (1.0f / 16777216.0f), keep) << keep;
    EXPECT_GE(static_cast<float>(t) * (1.0f / 16777216.0f), keep) << keep;
    const int64_t n = 100000, i0 = 12345;
    const uint64_t base = 0x0123456789abcdefull ^ static_cast<uint64_t>(keep * 1e6f);
    std::vector<float> x(n), y(n);
    for (int64_t j = 0; j < n; ++j) x[j] = static_cast<float>(j % 97) - 48.0f;
    kernels::dropout_block(x.data(), y.data(), n, base, i0, keep, 1.0f / keep);
    int64_t differ = 0;
    for (int64_t j = 0; j < n; ++j) {
      const float want = kernels::dropout_keeps(base, i0 + j, keep) ? x[j] * (1.0f / keep) : 0.0f;
      differ += std::memcmp(&want, &y[j], sizeof(float)) != 0;
    }
    EXPECT_EQ(differ, 0) << "keep " << keep;
  }
}

TEST(Masking, MaskedFillAndWhere) {
  Var a(Tensor::from_vector({1, 2, 3, 4}, {2, 2}), true);
  Tensor mask = Tensor::from_vector({0, 1}, {2});  // broadcast over rows: column 1 filled
  Var m = masked_fill(a, mask, -5.0f);
  test::expect_values(m.value(), {1, -5, 3, -5});
  sum(m).backward();
  test::expect_values(a.grad(), {1, 0, 1, 0});
  Tensor cond = Tensor::from_vector({1, 0, 0, 1}, {2, 2});
  Var b(Tensor::from_vector({10, 20, 30, 40}, {2, 2}));
  test::expect_values(where(cond, a, b).value(), {1, 20, 30, 4});
}

TEST(Masking, Gradients) {
  Tensor mask = Tensor::from_vector({1, 0, 0, 1, 0, 1}, {2, 3});
  check_gradients([mask](const std::vector<Var>& a) { return masked_fill(a[0], mask, 0.5f); },
                  {test::randn({2, 3}, 64)});
  check_gradients([mask](const std::vector<Var>& a) { return where(mask, a[0], a[1]); },
                  {test::randn({2, 3}, 65), test::randn({2, 3}, 66)});
}
