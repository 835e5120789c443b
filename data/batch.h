// Batch: the integer arrays one training or evaluation step consumes.
//
// data/ knows nothing of tensors; the trainer copies these arrays into its own tensors. All arrays are
// row-major (B,T). The loss must skip targets equal to kIgnoreIndex; a batch may contain no target at
// all (a masked-LM row whose Bernoulli draws selected nothing, or an all-padding tail), so the loss
// code has to cope with a zero count (return 0 and skip the step, never divide by zero).
#pragma once

#include <cstdint>
#include <vector>
#include "base/ignore_index.h"

namespace pf {

struct Batch {
  int64_t batch = 0;              // B: rows in this batch (the last evaluation batch may be short)
  int64_t seq = 0;                // T: positions per row
  std::vector<int32_t> inputs;    // (B,T) token ids fed to the model
  std::vector<int32_t> targets;   // (B,T) token ids to predict, or kIgnoreIndex
  std::vector<uint8_t> key_mask;  // (B,T) 1 = real token, 0 = padding (attention must ignore it)
  // Causal text evaluation batches: bytes of the original text that the targets stand for (for bits per
  // byte); 0 when not defined (training batches, proteins, masked LM).
  int64_t target_bytes = 0;

  // Positions that contribute to the loss (targets != kIgnoreIndex).
  int64_t num_targets() const {
    int64_t n = 0;
    for (int32_t t : targets) n += (t != kIgnoreIndex);
    return n;
  }
};

}  // namespace pf
