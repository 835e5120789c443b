// Exact softmax attention: against a direct per-head computation written with plain loops (no
// mask, causal, key padding, both), against PyTorch (values and gradients), head splitting, and
// the MultiheadAttention module (causality, padding, finite-difference gradients).
#include <gtest/gtest.h>

#include <cmath>

#include "nn/attention.h"
#include "nn_test_util.h"
#include "tests/golden/golden_values.h"

using namespace pf;
namespace g = pf::golden;

namespace {

// out[b,h,i,:] = sum_j softmax_j(q_i . k_j / sqrt(D) over allowed j) v_j, in double.
Tensor reference_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, const Tensor* mask) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3), S = k.size(2), Dv = v.size(3);
  Tensor out({B, H, T, Dv});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < T; ++i) {
        std::vector<double> w(S, 0.0);
        double mx = -1e300;
        std::vector<bool> allowed(S);
        for (int64_t j = 0; j < S; ++j) {
          allowed[j] = !(causal && j > i) && !(mask && mask->at({b, j}) == 0.f);
          if (!allowed[j]) continue;
          double s = 0;
          for (int64_t d = 0; d < D; ++d) s += double(q.at({b, h, i, d})) * k.at({b, h, j, d});
          w[j] = s / std::sqrt(double(D));
          mx = std::max(mx, w[j]);
        }
        double z = 0;
        for (int64_t j = 0; j < S; ++j) z += allowed[j] ? std::exp(w[j] - mx) : 0.0;
        for (int64_t d = 0; d < Dv; ++d) {
          double acc = 0;
          for (int64_t j = 0; j < S; ++j)
            if (allowed[j]) acc += std::exp(w[j] - mx) / z * v.at({b, h, j, d});
          out.at({b, h, i, d}) = static_cast<float>(acc);
        }
      }
  return out;
}

// Against PyTorch: 1e-5 relative plus 1e-6 absolute, a few ulp of the O(1) operands (see
// test_layer_norm.cpp; measured worst case 1.4e-7).
constexpr float kRtol = 1e-5f, kAtol = 1e-6f;

}  // namespace

TEST(SoftmaxAttention, MatchesPlainLoopReference) {
  const int64_t B = 2, H = 3, T = 5, D = 4;
  Tensor q = test::randn({B, H, T, D}, 1), k = test::randn({B, H, T, D}, 2), v = test::randn({B, H, T, D}, 3);
  Tensor mask = Tensor::ones({B, T});
  mask.at({1, 3}) = 0.f;
  mask.at({1, 4}) = 0.f;
  mask.at({0, 2}) = 0.f;
  for (bool causal : {false, true})
    for (const Tensor* m : std::initializer_list<const Tensor*>{nullptr, &mask}) {
      Var out = softmax_attention(Var(q), Var(k), Var(v), causal, m);
      Tensor ref = reference_attention(q, k, v, causal, m);
      EXPECT_LT(max_abs_diff(out.value(), ref), 1e-5f) << "causal " << causal << " mask " << (m != nullptr);
    }
}

TEST(SoftmaxAttention, MatchesPyTorchValuesAndGradients) {
  Tensor mask = test::from_golden(g::att_key_mask, g::att_key_mask_shape);
  struct Case {
    bool causal;
    const Tensor* mask;
    const std::vector<float>*out, *dq, *dk, *dv;
  };
  const Case cases[] = {
      {true, nullptr, &g::att_causal_out, &g::att_causal_dq, &g::att_causal_dk, &g::att_causal_dv},
      {false, &mask, &g::att_padded_out, &g::att_padded_dq, &g::att_padded_dk, &g::att_padded_dv},
      {true, &mask, &g::att_causal_padded_out, &g::att_causal_padded_dq, &g::att_causal_padded_dk,
       &g::att_causal_padded_dv},
  };
  for (const Case& c : cases) {
    Var q(test::from_golden(g::att_q, g::att_q_shape), true);
    Var k(test::from_golden(g::att_k, g::att_k_shape), true);
    Var v(test::from_golden(g::att_v, g::att_v_shape), true);
    Var out = softmax_attention(q, k, v, c.causal, c.mask);
    test::expect_close(out.value(), *c.out, kRtol, kAtol, "out");
    out.backward(test::from_golden(g::att_upstream, g::att_upstream_shape));
    test::expect_close(q.grad(), *c.dq, kRtol, kAtol, "dq");
    test::expect_close(k.grad(), *c.dk, kRtol, kAtol, "dk");
    test::expect_close(v.grad(), *c.dv, kRtol, kAtol, "dv");
  }
}

TEST(SoftmaxAttention, GradientsMatchFiniteDifferences) {
  Tensor mask = Tensor::ones({2, 4});
  mask.at({0, 3}) = 0.f;
  for (bool causal : {false, true}) {
    auto f = [&](const std::vector<Var>& v) { return softmax_attention(v[0], v[1], v[2], causal, &mask); };
    test::check_gradients(f,
                          {test::randn({2, 2, 4, 3}, 4), test::randn({2, 2, 4, 3}, 5), test::randn({2, 2, 4, 3}, 6)});
  }
}

TEST(SoftmaxAttention, FullyMaskedQueryStaysFinite) {
  // Left padding with causal attention: query 0 of sequence 1 can see no real key.
  Tensor mask = Tensor::from_vector({0, 1, 1}, {1, 3});
  Var out = softmax_attention(Var(test::randn({1, 1, 3, 2}, 1)), Var(test::randn({1, 1, 3, 2}, 2)),
                              Var(test::randn({1, 1, 3, 2}, 3)), true, &mask);
  for (float x : out.value().to_vector()) EXPECT_TRUE(std::isfinite(x));
}

TEST(SoftmaxAttention, ShapeErrors) {
  Var q(Tensor({1, 2, 3, 4})), k(Tensor({1, 2, 3, 5})), k4(Tensor({1, 2, 5, 4}));
  EXPECT_THROW(softmax_attention(q, k, q, false), std::invalid_argument);
  EXPECT_THROW(softmax_attention(q, k4, k4, true), std::invalid_argument);  // causal needs Tq == Tk
  EXPECT_NO_THROW(softmax_attention(q, k4, k4, false));                     // cross-attention
  Tensor bad_mask = Tensor::ones({1, 4});
  EXPECT_THROW(softmax_attention(q, q, q, false, &bad_mask), std::invalid_argument);
}

TEST(Heads, SplitAndMergeAreInversesWithContiguousHeadChannels) {
  Tensor x = Tensor::arange(2 * 3 * 6).reshape({2, 3, 6});  // (B, T, C), C = 2 heads x 3
  Var s = split_heads(Var(x), 2);
  ASSERT_EQ(s.shape(), (Shape{2, 2, 3, 3}));
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t t = 0; t < 3; ++t)
        for (int64_t d = 0; d < 3; ++d) EXPECT_EQ(s.value().at({b, h, t, d}), x.at({b, t, h * 3 + d}));
  EXPECT_TRUE(test::bitwise_equal(merge_heads(s).value(), x));
  EXPECT_THROW(split_heads(Var(x), 4), std::invalid_argument);
}

TEST(MultiheadAttention, NamesAndShapes) {
  Generator gen(1);
  MultiheadAttention mha(8, 2, true, gen);
  std::vector<std::string> names;
  for (auto& [n, v] : mha.named_parameters()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"q_proj.weight", "q_proj.bias", "k_proj.weight", "k_proj.bias",
                                             "v_proj.weight", "v_proj.bias", "out_proj.weight", "out_proj.bias"}));
  EXPECT_EQ(mha.forward(Var(Tensor({2, 5, 8}))).shape(), (Shape{2, 5, 8}));
  EXPECT_THROW(MultiheadAttention(8, 3, true, gen), std::invalid_argument);
  EXPECT_THROW(mha.forward(Var(Tensor({2, 5, 6}))), std::invalid_argument);
}

TEST(MultiheadAttention, EqualsProjectionsAroundReferenceAttention) {
  Generator gen(2);
  MultiheadAttention mha(6, 3, false, gen);
  Var x(test::randn({2, 4, 6}, 3));
  Tensor mask = Tensor::from_vector({1, 1, 1, 1, 1, 1, 0, 0}, {2, 4});
  auto heads_of = [&](const Linear& l) { return split_heads(l.forward(x), 3).value(); };
  Tensor ref = reference_attention(heads_of(*mha.q_proj), heads_of(*mha.k_proj), heads_of(*mha.v_proj), false, &mask);
  Var expected = mha.out_proj->forward(merge_heads(Var(ref)));
  EXPECT_LT(max_abs_diff(mha.forward(x, &mask).value(), expected.value()), 1e-5f);
}

TEST(MultiheadAttention, CausalOutputIgnoresTheFutureAndPaddedKeys) {
  Generator gen(3);
  MultiheadAttention causal(8, 2, true, gen);
  Tensor x = test::randn({1, 6, 8}, 4);
  Tensor x2 = x.clone();
  for (int64_t c = 0; c < 8; ++c) x2.at({0, 5, c}) += 3.f;  // change only the last position
  Tensor y = causal.forward(Var(x)).value(), y2 = causal.forward(Var(x2)).value();
  for (int64_t t = 0; t < 5; ++t)
    for (int64_t c = 0; c < 8; ++c) EXPECT_EQ(y.at({0, t, c}), y2.at({0, t, c}));
  // Bidirectional with the last position padded: no real position depends on it.
  MultiheadAttention bi(8, 2, false, gen);
  Tensor mask = Tensor::from_vector({1, 1, 1, 1, 1, 0}, {1, 6});
  y = bi.forward(Var(x), &mask).value();
  y2 = bi.forward(Var(x2), &mask).value();
  for (int64_t t = 0; t < 5; ++t)
    for (int64_t c = 0; c < 8; ++c) EXPECT_NEAR(y.at({0, t, c}), y2.at({0, t, c}), 1e-6f);
}

TEST(MultiheadAttention, GradientsMatchFiniteDifferences) {
  Generator gen(5);
  for (bool causal : {false, true}) {
    MultiheadAttention mha(6, 2, causal, gen);
    Tensor mask = Tensor::from_vector({1, 1, 1, 1, 1, 1, 1, 0}, {2, 4});
    auto f = [&](const std::vector<Var>& v) {
      mha.q_proj->weight = v[1];
      mha.k_proj->weight = v[2];
      mha.v_proj->bias = v[3];
      mha.out_proj->weight = v[4];
      return mha.forward(v[0], &mask);
    };
    test::check_gradients(
        f, {test::randn({2, 4, 6}, 6), mha.q_proj->weight.value().clone(), mha.k_proj->weight.value().clone(),
            mha.v_proj->bias.value().clone(), mha.out_proj->weight.value().clone()});
  }
}
