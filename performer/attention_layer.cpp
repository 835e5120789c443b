#include "performer/attention_layer.h"

#include <stdexcept>

#include "autograd/ops.h"
#include "nn/attention.h"
#include "performer/favor_local.h"
#include "performer/features.h"

namespace pf {

namespace {

Tensor draw_projection(const ModelConfig& cfg, Generator& gen) {
  if (cfg.antithetic_features) return antithetic_random_features(cfg.features, cfg.head_dim(), gen, cfg.orthogonal_features);
  return cfg.orthogonal_features ? orthogonal_random_features(cfg.features, cfg.head_dim(), gen)
                                 : iid_random_features(cfg.features, cfg.head_dim(), gen);
}

}  // namespace

PerformerAttention::PerformerAttention(const ModelConfig& cfg, Generator& init_gen, Generator& proj_gen) : cfg_(cfg) {
  const int64_t C = cfg.dim;
  q_proj_ = register_module("q_proj", std::make_shared<Linear>(C, C, true, init_gen));
  k_proj_ = register_module("k_proj", std::make_shared<Linear>(C, C, true, init_gen));
  v_proj_ = register_module("v_proj", std::make_shared<Linear>(C, C, true, init_gen));
  out_proj_ = register_module("out_proj", std::make_shared<Linear>(C, C, true, init_gen));
  if (cfg.attention != AttentionKind::Softmax)
    projection_ = register_buffer("projection", draw_projection(cfg, proj_gen));
}

FavorOptions PerformerAttention::favor_options() const {
  FavorOptions opt;
  opt.kind = cfg_.attention == AttentionKind::Relu ? FeatureKind::Relu : FeatureKind::Softmax;
  opt.eps = cfg_.kernel_eps;
  opt.chunk_size = cfg_.chunk_size;
  opt.key_shift = cfg_.shared_key_shift ? KeyShift::Shared : KeyShift::PerKey;
  if (cfg_.feature_map == FeatureMapKind::FavorPlusPlus) opt.feature_a = favorpp_optimal_a(cfg_.favorpp_z, cfg_.head_dim());
  return opt;
}

void PerformerAttention::redraw(Generator& proj_gen) {
  if (!has_projection()) return;
  projection_.mutable_value().copy_from(draw_projection(cfg_, proj_gen));
}

PerformerAttention::Heads PerformerAttention::project(const Var& x, const RotaryTables* rotary) const {
  if (x.dim() != 3 || x.size(2) != cfg_.dim)
    throw_shape_error("PerformerAttention", "x must be (B, T, C) with C = dim; x vs (C)", x.shape(), {cfg_.dim});
  Heads h;
  h.q = split_heads(q_proj_->forward(x), cfg_.heads);  // (B,H,T,D)
  h.k = split_heads(k_proj_->forward(x), cfg_.heads);  // (B,H,T,D)
  h.v = split_heads(v_proj_->forward(x), cfg_.heads);  // (B,H,T,D)
  if (rotary) {
    h.q = apply_rotary(h.q, *rotary);
    h.k = apply_rotary(h.k, *rotary);
  }
  return h;
}

Var PerformerAttention::merge(const Var& heads) const {
  return out_proj_->forward(merge_heads(heads));
}

Var PerformerAttention::forward(const Var& x, const RotaryTables* rotary, const Tensor* key_mask) const {
  const Heads h = project(x, rotary);
  // Causal layers never look at later positions, and pads come after the real tokens.
  const Tensor* mask = cfg_.causal ? nullptr : key_mask;
  Var out;  // (B,H,T,D)
  if (cfg_.attention == AttentionKind::Softmax) {
    out = softmax_attention(h.q, h.k, h.v, cfg_.causal, mask);
  } else if (cfg_.attention == AttentionKind::FavorLocal) {
    out = favor_local_attention(h.q, h.k, h.v, projection(), cfg_.local_window, favor_options());  // causal only
  } else {
    out = favor_attention(h.q, h.k, h.v, projection(), cfg_.causal, favor_options(), mask);
  }
  return merge(out);
}

}  // namespace pf
