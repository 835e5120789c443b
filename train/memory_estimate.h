// What a training run needs in memory, estimated from its flags before anything is allocated or
// written, so that a run that cannot fit is refused at once (naming the flags that decide it) instead
// of growing for minutes and dying with std::bad_alloc.
//
// The estimate is a lower bound in float32 bytes, per host (every rank on it holds a model replica):
//   model       parameters and buffers (random projections)
//   optimizer   gradients and the optimizer's state (adam, adamw: 2 moments; sgd: momentum)
//   activations what the forward keeps for the backward: per block and token about 8 x --dim +
//               --ff-hidden values, plus the attention's (FAVOR+ features: 2 x --heads x --features;
//               exact softmax: 2 x --heads x --seq-len), and the logits (2 x vocabulary per token),
//               for one micro-batch of a rank (--batch-size / ranks rows of --seq-len tokens)
//   batches     the --grad-accum micro-batches of a step, fetched together (inputs, targets, masks)
// The vocabulary is --vocab-size + 2 for a SentencePiece model trained here, else 258 (bytes; a given
// --tokenizer-model's size is not known before it is read, so the estimate stays a lower bound).
#pragma once

#include <cstdint>
#include <string>

#include "train/train_config.h"

namespace pf {

struct MemoryEstimate {
  double model = 0, optimizer = 0, activations = 0, batches = 0;  // bytes per rank
  double parameters = 0;                                          // count
  double total(int ranks_on_host) const { return ranks_on_host * (model + optimizer + activations + batches); }
};

MemoryEstimate estimate_memory(const TrainConfig& c);

// The memory this process may still use: MemAvailable of /proc/meminfo, or less when a cgroup limit
// (memory.max) is lower. 0 when unknown.
double available_memory();

// Throws std::invalid_argument when the estimate exceeds `available` bytes (available_memory() unless
// given): the estimate by part against the available memory, naming the flags of the largest part.
void check_memory(const TrainConfig& c, int ranks_on_host, double available = -1);

}  // namespace pf
