// The training loss of a data/ Batch: performer/loss.h's lm_loss on the batch's arrays.
#pragma once

#include "data/batch.h"
#include "performer/loss.h"

namespace pf {

// Mean cross-entropy of the model's logits (B,T,V) against the batch targets (kIgnoreIndex
// skipped), recorded on the tape when recording is on; 0 (no gradient) when the batch has no target.
// logits_out, if given, receives the logits.
inline Var batch_loss(PerformerLM& model, const Batch& batch, Var* logits_out = nullptr) {
  return lm_loss(model, batch.inputs, batch.targets, batch.batch, batch.seq, &batch.key_mask, logits_out);
}

}  // namespace pf
