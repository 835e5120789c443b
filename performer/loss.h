// The language-model loss: mean cross-entropy of a PerformerLM's logits against target ids.
//
//   pf::Var loss = pf::lm_loss(model, batch.inputs, batch.targets, B, T, &batch.key_mask);
//   loss.backward();
//
// (train/loss.h has the same for a data/ Batch: pf::batch_loss(model, batch).)
#pragma once

#include <cstdint>
#include <vector>

#include "autograd/var.h"
#include "performer/model.h"

namespace pf {

// inputs, targets: (B*T) ids, row-major; targets equal to kIgnoreIndex are skipped; key_mask: (B*T)
// 1 = real token, 0 = padding, or null. Recorded on the tape when recording is on; 0 (no gradient)
// when no target counts. logits_out, if given, receives the logits (B,T,V).
Var lm_loss(PerformerLM& model, const std::vector<int32_t>& inputs, const std::vector<int32_t>& targets, int64_t B,
            int64_t T, const std::vector<uint8_t>* key_mask = nullptr, Var* logits_out = nullptr);

}  // namespace pf
