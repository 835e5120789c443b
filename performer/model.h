// PerformerLM: the Performer language model (docs/ARCHITECTURE.md, "The model").
//
//   ids (B,T) -> token embedding (+ learned or sinusoidal positions) -> dropout      (B,T,C)
//             -> L pre-LayerNorm blocks: x = x + Dropout(Attn(LN(x))); x = x + FF(LN(x))
//             -> final LayerNorm -> output head Linear(C, V) or tied: x E^T       (B,T,V)
//
// Parameter names: tok_emb.weight, pos_emb.weight (learned positions), blocks.{l}.{ln1, attn, ln2,
// ff}.*, blocks.{l}.attn.{q,k,v,out}_proj.*, ln_f.*, head.* (untied). Buffers: the random
// projections blocks.{l}.attn.projection (favor, relu, favor-local); with learned_features they are
// parameters under the same names instead.
//
// Initialization (GPT-2 style, Radford et al. 2019): every weight matrix and embedding N(0, 0.02) (a
// learned projection keeps its random draw), every bias 0, LayerNorm gain 1; the matrices that write
// into the residual stream (attention out_proj and the feed-forward output layer) are scaled by
// 1/sqrt(2 L) so the residual variance does not grow with depth. With sinusoidal positions the token
// embedding is multiplied by sqrt(C) (Vaswani et al. 2017, section 3.4) so it is not drowned by the
// unit-amplitude sinusoids.
//
// Randomness: everything flows from Generator(cfg.seed): parameter init, and two child generators
// forked from it, one for the random projections (initial draw and redraws) and one for dropout
// masks. rng_state() saves both (and the draw counter) so that a resumed run continues exactly.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/random.h"
#include "autograd/var.h"
#include "nn/dropout.h"
#include "nn/embedding.h"
#include "nn/feed_forward.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/module.h"
#include "performer/attention_layer.h"
#include "performer/config.h"
#include "performer/positions.h"

namespace pf {

// One pre-LayerNorm block: x = x + Dropout(Attn(LN1(x))); x = x + FF(LN2(x)) (the feed-forward
// applies its own dropout to its output).
class PerformerBlock : public Module {
 public:
  PerformerBlock(const ModelConfig& cfg, Generator& init_gen, Generator& proj_gen,
                 std::shared_ptr<Generator> dropout_gen);
  // x (B,T,C) -> (B,T,C)
  Var forward(const Var& x, const RotaryTables* rotary, const Tensor* key_mask) const;
  // The two residual halves forward() is made of (recomputation checkpoints between them):
  // x + dropout(attn(ln1(x))), and h + ff(ln2(h)).
  Var attention_half(const Var& x, const RotaryTables* rotary, const Tensor* key_mask) const;
  Var feed_forward_half(const Var& h) const;

  const LayerNorm& ln1() const { return *ln1_; }
  const PerformerAttention& attn() const { return *attn_; }
  PerformerAttention& attn() { return *attn_; }
  const LayerNorm& ln2() const { return *ln2_; }
  const FeedForward& ff() const { return *ff_; }
  FeedForward& ff() { return *ff_; }

 private:
  std::shared_ptr<LayerNorm> ln1_;
  std::shared_ptr<PerformerAttention> attn_;
  std::shared_ptr<Dropout> drop_;
  std::shared_ptr<LayerNorm> ln2_;
  std::shared_ptr<FeedForward> ff_;
};

class PerformerLM : public Module {
 public:
  explicit PerformerLM(const ModelConfig& cfg);  // validates cfg; all init from Generator(cfg.seed)
  const ModelConfig& config() const { return cfg_; }

  // ids: B*T token ids, row-major (B,T). key_mask: optional B*T bytes, 1 = real token, 0 = padding;
  // bidirectional models remove padded keys from attention; causal models accept only padding after
  // the real tokens of each row (no real position can see it, so the mask is not needed) and throw
  // std::invalid_argument naming the row and position for padding before a real token (left
  // padding, which causal attention would attend to). Returns logits (B,T,V).
  // With learned positions T must not exceed cfg.max_seq_len; sinusoidal and rotary extrapolate.
  Var forward(const std::vector<int32_t>& ids, int64_t batch, int64_t seq,
              const std::vector<uint8_t>* key_mask = nullptr);

  // Activation recomputation (off by default; a run-time setting, not part of the checkpoint): while
  // recording, keep only the input of each half of each block (attention, feed-forward) and run
  // that half again in the backward pass (autograd/recompute.h). Same gradients; the saved
  // activations shrink to those of one half-block at a time, and a training step costs about one
  // more forward pass of the blocks.
  void set_recompute_blocks(bool on) { recompute_blocks_ = on; }
  bool recompute_blocks() const { return recompute_blocks_; }

  // Random projections (favor, relu; the softmax kind has none and these do nothing; a learned projection
  // is never redrawn: redraw_projections throws std::logic_error, maybe_redraw never fires, redraw_every is 0).
  void redraw_projections();                  // a new W for every layer, drawn from the projection generator
  bool maybe_redraw(int64_t optimizer_step);  // redraws if redraw_every > 0, step > 0 and step % redraw_every == 0
  int64_t draw_count() const { return draw_count_; }  // 1 after construction (0 for softmax)

  // Both generators (projections, dropout) and the draw counter, as one string; set_rng_state
  // validates the whole string before changing anything.
  std::string rng_state() const;
  void set_rng_state(const std::string& s);
  // The generator of the dropout masks (shared by every Dropout of the model); data-parallel ranks
  // reseed it so that each rank draws its own masks (train/distributed.h).
  Generator& dropout_generator() { return *dropout_gen_; }

  // ---- pieces of forward, shared with the recurrent Decoder (generate.h) ----
  // Token embedding plus positions [start, start + seq), then dropout: (B,T,C).
  Var embed(const std::vector<int32_t>& ids, int64_t batch, int64_t seq, int64_t start) const;
  Var head(const Var& x) const;  // final LayerNorm and output projection: (B,T,C) -> (B,T,V)
  int64_t num_blocks() const { return static_cast<int64_t>(blocks_->size()); }
  const PerformerBlock& block(int64_t l) const { return (*blocks_)[static_cast<size_t>(l)]; }

 private:
  ModelConfig cfg_;
  Generator proj_gen_;                      // projection draws
  std::shared_ptr<Generator> dropout_gen_;  // dropout masks (shared by every Dropout)
  int64_t draw_count_ = 0;
  bool recompute_blocks_ = false;
  std::shared_ptr<Embedding> tok_emb_;
  std::shared_ptr<Embedding> pos_emb_;  // learned positions only
  std::shared_ptr<Dropout> emb_drop_;
  std::shared_ptr<ModuleList<PerformerBlock>> blocks_;
  std::shared_ptr<LayerNorm> ln_f_;
  std::shared_ptr<Linear> head_;  // untied only
};

}  // namespace pf
