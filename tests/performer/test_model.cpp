// PerformerLM: shapes and validation, causality (bit for bit), padding in bidirectional models,
// gradients to every parameter and none to buffers, initialization, projection buffers, redraws
// and the generator state.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "autograd/ops.h"
#include "model_test_util.h"
#include "performer/model.h"

using namespace pf;
using test::describe;
using test::tiny_config;

TEST(PerformerLM, ForwardShapeAndInputChecks) {
  PerformerLM model(tiny_config(AttentionKind::Favor));
  const auto ids = test::random_ids(2 * 5, 11, 1);
  Var logits = model.forward(ids, 2, 5);
  EXPECT_EQ(logits.shape(), (Shape{2, 5, 11}));
  EXPECT_THROW(model.forward(ids, 2, 4), std::invalid_argument);  // wrong count
  auto bad = ids;
  bad[3] = 11;
  EXPECT_THROW(model.forward(bad, 2, 5), std::out_of_range);
  EXPECT_THROW(model.forward(test::random_ids(33, 11, 1), 1, 33), std::invalid_argument);  // > max_seq_len
  std::vector<uint8_t> short_mask(3, 1);
  EXPECT_THROW(model.forward(ids, 2, 5, &short_mask), std::invalid_argument);
}

TEST(PerformerLM, ConstructionValidatesTheConfig) {
  ModelConfig c = tiny_config(AttentionKind::Favor);
  c.heads = 3;
  try {
    PerformerLM model(c);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("heads (3)"), std::string::npos) << e.what();
  }
}

TEST(PerformerLM, SameSeedSameModelDifferentSeedDifferentModel) {
  PerformerLM a(tiny_config(AttentionKind::Favor)), b(tiny_config(AttentionKind::Favor));
  PerformerLM c(tiny_config(AttentionKind::Favor, PositionKind::Learned, true, 8));
  const StateDict sa = a.state_dict(), sb = b.state_dict(), sc = c.state_dict();
  ASSERT_EQ(sa.size(), sb.size());
  for (auto& [name, t] : sa) {
    EXPECT_EQ(std::memcmp(t.data(), sb.at(name).data(), t.numel() * sizeof(float)), 0) << name;
  }
  EXPECT_GT(max_abs_diff(sa.at("tok_emb.weight"), sc.at("tok_emb.weight")), 0.0f);
  EXPECT_GT(max_abs_diff(sa.at("blocks.0.attn.projection"), sc.at("blocks.0.attn.projection")), 0.0f);
}

// Same inputs, same logits, bit for bit, wherever the allocator happens to place scratch memory (a
// kernel whose vectorized path depends on a buffer's alignment breaks this, and with it the causality
// test below and bit-exact resume).
TEST(PerformerLM, RepeatedForwardIsBitIdentical) {
  const int64_t B = 2, T = 13;
  for (auto kind : test::kAllAttention) {
    for (bool causal : {true, false}) {
      PerformerLM model(tiny_config(kind, PositionKind::Learned, causal));
      const auto ids = test::random_ids(B * T, 11, 2);
      const Tensor first = model.forward(ids, B, T).value();
      std::vector<std::vector<float>> heap_noise;
      for (int r = 0; r < 20; ++r) {
        heap_noise.emplace_back(static_cast<size_t>(1 + r % 13));  // shifts later allocations
        const Tensor again = model.forward(ids, B, T).value();
        ASSERT_EQ(std::memcmp(first.data(), again.data(), first.numel() * sizeof(float)), 0)
            << describe(model.config()) << ": repeat " << r << " differs by " << max_abs_diff(first, again);
      }
    }
  }
}

// Changing the tokens after position t never changes the logits at positions <= t, bit for bit.
TEST(PerformerLM, CausalBitForBit) {
  const int64_t B = 2, T = 13, V = 11;
  for (auto kind : test::kCausalAttention) {
    for (auto pos : test::kAllPositions) {
      PerformerLM model(tiny_config(kind, pos));
      const auto ids = test::random_ids(B * T, V, 2);
      const Tensor base = model.forward(ids, B, T).value();
      for (int64_t t : {0, 3, 4, 9, 11}) {
        auto changed = ids;
        for (int64_t b = 0; b < B; ++b)
          for (int64_t s = t + 1; s < T; ++s)
            changed[b * T + s] = static_cast<int32_t>((ids[b * T + s] + 1 + s % (V - 1)) % V);
        const Tensor other = model.forward(changed, B, T).value();
        for (int64_t b = 0; b < B; ++b) {
          const size_t bytes = static_cast<size_t>((t + 1) * V) * sizeof(float);
          EXPECT_EQ(std::memcmp(base.data() + b * T * V, other.data() + b * T * V, bytes), 0)
              << describe(model.config()) << ": logits at positions <= " << t << " of batch " << b
              << " changed when later tokens did";
          // The changed positions do see the change (the test is not vacuous).
          if (t + 1 < T) {
            EXPECT_NE(
                std::memcmp(base.data() + (b * T + t + 1) * V, other.data() + (b * T + t + 1) * V, V * sizeof(float)),
                0);
          }
        }
      }
    }
  }
}

// In a bidirectional model the padded keys change nothing at the real positions, and a padded
// sequence gives the real positions the same logits as the unpadded shorter sequence.
TEST(PerformerLM, PaddingIsInvisibleToRealPositions) {
  const int64_t B = 2, T = 10, V = 11, real0 = 6;
  for (auto kind : test::kAllAttention) {
    for (auto pos : test::kAllPositions) {
      PerformerLM model(tiny_config(kind, pos, /*causal=*/false));
      auto ids = test::random_ids(B * T, V, 3);
      std::vector<uint8_t> mask(B * T, 1);
      for (int64_t s = real0; s < T; ++s) mask[s] = 0;  // batch 0: 6 real tokens then 4 pads
      const Tensor a = model.forward(ids, B, T, &mask).value();
      auto changed = ids;
      for (int64_t s = real0; s < T; ++s) changed[s] = static_cast<int32_t>((ids[s] + 3) % V);
      const Tensor b = model.forward(changed, B, T, &mask).value();
      float worst = 0.0f;
      for (int64_t i = 0; i < real0 * V; ++i) worst = std::max(worst, std::abs(a.data()[i] - b.data()[i]));
      EXPECT_LE(worst, 1e-6f) << describe(model.config()) << ": pads changed real positions";
      // batch 1 has no pads: unchanged ids, unchanged logits.
      EXPECT_LE(max_abs_diff(a.narrow0(1, 1), b.narrow0(1, 1)), 1e-6f) << describe(model.config());

      std::vector<int32_t> shorter(ids.begin(), ids.begin() + real0);
      const Tensor c = model.forward(shorter, 1, real0).value();
      float diff = 0.0f, scale = 0.0f;
      for (int64_t i = 0; i < real0 * V; ++i) {
        diff = std::max(diff, std::abs(a.data()[i] - c.data()[i]));
        scale = std::max(scale, std::abs(c.data()[i]));
      }
      EXPECT_LE(diff, 1e-5f * std::max(1.0f, scale)) << describe(model.config()) << ": padded != shorter sequence";
    }
  }
}

TEST(PerformerLM, BidirectionalModelsSeeTheFuture) {
  PerformerLM model(tiny_config(AttentionKind::Favor, PositionKind::Learned, /*causal=*/false));
  auto ids = test::random_ids(8, 11, 4);
  const Tensor a = model.forward(ids, 1, 8).value();
  ids[7] = (ids[7] + 1) % 11;
  const Tensor b = model.forward(ids, 1, 8).value();
  EXPECT_NE(std::memcmp(a.data(), b.data(), 11 * sizeof(float)), 0);
}

TEST(PerformerLM, GradientsReachEveryParameterAndNoBuffer) {
  for (auto kind : test::kAllAttention) {
    for (bool tied : {false, true}) {
      ModelConfig cfg = tiny_config(kind, kind == AttentionKind::Relu ? PositionKind::Rotary : PositionKind::Learned);
      cfg.tie_embeddings = tied;
      PerformerLM model(cfg);
      const int64_t B = 2, T = 9;
      const auto ids = test::random_ids(B * T, 11, 5);
      std::vector<int32_t> targets(ids.begin() + 1, ids.end());
      targets.push_back(0);
      Var loss = cross_entropy(reshape(model.forward(ids, B, T), {B * T, 11}), targets);
      loss.backward();
      for (auto& [name, p] : model.named_parameters()) {
        ASSERT_TRUE(p.has_grad()) << describe(cfg) << (tied ? " tied: " : ": ") << name << " has no gradient";
        EXPECT_GT(p.grad().vec().norm(), 0.0f) << describe(cfg) << ": " << name << " has a zero gradient";
        EXPECT_TRUE(std::isfinite(p.grad().vec().norm())) << name;
      }
      for (auto& [name, b] : model.named_buffers()) {
        EXPECT_FALSE(b.requires_grad()) << name;
        EXPECT_FALSE(b.has_grad()) << name;
      }
      bool has_head = false;
      for (auto& [name, p] : model.named_parameters()) has_head = has_head || name == "head.weight";
      EXPECT_EQ(has_head, !tied);
    }
  }
}

TEST(PerformerLM, GptTwoInitialization) {
  ModelConfig cfg = tiny_config(AttentionKind::Favor);
  cfg.dim = 64;
  cfg.heads = 4;
  cfg.ff_hidden = 128;
  cfg.depth = 3;
  PerformerLM model(cfg);
  auto stddev = [](const Tensor& t) {
    double s = 0.0, s2 = 0.0;
    for (int64_t i = 0; i < t.numel(); ++i) {
      s += t.data()[i];
      s2 += double(t.data()[i]) * t.data()[i];
    }
    const double m = s / t.numel();
    return std::sqrt(s2 / t.numel() - m * m);
  };
  const StateDict sd = model.state_dict();
  const double residual = 0.02 / std::sqrt(2.0 * cfg.depth);
  EXPECT_NEAR(stddev(sd.at("tok_emb.weight")), 0.02, 0.002);
  EXPECT_NEAR(stddev(sd.at("blocks.0.attn.q_proj.weight")), 0.02, 0.002);
  EXPECT_NEAR(stddev(sd.at("blocks.2.attn.out_proj.weight")), residual, residual * 0.1);
  EXPECT_NEAR(stddev(sd.at("head.weight")), 0.02, 0.002);
  int scaled = 0;
  for (auto& [name, p] : model.named_parameters()) {
    if (p.dim() == 2 && name.find(".ff.") != std::string::npos && p.size(0) == cfg.dim) {
      EXPECT_NEAR(stddev(p.value()), residual, residual * 0.1) << name;
      ++scaled;
    }
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0) {
      EXPECT_EQ(p.value().vec().cwiseAbs().maxCoeff(), 0.0f) << name;
    }
  }
  EXPECT_EQ(scaled, cfg.depth);
}

TEST(PerformerLM, ProjectionBuffersAreInTheStateDict) {
  PerformerLM favor(tiny_config(AttentionKind::Favor));
  const StateDict sd = favor.state_dict();
  for (int l = 0; l < 2; ++l) {
    const std::string name = "blocks." + std::to_string(l) + ".attn.projection";
    ASSERT_TRUE(sd.count(name)) << name;
    EXPECT_EQ(sd.at(name).shape(), (Shape{16, 8}));  // (M, D)
  }
  EXPECT_EQ(favor.named_buffers().size(), 2u);
  EXPECT_EQ(favor.draw_count(), 1);
  PerformerLM softmax(tiny_config(AttentionKind::Softmax));
  EXPECT_TRUE(softmax.named_buffers().empty());
  EXPECT_EQ(softmax.draw_count(), 0);
  EXPECT_FALSE(softmax.maybe_redraw(1000));

  // A state dict round trip reproduces the logits exactly (buffers included).
  PerformerLM other(tiny_config(AttentionKind::Favor, PositionKind::Learned, true, 99));
  other.load_state_dict(favor.state_dict());
  const auto ids = test::random_ids(6, 11, 6);
  const Tensor a = favor.forward(ids, 1, 6).value(), b = other.forward(ids, 1, 6).value();
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.numel() * sizeof(float)), 0);
}

TEST(PerformerLM, RedrawChangesTheBufferAndCounts) {
  for (bool orthogonal : {true, false}) {
    ModelConfig cfg = tiny_config(AttentionKind::Favor);
    cfg.orthogonal_features = orthogonal;
    cfg.redraw_every = 3;
    PerformerLM model(cfg);
    Var buffer = model.named_buffers()[0].second;
    const Tensor before = buffer.value().clone();
    const auto ids = test::random_ids(6, 11, 7);
    const Tensor logits_before = model.forward(ids, 1, 6).value().clone();
    // forward never redraws
    EXPECT_EQ(max_abs_diff(buffer.value(), before), 0.0f);
    model.redraw_projections();
    EXPECT_GT(max_abs_diff(buffer.value(), before), 0.0f);
    EXPECT_EQ(model.draw_count(), 2);
    EXPECT_GT(max_abs_diff(model.forward(ids, 1, 6).value(), logits_before), 0.0f);

    EXPECT_FALSE(model.maybe_redraw(0));
    EXPECT_FALSE(model.maybe_redraw(1));
    EXPECT_FALSE(model.maybe_redraw(2));
    EXPECT_TRUE(model.maybe_redraw(3));
    EXPECT_FALSE(model.maybe_redraw(4));
    EXPECT_TRUE(model.maybe_redraw(6));
    EXPECT_EQ(model.draw_count(), 4);
  }
  ModelConfig never = tiny_config(AttentionKind::Relu);
  never.redraw_every = 0;
  PerformerLM model(never);
  for (int64_t s = 0; s < 10; ++s) EXPECT_FALSE(model.maybe_redraw(s));
  EXPECT_EQ(model.draw_count(), 1);
}

TEST(PerformerLM, RngStateRoundTripMakesALaterRedrawIdentical) {
  ModelConfig cfg = tiny_config(AttentionKind::Favor);
  cfg.dropout = 0.25f;
  PerformerLM model(cfg);
  model.redraw_projections();
  const std::string saved = model.rng_state();
  const auto ids = test::random_ids(8, 11, 8);

  model.redraw_projections();
  const Tensor first = model.named_buffers()[1].second.value().clone();
  const Tensor dropped = model.forward(ids, 1, 8).value().clone();  // training mode: dropout masks
  EXPECT_EQ(model.draw_count(), 3);

  model.set_rng_state(saved);
  EXPECT_EQ(model.draw_count(), 2);
  model.redraw_projections();
  EXPECT_EQ(std::memcmp(model.named_buffers()[1].second.value().data(), first.data(), first.numel() * sizeof(float)),
            0);
  const Tensor again = model.forward(ids, 1, 8).value();
  EXPECT_EQ(std::memcmp(again.data(), dropped.data(), again.numel() * sizeof(float)), 0);

  // A fresh model restored to the same state and weights continues identically.
  PerformerLM fresh(cfg);
  fresh.load_state_dict(model.state_dict());
  const std::string now = model.rng_state();
  fresh.set_rng_state(now);
  EXPECT_EQ(fresh.rng_state(), now);
  model.redraw_projections();
  fresh.redraw_projections();
  EXPECT_EQ(max_abs_diff(model.named_buffers()[0].second.value(), fresh.named_buffers()[0].second.value()), 0.0f);

  // Malformed states are rejected and leave the model unchanged.
  const std::string kept = model.rng_state();
  EXPECT_THROW(model.set_rng_state("garbage"), std::invalid_argument);
  EXPECT_THROW(model.set_rng_state(kept.substr(0, kept.size() / 2)), std::invalid_argument);
  EXPECT_EQ(model.rng_state(), kept);
}

TEST(PerformerLM, DropoutOnlyInTraining) {
  ModelConfig cfg = tiny_config(AttentionKind::Favor);
  cfg.dropout = 0.3f;
  PerformerLM model(cfg);
  const auto ids = test::random_ids(8, 11, 9);
  const Tensor a = model.forward(ids, 1, 8).value().clone();
  const Tensor b = model.forward(ids, 1, 8).value().clone();
  EXPECT_GT(max_abs_diff(a, b), 0.0f);  // fresh masks
  model.eval();
  const Tensor c = model.forward(ids, 1, 8).value().clone();
  const Tensor d = model.forward(ids, 1, 8).value().clone();
  EXPECT_EQ(max_abs_diff(c, d), 0.0f);
}

// Recomputed blocks (set_recompute_blocks) must change memory, not results: the same loss and
// bit-identical gradients as the plain graph, dropout masks replayed (the generator ends where the
// plain run leaves it), and far fewer live bytes held between forward and backward.
TEST(PerformerLM, RecomputedBlocksGiveIdenticalGradientsWithLessMemory) {
  struct Setup {
    AttentionKind kind;
    PositionKind pos;
    bool causal;
    float dropout;
  };
  for (const Setup& s : {Setup{AttentionKind::Favor, PositionKind::Learned, true, 0.1f},
                         Setup{AttentionKind::Relu, PositionKind::Rotary, true, 0.0f},
                         Setup{AttentionKind::Softmax, PositionKind::Sinusoidal, false, 0.1f},
                         Setup{AttentionKind::Favor, PositionKind::Rotary, false, 0.0f}}) {
    ModelConfig cfg = tiny_config(s.kind, s.pos, s.causal);
    cfg.dropout = s.dropout;
    const int64_t B = 2, T = 24;
    const auto ids = test::random_ids(B * T, 11, 8);
    std::vector<uint8_t> mask(static_cast<size_t>(B * T), 1);
    for (int64_t t = 20; t < T; ++t) mask[static_cast<size_t>(T + t)] = 0;  // second row padded
    std::vector<int32_t> targets(ids.begin() + 1, ids.end());
    targets.push_back(0);
    PerformerLM plain(cfg), rec(cfg);
    rec.set_recompute_blocks(true);
    int64_t held[2] = {0, 0};
    float loss_value[2] = {0, 0};
    PerformerLM* models[2] = {&plain, &rec};
    for (int i = 0; i < 2; ++i) {
      const int64_t before = live_tensor_bytes();
      Var loss = cross_entropy(reshape(models[i]->forward(ids, B, T, &mask), {B * T, 11}), targets);
      held[i] = live_tensor_bytes() - before;
      loss_value[i] = loss.item();
      loss.backward();
    }
    const std::string what = describe(cfg) + (s.dropout > 0 ? " dropout" : "");
    EXPECT_EQ(loss_value[1], loss_value[0]) << what;
    auto pp = plain.named_parameters(), rp = rec.named_parameters();
    ASSERT_EQ(pp.size(), rp.size());
    for (size_t i = 0; i < pp.size(); ++i) {
      ASSERT_TRUE(rp[i].second.has_grad()) << what << ": " << rp[i].first;
      EXPECT_EQ(max_abs_diff(rp[i].second.grad(), pp[i].second.grad()), 0.0f) << what << ": " << rp[i].first;
    }
    EXPECT_EQ(rec.rng_state(), plain.rng_state()) << what;
    EXPECT_LT(static_cast<double>(held[1]), 0.6 * static_cast<double>(held[0])) << what;
  }
}

// Issue 16: a causal model used to ignore any key mask, so left padding was attended to by the real
// tokens after it. Right padding is invisible to real positions and accepted (the logits of the real
// positions are those of the unpadded sequence); left padding is refused naming row and position.
TEST(PerformerLM, CausalModelsRefuseLeftPaddingAndAcceptRightPadding) {
  const int64_t B = 2, T = 8, V = 11, real = 5;
  for (auto kind : test::kCausalAttention) {
    PerformerLM model(tiny_config(kind, PositionKind::Rotary, /*causal=*/true));
    const auto ids = test::random_ids(B * T, V, 7);
    std::vector<uint8_t> right(B * T, 1), left(B * T, 1);
    for (int64_t t = real; t < T; ++t) right[static_cast<size_t>(T + t)] = 0;   // row 1: 5 real, 3 pads
    for (int64_t t = 0; t < T - real; ++t) left[static_cast<size_t>(T + t)] = 0;  // row 1: 3 pads, 5 real
    try {
      model.forward(ids, B, T, &left);
      ADD_FAILURE() << describe(model.config()) << ": left padding accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("key_mask row 1 has a real token at position 3 after padding at position 2"),
                std::string::npos)
          << e.what();
    }
    const Tensor padded = model.forward(ids, B, T, &right).value();
    const std::vector<int32_t> row1(ids.begin() + T, ids.begin() + T + real);
    const Tensor alone = model.forward(row1, 1, real).value();
    float diff = 0.0f, scale = 0.0f;  // the same bound as PaddingIsInvisibleToRealPositions
    for (int64_t i = 0; i < real * V; ++i) {
      diff = std::max(diff, std::abs(padded.data()[T * V + i] - alone.data()[i]));
      scale = std::max(scale, std::abs(alone.data()[i]));
    }
    EXPECT_LE(diff, 1e-5f * std::max(1.0f, scale)) << describe(model.config()) << ": padded != shorter sequence";
  }
}
