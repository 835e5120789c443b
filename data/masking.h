// Masked-LM corruption (BERT, Devlin et al. 2019, section 3.1 and appendix A.1).
//
// Each eligible position (key_mask 1 and not a special token: pads, begin/end and mask tokens are never
// selected) is selected independently with probability mask_prob (Bernoulli per token: exact in
// expectation, so a short row may get no selection at all; the loss must accept an all-ignored batch).
// A selected position's target is its original token; its input becomes the mask token with
// probability 0.8, a random token from vocab.mlm_replacement_ids() (a standard amino acid, or any byte
// for text) with probability 0.1 (which may by chance equal the original), and stays unchanged with
// probability 0.1. Every other target is kIgnoreIndex.
#pragma once

#include <cstdint>
#include <span>

#include "base/random.h"
#include "data/vocab.h"

namespace pf {

// Corrupts one row in place. inputs (T): original tokens in, corrupted tokens out; targets (T): written;
// key_mask (T): 1 for real tokens. Draws from rng in position order, so the result is a function of the
// generator state.
void apply_mlm_mask(std::span<int32_t> inputs, std::span<int32_t> targets, std::span<const uint8_t> key_mask,
                    const Vocab& vocab, double mask_prob, Generator& rng);

}  // namespace pf
