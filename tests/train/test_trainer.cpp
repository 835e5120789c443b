// Trainer and fit(): a non-finite step changes nothing and is counted; the run stops after
// max_nonfinite of them in a row; fit keeps the last K checkpoints plus the best one; training on a
// tiny corpus gets below the unigram entropy; --recompute-blocks trains identically.
#include <gtest/gtest.h>

#include <cmath>

#include "train/checkpoint.h"
#include "train/fit.h"
#include "train/metrics.h"
#include "train/run_directory.h"
#include "train/trainer.h"
#include "train_test_util.h"

namespace pf {
namespace {

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override { corpus_ = dir_.write("corpus.txt", test::word_text(3000, 9)); }
  TrainConfig config() const { return test::tiny_train_config(corpus_); }
  test::TempDir dir_;
  std::string corpus_;
};

StateDict snapshot(const Module& m) {
  StateDict s;
  for (const auto& [n, t] : m.state_dict()) s.emplace(n, t.clone());
  return s;
}

TEST_F(TrainerTest, NonFiniteStepLeavesParametersAndOptimizerUnchanged) {
  Trainer t(config());
  t.inject_nonfinite_at({3});
  t.step();
  t.step();
  const StateDict params = snapshot(t.model());
  const std::string opt = optimizer_state_bytes(t.optimizer());
  const int64_t opt_steps = t.optimizer().step_count();

  const StepResult r = t.step();
  EXPECT_TRUE(r.skipped);
  EXPECT_EQ(r.skip_reason, "non-finite loss");
  EXPECT_TRUE(std::isnan(r.loss));
  EXPECT_EQ(t.progress().nonfinite_in_row, 1);
  EXPECT_EQ(t.progress().skipped_steps, 1);
  EXPECT_EQ(t.progress().step, 3);  // the schedule still moves on
  for (const auto& [name, v] : t.model().state_dict())
    EXPECT_EQ(max_abs_diff(v, params.at(name)), 0.0f) << name << " changed by a skipped step";
  EXPECT_EQ(optimizer_state_bytes(t.optimizer()), opt);
  EXPECT_EQ(t.optimizer().step_count(), opt_steps);
  for (const Var& p : t.model().parameters()) EXPECT_FALSE(p.has_grad()) << "NaN gradients were not cleared";

  const StepResult next = t.step();  // the next good step updates again and resets the count
  EXPECT_FALSE(next.skipped);
  EXPECT_TRUE(std::isfinite(next.loss));
  EXPECT_EQ(t.progress().nonfinite_in_row, 0);
  EXPECT_EQ(t.optimizer().step_count(), opt_steps + 1);
}

TEST_F(TrainerTest, FitStopsAfterMaxNonFiniteInARow) {
  TrainConfig cfg = config();
  cfg.max_nonfinite = 3;
  Trainer t(cfg);
  t.inject_nonfinite_at({4, 6, 7, 8, 9});  // 4 alone, then 6, 7, 8 in a row
  FitOptions o;
  o.out_dir = dir_.path("nan");
  const FitResult r = fit(t, o);
  EXPECT_EQ(r.status, FitStatus::NonFinite);
  EXPECT_EQ(r.step, 8);
  EXPECT_EQ(t.progress().skipped_steps, 4);
  // The checkpoint written on the way out holds finite parameters.
  const Checkpoint c = load_checkpoint(r.last_checkpoint);
  for (const auto& [name, v] : c.model_state)
    for (float x : v.to_vector()) ASSERT_TRUE(std::isfinite(x)) << name;
  const std::string metrics = test::read_file(RunDirectory(o.out_dir).metrics_path());
  EXPECT_TRUE(test::contains(metrics, R"({"type":"skip","step":4,"reason":"non-finite loss","loss":null)"));
  EXPECT_TRUE(test::contains(metrics, R"("in_a_row":3)"));
}

TEST_F(TrainerTest, FitKeepsLastKAndTheBest) {
  TrainConfig cfg = config();
  cfg.steps = 12;
  cfg.save_every = 2;
  cfg.eval_every = 3;
  cfg.keep = 2;
  Trainer t(cfg);
  FitOptions o;
  o.out_dir = dir_.path("keep");
  const FitResult r = fit(t, o);
  ASSERT_EQ(r.status, FitStatus::Finished);
  const RunDirectory run(o.out_dir);
  const auto all = run.checkpoints();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].first, 10);
  EXPECT_EQ(all[1].first, 12);
  ASSERT_TRUE(std::filesystem::exists(run.best_path()));
  const Checkpoint best = load_checkpoint(run.best_path());
  EXPECT_EQ(best.progress.step, best.progress.best_step);
  // best.ckpt holds the lowest val_loss of the eval lines.
  double lowest = INFINITY;
  int64_t lowest_step = -1;
  for (const std::string& line : test::metrics_lines(run.metrics_path())) {
    if (!test::contains(line, R"("type":"eval")")) continue;
    const double v = std::stod(line.substr(line.find("\"val_loss\":") + 11));
    const int64_t s = std::stoll(line.substr(line.find("\"step\":") + 7));
    if (v < lowest) lowest = v, lowest_step = s;
  }
  EXPECT_EQ(best.progress.best_step, lowest_step);
  EXPECT_EQ(best.progress.best_val_loss, lowest);
}

// --recompute-blocks changes memory, not the run: the same losses and parameters, step for step
// (dropout on, so the replayed masks are exercised too).
TEST_F(TrainerTest, RecomputeBlocksTrainsIdentically) {
  TrainConfig cfg = config();
  cfg.dropout = 0.1;
  TrainConfig rec_cfg = cfg;
  rec_cfg.recompute_blocks = true;
  Trainer plain(cfg), rec(rec_cfg);
  ASSERT_TRUE(rec.model().recompute_blocks());
  for (int s = 0; s < 4; ++s) EXPECT_EQ(rec.step().loss, plain.step().loss) << "step " << s;
  for (const auto& [name, v] : rec.model().state_dict())
    EXPECT_EQ(max_abs_diff(v, plain.model().state_dict().at(name)), 0.0f) << name;
}

TEST_F(TrainerTest, LearnsBelowUnigramEntropy) {
  TrainConfig cfg = config();
  cfg.steps = 60;
  cfg.eval_batches = 4;
  Trainer t(cfg);
  const double unigram = unigram_entropy(t.eval_batches(), t.data().vocab().size());
  const double first = t.evaluate().loss;
  while (!t.done()) t.step();
  const double last = t.evaluate().loss;
  EXPECT_NEAR(first, std::log(258.0), 0.5);  // uniform over the byte vocabulary at initialization
  EXPECT_LT(last, unigram - 0.2) << "first " << first << ", unigram " << unigram;
}

TEST(MetricsLog, TruncateAfterDropsLaterAndPartialLines) {
  test::TempDir dir;
  const std::string path = dir.write("m.jsonl",
                                     "{\"type\":\"train\",\"step\":1}\n{\"type\":\"eval\",\"step\":2}\n"
                                     "{\"type\":\"train\",\"step\":3}\n{\"type\":\"tr");
  MetricsLog::truncate_after(path, 2);
  EXPECT_EQ(test::read_file(path), "{\"type\":\"train\",\"step\":1}\n{\"type\":\"eval\",\"step\":2}\n");
}

TEST(MetricsLog, NumbersReadBackExactly) {
  for (double v : {0.1, 1.0 / 3.0, 2.718281828459045, 1e-300, 123456789.0, 0.0})
    EXPECT_EQ(std::strtod(json_number(v).c_str(), nullptr), v);
  EXPECT_EQ(json_number(NAN), "null");
  EXPECT_EQ(JsonLine().add("a", int64_t{1}).add("b", "x\"y").add("c", true).str(), R"({"a":1,"b":"x\"y","c":true})");
}

}  // namespace
}  // namespace pf

namespace pf {
namespace {

// --precision bf16 trains like fp32: the same run, step by step, with the training loss within 2% at
// every step and the final validation loss within 1% (bf16 rounds each product's inputs to 8
// significant bits; fp32 weights, optimizer state and loss keep the run on the fp32 path). The
// losses must differ somewhere: the bf16 products were really used.
TEST(TrainerPrecision, Bf16TrainingTracksFp32) {
  if (!bf16_supported()) GTEST_SKIP() << bf16_unsupported_reason();
  test::TempDir dir;
  TrainConfig cfg = test::tiny_train_config(dir.write("corpus.txt", test::word_text(3000, 9)));
  cfg.steps = 60;
  cfg.eval_batches = 4;
  auto run = [&](const std::string& precision, std::vector<double>& losses) {
    TrainConfig c = cfg;
    c.precision = precision;
    Trainer t(c);
    EXPECT_EQ(matmul_precision(), parse_precision(precision));
    while (!t.done()) losses.push_back(t.step().loss);
    return t.evaluate().loss;
  };
  std::vector<double> f32, b16;
  const double val32 = run("fp32", f32);
  const double val16 = run("bf16", b16);
  ASSERT_EQ(f32.size(), b16.size());
  bool differ = false;
  for (size_t i = 0; i < f32.size(); ++i) {
    EXPECT_NEAR(b16[i], f32[i], 0.02 * f32[i]) << "step " << i + 1;
    differ = differ || b16[i] != f32[i];
  }
  EXPECT_TRUE(differ) << "bf16 losses identical to fp32: the bf16 path was not taken";
  EXPECT_NEAR(val16, val32, 0.01 * val32);
  EXPECT_LT(val16, f32.front() - 1.0) << "bf16 run did not learn";
}

TEST(TrainerPrecision, AutoAndUnsupportedBf16) {
  TrainConfig c;
  c.precision = "auto";
  EXPECT_EQ(c.matmul_precision(), bf16_supported() ? Precision::bf16 : Precision::fp32);
  c.precision = "fp16";
  try {
    c.validate();
    ADD_FAILURE() << "--precision fp16 accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--precision"), std::string::npos) << e.what();
  }
  if (!bf16_supported()) {
    c.precision = "bf16";
    EXPECT_THROW(c.validate(), std::invalid_argument);
  }
}

}  // namespace
}  // namespace pf
