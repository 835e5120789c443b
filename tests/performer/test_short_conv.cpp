// Short depthwise convolution (performer/short_conv.h) against its definition computed independently in
// double, finite differences, the recurrent step against the batch op; and in the model: the
// recurrent decoder with short convolutions and the learned far-field gain reproduces the full forward
// pass, a bidirectional favor-local model (masked LM) trains its new parameters, and models without the
// options keep their parameter lists.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "autograd/parallel.h"
#include "model_test_util.h"
#include "nn/attention.h"
#include "performer/generate.h"
#include "performer/short_conv.h"

using namespace pf;

namespace {

Tensor randn(Shape s, uint64_t seed) {
  Generator g(seed);
  return Tensor::randn(std::move(s), g, 0.0f, 1.0f);
}

// y[b, t, c] = sum_k w[c, k] x[b, t + k - p, c], in double.
Tensor direct(const Tensor& x, const Tensor& w, bool causal) {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), K = w.size(1), p = causal ? K - 1 : K / 2;
  Tensor y({B, T, C});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < C; ++c) {
        double acc = 0.0;
        for (int64_t k = 0; k < K; ++k) {
          const int64_t s = t + k - p;
          if (s >= 0 && s < T) acc += double(w.data()[c * K + k]) * x.data()[(b * T + s) * C + c];
        }
        y.data()[(b * T + t) * C + c] = static_cast<float>(acc);
      }
  return y;
}

float max_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  float d = 0.0f;
  for (int64_t i = 0; i < a.numel(); ++i) d = std::max(d, std::fabs(a.data()[i] - b.data()[i]));
  return d;
}

}  // namespace

TEST(ShortConv, MatchesTheDefinitionAndTheIdentity) {
  const Tensor x = randn({2, 9, 5}, 1);
  for (int64_t K : {1, 3, 4})
    for (bool causal : {true, false}) {
      const Tensor w = randn({5, K}, 2 + K);
      NoGradGuard no_grad;
      EXPECT_LT(max_diff(short_conv(Var(x), Var(w), causal).value(), direct(x, w, causal)), 1e-5f)
          << "K " << K << " causal " << causal;
      const Tensor id = short_conv(Var(x), Var(short_conv_identity(5, K, causal)), causal).value();
      EXPECT_EQ(0, std::memcmp(id.data(), x.data(), sizeof(float) * x.numel())) << "K " << K;
    }
}

// Finite differences for x and the weight; a backward scaled by 1.05 fails.
TEST(ShortConv, Gradcheck) {
  const Tensor x = randn({2, 9, 5}, 3);
  for (int64_t K : {1, 3, 4})
    for (bool causal : {true, false}) {
      const Tensor w = randn({5, K}, 4 + K);
      const GradcheckFn fn = [&](const std::vector<Var>& in) { return short_conv(in[0], in[1], causal); };
      const auto good = gradcheck(fn, {x, w});
      EXPECT_TRUE(good.ok) << "K " << K << " causal " << causal << ": " << good.message;
      const auto bad = [&] {
        GradientHookGuard scaled([](const char*, Tensor& g) { g.vec() *= 1.05f; });
        return gradcheck(fn, {x, w});
      }();
      EXPECT_FALSE(bad.ok);
    }
}

// Enough rows and channels for the threaded loops (rows split over the threads, the backward in blocks
// of rows whose partial weight sums are added in order: 300 rows make 5 blocks): the definition, finite
// differences, and the same bits at 1 and 2 threads.
TEST(ShortConv, ManyChannelsMatchAtOneAndTwoThreads) {
  const int threads_before = get_num_threads();
  const Tensor x = randn({3, 100, 150}, 11), gy = randn({3, 100, 150}, 12);
  for (bool causal : {true, false}) {
    const Tensor w = randn({150, 4}, 13);
    Tensor y[2], dx[2], dw[2];
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      Var xv(x, true), wv(w, true);
      Var out = short_conv(xv, wv, causal);
      out.backward(gy);
      y[threads - 1] = out.value();
      dx[threads - 1] = xv.grad();
      dw[threads - 1] = wv.grad();
    }
    set_num_threads(threads_before);
    EXPECT_LT(max_diff(y[0], direct(x, w, causal)), 1e-5f) << "causal " << causal;
    for (const Tensor* t : {y, dx, dw}) EXPECT_EQ(0, std::memcmp(t[0].data(), t[1].data(), sizeof(float) * t[0].numel()));
    const Tensor xs = randn({1, 6, 150}, 14);
    const auto check = gradcheck([&](const std::vector<Var>& in) { return short_conv(in[0], in[1], causal); }, {xs, w});
    EXPECT_TRUE(check.ok) << "causal " << causal << ": " << check.message;
  }
}

// x feeding two convolutions (and the head-major form): the second backward adds to the gradient the
// first one wrote into a fresh buffer, checked by finite differences.
TEST(ShortConv, GradientsAddUpWhenTheInputFeedsTwoConvolutions) {
  const Tensor x = randn({2, 70, 6}, 31);
  for (bool causal : {true, false}) {
    const GradcheckFn fn = [&](const std::vector<Var>& in) {
      return split_heads(short_conv(in[0], in[1], causal), 2) + short_conv_heads(in[0], in[2], causal, 2);
    };
    const auto check = gradcheck(fn, {x, randn({6, 4}, 32), randn({6, 3}, 33)});
    EXPECT_TRUE(check.ok) << "causal " << causal << ": " << check.message;
  }
}

// The head-major form is split_heads of the plain one, bit for bit, forward and backward (the same
// upstream gradient, permuted), for one head, several, and one channel per head; and its own finite
// differences.
TEST(ShortConv, HeadsFormIsSplitHeadsOfThePlainOne) {
  const int64_t B = 2, T = 70, C = 12;
  const Tensor x = randn({B, T, C}, 21);
  for (int64_t H : {1, 3, 12})
    for (bool causal : {true, false}) {
      const Tensor w = randn({C, 4}, 22), gy = randn({B, H, T, C / H}, 23);
      Var x1(x, true), w1(w, true), x2(x, true), w2(w, true);
      Var ref = split_heads(short_conv(x1, w1, causal), H);
      Var out = short_conv_heads(x2, w2, causal, H);
      ASSERT_EQ(ref.shape(), out.shape());
      ref.backward(gy);
      out.backward(gy);
      const std::string where = "H " + std::to_string(H) + " causal " + std::to_string(causal);
      EXPECT_EQ(0, std::memcmp(ref.value().data(), out.value().data(), sizeof(float) * out.value().numel())) << where;
      EXPECT_EQ(0, std::memcmp(x1.grad().data(), x2.grad().data(), sizeof(float) * x.numel())) << where;
      EXPECT_EQ(0, std::memcmp(w1.grad().data(), w2.grad().data(), sizeof(float) * w.numel())) << where;
      const auto check = gradcheck(
          [&](const std::vector<Var>& in) { return short_conv_heads(in[0], in[1], causal, H); },
          {randn({1, 7, C}, 24), w});
      EXPECT_TRUE(check.ok) << where << ": " << check.message;
    }
  EXPECT_THROW(short_conv_heads(Var(x), Var(randn({C, 4}, 25)), true, 5), std::invalid_argument);
}

TEST(ShortConv, StepEqualsBatch) {
  const int64_t B = 2, T = 9, C = 5;
  const Tensor x = randn({B, T, C}, 5);
  for (int64_t K : {1, 3, 4}) {
    const Tensor w = randn({C, K}, 6 + K);
    const Tensor full = direct(x, w, true);
    ShortConvState state;
    state.reset(B, C, K);
    for (int64_t t = 0; t < T; ++t) {
      Tensor xt({B, C});
      for (int64_t b = 0; b < B; ++b) std::memcpy(xt.data() + b * C, x.data() + (b * T + t) * C, sizeof(float) * C);
      const Tensor y = short_conv_step(state, xt, w);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t c = 0; c < C; ++c)
          EXPECT_NEAR(y.data()[b * C + c], full.data()[(b * T + t) * C + c], 1e-5f) << "K " << K << " t " << t;
    }
  }
  ShortConvState never;
  const Tensor xt({B, C}), w3 = randn({C, 3}, 8);
  EXPECT_THROW(short_conv_step(never, xt, w3), std::invalid_argument);
  EXPECT_THROW(short_conv(Var(x), Var(randn({C + 1, 3}, 9)), true), std::invalid_argument);
}

namespace {

// Sets every conv weight and far gain of the model to seeded random values (away from the identity and 0).
void perturb_new_parameters(PerformerLM& model, uint64_t seed) {
  for (auto& [name, p] : model.named_parameters())
    if (name.find("_conv") != std::string::npos || name.find("far_gain") != std::string::npos) {
      const Tensor r = randn(p.shape(), seed++);
      Tensor& v = p.mutable_value();
      for (int64_t i = 0; i < v.numel(); ++i) v.data()[i] += 0.5f * r.data()[i];
    }
}

}  // namespace

// Recurrent generation (conv history + favor-local state with the gain) equals the full forward pass.
TEST(ShortConvModel, DecoderStepsMatchTheFullForwardPass) {
  const int64_t T = 14, V = 11;
  for (auto kind : {AttentionKind::FavorLocal, AttentionKind::Favor, AttentionKind::Softmax})
    for (int64_t K : {0, 3, 4}) {
      ModelConfig cfg = test::tiny_config(kind, PositionKind::Rotary);
      cfg.short_conv = K;
      cfg.local_mix = kind == AttentionKind::FavorLocal;
      if (K == 0 && !cfg.local_mix) continue;
      PerformerLM model(cfg);
      perturb_new_parameters(model, 40);
      model.eval();
      const auto ids = test::random_ids(T, V, 21);
      const Tensor full = test::full_logits(model, ids);  // (1, T, V)
      Decoder decoder(model);
      for (int64_t t = 0; t < T; ++t) {
        EXPECT_LE(test::relative_diff(decoder.step(ids[t]), full, t, V), 1e-4f)
            << test::describe(cfg) << " K " << K << " at position " << t;
      }
    }
}

// A fresh model with the options computes what one without them computes (identity convolutions, zero
// gain), bit for bit, causal and bidirectional: the options start from the plain model.
TEST(ShortConvModel, FreshOptionsChangeNothing) {
  for (bool causal : {true, false}) {
    const ModelConfig plain_cfg = test::tiny_config(AttentionKind::FavorLocal, PositionKind::Learned, causal);
    ModelConfig cfg = plain_cfg;
    cfg.short_conv = 4;
    cfg.local_mix = true;
    PerformerLM plain(plain_cfg), model(cfg);
    const auto ids = test::random_ids(2 * 12, 11, 3);
    NoGradGuard no_grad;
    const Tensor a = plain.forward(ids, 2, 12).value(), b = model.forward(ids, 2, 12).value();
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), sizeof(float) * a.numel())) << "causal " << causal;
  }
}

// A masked-LM favor-local model with both options: every new parameter gets a finite, non-zero
// gradient, and the options add exactly their parameters (none without them).
TEST(ShortConvModel, BidirectionalFavorLocalTrainsTheNewParameters) {
  ModelConfig cfg = test::tiny_config(AttentionKind::FavorLocal, PositionKind::Learned, /*causal=*/false);
  cfg.short_conv = 3;
  cfg.local_mix = true;
  PerformerLM model(cfg);
  const auto ids = test::random_ids(2 * 12, 11, 5);
  const std::vector<uint8_t> mask = [] {
    std::vector<uint8_t> m(24, 1);
    for (int i = 20; i < 24; ++i) m[i] = 0;  // row 1: 4 pads at the end
    return m;
  }();
  Var logits = model.forward(ids, 2, 12, &mask);
  std::vector<int32_t> targets(ids.begin(), ids.end());
  cross_entropy(logits, targets).backward();
  int found = 0;
  for (auto& [name, p] : model.named_parameters())
    if (name.find("_conv") != std::string::npos || name.find("far_gain") != std::string::npos) {
      ++found;
      const Tensor g = p.grad();
      float n = 0.0f;
      for (int64_t i = 0; i < g.numel(); ++i) {
        ASSERT_TRUE(std::isfinite(g.data()[i])) << name;
        n += std::fabs(g.data()[i]);
      }
      EXPECT_GT(n, 0.0f) << name;
    }
  EXPECT_EQ(found, 2 * 4);  // 2 layers x (3 convs + 1 gain)
  PerformerLM plain(test::tiny_config(AttentionKind::FavorLocal, PositionKind::Learned, false));
  EXPECT_EQ(plain.named_parameters().size() + 8, model.named_parameters().size());
  ModelConfig bad = test::tiny_config(AttentionKind::Favor);
  bad.local_mix = true;
  EXPECT_THROW(bad.validate(), std::invalid_argument);
}
