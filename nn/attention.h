// Exact (softmax) multi-head attention (Vaswani et al. 2017, eq. 1):
//   Att(Q, K, V) = softmax(Q K^T / sqrt(D) + mask) V
// The quadratic baseline, and the ground truth that FAVOR+ approximates.
#pragma once

#include <cstdint>
#include <memory>

#include "base/random.h"
#include "autograd/var.h"
#include "nn/linear.h"
#include "nn/module.h"

namespace pf {

// q: (B, H, Tq, D), k: (B, H, Tk, D), v: (B, H, Tk, Dv) -> (B, H, Tq, Dv).
// causal: query i sees keys j <= i (needs Tq == Tk). key_mask: optional (B, Tk) float tensor,
// 1 = real token, 0 = padding; padded keys get no attention. A query that can see no key at
// all (e.g. a padded position before the first real token) attends uniformly to every key; its
// output is meaningless and must be left out of the loss.
Var softmax_attention(const Var& q, const Var& k, const Var& v, bool causal, const Tensor* key_mask = nullptr);

// (B, T, C) -> (B, H, T, D) with C = H * D (head h takes channels [h*D, (h+1)*D)).
Var split_heads(const Var& x, int64_t heads);
// (B, H, T, D) -> (B, T, H * D); the inverse of split_heads.
Var merge_heads(const Var& x);

class MultiheadAttention : public Module {
 public:
  // dim must be divisible by heads. Projections q, k, v, out (each dim -> dim with bias) drawn
  // from gen in that order.
  MultiheadAttention(int64_t dim, int64_t heads, bool causal, Generator& gen);

  // (B, T, C) -> (B, T, C); key_mask as in softmax_attention.
  Var forward(const Var& x, const Tensor* key_mask = nullptr) const;

  std::shared_ptr<Linear> q_proj, k_proj, v_proj, out_proj;
  int64_t heads;
  bool causal;
};

}  // namespace pf
