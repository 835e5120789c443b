#include "nn/attention.h"

#include <cmath>
#include <stdexcept>

#include "autograd/ops.h"

namespace pf {

namespace {

// Finite stand-in for -inf: exp(kMasked - max) is exactly 0 in float, and a fully masked row
// stays finite (uniform) instead of becoming NaN.
constexpr float kMasked = -1e9f;

// 1 where attention is forbidden: (Tq, Tk) for causal only, (B, 1, Tq, Tk) with a key mask,
// (B, 1, 1, Tk) for a key mask alone. Broadcast against the (B, H, Tq, Tk) scores.
Tensor forbidden_mask(int64_t B, int64_t Tq, int64_t Tk, bool causal, const Tensor* key_mask) {
  if (!key_mask) {
    Tensor m({Tq, Tk});
    for (int64_t i = 0; i < Tq; ++i)
      for (int64_t j = i + 1; j < Tk; ++j) m.data()[i * Tk + j] = 1.f;
    return m;
  }
  const int64_t rows = causal ? Tq : 1;
  Tensor m({B, 1, rows, Tk});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < Tk; ++j) {
        const bool padded = key_mask->data()[b * Tk + j] == 0.f;
        m.data()[(b * rows + i) * Tk + j] = (padded || (causal && j > i)) ? 1.f : 0.f;
      }
  return m;
}

}  // namespace

Var softmax_attention(const Var& q, const Var& k, const Var& v, bool causal, const Tensor* key_mask) {
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4)
    throw_shape_error("softmax_attention", "q, k must be 4-D (B, H, T, D); q vs k", q.shape(), k.shape());
  const int64_t B = q.size(0), H = q.size(1), Tq = q.size(2), D = q.size(3), Tk = k.size(2);
  if (k.size(0) != B || k.size(1) != H || k.size(3) != D)
    throw_shape_error("softmax_attention", "k must be (B, H, Tk, D); q vs k", q.shape(), k.shape());
  if (v.size(0) != B || v.size(1) != H || v.size(2) != Tk)
    throw_shape_error("softmax_attention", "v must be (B, H, Tk, Dv); k vs v", k.shape(), v.shape());
  if (causal && Tq != Tk)
    throw_shape_error("softmax_attention", "causal attention needs as many queries as keys; q vs k", q.shape(),
                      k.shape());
  if (key_mask && key_mask->shape() != Shape{B, Tk})
    throw_shape_error("softmax_attention", "key_mask must be (B, Tk); key_mask vs k", key_mask->shape(), k.shape());

  Var scores = matmul(q, k, false, true) * (1.0f / std::sqrt(static_cast<float>(D)));  // (B, H, Tq, Tk)
  if (causal || key_mask) scores = masked_fill(scores, forbidden_mask(B, Tq, Tk, causal, key_mask), kMasked);
  Var attn = softmax(scores);  // (B, H, Tq, Tk)
  return matmul(attn, v);      // (B, H, Tq, Dv)
}

Var split_heads(const Var& x, int64_t heads) {
  if (x.dim() != 3 || heads <= 0 || x.size(2) % heads != 0)
    throw std::invalid_argument("split_heads: input " + shape_str(x.shape()) +
                                " must be (B, T, C) with C divisible by " + std::to_string(heads) + " heads");
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2);
  return permute(reshape(x, {B, T, heads, C / heads}), {0, 2, 1, 3});  // (B, H, T, D)
}

Var merge_heads(const Var& x) {
  if (x.dim() != 4) throw std::invalid_argument("merge_heads: input " + shape_str(x.shape()) + " must be (B, H, T, D)");
  const int64_t B = x.size(0), H = x.size(1), T = x.size(2), D = x.size(3);
  return reshape(permute(x, {0, 2, 1, 3}), {B, T, H * D});  // (B, T, C)
}

MultiheadAttention::MultiheadAttention(int64_t dim, int64_t h, bool c, Generator& gen) : heads(h), causal(c) {
  if (h <= 0 || dim % h != 0)
    throw std::invalid_argument("MultiheadAttention: dim " + std::to_string(dim) + " must be divisible by heads " +
                                std::to_string(h));
  q_proj = register_module("q_proj", std::make_shared<Linear>(dim, dim, true, gen));
  k_proj = register_module("k_proj", std::make_shared<Linear>(dim, dim, true, gen));
  v_proj = register_module("v_proj", std::make_shared<Linear>(dim, dim, true, gen));
  out_proj = register_module("out_proj", std::make_shared<Linear>(dim, dim, true, gen));
}

Var MultiheadAttention::forward(const Var& x, const Tensor* key_mask) const {
  if (x.dim() != 3 || x.size(2) != q_proj->in_features)
    throw_shape_error("MultiheadAttention", "input must be (B, T, C); input vs q_proj weight", x.shape(),
                      q_proj->weight.shape());
  Var q = split_heads(q_proj->forward(x), heads);  // (B, H, T, D)
  Var k = split_heads(k_proj->forward(x), heads);
  Var v = split_heads(v_proj->forward(x), heads);
  Var y = softmax_attention(q, k, v, causal, key_mask);  // (B, H, T, D)
  return out_proj->forward(merge_heads(y));              // (B, T, C)
}

}  // namespace pf
