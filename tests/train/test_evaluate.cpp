// The numbers training and evaluation report are the ones they claim to be:
//   - evaluate(): loss = total cross-entropy / total targets and tokens = sum of targets, also when
//     the batches hold very different numbers of targets (a per-batch mean of means would differ);
//   - gradient accumulation: K micro-batches with unequal target counts give the gradients of one
//     batch holding all their rows (each micro-batch weighted by its share of the targets);
//   - validation during training scores every token of records longer than seq-len.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "autograd/ops.h"
#include "data/data_module.h"
#include "train/evaluate.h"
#include "train/trainer.h"
#include "train_test_util.h"

namespace pf {
namespace {

// Cross-entropy of every target of a batch, summed in double from the model's logits.
double summed_cross_entropy(PerformerLM& model, const Batch& b, int64_t* targets) {
  NoGradGuard no_grad;
  const Var logits = model.forward(b.inputs, b.batch, b.seq, &b.key_mask);  // (B,T,V)
  const int64_t V = logits.size(-1);
  const float* z = logits.value().data();
  double sum = 0.0;
  for (int64_t r = 0; r < b.batch * b.seq; ++r) {
    const int32_t t = b.targets[static_cast<size_t>(r)];
    if (t == kIgnoreIndex) continue;
    const float* row = z + r * V;
    double mx = row[0];
    for (int64_t v = 1; v < V; ++v) mx = std::max(mx, static_cast<double>(row[v]));
    double e = 0.0;
    for (int64_t v = 0; v < V; ++v) e += std::exp(static_cast<double>(row[v]) - mx);
    sum += std::log(e) + mx - static_cast<double>(row[t]);
    ++*targets;
  }
  return sum;
}

Batch batch_with_targets(int64_t B, int64_t T, int64_t vocab, int64_t targets_kept, uint64_t seed) {
  Generator g(seed);
  Batch b;
  b.batch = B;
  b.seq = T;
  for (int64_t i = 0; i < B * T; ++i) {
    b.inputs.push_back(static_cast<int32_t>(g.below(static_cast<uint64_t>(vocab))));
    b.targets.push_back(i < targets_kept ? static_cast<int32_t>(g.below(static_cast<uint64_t>(vocab)))
                                         : kIgnoreIndex);
    b.key_mask.push_back(1);
  }
  return b;
}

TEST(Evaluate, LossIsTotalCrossEntropyOverTotalTargets) {
  PerformerLM model(
      ModelConfig{.vocab_size = 30, .dim = 16, .depth = 1, .heads = 2, .ff_hidden = 32, .features = 8, .max_seq_len = 8,
                  .attention = AttentionKind::Favor, .seed = 3});
  // One target in the first batch, 24 in the second, 5 in the third.
  const std::vector<Batch> batches = {batch_with_targets(1, 8, 30, 1, 1), batch_with_targets(3, 8, 30, 24, 2),
                                      batch_with_targets(2, 8, 30, 5, 3)};
  double total = 0.0, mean_of_means = 0.0;
  int64_t targets = 0;
  for (const Batch& b : batches) {
    int64_t n = 0;
    const double s = summed_cross_entropy(model, b, &n);
    total += s;
    targets += n;
    mean_of_means += s / static_cast<double>(n) / static_cast<double>(batches.size());
  }
  const double expected = total / static_cast<double>(targets);
  // The test can tell the two averages apart.
  ASSERT_GT(std::abs(mean_of_means - expected), 1e-3 * expected);

  const EvalMetrics m = evaluate(model, batches);
  EXPECT_EQ(m.tokens, 30);
  EXPECT_EQ(m.tokens, targets);
  EXPECT_EQ(m.batches, 3);
  EXPECT_NEAR(m.loss, expected, 2e-6 * expected);
  EXPECT_NEAR(m.bits_per_token, expected / std::log(2.0), 2e-6 * expected);
}

// The config of a run whose optimizer step is exactly p -= grad: SGD without momentum or decay, lr 1,
// constant schedule, no clipping, no dropout.
TrainConfig plain_sgd_config(const std::string& fasta) {
  TrainConfig c = test::tiny_train_config(fasta);
  c.data.objective = Objective::Mlm;  // targets per row vary with the masking, so micro-batches differ
  c.data.seq_len = 16;
  c.data.val_fraction = 0.0;
  c.optimizer.kind = OptimizerKind::Sgd;
  c.optimizer.momentum = 0.0;
  c.optimizer.weight_decay = 0.0;
  c.schedule.lr = 1.0;
  c.schedule.kind = ScheduleKind::Constant;
  c.schedule.warmup = 0;
  c.optimizer.clip = 0.0;
  c.schedule.total_steps = 1;
  c.model.redraw_every = 0;
  return c;
}

std::map<std::string, Tensor> parameters_of(const Module& m) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : m.state_dict()) out.emplace(name, t.clone());
  return out;
}

TEST(GradAccumulation, MicroBatchesWithUnequalTargetsGiveTheGradientOfOneBigBatch) {
  test::TempDir dir;
  const std::string fasta = dir.write("p.fasta", test::random_fasta(40, 21));
  const int64_t K = 3, B = 2;

  TrainConfig accumulated = plain_sgd_config(fasta);
  accumulated.data.batch_size = B;
  accumulated.run.grad_accum = K;
  TrainConfig whole = plain_sgd_config(fasta);
  whole.data.batch_size = K * B;
  whole.run.grad_accum = 1;

  // The K micro-batches do hold different numbers of targets.
  {
    DataModule data(accumulated.data_config());
    std::vector<int64_t> counts;
    for (int64_t k = 0; k < K; ++k) counts.push_back(data.next_train_batch().num_targets());
    ASSERT_FALSE(counts[0] == counts[1] && counts[1] == counts[2]) << counts[0];
  }

  Trainer a(accumulated), b(whole);
  const auto before_a = parameters_of(a.model()), before_b = parameters_of(b.model());
  const StepResult ra = a.step(), rb = b.step();
  ASSERT_FALSE(ra.skipped);
  ASSERT_FALSE(rb.skipped);
  EXPECT_EQ(ra.targets, rb.targets);
  EXPECT_NEAR(ra.loss, rb.loss, 1e-6 * rb.loss);
  const auto after_a = parameters_of(a.model()), after_b = parameters_of(b.model());
  int64_t compared = 0;
  double largest = 0.0;
  for (const auto& [name, p0] : before_a) {  // parameters and buffers (buffers do not move)
    const Tensor& q0 = before_b.at(name);
    ASSERT_EQ(p0.numel(), q0.numel()) << name;
    const float* x0 = p0.data();
    const float* x1 = after_a.at(name).data();
    const float* y0 = q0.data();
    const float* y1 = after_b.at(name).data();
    for (int64_t i = 0; i < p0.numel(); ++i) {
      ASSERT_EQ(x0[i], y0[i]) << name << " starts differently";
      const double grad_a = static_cast<double>(x0[i]) - static_cast<double>(x1[i]);  // lr 1: the gradient
      const double grad_b = static_cast<double>(y0[i]) - static_cast<double>(y1[i]);
      ASSERT_NEAR(grad_a, grad_b, 1e-6) << name << "[" << i << "]";
      largest = std::max(largest, std::abs(grad_b));
      ++compared;
    }
  }
  EXPECT_GT(compared, 1000);
  EXPECT_GT(largest, 1e-3);  // the gradients are not all (near) zero
}

// Validation during training scores every token of each record, in consecutive windows of seq-len:
// causal, a record of L residues framed <bos> ... <eos> has L + 1 targets.
TEST(Validation, ScoresEveryTokenOfRecordsLongerThanTheWindow) {
  test::TempDir dir;
  const std::string train = dir.write("train.fasta", test::random_fasta(20, 5));
  std::string val;
  const char* aa = "ACDEFGHIKLMNPQRSTVWY";
  int64_t expected = 0;
  for (int64_t len : {100, 37, 5, 16, 15}) {
    val += ">v" + std::to_string(len) + "\n";
    for (int64_t i = 0; i < len; ++i) val += aa[(i * 7 + len) % 20];
    val += "\n";
    expected += len + 1;
  }
  TrainConfig c = test::tiny_train_config(train);
  c.data.val_files = {dir.write("val.fasta", val)};
  c.data.seq_len = 16;
  c.run.eval_batches = 0;
  Trainer t(c);
  EXPECT_EQ(t.evaluate().tokens, expected);  // the first window only would be 16 + 16 + 6 + 16 + 16
}

}  // namespace
}  // namespace pf
