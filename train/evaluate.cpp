#include "train/evaluate.h"

#include "train/loss.h"

#include <cmath>
#include <limits>
#include <map>
#include <numbers>

#include "autograd/ops.h"

namespace pf {

EvalMetrics EvalMetrics::from(const LossStats& s, int64_t batches) {
  EvalMetrics m;
  m.tokens = s.targets;
  m.batches = batches;
  if (s.targets > 0) {
    m.loss = s.loss_sum / static_cast<double>(s.targets);
    m.accuracy = static_cast<double>(s.correct) / static_cast<double>(s.targets);
  }
  m.bits_per_token = m.loss / std::numbers::ln2;
  m.bytes = s.target_bytes;
  m.bits_per_byte = s.target_bytes > 0 ? s.loss_sum / std::numbers::ln2 / static_cast<double>(s.target_bytes)
                                       : std::numeric_limits<double>::quiet_NaN();
  m.perplexity = std::exp(m.loss);
  return m;
}

LossStats batch_stats(PerformerLM& model, const Batch& batch) {
  NoGradGuard no_grad;
  Var logits;
  const Var loss = batch_loss(model, batch, &logits);
  const int64_t rows = batch.batch * batch.seq, V = logits.size(-1);
  LossStats s;
  s.targets = batch.num_targets();
  s.target_bytes = batch.target_bytes;
  s.loss_sum = static_cast<double>(loss.item()) * static_cast<double>(s.targets);
  const float* z = logits.value().data();
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t target = batch.targets[static_cast<size_t>(r)];
    if (target == kIgnoreIndex) continue;
    const float* row = z + r * V;
    int64_t best = 0;
    for (int64_t v = 1; v < V; ++v)
      if (row[v] > row[best]) best = v;
    s.correct += (best == target);
  }
  return s;
}

EvalMetrics evaluate(PerformerLM& model, const std::vector<Batch>& batches) {
  const bool was_training = model.is_training();
  model.eval();
  LossStats total;
  for (const Batch& b : batches) total.add(batch_stats(model, b));
  model.train(was_training);
  return EvalMetrics::from(total, static_cast<int64_t>(batches.size()));
}

double unigram_entropy(const std::vector<Batch>& batches, int32_t vocab_size) {
  std::vector<double> counts(static_cast<size_t>(vocab_size), 0.0);
  double total = 0.0;
  for (const Batch& b : batches)
    for (int32_t t : b.targets)
      if (t >= 0 && t < vocab_size) {
        counts[static_cast<size_t>(t)] += 1.0;
        total += 1.0;
      }
  double h = 0.0;
  for (double c : counts)
    if (c > 0.0) h -= (c / total) * std::log(c / total);
  return h;
}

}  // namespace pf
