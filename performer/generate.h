// Autoregressive generation with a recurrent decoder.
//
// Causal FAVOR+ is an RNN (docs/ARCHITECTURE.md, "Recurrent form"): for favor and relu each layer and
// head carries the prefix state (S (M, Dv), z (M), the running key shift), so each new token costs O(L (C^2 + H M D))
// whatever the context length; there is no key/value cache. favor-local carries the same state for the
// keys that have left its window plus a ring buffer of the last local_window keys and values
// (FavorLocalState), so its cost per token is bounded too. With short convolutions (cfg.short_conv = K) each
// layer also keeps the last K - 1 projections of q, k and v (ShortConvState). The exact softmax kind keeps a
// key/value cache instead (O(t) per token at position t).
//
// The decoder runs the model's own pieces (PerformerLM::embed, the blocks' LayerNorms, projections
// and feed-forwards, PerformerLM::head) on one position at a time, so it computes what forward()
// computes, up to float rounding. It never redraws projections; do not redraw or load weights while
// a Decoder is in use (reset() after doing so).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "base/random.h"
#include "autograd/tensor.h"
#include "performer/favor.h"
#include "performer/favor_local.h"
#include "performer/model.h"
#include "performer/sampling.h"

namespace pf {

class Decoder {
 public:
  // The model must be causal, and must not apply dropout: call model.eval() first if cfg.dropout > 0
  // (step() throws otherwise). Batch 1. Holds a reference: the model must outlive the decoder.
  explicit Decoder(const PerformerLM& model);

  void reset();  // back to position 0, empty state
  // Feeds `token` at position position(); returns the logits (V) predicting the next token.
  // Runs without recording a tape (NoGradGuard inside). With learned positions, throws once
  // position() reaches max_seq_len.
  Tensor step(int32_t token);
  int64_t position() const { return position_; }

 private:
  // Exact attention for one query against the cached keys and values of one layer.
  Tensor softmax_step(int64_t layer, const Tensor& q, const Tensor& k, const Tensor& v);  // (1,H,D) -> (1,H,D)

  const PerformerLM& model_;
  int64_t position_ = 0;
  std::vector<FavorState> favor_;         // favor / relu: one per layer
  std::vector<FavorLocalState> local_;    // favor-local: one per layer
  std::vector<std::array<ShortConvState, 3>> conv_;  // with short convolutions: q, k, v per layer
  // softmax: per layer, per head, the keys and values seen so far, (t, D) row-major. 64-byte aligned
  // storage so Eigen's vectorized products take the same path on every run (bit-reproducible sampling).
  using Cache = std::vector<float, Eigen::aligned_allocator<float>>;
  std::vector<std::vector<Cache>> keys_, values_;
};

// Feeds the prompt (non-empty) through a fresh Decoder, then samples up to max_new_tokens tokens,
// feeding each back in. Returns only the new tokens; if stop_token >= 0 is sampled, generation stops
// and the stop token is not included. With learned positions, prompt.size() + max_new_tokens - 1 must
// not exceed max_seq_len (checked before any work).
std::vector<int32_t> generate(const PerformerLM& model, const std::vector<int32_t>& prompt, int64_t max_new_tokens,
                              const SamplingOptions& opt, Generator& gen, int32_t stop_token = -1);

}  // namespace pf
