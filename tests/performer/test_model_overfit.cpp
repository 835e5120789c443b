// The model can memorize one small batch: the next-token loss falls near zero within a few hundred
// AdamW steps, for every attention kind. A model that cannot overfit has a broken gradient path; the
// batch is built so that attention (not the embeddings alone) must do the work.
#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "model_test_util.h"
#include "nn/optimizer.h"
#include "performer/model.h"

using namespace pf;

namespace {

// One fixed batch that only attention can fit: sequence b alternates its own key token k_b with a
// body shared by every sequence, [k_b, s_1, k_b, s_2, k_b, ...]. After s_i the next token is k_b, which
// the current token and position do not determine: the model must attend back to an earlier k_b.
// Trains with AdamW and returns the final loss.
float overfit(ModelConfig cfg, int steps) {
  PerformerLM model(cfg);
  const int64_t B = 4, T = 16;
  const auto body = test::random_ids(T, cfg.vocab_size - B, 31);
  std::vector<int32_t> inputs, targets;
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int32_t> seq;
    for (int64_t i = 0; static_cast<int64_t>(seq.size()) < T + 1; ++i) {
      seq.push_back(static_cast<int32_t>(b));            // k_b: tokens 0 .. B-1
      seq.push_back(static_cast<int32_t>(B + body[i]));  // s_i: tokens B .. V-1
    }
    inputs.insert(inputs.end(), seq.begin(), seq.begin() + T);
    targets.insert(targets.end(), seq.begin() + 1, seq.begin() + T + 1);
  }
  AdamOptions opt;
  opt.lr = 1e-2f;
  AdamW adam(model.named_parameters(), opt);
  float loss = 0.0f;
  for (int s = 1; s <= steps; ++s) {
    adam.zero_grad();
    Var l = cross_entropy(reshape(model.forward(inputs, B, T), {B * T, cfg.vocab_size}), targets);
    loss = l.item();
    l.backward();
    adam.step();
    model.maybe_redraw(s);
  }
  return loss;
}

ModelConfig overfit_config(AttentionKind kind) {
  ModelConfig c = test::tiny_config(kind);
  c.dim = 32;
  c.heads = 2;
  c.ff_hidden = 64;
  c.features = 32;
  c.vocab_size = 16;
  return c;
}

}  // namespace

TEST(PerformerLMOverfit, Favor) {
  EXPECT_LT(overfit(overfit_config(AttentionKind::Favor), 150), 0.05f);
}

TEST(PerformerLMOverfit, Relu) {
  EXPECT_LT(overfit(overfit_config(AttentionKind::Relu), 150), 0.05f);
}

TEST(PerformerLMOverfit, Softmax) {
  EXPECT_LT(overfit(overfit_config(AttentionKind::Softmax), 150), 0.05f);
}

// Rotary positions, tied embeddings, and projections redrawn every 40 steps while training.
TEST(PerformerLMOverfit, FavorRotaryTiedWithRedraws) {
  ModelConfig c = overfit_config(AttentionKind::Favor);
  c.positions = PositionKind::Rotary;
  c.tie_embeddings = true;
  c.redraw_every = 40;
  EXPECT_LT(overfit(c, 150), 0.05f);
}
