// Trainer and fit(): a non-finite step changes nothing and is counted; the run stops after
// max_nonfinite of them in a row; fit keeps the last K checkpoints plus the best one; training on a
// tiny corpus gets below the unigram entropy; --recompute-blocks trains identically.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#include "train/checkpoint.h"
#include "train/fit.h"
#include "train/metrics.h"
#include "train/run_directory.h"
#include "train/trainer.h"
#include "autograd/parallel.h"
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

Var parameter(Trainer& t, const std::string& name) {
  for (const auto& [n, v] : t.model().named_parameters())
    if (n == name) return v;
  throw std::invalid_argument("no parameter " + name);
}

// Real non-finite values flowing through the forward pass, the loss and the gradients (no hook in
// the Trainer): a NaN in one parameter, or parameters so large that the logits overflow float.
enum class Poison { NanParameter, OverflowingLogits };

// Poisons the model in place and returns what to put back.
std::vector<std::pair<Var, Tensor>> poison(Trainer& t, Poison kind) {
  std::vector<std::pair<Var, Tensor>> saved;
  for (const char* name : {"ln_f.weight", "head.weight"}) {
    Var p = parameter(t, name);
    saved.emplace_back(p, p.value().clone());
  }
  if (kind == Poison::NanParameter) {
    parameter(t, "ln_f.weight").mutable_value().data()[0] = std::numeric_limits<float>::quiet_NaN();
  } else {
    // Finite parameters (1e37 < FLT_MAX), but every logit is a sum of products of about 1e74.
    parameter(t, "ln_f.weight").mutable_value().fill(1e37f);
    parameter(t, "head.weight").mutable_value().fill(1e37f);
  }
  return saved;
}

void unpoison(const std::vector<std::pair<Var, Tensor>>& saved) {
  for (auto [p, v] : saved) p.mutable_value().copy_from(v);
}

class NonFiniteStep : public TrainerTest, public ::testing::WithParamInterface<Poison> {};

TEST_P(NonFiniteStep, LeavesParametersAndOptimizerUnchanged) {
  Trainer t(config());
  t.step();
  t.step();
  const auto saved = poison(t, GetParam());
  const StateDict params = snapshot(t.model());
  const std::string opt = optimizer_state_bytes(t.optimizer());
  const int64_t opt_steps = t.optimizer().step_count();

  const StepResult r = t.step();
  EXPECT_TRUE(r.skipped);
  EXPECT_EQ(r.skip_reason, "non-finite loss");
  EXPECT_FALSE(std::isfinite(r.loss)) << r.loss;
  EXPECT_FALSE(std::isfinite(r.grad_norm)) << "the non-finite values reached the gradients: " << r.grad_norm;
  EXPECT_EQ(t.progress().nonfinite_in_row, 1);
  EXPECT_EQ(t.progress().skipped_steps, 1);
  EXPECT_EQ(t.progress().step, 3);  // the schedule still moves on
  for (const auto& [name, v] : t.model().state_dict()) {
    const std::vector<float> a = v.to_vector(), b = params.at(name).to_vector();
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i)  // bit for bit, NaN included
      ASSERT_EQ(std::memcmp(&a[i], &b[i], sizeof(float)), 0) << name << "[" << i << "] changed by a skipped step";
  }
  EXPECT_EQ(optimizer_state_bytes(t.optimizer()), opt);
  EXPECT_EQ(t.optimizer().step_count(), opt_steps);
  for (const Var& p : t.model().parameters()) EXPECT_FALSE(p.has_grad()) << "NaN gradients were not cleared";

  unpoison(saved);
  const StepResult next = t.step();  // the next good step updates again and resets the count
  EXPECT_FALSE(next.skipped);
  EXPECT_TRUE(std::isfinite(next.loss));
  EXPECT_EQ(t.progress().nonfinite_in_row, 0);
  EXPECT_EQ(t.optimizer().step_count(), opt_steps + 1);
}

INSTANTIATE_TEST_SUITE_P(RealValues, NonFiniteStep,
                         ::testing::Values(Poison::NanParameter, Poison::OverflowingLogits),
                         [](const auto& info) {
                           return std::string(info.param == Poison::NanParameter ? "NanParameter"
                                                                                 : "OverflowingLogits");
                         });

TEST_F(TrainerTest, FitStopsAfterMaxNonFiniteInARow) {
  TrainConfig cfg = config();
  cfg.run.max_nonfinite = 3;
  Trainer t(cfg);
  // Through FitOptions::after_step: a NaN parameter during steps 4, 6, 7 and 8 (4 alone, then 6, 7,
  // 8 in a row), put back after each of them.
  const std::set<int64_t> poisoned = {4, 6, 7, 8};
  std::vector<std::pair<Var, Tensor>> saved;
  StateDict after_step_5;
  FitOptions o;
  o.out_dir = dir_.path("nan");
  o.after_step = [&](Trainer& tr, const StepResult& r) {
    if (!saved.empty()) unpoison(saved), saved.clear();
    if (r.step == 5)
      for (const auto& [name, v] : tr.model().named_parameters()) after_step_5.emplace(name, v.value().clone());
    if (poisoned.count(r.step + 1)) saved = poison(tr, Poison::NanParameter);
  };
  const FitResult r = fit(t, o);
  EXPECT_EQ(r.status, FitStatus::NonFinite);
  EXPECT_EQ(r.step, 8);
  EXPECT_EQ(t.progress().skipped_steps, 4);
  // The checkpoint written on the way out holds the parameters of the last applied update (step 5):
  // the skipped steps changed nothing.
  const Checkpoint c = load_checkpoint(r.last_checkpoint);
  ASSERT_FALSE(after_step_5.empty());
  for (const auto& [name, v] : c.model_state)
    for (float x : v.to_vector()) ASSERT_TRUE(std::isfinite(x)) << name;
  for (const auto& [name, v] : after_step_5)  // the parameters (the projections are redrawn every 3 steps)
    EXPECT_EQ(max_abs_diff(c.model_state.at(name), v), 0.0f) << name;
  const std::string metrics = test::read_file(RunDirectory(o.out_dir).metrics_path());
  EXPECT_TRUE(test::contains(metrics, R"({"type":"skip","step":4,"reason":"non-finite loss","loss":null)"));
  EXPECT_TRUE(test::contains(metrics, R"("in_a_row":3)"));
}

TEST_F(TrainerTest, FitKeepsLastKAndTheBest) {
  TrainConfig cfg = config();
  cfg.schedule.total_steps = 12;
  cfg.run.save_every = 2;
  cfg.run.eval_every = 3;
  cfg.run.keep = 2;
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
  cfg.model.dropout = 0.1;
  TrainConfig rec_cfg = cfg;
  rec_cfg.run.recompute_blocks = true;
  Trainer plain(cfg), rec(rec_cfg);
  ASSERT_TRUE(rec.model().recompute_blocks());
  for (int s = 0; s < 4; ++s) EXPECT_EQ(rec.step().loss, plain.step().loss) << "step " << s;
  for (const auto& [name, v] : rec.model().state_dict())
    EXPECT_EQ(max_abs_diff(v, plain.model().state_dict().at(name)), 0.0f) << name;
}

TEST_F(TrainerTest, LearnsBelowUnigramEntropy) {
  TrainConfig cfg = config();
  cfg.schedule.total_steps = 60;
  cfg.run.eval_batches = 4;
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

// The bytes of a line as metrics.jsonl has always had them: numbers as exact_str writes them (5100,
// 1e+06, not nlohmann-json's 5100.0 and 1000000.0), strings escaped by nlohmann-json, arrays of
// strings; a string that is not UTF-8 (a file name in another encoding) still gives valid JSON.
TEST(MetricsLog, LineBytes) {
  const std::string line = JsonLine()
                               .add("type", "train")
                               .add("step", 7)
                               .add("loss", 2.5)
                               .add("tokens_per_s", 5100.0)
                               .add("tokens", int64_t{1000000})
                               .add("big", 1e6)
                               .add("lr", 5e-05)
                               .add("grad_norm", static_cast<double>(INFINITY))
                               .add("note", "tab\t\x01 \xc3\xa9")
                               .add("data", std::vector<std::string>{"a.txt", "b\\c", "\xff.txt"})
                               .add("empty", std::vector<std::string>{})
                               .str();
  EXPECT_EQ(line,
            "{\"type\":\"train\",\"step\":7,\"loss\":2.5,\"tokens_per_s\":5100,\"tokens\":1000000,\"big\":1e+06,"
            "\"lr\":5e-05,\"grad_norm\":null,\"note\":\"tab\\t\\u0001 \xc3\xa9\","
            "\"data\":[\"a.txt\",\"b\\\\c\",\"\xef\xbf\xbd.txt\"],\"empty\":[]}");
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
  cfg.schedule.total_steps = 60;
  cfg.run.eval_batches = 4;
  auto run = [&](const std::string& precision, std::vector<double>& losses) {
    TrainConfig c = cfg;
    set_field(c, "precision", precision);
    apply_process_settings(c);
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

// Constructing a Trainer changes no process-wide setting; apply_process_settings sets both by name.
TEST(TrainerPrecision, ConstructingATrainerChangesNoProcessWideSetting) {
  test::TempDir dir;
  TrainConfig c = test::tiny_train_config(dir.write("corpus.txt", test::word_text(500, 3)));
  c.run.threads = 1;
  c.run.precision = Precision::fp32;
  set_matmul_precision(Precision::fp32);
  const int threads = get_num_threads();
  TrainConfig other = c;
  other.run.threads = threads == 1 ? 2 : 1;
  if (bf16_supported()) other.run.precision = Precision::bf16;
  { Trainer t(other); }
  EXPECT_EQ(get_num_threads(), threads);
  EXPECT_EQ(matmul_precision(), Precision::fp32);
  apply_process_settings(other);
  EXPECT_EQ(get_num_threads(), other.run.threads);
  if (bf16_supported()) {
    EXPECT_EQ(matmul_precision(), Precision::bf16);
  }
  set_num_threads(threads);
  set_matmul_precision(Precision::fp32);
}

TEST(TrainerPrecision, AutoAndUnsupportedBf16) {
  TrainConfig c;
  c.run.precision = std::nullopt;
  EXPECT_EQ(c.matmul_precision(), bf16_supported() ? Precision::bf16 : Precision::fp32);
  try {
    set_field(c, "precision", "fp16");
    ADD_FAILURE() << "--precision fp16 accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--precision"), std::string::npos) << e.what();
  }
  if (!bf16_supported()) {
    c.run.precision = Precision::bf16;
    EXPECT_THROW(c.validate(), std::invalid_argument);
  }
}

}  // namespace
}  // namespace pf
