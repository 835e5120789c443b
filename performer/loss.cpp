#include "performer/loss.h"

#include "autograd/ops.h"

namespace pf {

Var lm_loss(PerformerLM& model, const std::vector<int32_t>& inputs, const std::vector<int32_t>& targets, int64_t B,
            int64_t T, const std::vector<uint8_t>* key_mask, Var* logits_out) {
  Var logits = model.forward(inputs, B, T, key_mask);  // (B,T,V)
  const int64_t V = logits.size(-1);
  Var loss = cross_entropy(reshape(logits, {B * T, V}), targets);  // mean over targets
  if (logits_out) *logits_out = logits;
  return loss;
}

}  // namespace pf
