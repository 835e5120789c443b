// GradientSync: data-parallel training of a Module in a user's own loop, in the style of PyTorch's
// DistributedDataParallel and Horovod.
//
//   pf::dist::Session mpi(&argc, &argv);
//   pf::PerformerLM model(cfg);                    // same config and seed on every rank
//   pf::dist::GradientSync sync(model);            // registers parameters and buffers, in a fixed order
//   sync.broadcast_from_root();                    // rank 0's parameters and buffers (random projections) everywhere
//   for (...) {
//     opt.zero_grad();
//     loss_of_my_share_of_the_batch.backward();    // each rank: its own rows
//     sync.average_gradients();                    // or sum_gradients() when each rank's loss is
//                                                  // already weighted by its share of the global batch
//     opt.step();                                  // identical on every rank: parameters stay identical
//   }
//
// Gradients travel in fused buckets: the registered parameters in order, packed into buffers of about
// bucket_bytes (4 MB by default; a larger tensor is a bucket of its own), one allreduce per bucket. The
// order and the bucket boundaries are the same on every rank and every step. A parameter that received
// no gradient on a rank counts as zero there; one that received none on any rank keeps no gradient
// (as in one process). The reduction is done after the backward pass (no overlap with it; see
// BENCHMARKS.md, "Data parallel", for what overlapping would gain).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "autograd/var.h"
#include "nn/module.h"

namespace pf::dist {

class GradientSync {
 public:
  static constexpr int64_t kDefaultBucketBytes = int64_t{4} << 20;

  GradientSync(std::vector<std::pair<std::string, Var>> parameters, std::vector<std::pair<std::string, Var>> buffers,
               int64_t bucket_bytes = kDefaultBucketBytes);
  explicit GradientSync(const Module& module, int64_t bucket_bytes = kDefaultBucketBytes);

  // Rank 0's values of every registered parameter and buffer on every rank (fused like the
  // gradients); each changed tensor is marked modified.
  void broadcast_from_root();
  // Every gradient becomes the sum over ranks (sum_gradients) or the mean (average_gradients).
  void sum_gradients() { reduce(1.0f); }
  void average_gradients();

  // A hash of every registered parameter's and buffer's bytes: equal on all ranks when they hold
  // bit-identical values.
  uint64_t checksum() const;
  // True on every rank when all ranks hold bit-identical parameters and buffers (collective).
  bool replicas_identical() const;

  int64_t num_buckets() const { return static_cast<int64_t>(buckets_.size()); }
  int64_t gradient_bytes() const { return total_ * static_cast<int64_t>(sizeof(float)); }
  double last_reduce_ms() const { return last_ms_; }  // wall time of the last sum/average, packing included

 private:
  struct Bucket {
    size_t first = 0, last = 0;  // parameters [first, last)
    int64_t floats = 0;          // gradient values, plus one has-gradient flag per parameter
  };
  void reduce(float scale);

  std::vector<std::pair<std::string, Var>> params_, buffers_;
  std::vector<Bucket> buckets_;
  int64_t total_ = 0;
  std::vector<float> buffer_;
  double last_ms_ = 0.0;
};

}  // namespace pf::dist
