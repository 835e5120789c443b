#include "data/masking.h"

#include "data/batch.h"

namespace pf {

void apply_mlm_mask(std::span<int32_t> inputs, std::span<int32_t> targets, std::span<const uint8_t> key_mask,
                    const Vocab& vocab, double mask_prob, Generator& rng) {
  const auto& replacements = vocab.mlm_replacement_ids();
  for (size_t t = 0; t < inputs.size(); ++t) {
    targets[t] = kIgnoreIndex;
    if (key_mask[t] == 0 || vocab.is_special(inputs[t])) continue;
    if (rng.uniform_double() >= mask_prob) continue;
    targets[t] = inputs[t];
    const double u = rng.uniform_double();
    if (u < 0.8)
      inputs[t] = vocab.mask_id();
    else if (u < 0.9)
      inputs[t] = replacements[rng.below(replacements.size())];
  }
}

}  // namespace pf
