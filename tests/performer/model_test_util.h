// Tiny configurations and helpers shared by the model and generation tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "base/random.h"
#include "autograd/tensor.h"
#include "performer/config.h"
#include "performer/model.h"

namespace pf::test {

// A model small enough to run dozens of forwards per test on two cores: C 16, L 2, H 2 (D 8),
// M 16, chunk 4 (so causal FAVOR+ crosses several chunk boundaries at T ~ 12); favor-local window 3
// (so its far field is in use from position 3 on).
inline ModelConfig tiny_config(AttentionKind attention, PositionKind positions = PositionKind::Learned,
                               bool causal = true, uint64_t seed = 7) {
  return ModelConfig{.vocab_size = 11, .dim = 16, .depth = 2, .heads = 2, .ff_hidden = 32, .features = 16,
                     .max_seq_len = 32, .attention = attention, .causal = causal, .positions = positions,
                     .redraw_every = 0, .chunk_size = 4, .local_window = 3, .seed = seed};
}

inline std::vector<int32_t> random_ids(int64_t n, int64_t vocab, uint64_t seed) {
  Generator g(seed);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& t : ids) t = static_cast<int32_t>(g.below(static_cast<uint64_t>(vocab)));
  return ids;
}

inline const AttentionKind kAllAttention[] = {AttentionKind::Favor, AttentionKind::Relu, AttentionKind::Softmax};
// The kinds a causal model may use (all four; favor-local is also bidirectional since issue 29).
inline const AttentionKind kCausalAttention[] = {AttentionKind::Favor, AttentionKind::Relu, AttentionKind::Softmax,
                                                 AttentionKind::FavorLocal};
inline const PositionKind kAllPositions[] = {PositionKind::Learned, PositionKind::Sinusoidal, PositionKind::Rotary};

inline std::string describe(const ModelConfig& c) {
  return to_string(c.attention) + "/" + to_string(c.positions) + (c.causal ? "/causal" : "/bidirectional");
}

// max |a - b| / max(1, max |b|) between one decoder step's logits (V) and position t of the full
// forward pass's logits (T, V): how the recurrent decoder is compared with the full forward pass.
inline float relative_diff(const Tensor& step_logits, const Tensor& full, int64_t t, int64_t V) {
  float diff = 0.0f, scale = 1.0f;
  for (int64_t v = 0; v < V; ++v) {
    diff = std::max(diff, std::abs(step_logits.data()[v] - full.data()[t * V + v]));
    scale = std::max(scale, std::abs(full.data()[t * V + v]));
  }
  return diff / scale;
}

// The logits (1, T, V) of one full forward pass over ids (no tape).
inline Tensor full_logits(PerformerLM& model, const std::vector<int32_t>& ids) {
  NoGradGuard no_grad;
  return model.forward(ids, 1, static_cast<int64_t>(ids.size())).value();
}

}  // namespace pf::test
