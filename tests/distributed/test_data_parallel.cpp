// Data-parallel training against its reference, one process. ctest runs this binary under
// `mpirun -np 2` (and once without mpirun, where the tests that need two ranks are skipped and the
// collectives are checked as a job of one).
//
// Each multi-rank test builds the one-process reference itself (a plain Trainer, no data parallel,
// the same global batch) and compares: losses and final parameters within 1e-5 relative, the
// validation loss bit for bit, replicas bit-identical across ranks, resume bit-exact with the same
// rank count, and the agreed control flow (non-finite skip, SIGTERM on one rank).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "distributed/comm.h"
#include "distributed/grad_sync.h"
#include "tests/train/train_test_util.h"
#include "train/checkpoint.h"
#include "train/distributed.h"
#include "train/fit.h"
#include "train/signals.h"
#include "train/trainer.h"

namespace pf {
namespace {

// ---- the collectives

TEST(Comm, RankAndSize) {
  EXPECT_GE(dist::size(), 1);
  EXPECT_GE(dist::rank(), 0);
  EXPECT_LT(dist::rank(), dist::size());
  EXPECT_TRUE(dist::built_with_mpi());
}

TEST(Comm, AllreduceSumsEveryElement) {
  const int n = dist::size(), r = dist::rank();
  std::vector<float> f(1000);
  std::vector<double> d(7);
  for (size_t i = 0; i < f.size(); ++i) f[i] = static_cast<float>(i) + static_cast<float>(r) * 1000.0f;
  for (size_t i = 0; i < d.size(); ++i) d[i] = 0.5 * static_cast<double>(i) * (r + 1);
  dist::allreduce_sum(f.data(), static_cast<int64_t>(f.size()));
  dist::allreduce_sum(d.data(), static_cast<int64_t>(d.size()));
  for (size_t i = 0; i < f.size(); ++i)
    ASSERT_EQ(f[i], static_cast<float>(i) * n + 1000.0f * static_cast<float>(n * (n - 1) / 2)) << i;
  for (size_t i = 0; i < d.size(); ++i) ASSERT_EQ(d[i], 0.5 * static_cast<double>(i) * n * (n + 1) / 2) << i;
  EXPECT_EQ(dist::max(r), n - 1);
  EXPECT_EQ(dist::any(r == n - 1), true);
  EXPECT_EQ(dist::any(false), false);
  EXPECT_EQ(dist::sum(1.0), static_cast<double>(n));
}

TEST(Comm, BroadcastAndGather) {
  std::string s = dist::rank() == 0 ? std::string(100000, 'x') + "end" : "other";
  dist::broadcast(s, 0);
  EXPECT_EQ(s, std::string(100000, 'x') + "end");
  const std::vector<std::string> all = dist::gather("rank" + std::to_string(dist::rank()), 0);
  if (dist::rank() == 0) {
    ASSERT_EQ(static_cast<int>(all.size()), dist::size());
    for (int i = 0; i < dist::size(); ++i) EXPECT_EQ(all[static_cast<size_t>(i)], "rank" + std::to_string(i));
  } else {
    EXPECT_TRUE(all.empty());
  }
  dist::barrier();
}

// Buckets: a small bucket size splits the parameters into several allreduces; gradients are averaged,
// a gradient present on one rank only counts as zero elsewhere, one present nowhere stays absent.
TEST(Comm, GradientSyncBucketsAndMissingGradients) {
  const int n = dist::size(), r = dist::rank();
  std::vector<std::pair<std::string, Var>> params;
  for (int i = 0; i < 5; ++i) params.emplace_back("p" + std::to_string(i), Var(Tensor({100}), true));
  dist::GradientSync sync(params, {}, /*bucket_bytes=*/2 * 101 * 4);
  EXPECT_EQ(sync.num_buckets(), 3);
  EXPECT_EQ(sync.gradient_bytes(), 500 * 4);
  for (int i = 0; i < 3; ++i) {
    Tensor g({100});
    for (int k = 0; k < 100; ++k) g.data()[k] = static_cast<float>((r + 1) * (i + 1) * k);
    params[static_cast<size_t>(i)].second.grad() = g;
  }
  if (r == n - 1) {
    Tensor g({100});
    for (int k = 0; k < 100; ++k) g.data()[k] = 2.0f;
    params[3].second.grad() = g;  // only the last rank has one
  }
  sync.average_gradients();
  for (int i = 0; i < 3; ++i) {
    const float* g = params[static_cast<size_t>(i)].second.grad().data();
    for (int k = 0; k < 100; ++k)
      ASSERT_FLOAT_EQ(g[k], static_cast<float>((i + 1) * k) * static_cast<float>(n + 1) / 2.0f) << i << " " << k;
  }
  ASSERT_TRUE(params[3].second.has_grad());
  EXPECT_FLOAT_EQ(params[3].second.grad().data()[7], 2.0f / static_cast<float>(n));
  EXPECT_FALSE(params[4].second.has_grad());
  // Broadcast: rank 0's values everywhere, then the replicas agree.
  for (auto& [name, v] : params) v.mutable_value().data()[0] = static_cast<float>(r + 1);
  EXPECT_EQ(sync.replicas_identical(), n == 1);
  sync.broadcast_from_root();
  EXPECT_EQ(params[2].second.value().data()[0], 1.0f);
  EXPECT_TRUE(sync.replicas_identical());
}

// Issue 30: the has-gradient flags sit after each bucket's values. Several small buckets, each ending
// with a gradient value <= 0 (and one ending with a parameter no rank has a gradient for): a flag read
// one slot off would take that value for the first parameter's flag and drop its gradient.
TEST(Comm, GradientSyncFlagsOfBucketsEndingAtOrBelowZero) {
  const int n = dist::size(), r = dist::rank();
  std::vector<std::pair<std::string, Var>> params;
  for (int i = 0; i < 6; ++i) params.emplace_back("p" + std::to_string(i), Var(Tensor({10}), true));
  dist::GradientSync sync(params, {}, /*bucket_bytes=*/2 * 11 * 4);
  ASSERT_EQ(sync.num_buckets(), 3);
  for (int i = 0; i < 5; ++i) {
    Tensor g({10});
    for (int k = 0; k < 10; ++k) g.data()[k] = static_cast<float>((r + 1) * (i + 1) * (k - 9 + (i % 2)));
    params[static_cast<size_t>(i)].second.grad() = g;  // the last value: 0 or -(r + 1)(i + 1)... <= 0
  }
  sync.average_gradients();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(params[static_cast<size_t>(i)].second.has_grad()) << i;
    const float* g = params[static_cast<size_t>(i)].second.grad().data();
    for (int k = 0; k < 10; ++k)
      ASSERT_FLOAT_EQ(g[k], static_cast<float>((i + 1) * (k - 9 + (i % 2))) * static_cast<float>(n + 1) / 2.0f)
          << i << " " << k;
  }
  EXPECT_FALSE(params[5].second.has_grad());
}

// broadcast_from_root sends the buffers (random projections) too, not only the parameters.
TEST(Comm, GradientSyncBroadcastsBuffersThatDifferPerRank) {
  const int r = dist::rank();
  std::vector<std::pair<std::string, Var>> params, buffers;
  params.emplace_back("w", Var(Tensor({4}), true));
  for (int i = 0; i < 2; ++i) buffers.emplace_back("proj" + std::to_string(i), Var(Tensor({3, 5}), false));
  for (auto& [name, v] : buffers)
    for (int64_t k = 0; k < v.numel(); ++k) v.mutable_value().data()[k] = static_cast<float>(100 * r + k);
  dist::GradientSync sync(params, buffers);
  EXPECT_EQ(sync.replicas_identical(), dist::size() == 1);
  sync.broadcast_from_root();
  for (auto& [name, v] : buffers)
    for (int64_t k = 0; k < v.numel(); ++k) ASSERT_EQ(v.value().data()[k], static_cast<float>(k)) << name << " " << k;
  EXPECT_TRUE(sync.replicas_identical());
}

// ---- data-parallel training against one process

struct TrainRun {
  std::vector<double> losses;  // every step's training loss
  std::vector<bool> skipped;
  StateDict params;
  FitResult result;
};

StateDict snapshot(const Module& m) {
  StateDict s;
  for (const auto& [name, t] : m.state_dict()) s.emplace(name, t.clone());
  return s;
}

// A corpus and an output directory shared by the ranks (rank 0's temporary directory).
class DataParallel2 : public ::testing::Test {
 protected:
  void SetUp() override {
    if (dist::size() != 2) GTEST_SKIP() << "needs mpirun -np 2 (this job has " << dist::size() << " rank(s))";
    if (dist::rank() == 0) {
      dir_ = std::make_unique<test::TempDir>();
      root_ = dir_->path("");
      dir_->write("corpus.txt", test::word_text(4000, 5));
    }
    dist::broadcast(root_, 0);
    corpus_ = root_ + "/corpus.txt";
  }
  void TearDown() override {
    if (dist::size() == 2) dist::barrier();  // rank 0 removes the directory only after every rank is done
  }
  TrainConfig config() const {
    TrainConfig c = test::tiny_train_config(corpus_);
    c.model.depth = 2;
    c.data.batch_size = 8;  // global: 2 ranks x 4 rows
    c.run.precision = Precision::fp32;
    c.optimizer.clip = 0.5;  // clipping acts on most steps: it must see the summed gradient
    c.run.eval_every = 0;
    c.run.save_every = 0;
    return c;
  }
  std::string path(const std::string& name) const { return root_ + "/" + name; }

  // fit() over the trainer, recording every step.
  static TrainRun train(Trainer& t, FitOptions opt = {}) {
    TrainRun run;
    auto user = opt.after_step;
    opt.after_step = [&](Trainer& tr, const StepResult& r) {
      run.losses.push_back(r.loss);
      run.skipped.push_back(r.skipped);
      if (user) user(tr, r);
    };
    run.result = fit(t, opt);
    run.params = snapshot(t.model());
    return run;
  }
  // Two ranks train the config as one process does: the same losses and parameters (to 1e-5).
  static void expect_same_as_one_process(const TrainConfig& c);
  static TrainRun one_process(const TrainConfig& c, FitOptions opt = {}) {
    apply_process_settings(c);
    Trainer t(c);
    return train(t, std::move(opt));
  }
  static TrainRun data_parallel(const TrainConfig& c, FitOptions opt = {}) {
    apply_process_settings(c);
    Trainer t(c);
    enable_data_parallel(t, nullptr);
    EXPECT_EQ(t.world_size(), 2);
    return train(t, std::move(opt));
  }

  std::unique_ptr<test::TempDir> dir_;
  std::string root_, corpus_;
};

// ||a - b||_inf <= tol * max(||b||_inf, ||model||_inf / 10) for every tensor: relative to the tensor's own
// scale, with a floor at a tenth of the model's largest value for tensors that stay near zero (a key
// bias of about 0.03 moves by rounding noise of the summation order that is not small relative to
// itself: 2.6e-5 of it measured with the record order of prepared datasets, 7e-7 absolute).
void expect_close(const StateDict& a, const StateDict& b, double tol) {
  ASSERT_EQ(a.size(), b.size());
  double model_scale = 0.0;
  for (const auto& [name, tb] : b)
    for (int64_t i = 0; i < tb.numel(); ++i) model_scale = std::max(model_scale, std::fabs(static_cast<double>(tb.data()[i])));
  for (const auto& [name, tb] : b) {
    const Tensor& ta = a.at(name);
    double diff = 0.0, scale = 0.0;
    for (int64_t i = 0; i < tb.numel(); ++i) {
      diff = std::max(diff, std::fabs(static_cast<double>(ta.data()[i]) - tb.data()[i]));
      scale = std::max(scale, std::fabs(static_cast<double>(tb.data()[i])));
    }
    EXPECT_LE(diff, tol * std::max(scale, model_scale / 10)) << name;
  }
}

void expect_bit_identical(const StateDict& a, const StateDict& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, tb] : b)
    EXPECT_EQ(0, std::memcmp(a.at(name).data(), tb.data(), sizeof(float) * static_cast<size_t>(tb.numel()))) << name;
}

void expect_losses_close(const std::vector<double>& a, const std::vector<double>& b, double tol) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], tol * std::fabs(b[i])) << "step " << i + 1;
}

void DataParallel2::expect_same_as_one_process(const TrainConfig& c) {
  const TrainRun ref = one_process(c);
  const TrainRun dp = data_parallel(c);
  expect_losses_close(dp.losses, ref.losses, 1e-5);
  expect_close(dp.params, ref.params, 1e-5);
}

TEST_F(DataParallel2, TwoRanksOfFourRowsEqualOneProcessOfEight) {
  const TrainConfig c = config();
  const TrainRun ref = one_process(c);
  const TrainRun dp = data_parallel(c);
  ASSERT_EQ(dp.losses.size(), 20u);
  expect_losses_close(dp.losses, ref.losses, 1e-5);
  expect_close(dp.params, ref.params, 1e-5);
  // The comparison can fail: one process of batch 4 (half the rows) is far off.
  TrainConfig half = c;
  half.data.batch_size = 4;
  const TrainRun other = one_process(half);
  EXPECT_GT(std::fabs(other.losses.back() - ref.losses.back()), 1e-3 * ref.losses.back());
}

// A model of several gradient buckets (about 10 MB of parameters, buckets of 4 MB): 2 ranks train to
// the parameters of one process (a bucket's has-gradient flags read wrongly would leave a parameter with
// its rank's own half-batch gradient).
TEST_F(DataParallel2, ModelOfSeveralBucketsEqualsOneProcess) {
  TrainConfig c = config();
  c.model.dim = 256;
  c.model.heads = 4;
  c.model.depth = 3;
  c.model.ff_hidden = 1024;
  c.schedule.total_steps = 4;
  c.schedule.warmup = 1;
  c.optimizer.kind = OptimizerKind::Sgd;  // updates linear in the gradient (Adam's g / |g| magnifies rounding of near-zero gradients)
  c.schedule.lr = 0.05;
  {
    Trainer probe(c);
    ASSERT_GE(dist::GradientSync(probe.model()).num_buckets(), 3);
  }
  const TrainRun ref = one_process(c);
  const TrainRun dp = data_parallel(c);
  ASSERT_EQ(dp.losses.size(), 4u);
  expect_losses_close(dp.losses, ref.losses, 1e-5);
  expect_close(dp.params, ref.params, 1e-5);
}

// Masked LM on proteins: the ranks' rows hold different numbers of targets (masks, padding), so the
// per-rank losses must be weighted by their share of the global targets (a plain average of the
// ranks' means would differ from one process).
TEST_F(DataParallel2, MaskedLmWithUnequalTargetsPerRankEqualsOneProcess) {
  if (dist::rank() == 0) dir_->write("p.fasta", test::random_fasta(300, 4));
  dist::barrier();
  TrainConfig c = config();
  c.data.train_files = {path("p.fasta")};
  c.data.objective = Objective::Mlm;
  c.model.redraw_every = 0;
  expect_same_as_one_process(c);
}

TEST_F(DataParallel2, GradAccumulationSynchronizesOnlyTheStep) {
  TrainConfig c = config();
  c.run.grad_accum = 2;
  c.data.batch_size = 6;  // 3 rows per rank per micro-batch
  expect_same_as_one_process(c);
}

TEST_F(DataParallel2, ReplicasStayBitIdenticalWithPerRankDropout) {
  TrainConfig c = config();
  c.model.dropout = 0.2;
  apply_process_settings(c);
  Trainer t(c);
  enable_data_parallel(t, nullptr);
  dist::GradientSync check(t.model());
  EXPECT_TRUE(check.replicas_identical());
  for (int i = 0; i < 12; ++i) t.step();
  EXPECT_TRUE(check.replicas_identical()) << "parameter checksum differs between ranks";
  // The ranks drew different dropout masks: their generator states differ.
  const Checkpoint ck = t.checkpoint();
  if (dist::rank() == 0) {
    ASSERT_EQ(ck.rank_model_rngs.size(), 2u);
    EXPECT_NE(ck.rank_model_rngs[0], ck.rank_model_rngs[1]);
    EXPECT_EQ(ck.rank_model_rngs[0], ck.model_rng);
    EXPECT_EQ(ck.config.distributed.world_size, 2);
  }
}

TEST_F(DataParallel2, ShardedValidationLossEqualsOneProcessBitForBit) {
  TrainConfig c = config();
  c.run.eval_batches = 0;  // all of them: an odd count is split unevenly
  apply_process_settings(c);
  Trainer t(c);
  for (int i = 0; i < 3; ++i) t.step();
  const EvalMetrics one = evaluate(t.model(), t.eval_batches());
  enable_data_parallel(t, nullptr);  // the same weights everywhere (rank 0's)
  const EvalMetrics reference = dist::rank() == 0 ? one : EvalMetrics{};
  double ref_loss = reference.loss;
  dist::broadcast(&ref_loss, sizeof ref_loss, 0);
  const EvalMetrics sharded = t.evaluate();
  EXPECT_EQ(sharded.loss, ref_loss);
  EXPECT_EQ(sharded.tokens, one.tokens);
  EXPECT_EQ(sharded.batches, one.batches);
  EXPECT_EQ(sharded.bytes, one.bytes);  // bits per byte too: every batch's byte count is carried
  EXPECT_GT(sharded.bytes, 0);
}

TEST_F(DataParallel2, StopAndResumeUnderTwoRanksIsBitExact) {
  TrainConfig c = config();
  c.model.dropout = 0.1;  // per-rank dropout streams must be saved and restored
  const TrainRun straight = data_parallel(c);

  FitOptions first;
  first.out_dir = dist::rank() == 0 ? path("run") : "";
  first.stop_at = 10;
  const TrainRun a = data_parallel(c, first);
  EXPECT_EQ(a.result.status, FitStatus::Stopped);
  dist::barrier();  // rank 0's checkpoint is on disk
  const Checkpoint ck = load_checkpoint(path("run/ckpt-00000010.ckpt"));
  EXPECT_EQ(ck.rank_model_rngs.size(), 2u);
  apply_process_settings(c);
  Trainer t(c, ck);
  EXPECT_EQ(enable_data_parallel(t, &ck), "");
  const TrainRun b = train(t);
  ASSERT_EQ(b.losses.size(), 10u);
  for (size_t i = 0; i < 10; ++i) EXPECT_EQ(b.losses[i], straight.losses[10 + i]) << "step " << 11 + i;
  expect_bit_identical(b.params, straight.params);

  // The same checkpoint under one process continues without a jump.
  if (dist::rank() == 0) {
    TrainConfig one = ck.config;
    one.distributed.world_size = 1;
    Trainer t1(one, ck);  // a plain Trainer: one process (enable_data_parallel would join the job's 2 ranks)
    const StepResult r = t1.step();
    double largest_change = 0.0;
    for (size_t i = 1; i < straight.losses.size(); ++i)
      largest_change = std::max(largest_change, std::fabs(straight.losses[i] - straight.losses[i - 1]));
    EXPECT_TRUE(std::isfinite(r.loss));
    EXPECT_LE(std::fabs(r.loss - straight.losses[10]), largest_change)
        << "one process resumed at step 11 with loss " << r.loss << ", two ranks had " << straight.losses[10];
  }
}

TEST_F(DataParallel2, OneProcessCheckpointResumesUnderTwoRanks) {
  const TrainConfig c = config();
  TrainRun straight;
  if (dist::rank() == 0) {
    straight = one_process(c);
    FitOptions first;
    first.out_dir = path("single");
    first.stop_at = 10;
    one_process(c, first);
  }
  dist::barrier();
  const Checkpoint ck = load_checkpoint(path("single/ckpt-00000010.ckpt"));
  EXPECT_EQ(ck.config.distributed.world_size, 1);
  EXPECT_TRUE(ck.rank_model_rngs.empty());
  apply_process_settings(c);
  Trainer t(c, ck);
  const std::string note = enable_data_parallel(t, &ck);
  EXPECT_NE(note.find("not bit for bit"), std::string::npos) << note;
  const TrainRun b = train(t);
  if (dist::rank() == 0) {
    ASSERT_EQ(b.losses.size(), 10u);
    expect_losses_close(b.losses, std::vector<double>(straight.losses.begin() + 10, straight.losses.end()), 1e-5);
    expect_close(b.params, straight.params, 1e-5);
  }
}

// A non-finite loss and gradient on rank 1 only (a final-norm weight set to NaN there after step 5, put back
// after step 6): both ranks skip step 6, and nothing changes on either.
TEST_F(DataParallel2, NonFiniteOnOneRankSkipsOnAll) {
  const TrainConfig c = config();
  apply_process_settings(c);
  Trainer t(c);
  enable_data_parallel(t, nullptr);
  StateDict before_6;
  float saved = 0.0f;
  FitOptions opt;
  opt.after_step = [&](Trainer& tr, const StepResult& r) {
    Var w;
    for (const auto& [name, v] : tr.model().named_parameters())
      if (name == "ln_f.weight") w = v;  // feeds every logit
    if (r.step == 5) {
      before_6 = snapshot(tr.model());
      if (dist::rank() == 1) {
        saved = w.value().data()[0];
        w.mutable_value().data()[0] = std::numeric_limits<float>::quiet_NaN();
      }
    }
    if (r.step == 6) {
      if (dist::rank() == 1) w.mutable_value().data()[0] = saved;
      expect_bit_identical(snapshot(tr.model()), before_6);
      EXPECT_TRUE(r.skipped) << dist::who();
      EXPECT_FALSE(std::isfinite(r.loss));
    }
  };
  const TrainRun run = train(t, opt);
  ASSERT_EQ(run.skipped.size(), 20u);
  for (size_t i = 0; i < run.skipped.size(); ++i) EXPECT_EQ(run.skipped[i], i == 5) << "step " << i + 1;
  EXPECT_EQ(t.progress().skipped_steps, 1);
  dist::GradientSync check(t.model());
  EXPECT_TRUE(check.replicas_identical());
}

// SIGTERM delivered to rank 1's process only (kill(getpid()) in its after_step of step 4): both ranks
// stop after step 4, and rank 0's checkpoint of step 4 is valid and holds both ranks' generators.
TEST_F(DataParallel2, SigtermOnOneRankStopsAllAndRankZeroSaves) {
  TrainConfig c = config();
  install_stop_handlers();
  clear_stop_request();
  apply_process_settings(c);
  Trainer t(c);
  enable_data_parallel(t, nullptr);
  FitOptions opt;
  opt.out_dir = dist::rank() == 0 ? path("signal") : "";
  opt.should_stop = [] { return stop_requested(); };
  opt.after_step = [](Trainer&, const StepResult& r) {
    if (r.step == 4 && dist::rank() == 1) ::kill(::getpid(), SIGTERM);
  };
  const TrainRun run = train(t, opt);
  EXPECT_EQ(run.result.status, FitStatus::Stopped);
  EXPECT_EQ(run.result.step, 4);
  EXPECT_EQ(stop_requested(), dist::rank() == 1);
  EXPECT_EQ(dist::max(stop_signal()), SIGTERM);
  clear_stop_request();
  dist::barrier();
  if (dist::rank() == 0) {
    EXPECT_EQ(run.result.last_checkpoint, path("signal/ckpt-00000004.ckpt"));
    const Checkpoint ck = load_checkpoint(run.result.last_checkpoint);
    EXPECT_EQ(ck.progress.step, 4);
    EXPECT_EQ(ck.rank_model_rngs.size(), 2u);
    expect_bit_identical(ck.model_state, snapshot(t.model()));
  }
}

}  // namespace
}  // namespace pf

int main(int argc, char** argv) {
  pf::dist::init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  const int failed = RUN_ALL_TESTS();
  // Any rank's failure fails the job.
  const bool any_failed = pf::dist::any(failed != 0);
  pf::dist::finalize();
  return any_failed ? 1 : 0;
}
