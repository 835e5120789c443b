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
  if (cfg.learned_features && cfg.attention != AttentionKind::Favor && cfg.attention != AttentionKind::FavorLocal)
    throw std::invalid_argument("PerformerAttention: learned_features needs favor or favor-local attention");
  // The same name either way, so that state dicts, checkpoints and safetensors files keep their keys.
  if (cfg.learned_features)
    projection_ = register_parameter("projection", draw_projection(cfg, proj_gen));
  else if (cfg.attention != AttentionKind::Softmax)
    projection_ = register_buffer("projection", draw_projection(cfg, proj_gen));
  if (cfg.short_conv > 0) {
    const char* names[3] = {"q_conv", "k_conv", "v_conv"};
    for (int i = 0; i < 3; ++i)
      conv_[i] = register_parameter(names[i], short_conv_identity(C, cfg.short_conv, cfg.causal)
                                                  .reshape({C, 1, cfg.short_conv}));  // PyTorch's depthwise Conv1d
  }
  if (cfg.local_mix) {
    if (cfg.attention != AttentionKind::FavorLocal)
      throw std::invalid_argument("PerformerAttention: local_mix needs favor-local attention");
    far_gain_ = register_parameter("far_gain", Tensor::zeros({cfg.heads}));
  }
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
  if (cfg_.learned_features)
    throw std::logic_error("PerformerAttention::redraw: the projection is trained (learned_features); it is never "
                           "redrawn");
  projection_.mutable_value().copy_from(draw_projection(cfg_, proj_gen));
}

PerformerAttention::Heads PerformerAttention::project(const Var& x, const RotaryTables* rotary) const {
  if (x.dim() != 3 || x.size(2) != cfg_.dim)
    throw_shape_error("PerformerAttention", "x must be (B, T, C) with C = dim; x vs (C)", x.shape(), {cfg_.dim});
  Heads h;
  const Linear* proj[3] = {q_proj_.get(), k_proj_.get(), v_proj_.get()};
  Var* out[3] = {&h.q, &h.k, &h.v};
  for (int i = 0; i < 3; ++i) {
    const Var y = proj[i]->forward(x);  // (B,T,C)
    *out[i] = conv_[i].defined()
                  ? short_conv_heads(y, reshape(conv_[i], {cfg_.dim, cfg_.short_conv}), cfg_.causal, cfg_.heads)
                  : split_heads(y, cfg_.heads);  // (B,H,T,D)
  }
  if (rotary) {
    h.q = apply_rotary(h.q, *rotary);
    h.k = apply_rotary(h.k, *rotary);
  }
  return h;
}

PerformerAttention::Heads PerformerAttention::project_step(const Var& x, const RotaryTables* rotary,
                                                           ShortConvState* conv) const {
  if (!conv_[0].defined()) return project(x, rotary);
  if (x.dim() != 3 || x.size(0) != 1 || x.size(1) != 1 || x.size(2) != cfg_.dim)
    throw_shape_error("PerformerAttention::project_step", "x must be (1, 1, C)", x.shape(), {1, 1, cfg_.dim});
  Heads h;
  const Linear* proj[3] = {q_proj_.get(), k_proj_.get(), v_proj_.get()};
  Var* out[3] = {&h.q, &h.k, &h.v};
  for (int i = 0; i < 3; ++i) {
    const Tensor y = short_conv_step(conv[i], proj[i]->forward(x).value().reshape({1, cfg_.dim}),
                                     conv_[i].value().reshape({cfg_.dim, cfg_.short_conv}));
    *out[i] = split_heads(constant(y.reshape({1, 1, cfg_.dim})), cfg_.heads);
  }
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
    out = cfg_.causal ? favor_local_attention(h.q, h.k, h.v, projection_, cfg_.local_window, favor_options(),
                                              far_gain_)
                      : favor_local_bidirectional(h.q, h.k, h.v, projection_, cfg_.local_window, favor_options(),
                                                  mask, far_gain_);
  } else {
    out = favor_attention(h.q, h.k, h.v, projection_, cfg_.causal, favor_options(), mask);
  }
  return merge(out);
}

}  // namespace pf
