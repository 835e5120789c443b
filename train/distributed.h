// Data-parallel training of a Trainer over the ranks of an MPI job (distributed/); enable_data_parallel
// (train/trainer.h) makes a Trainer one replica.
//
// Every rank builds the same Trainer from the same config (same data, same seed, same model), then
// enable_data_parallel() makes it one replica of the job:
//   - rank 0's parameters and buffers (the FAVOR+ random projections included) and its projection
//     generator are copied to every rank, so every replica starts identical;
//   - --batch-size is the global batch: every rank draws the same batch from the same data cursor and
//     trains on its own contiguous slice of rows (rank r of N: rows [r B / N, (r + 1) B / N)), so N
//     ranks see exactly the sequences one process with the same --batch-size sees, in the same order;
//   - each rank weights its slice's mean loss by (its targets / the global batch's targets), so the
//     sum of the ranks' gradients is the gradient of the global batch's mean loss; after the last
//     micro-batch of a step (only then, with --grad-accum K) the gradients are summed over ranks in
//     fused buckets (distributed/grad_sync.h). Clipping, the non-finite check and the optimizer step then
//     see the same gradient on every rank (a non-finite value on any rank makes the sum non-finite
//     everywhere: every rank skips), and the parameters stay bit-identical;
//   - dropout masks differ per rank: rank r's dropout generator starts from (seed, r) (rank 0 of a
//     one-process run keeps its own); all ranks' generator states are gathered on rank 0 after every
//     step and saved in its checkpoints;
//   - evaluation is sharded: rank r scores validation batches r, r + N, ...; the per-batch sums are
//     combined in batch order, so the validation loss is bit-identical to one process's.
// Resuming a checkpoint with the same number of ranks continues bit for bit; with another number
// (one process included) it continues, but not bit for bit (other summation order, re-derived dropout
// streams): resume_note() says so.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/batch.h"
#include "distributed/grad_sync.h"
#include "performer/model.h"
#include "train/evaluate.h"

namespace pf {

class DataParallel {
 public:
  explicit DataParallel(PerformerLM& model);

  int rank() const { return rank_; }
  int size() const { return size_; }

  // This rank's rows of a global batch.
  Batch local_rows(const Batch& global) const;
  // After the backward passes of a step: the loss sum over ranks, and gradients summed over ranks.
  // Returns the loss sum; comm_ms() is the time spent communicating.
  double reduce_step(double local_loss_sum);
  // After the optimizer step: rank 0 collects every rank's model generator state.
  void after_step(const PerformerLM& model);
  EvalMetrics evaluate(PerformerLM& model, const std::vector<Batch>& batches) const;

  double comm_ms() const { return comm_ms_; }
  // Every rank's PerformerLM::rng_state() (on rank 0, after the last step; empty elsewhere).
  const std::vector<std::string>& rank_rng_states() const { return rank_rngs_; }
  dist::GradientSync& sync() { return sync_; }

 private:
  int rank_ = 0, size_ = 1;
  dist::GradientSync sync_;
  std::vector<std::string> rank_rngs_;
  double comm_ms_ = 0.0;
};

// The dropout generator seed of rank r of a multi-rank run.
uint64_t rank_dropout_seed(uint64_t seed, int rank);

}  // namespace pf
