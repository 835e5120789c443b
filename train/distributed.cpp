#include "train/distributed.h"

#include <chrono>

#include "distributed/comm.h"

namespace pf {

uint64_t rank_dropout_seed(uint64_t seed, int rank) {
  // splitmix64 of (seed, rank): well-separated streams for neighbouring seeds and ranks.
  uint64_t z = seed ^ (0x6472706f75740000ull + static_cast<uint64_t>(rank) * 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

DataParallel::DataParallel(PerformerLM& model) : rank_(dist::rank()), size_(dist::size()), sync_(model) {}

Batch DataParallel::local_rows(const Batch& global) const {
  const int64_t begin = global.batch * rank_ / size_, end = global.batch * (rank_ + 1) / size_;
  Batch b;
  b.batch = end - begin;
  b.seq = global.seq;
  const auto first = static_cast<ptrdiff_t>(begin * global.seq), last = static_cast<ptrdiff_t>(end * global.seq);
  b.inputs.assign(global.inputs.begin() + first, global.inputs.begin() + last);
  b.targets.assign(global.targets.begin() + first, global.targets.begin() + last);
  b.key_mask.assign(global.key_mask.begin() + first, global.key_mask.begin() + last);
  return b;
}

double DataParallel::reduce_step(double local_loss_sum) {
  const auto start = std::chrono::steady_clock::now();
  const double loss_sum = dist::sum(local_loss_sum);
  sync_.sum_gradients();  // each rank's loss is already weighted by its share of the global targets
  comm_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return loss_sum;
}

void DataParallel::after_step(const PerformerLM& model) {
  const auto start = std::chrono::steady_clock::now();
  rank_rngs_ = dist::gather(model.rng_state(), 0);
  comm_ms_ += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

EvalMetrics DataParallel::evaluate(PerformerLM& model, const std::vector<Batch>& batches) const {
  // Rank r scores batches r, r + N, ...; each batch's (loss sum, targets, correct, bytes) goes to its own slot
  // (zeros elsewhere), so the sum over ranks is exact and the slots are added up in batch order, as
  // one process adds them.
  const size_t n = batches.size();
  std::vector<double> slots(4 * n, 0.0);
  const bool was_training = model.is_training();
  model.eval();
  {
    NoGradGuard no_grad;
    for (size_t i = static_cast<size_t>(rank_); i < n; i += static_cast<size_t>(size_)) {
      const LossStats s = batch_stats(model, batches[i]);
      slots[4 * i] = s.loss_sum;
      slots[4 * i + 1] = static_cast<double>(s.targets);
      slots[4 * i + 2] = static_cast<double>(s.correct);
      slots[4 * i + 3] = static_cast<double>(s.target_bytes);
    }
  }
  model.train(was_training);
  dist::allreduce_sum(slots.data(), static_cast<int64_t>(slots.size()));
  LossStats total;
  for (size_t i = 0; i < n; ++i) {
    LossStats s;
    s.loss_sum = slots[4 * i];
    s.targets = static_cast<int64_t>(slots[4 * i + 1]);
    s.correct = static_cast<int64_t>(slots[4 * i + 2]);
    s.target_bytes = static_cast<int64_t>(slots[4 * i + 3]);
    total.add(s);
  }
  return EvalMetrics::from(total, static_cast<int64_t>(n));
}

}  // namespace pf
