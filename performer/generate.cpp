#include "performer/generate.h"

#include <cmath>
#include <stdexcept>

#include "autograd/ops.h"
#include "base/format.h"

namespace pf {

Decoder::Decoder(const PerformerLM& model) : model_(model) {
  if (!model.config().causal)
    throw std::invalid_argument(
        "Decoder: the model is bidirectional (causal = false); generation needs a causal model");
  reset();
}

void Decoder::reset() {
  const ModelConfig& cfg = model_.config();
  const int64_t L = model_.num_blocks(), H = cfg.heads;
  position_ = 0;
  favor_.clear();
  local_.clear();
  keys_.clear();
  values_.clear();
  conv_.clear();
  if (cfg.short_conv > 0) {
    conv_.resize(L);
    for (auto& layer : conv_)
      for (auto& s : layer) s.reset(1, cfg.dim, cfg.short_conv);
  }
  if (cfg.attention == AttentionKind::Softmax) {
    keys_.assign(L, std::vector<Cache>(H));
    values_.assign(L, std::vector<Cache>(H));
  } else if (cfg.attention == AttentionKind::FavorLocal) {
    local_.resize(L);
    for (auto& s : local_) s.reset(1, H, cfg.features, cfg.head_dim(), cfg.head_dim(), cfg.local_window);
  } else {
    favor_.resize(L);
    for (auto& s : favor_) s.reset(1, H, cfg.features, cfg.head_dim());
  }
}

Tensor Decoder::softmax_step(int64_t layer, const Tensor& q, const Tensor& k, const Tensor& v) {
  const int64_t H = q.size(1), D = q.size(2);
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  Tensor out({1, H, D});
  for (int64_t h = 0; h < H; ++h) {
    Cache& K = keys_[layer][h];
    Cache& Vs = values_[layer][h];
    K.insert(K.end(), k.data() + h * D, k.data() + (h + 1) * D);
    Vs.insert(Vs.end(), v.data() + h * D, v.data() + (h + 1) * D);
    const int64_t t = static_cast<int64_t>(K.size()) / D;
    ConstUnalignedMatrixMap Km(K.data(), t, D), Vm(Vs.data(), t, D);
    Eigen::Map<const Eigen::RowVectorXf> qh(q.data() + h * D, D);
    Eigen::RowVectorXf s = (qh * Km.transpose()) * scale;  // (t) scores
    s = (s.array() - s.maxCoeff()).exp();
    s /= s.sum();
    Eigen::Map<Eigen::RowVectorXf>(out.data() + h * D, D) = s * Vm;  // (D)
  }
  return out;
}

Tensor Decoder::step(int32_t token) {
  const ModelConfig& cfg = model_.config();
  if (model_.is_training() && cfg.dropout > 0.0f)
    throw std::logic_error("Decoder::step: the model is in training mode with dropout " + float_str(cfg.dropout) +
                           "; call model.eval() before generating");
  NoGradGuard no_grad;
  const int64_t H = cfg.heads, D = cfg.head_dim();
  Var x = model_.embed({token}, 1, 1, position_);  // (1,1,C); checks the token and max_seq_len
  RotaryTables rotary;
  if (cfg.positions == PositionKind::Rotary) rotary = rotary_tables(position_, 1, D);
  const RotaryTables* rot = cfg.positions == PositionKind::Rotary ? &rotary : nullptr;
  for (int64_t l = 0; l < model_.num_blocks(); ++l) {
    const PerformerBlock& block = model_.block(l);
    const PerformerAttention& attn = block.attn();
    const PerformerAttention::Heads heads =
        attn.project_step(block.ln1().forward(x), rot, conv_.empty() ? nullptr : conv_[l].data());  // (1,H,1,D) each
    const Tensor q = heads.q.value().reshape({1, H, D});
    const Tensor k = heads.k.value().reshape({1, H, D});
    const Tensor v = heads.v.value().reshape({1, H, D});
    Tensor o;  // (1,H,D)
    if (cfg.attention == AttentionKind::Softmax) {
      o = softmax_step(l, q, k, v);
    } else if (cfg.attention == AttentionKind::FavorLocal) {
      o = favor_local_step(local_[l], q, k, v, attn.projection(), attn.favor_options(), attn.far_gain());
    } else {
      o = favor_step(favor_[l], q, k, v, attn.projection(), attn.favor_options());
    }
    x = add(x, attn.merge(constant(o.reshape({1, H, 1, D}))));  // (1,1,C); dropout is off
    x = add(x, block.ff().forward(block.ln2().forward(x)));
  }
  ++position_;
  return model_.head(x).value().reshape({cfg.vocab_size});  // (V)
}

std::vector<int32_t> generate(const PerformerLM& model, const std::vector<int32_t>& prompt, int64_t max_new_tokens,
                              const SamplingOptions& opt, Generator& gen, int32_t stop_token) {
  opt.validate();
  const ModelConfig& cfg = model.config();
  if (prompt.empty())
    throw std::invalid_argument("generate: empty prompt (start with at least one token, e.g. begin-of-sequence)");
  if (max_new_tokens < 0)
    throw std::invalid_argument("generate: max_new_tokens (" + std::to_string(max_new_tokens) + ") must be >= 0");
  const int64_t positions = static_cast<int64_t>(prompt.size()) + std::max<int64_t>(max_new_tokens - 1, 0);
  if (cfg.positions == PositionKind::Learned && positions > cfg.max_seq_len)
    throw std::invalid_argument("generate: prompt (" + std::to_string(prompt.size()) + ") + max_new_tokens (" +
                                std::to_string(max_new_tokens) + ") needs " + std::to_string(positions) +
                                " positions, more than max_seq_len (" + std::to_string(cfg.max_seq_len) +
                                ") of the learned position table");
  Decoder decoder(model);
  Tensor logits;
  for (int32_t t : prompt) logits = decoder.step(t);
  std::vector<int32_t> out;
  for (int64_t i = 0; i < max_new_tokens; ++i) {
    const int32_t next = sample_token(logits.data(), cfg.vocab_size, opt, gen);
    if (stop_token >= 0 && next == stop_token) break;
    out.push_back(next);
    if (i + 1 < max_new_tokens) logits = decoder.step(next);
  }
  return out;
}

}  // namespace pf
