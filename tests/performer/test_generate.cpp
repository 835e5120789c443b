// Recurrent generation: Decoder::step over a prefix reproduces the full forward pass (recurrent
// FAVOR+ state for favor / relu, a key/value cache for softmax) for every position kind; generate()
// is reproducible, honours greedy decoding, stop tokens and the context limit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "autograd/ops.h"
#include "model_test_util.h"
#include "nn/optimizer.h"
#include "performer/generate.h"

using namespace pf;
using test::describe;
using test::tiny_config;

namespace {

using test::relative_diff;

}  // namespace

TEST(Decoder, StepsMatchTheFullForwardPass) {
  const int64_t T = 14, V = 11;  // crosses three chunk boundaries (chunk 4)
  for (auto kind : test::kCausalAttention) {
    for (auto pos : test::kAllPositions) {
      PerformerLM model(tiny_config(kind, pos));
      model.eval();
      const auto ids = test::random_ids(T, V, 21);
      const Tensor full = test::full_logits(model, ids);  // (1, T, V)
      Decoder decoder(model);
      for (int64_t t = 0; t < T; ++t) {
        EXPECT_EQ(decoder.position(), t);
        const Tensor logits = decoder.step(ids[t]);
        ASSERT_EQ(logits.shape(), (Shape{V}));
        EXPECT_LE(relative_diff(logits, full, t, V), 1e-4f) << describe(model.config()) << " at position " << t;
      }
      // reset() starts over and reproduces the first steps exactly.
      decoder.reset();
      EXPECT_EQ(decoder.position(), 0);
      for (int64_t t = 0; t < 3; ++t) EXPECT_LE(relative_diff(decoder.step(ids[t]), full, t, V), 1e-4f);
    }
  }
}

// FAVOR++ features (feature_map favor++, A optimal for the default |q' + k'|^2 = 4) in the recurrent forms too.
TEST(Decoder, StepsMatchTheFullForwardPassWithFavorPlusPlus) {
  const int64_t T = 14, V = 11;
  for (auto kind : {AttentionKind::Favor, AttentionKind::FavorLocal}) {
    ModelConfig cfg = tiny_config(kind, PositionKind::Rotary);
    cfg.feature_map = FeatureMapKind::FavorPlusPlus;
    PerformerLM model(cfg);
    ASSERT_LT(model.block(0).attn().favor_options().feature_a, -0.01f);  // FAVOR++ is in use
    const auto ids = test::random_ids(T, V, 24);
    Tensor full;
    {
      NoGradGuard no_grad;
      full = model.forward(ids, 1, T).value();
    }
    Decoder decoder(model);
    for (int64_t t = 0; t < T; ++t)
      EXPECT_LE(relative_diff(decoder.step(ids[t]), full, t, V), 1e-4f) << describe(cfg) << " at position " << t;
  }
}

TEST(Decoder, TwoDecodersAreBitIdentical) {
  for (auto kind : test::kCausalAttention) {
    PerformerLM model(tiny_config(kind, PositionKind::Rotary));
    const auto ids = test::random_ids(12, 11, 23);
    Decoder a(model);
    std::vector<float> noise(7);  // shifts the second decoder's allocations
    Decoder b(model);
    for (int32_t t : ids) {
      const Tensor la = a.step(t), lb = b.step(t);
      ASSERT_EQ(std::memcmp(la.data(), lb.data(), la.numel() * sizeof(float)), 0) << to_string(kind);
    }
  }
}

TEST(Decoder, MatchesAfterTrainingStepsAndRedraws) {
  // Weights away from their init and a redrawn projection: the decoder reads the live values.
  ModelConfig cfg = tiny_config(AttentionKind::Favor, PositionKind::Rotary);
  cfg.tie_embeddings = true;
  PerformerLM model(cfg);
  const auto ids = test::random_ids(10, 11, 22);
  Var loss = cross_entropy(reshape(model.forward(ids, 1, 10), {10, 11}), ids);
  loss.backward();
  for (auto& [name, p] : model.named_parameters()) p.value().vec() -= 0.5f * p.grad().vec();
  model.redraw_projections();
  NoGradGuard no_grad;
  const Tensor full = model.forward(ids, 1, 10).value();
  Decoder decoder(model);
  for (int64_t t = 0; t < 10; ++t) EXPECT_LE(relative_diff(decoder.step(ids[t]), full, t, 11), 1e-4f) << t;
}

// A learned projection (learned_features) after a few AdamW steps, W well away from its draw: the decoder's
// recurrent forms read the trained W and reproduce the full forward pass (favor and favor-local).
TEST(Decoder, MatchesWithLearnedFeaturesAfterTrainingSteps) {
  const int64_t T = 14, V = 11;
  for (auto kind : {AttentionKind::Favor, AttentionKind::FavorLocal}) {
    ModelConfig cfg = tiny_config(kind, PositionKind::Rotary);
    cfg.learned_features = true;
    PerformerLM model(cfg);
    const Tensor w0 = model.state_dict().at("blocks.0.attn.projection").clone();
    AdamW opt(model.named_parameters(), AdamOptions{.lr = 2e-2f});
    for (uint64_t step = 0; step < 4; ++step) {
      const auto ids = test::random_ids(2 * T, V, 30 + step);
      std::vector<int32_t> targets(ids.begin() + 1, ids.end());
      targets.push_back(0);
      opt.zero_grad();
      cross_entropy(reshape(model.forward(ids, 2, T), {2 * T, V}), targets).backward();
      opt.step();
    }
    ASSERT_GT(max_abs_diff(model.state_dict().at("blocks.0.attn.projection"), w0), 0.05f) << describe(cfg);
    const auto ids = test::random_ids(T, V, 25);
    const Tensor full = test::full_logits(model, ids);
    Decoder decoder(model);
    for (int64_t t = 0; t < T; ++t)
      EXPECT_LE(relative_diff(decoder.step(ids[t]), full, t, V), 1e-4f) << describe(cfg) << " at position " << t;
  }
}

TEST(Decoder, RejectsWhatItCannotDo) {
  PerformerLM bidirectional(tiny_config(AttentionKind::Favor, PositionKind::Learned, /*causal=*/false));
  EXPECT_THROW(Decoder{bidirectional}, std::invalid_argument);

  ModelConfig cfg = tiny_config(AttentionKind::Favor);
  cfg.dropout = 0.1f;
  PerformerLM dropped(cfg);
  Decoder d(dropped);
  EXPECT_THROW(d.step(1), std::logic_error);  // training mode with dropout
  dropped.eval();
  EXPECT_NO_THROW(d.step(1));
  EXPECT_THROW(d.step(11), std::out_of_range);  // outside the vocabulary

  PerformerLM learned(tiny_config(AttentionKind::Relu));
  Decoder full(learned);
  for (int64_t t = 0; t < 32; ++t) full.step(static_cast<int32_t>(t % 11));
  EXPECT_THROW(full.step(0), std::invalid_argument);  // past max_seq_len of the learned table

  PerformerLM rotary(tiny_config(AttentionKind::Favor, PositionKind::Rotary));
  Decoder unbounded(rotary);
  for (int64_t t = 0; t < 40; ++t) EXPECT_NO_THROW(unbounded.step(static_cast<int32_t>(t % 11)));
}

TEST(Generate, GreedyFollowsTheArgmaxOfTheFullForward) {
  for (auto kind : test::kCausalAttention) {
    PerformerLM model(tiny_config(kind));
    model.eval();
    SamplingOptions opt;
    opt.greedy = true;
    Generator gen(1);
    const std::vector<int32_t> prompt = {3, 1, 4};
    const auto out = generate(model, prompt, 6, opt, gen);
    ASSERT_EQ(out.size(), 6u);
    // Re-derive each token from a full forward over prompt + what came before.
    std::vector<int32_t> seq = prompt;
    NoGradGuard no_grad;
    for (size_t i = 0; i < out.size(); ++i) {
      const int64_t T = static_cast<int64_t>(seq.size());
      const Tensor logits = model.forward(seq, 1, T).value();
      const float* last = logits.data() + (T - 1) * 11;
      const float best = *std::max_element(last, last + 11);
      // The decoder's argmax is the forward's argmax unless two logits are within rounding.
      EXPECT_NEAR(last[out[i]], best, 1e-4f * std::max(1.0f, std::abs(best))) << to_string(kind) << " token " << i;
      seq.push_back(out[i]);
    }
  }
}

TEST(Generate, SameSeedSameTextAndStopToken) {
  PerformerLM model(tiny_config(AttentionKind::Favor, PositionKind::Sinusoidal));
  SamplingOptions opt;
  opt.temperature = 1.5f;
  opt.top_k = 8;
  Generator a(5), b(5), c(6);
  const auto ta = generate(model, {1, 2}, 20, opt, a);
  const auto tb = generate(model, {1, 2}, 20, opt, b);
  const auto tc = generate(model, {1, 2}, 20, opt, c);
  EXPECT_EQ(ta, tb);
  EXPECT_NE(ta, tc);
  ASSERT_EQ(ta.size(), 20u);
  for (int32_t t : ta) EXPECT_TRUE(t >= 0 && t < 11);

  // Stopping at the first occurrence of a token: the output is the prefix before it.
  const int32_t stop = ta[4];
  size_t first = 0;
  while (ta[first] != stop) ++first;
  Generator d(5);
  const auto td = generate(model, {1, 2}, 20, opt, d, stop);
  EXPECT_EQ(td, std::vector<int32_t>(ta.begin(), ta.begin() + static_cast<std::ptrdiff_t>(first)));

  Generator e(5);
  EXPECT_TRUE(generate(model, {1, 2}, 0, opt, e).empty());
}

TEST(Generate, ValidatesItsArguments) {
  PerformerLM model(tiny_config(AttentionKind::Favor));  // learned positions, max_seq_len 32
  Generator gen(1);
  SamplingOptions opt;
  EXPECT_THROW(generate(model, {}, 5, opt, gen), std::invalid_argument);
  EXPECT_THROW(generate(model, {1}, -1, opt, gen), std::invalid_argument);
  EXPECT_THROW(generate(model, {1, 2, 3}, 31, opt, gen), std::invalid_argument);  // 33 positions
  EXPECT_EQ(generate(model, {1, 2, 3}, 30, opt, gen).size(), 30u);                // 32 positions: fits
  opt.temperature = 0.0f;
  EXPECT_THROW(generate(model, {1}, 5, opt, gen), std::invalid_argument);
}
