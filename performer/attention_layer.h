// PerformerAttention: multi-head self-attention whose kernel is chosen by the model config:
// `favor` (FAVOR+ positive softmax features, or FAVOR++), `relu` (generalized attention, ReLU
// features), `softmax` (exact, quadratic; the baseline) or `favor-local` (exact softmax over the last
// local_window keys plus favor for the earlier ones; bidirectional: a window on both sides). Causal or
// bidirectional.
//
//   x (B,T,C) -> q, k, v = x Wq, x Wk, x Wv  (B,T,C) -> [short convolutions]  (cfg.short_conv > 0)
//             -> split heads (B,H,T,D)
//             -> [rotary on q, k]             (before the feature map, so phi sees rotated vectors)
//             -> attention                    (B,H,T,D) -> merge heads (B,T,C) -> out projection
//
// favor / relu / favor-local keep their random projection W (M, D), shared by the heads of the layer, as the
// buffer "projection": saved in state dicts, never trained, redrawn only by redraw() between
// optimizer steps (the model's maybe_redraw), never inside forward. With cfg.learned_features (favor,
// favor-local) W is instead the parameter "projection" (the same key), trained from its first draw by the
// fused kernels' dW (performer/favor.h) and never redrawn.
//
// Options: cfg.short_conv = K > 0 adds the parameters q_conv, k_conv, v_conv (C, 1, K) (the shape of
// PyTorch's depthwise Conv1d weight; not 2-D, so the model's N(0, 0.02) matrix initialization leaves them
// alone), depthwise convolutions along time of the projections (performer/short_conv.h; causal, centered
// when bidirectional), initialized to the identity. cfg.local_mix (favor-local) adds far_gain (H), the learned per-head log-gain
// of the far field (performer/favor_local.h), initialized to 0.
#pragma once

#include <cstdint>
#include <memory>

#include "base/random.h"
#include "autograd/var.h"
#include "nn/linear.h"
#include "nn/module.h"
#include "performer/config.h"
#include "performer/favor.h"
#include "performer/positions.h"
#include "performer/short_conv.h"

namespace pf {

class PerformerAttention : public Module {
 public:
  // Linear layers are initialized from init_gen; the first projection W is drawn from proj_gen.
  PerformerAttention(const ModelConfig& cfg, Generator& init_gen, Generator& proj_gen);

  // x (B,T,C) -> (B,T,C). rotary: tables for positions [0, T) when the model uses rotary positions.
  // key_mask (B,T) float, 1 = real, 0 = pad: honoured by bidirectional layers (padded keys are
  // removed from every query's attention); causal layers ignore it (pads follow the real tokens:
  // PerformerLM::forward refuses left padding for causal models).
  Var forward(const Var& x, const RotaryTables* rotary = nullptr, const Tensor* key_mask = nullptr) const;

  // The pieces of forward, shared with the recurrent decoder so both compute the same numbers.
  struct Heads {
    Var q, k, v;  // (B,H,T,D), q and k rotated when rotary is given
  };
  Heads project(const Var& x, const RotaryTables* rotary) const;
  // project() for one position x (1, 1, C) of the recurrent decoder (causal models): the short
  // convolutions read and advance conv[0..2] (q, k, v), reset(1, C, K) before position 0; ignored
  // without them.
  Heads project_step(const Var& x, const RotaryTables* rotary, ShortConvState* conv) const;
  // far_gain (H), or null without cfg.local_mix.
  const Tensor* far_gain() const { return far_gain_.defined() ? &far_gain_.value() : nullptr; }
  Var merge(const Var& heads) const;  // (B,H,T,D) -> merge heads -> out projection (B,T,C)

  // Draws a new projection W (M, D) into the existing buffer (the handle stays the same).
  // No-op for the softmax kind, which has no projection; throws std::logic_error for a learned one.
  void redraw(Generator& proj_gen);
  bool has_projection() const { return projection_.defined(); }
  const Tensor& projection() const { return projection_.value(); }  // (M, D); favor / relu only
  FavorOptions favor_options() const;
  const ModelConfig& config() const { return cfg_; }
  Linear& out_proj() { return *out_proj_; }

 private:
  ModelConfig cfg_;
  std::shared_ptr<Linear> q_proj_, k_proj_, v_proj_, out_proj_;
  Var projection_;  // buffer (M, D), a parameter with cfg.learned_features; undefined for softmax
  Var conv_[3];     // q, k, v short convolutions (C, 1, K); undefined without cfg.short_conv
  Var far_gain_;    // (H); undefined without cfg.local_mix
};

}  // namespace pf
