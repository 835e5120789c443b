// Choosing the next token from a row of logits: greedy, temperature, top-k, nucleus (top-p).
#pragma once

#include <cstdint>

#include "base/random.h"

namespace pf {

struct SamplingOptions {
  float temperature = 1.0f;  // logits / temperature; must be > 0 (use greedy for argmax)
  int64_t top_k = 0;         // keep the k most likely tokens; 0 = all
  float top_p = 1.0f;        // keep the smallest set of most likely tokens whose probability is >= top_p; in (0, 1]
  bool greedy = false;       // argmax (first one on ties); ignores the rest and draws nothing from the generator

  // Throws std::invalid_argument naming the field and its value.
  void validate() const;
};

// Picks a token in [0, vocab) from logits (vocab floats). Non-greedy sampling draws exactly one
// uniform double from gen. Candidates are ranked by logit (ties: lower id first); top-k then top-p
// filter that ranking (at least one token always survives) and the survivors are sampled in
// proportion to softmax(logits / temperature), renormalized. Throws on non-finite logits.
int32_t sample_token(const float* logits, int64_t vocab, const SamplingOptions& opt, Generator& gen);

}  // namespace pf
