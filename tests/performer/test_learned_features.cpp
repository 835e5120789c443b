// Learned feature maps in the model (ModelConfig::learned_features): each layer's projection W is the
// parameter "projection", starting from the random draw of the fixed model (whose logits it reproduces
// bit for bit), reached by gradients through favor and favor-local (causal and bidirectional), trained by
// the optimizer without weight decay, never redrawn; recomputed blocks give it the same gradient. Without
// the option W stays a buffer the optimizer never sees.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "autograd/ops.h"
#include "model_test_util.h"
#include "nn/optimizer.h"
#include "performer/model.h"

using namespace pf;
using test::describe;
using test::tiny_config;

namespace {

ModelConfig learned_config(AttentionKind kind, bool causal = true) {
  ModelConfig cfg = tiny_config(kind, PositionKind::Learned, causal);
  cfg.learned_features = true;
  return cfg;
}

bool is_projection(const std::string& name) {
  return name.size() > 11 && name.compare(name.size() - 11, 11, ".projection") == 0;
}

// The loss of one batch (next-token targets for causal models, the inputs themselves otherwise).
Var batch_loss(PerformerLM& model, int64_t B, int64_t T, uint64_t seed) {
  const auto ids = test::random_ids(B * T, 11, seed);
  std::vector<int32_t> targets(ids.begin() + (model.config().causal ? 1 : 0), ids.end());
  if (model.config().causal) targets.push_back(0);
  return cross_entropy(reshape(model.forward(ids, B, T), {B * T, 11}), targets);
}

const AttentionKind kLearnedKinds[] = {AttentionKind::Favor, AttentionKind::FavorLocal};

}  // namespace

// W is a parameter under the buffer's name, equal to the fixed model's draw (the GPT-2 initialization
// leaves it alone), and every other weight is drawn as before: a fresh model computes the fixed model's
// logits, bit for bit.
TEST(LearnedFeatures, ProjectionIsAParameterStartingFromTheDraw) {
  for (AttentionKind kind : kLearnedKinds)
    for (bool causal : {true, false}) {
      ModelConfig fixed_cfg = tiny_config(kind, PositionKind::Learned, causal);
      PerformerLM fixed(fixed_cfg), learned(learned_config(kind, causal));
      const std::string what = describe(fixed_cfg);
      EXPECT_TRUE(learned.named_buffers().empty()) << what;
      const StateDict a = fixed.state_dict(), b = learned.state_dict();
      ASSERT_EQ(a.size(), b.size()) << what;
      for (const auto& [name, t] : a) {
        ASSERT_TRUE(b.count(name)) << what << ": " << name;
        EXPECT_EQ(max_abs_diff(t, b.at(name)), 0.0f) << what << ": " << name;
      }
      int projections = 0;
      for (const auto& [name, p] : learned.named_parameters())
        if (is_projection(name)) {
          ++projections;
          EXPECT_TRUE(p.requires_grad()) << name;
          EXPECT_EQ(p.shape(), (Shape{16, 8})) << name;  // (M, D)
        }
      EXPECT_EQ(projections, 2) << what;
      EXPECT_EQ(learned.named_parameters().size(), fixed.named_parameters().size() + 2) << what;
      EXPECT_EQ(learned.num_parameters(), fixed.num_parameters() + 2 * 16 * 8) << what;
      const auto ids = test::random_ids(12, 11, 3);
      const Tensor la = test::full_logits(fixed, ids), lb = test::full_logits(learned, ids);
      EXPECT_EQ(std::memcmp(la.data(), lb.data(), sizeof(float) * la.numel()), 0) << what;
    }
}

// Every layer's W gets a finite, non-zero gradient; an AdamW step (the training run's optimizer, default
// decay filter) moves it and does not decay it. Without the option the buffer is unchanged and unseen.
TEST(LearnedFeatures, TheOptimizerTrainsWWithoutWeightDecay) {
  for (AttentionKind kind : kLearnedKinds)
    for (bool causal : {true, false}) {
      PerformerLM model(learned_config(kind, causal));
      const std::string what = describe(model.config());
      const StateDict before = [&] {
        StateDict s;
        for (const auto& [n, t] : model.state_dict()) s.emplace(n, t.clone());
        return s;
      }();
      const std::unique_ptr<Optimizer> opt = make_optimizer(OptimizerConfig{}, model.named_parameters(), 1e-2f);
      batch_loss(model, 2, 12, 5).backward();
      for (const auto& [name, p] : model.named_parameters()) {
        if (!is_projection(name)) continue;
        EXPECT_FALSE(opt->decays(name)) << what << ": " << name;
        ASSERT_TRUE(p.has_grad()) << what << ": " << name;
        EXPECT_TRUE(std::isfinite(p.grad().vec().norm())) << what << ": " << name;
        EXPECT_GT(p.grad().vec().norm(), 0.0f) << what << ": " << name;
      }
      opt->step();
      for (const auto& [name, p] : model.named_parameters()) {
        if (!is_projection(name)) continue;
        EXPECT_GT(max_abs_diff(p.value(), before.at(name)), 1e-3f) << what << ": " << name;
      }

      PerformerLM fixed(tiny_config(kind, PositionKind::Learned, causal));
      const Tensor w0 = fixed.state_dict().at("blocks.0.attn.projection").clone();
      const std::unique_ptr<Optimizer> fixed_opt = make_optimizer(OptimizerConfig{}, fixed.named_parameters(), 1e-2f);
      for (const auto& [name, p] : fixed_opt->named_parameters()) EXPECT_FALSE(is_projection(name)) << name;
      batch_loss(fixed, 2, 12, 5).backward();
      fixed_opt->step();
      EXPECT_EQ(max_abs_diff(fixed.state_dict().at("blocks.0.attn.projection"), w0), 0.0f) << what;
      for (const auto& [name, b] : fixed.named_buffers()) EXPECT_FALSE(b.has_grad()) << name;
    }
}

// Recomputed blocks run the fused kernels again in the backward: W's gradient is the same bits.
TEST(LearnedFeatures, RecomputedBlocksGiveTheSameGradient) {
  for (AttentionKind kind : kLearnedKinds) {
    PerformerLM plain(learned_config(kind)), rec(learned_config(kind));
    rec.set_recompute_blocks(true);
    batch_loss(plain, 2, 16, 6).backward();
    batch_loss(rec, 2, 16, 6).backward();
    auto pp = plain.named_parameters(), rp = rec.named_parameters();
    ASSERT_EQ(pp.size(), rp.size());
    for (size_t i = 0; i < pp.size(); ++i) {
      ASSERT_TRUE(rp[i].second.has_grad()) << rp[i].first;
      EXPECT_EQ(max_abs_diff(rp[i].second.grad(), pp[i].second.grad()), 0.0f) << to_string(kind) << ": " << rp[i].first;
    }
  }
}

// A learned W is never redrawn: redraw_projections refuses, changing nothing (not the draw count), and
// the construction refuses a layer that cannot learn one.
TEST(LearnedFeatures, NeverRedrawn) {
  PerformerLM model(learned_config(AttentionKind::Favor));
  const Tensor w = model.state_dict().at("blocks.1.attn.projection").clone();
  EXPECT_THROW(model.redraw_projections(), std::logic_error);
  EXPECT_EQ(model.draw_count(), 1);
  for (int64_t step = 0; step < 10; ++step) EXPECT_FALSE(model.maybe_redraw(step));
  EXPECT_EQ(max_abs_diff(model.state_dict().at("blocks.1.attn.projection"), w), 0.0f);
  for (AttentionKind kind : {AttentionKind::Relu, AttentionKind::Softmax}) {
    EXPECT_THROW(PerformerLM{learned_config(kind)}, std::invalid_argument) << to_string(kind);
    Generator init(1), proj(2);
    EXPECT_THROW(PerformerAttention(learned_config(kind), init, proj), std::invalid_argument) << to_string(kind);
  }
  ModelConfig redrawn = learned_config(AttentionKind::FavorLocal);
  redrawn.redraw_every = 4;
  EXPECT_THROW(PerformerLM{redrawn}, std::invalid_argument);
}
