// performer-train end to end, run as a user would run it (the built executable, tiny corpora, tiny
// models, one thread): flag validation, config round trip, exact resume, refused checkpoints that
// leave the directory untouched, leftover temporary files, SIGTERM (faults: test_cli_faults.cpp).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "train/checkpoint.h"
#include "train/run_directory.h"
#include "train_test_util.h"

extern char** environ;

namespace pf {
namespace {

using test::contains;

class TrainCliTest : public ::testing::Test {
 public:
  void SetUp() override {
    text_ = dir_.write("corpus.txt", test::word_text(4000, 3));
    fasta_ = dir_.write("proteins.fasta", test::random_fasta(300, 4));
  }
  // performer-train with the tiny model flags, then `extra`.
  test::CommandResult train(const std::vector<std::string>& extra, bool tiny = true) {
    std::vector<std::string> args = {PF_TRAIN_BIN};
    if (tiny)
      for (const std::string& f : test::tiny_flags()) args.push_back(f);
    args.insert(args.end(), extra.begin(), extra.end());
    return test::run_command(args);
  }
  std::string out(const std::string& name) const { return dir_.path(name); }
  std::vector<std::string> metrics(const std::string& run) const {
    return test::metrics_lines(RunDirectory(out(run)).metrics_path());
  }

 protected:
  test::TempDir dir_;
  std::string text_, fasta_;
};


TEST_F(TrainCliTest, BadFlagsAreRefusedWithTheFlagNamed) {
  const struct {
    std::vector<std::string> args;
    const char* message;
  } cases[] = {
      {{"--data", text_, "--dim", "0"}, "--dim 0: must be > 0"},
      {{"--data", text_, "--dim", "64", "--heads", "3"}, "--heads 3: must divide --dim 64"},
      {{"--data", text_, "--attention", "linear"},
       "--attention 'linear': unknown value (expected one of: favor, relu, softmax, favor-local)"},
      {{"--data", text_, "--attention", "favor-local", "--local-window", "0"}, "--local-window 0: must be > 0"},
      {{"--data", text_, "--attention", "relu", "--feature-map", "favor++"},
       "--feature-map favor++: needs --attention favor or favor-local, got relu"},
      {{"--data", text_, "--feature-map", "favor"}, "--feature-map 'favor': unknown value"},
      {{"--data", text_, "--optimizer", "rmsprop"}, "--optimizer 'rmsprop': unknown value"},
      {{"--data", text_, "--schedule", "exp"}, "--schedule 'exp': unknown value"},
      {{"--data", text_, "--format", "csv"}, "--format 'csv': unknown value"},
      {{"--data", text_, "--seq-len", "-5"}, "--seq-len -5: must be > 0"},
      {{"--data", text_, "--batch-size", "0"}, "--batch-size 0: must be > 0"},
      {{"--data", text_, "--val-fraction", "1.5"}, "--val-fraction 1.5: must be in [0, 1)"},
      {{"--data", text_, "--lr", "-0.1"}, "--lr -0.1: must be finite and > 0"},
      {{"--data", dir_.path("missing.txt")}, "missing.txt: no such file"},
      {{"--data", text_, "--preset", "huge"}, "--preset 'huge': unknown value (expected one of: tiny, small, b1, b2, b3)"},
      {{"--data", text_, "--dim", "abc"}, "--dim"},
      {{"--data", text_, "--no-such-flag"}, "--no-such-flag"},
      {{"--data", text_, "--time-limit", "-1"}, "--time-limit -1: must be a number of seconds >= 0"},
      {{"--data", text_, "--features", "33", "--antithetic-features"}, "--antithetic-features true: needs an even"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = c.args;
    args.push_back("--out");
    args.push_back(out("never"));
    const test::CommandResult r = train(args, /*tiny=*/false);
    EXPECT_NE(r.exit_code, 0) << c.message;
    EXPECT_TRUE(contains(r.err, c.message)) << "stderr: " << r.err << "\nexpected: " << c.message;
  }
  EXPECT_FALSE(std::filesystem::exists(out("never"))) << "a refused run created its output directory";
}

TEST_F(TrainCliTest, ConfigFileReproducesTheRun) {
  const test::CommandResult a = train({"--data", text_, "--steps", "10", "--out", out("a"), "--dropout", "0.1"});
  EXPECT_OK(a);
  const std::string config = RunDirectory(out("a")).config_path();
  ASSERT_TRUE(std::filesystem::exists(config));
  const test::CommandResult b = test::run_command({PF_TRAIN_BIN, "--config", config, "--out", out("b")});
  EXPECT_OK(b);
  EXPECT_EQ(metrics("a"), metrics("b"));
  EXPECT_EQ(metrics("a").size(), 13u);  // 10 train lines and evaluations at steps 0, 5 and 10
  // And the same config file, re-run into its own directory, is refused rather than mixed in.
  const test::CommandResult c = test::run_command({PF_TRAIN_BIN, "--config", config});
  EXPECT_EQ(c.exit_code, 2);
  EXPECT_TRUE(contains(c.err, "already holds a run")) << c.err;
}

// 2N steps straight versus N steps, stop, resume, N more: identical metrics, line for line.
void expect_exact_resume(TrainCliTest& t, const std::vector<std::string>& flags, const std::string& stop_at) {
  std::vector<std::string> straight = flags, first = flags;
  straight.insert(straight.end(), {"--out", t.out("straight")});
  first.insert(first.end(), {"--out", t.out("resumed"), "--stop-at", stop_at});
  EXPECT_OK(t.train(straight));
  const test::CommandResult stopped = t.train(first);
  EXPECT_OK(stopped);
  EXPECT_TRUE(contains(stopped.err, "performer-train --resume " + t.out("resumed"))) << stopped.err;
  const test::CommandResult resumed = test::run_command({PF_TRAIN_BIN, "--resume", t.out("resumed")});
  EXPECT_OK(resumed);
  EXPECT_TRUE(contains(resumed.err, "at step " + stop_at)) << resumed.err;
  const auto a = t.metrics("straight"), b = t.metrics("resumed");
  EXPECT_GT(a.size(), 16u);
  EXPECT_EQ(a, b);
  // The final checkpoints are identical too, except for the wall-clock time they record.
  Checkpoint ca = load_checkpoint(RunDirectory(t.out("straight")).latest());
  Checkpoint cb = load_checkpoint(RunDirectory(t.out("resumed")).latest());
  ca.progress.elapsed_s = cb.progress.elapsed_s = 0;
  ca.config.run.out = cb.config.run.out = "";
  EXPECT_EQ(serialize_checkpoint(ca), serialize_checkpoint(cb));
}

TEST_F(TrainCliTest, ResumeIsBitExactForTextWithDropoutRedrawAndAccumulation) {
  expect_exact_resume(*this,
                      {"--data", text_, "--steps", "16", "--dropout", "0.1", "--redraw-every", "3", "--grad-accum", "2",
                       "--save-every", "4"},
                      "7");
}

TEST_F(TrainCliTest, ResumeIsBitExactForMaskedProteinModel) {
  expect_exact_resume(*this,
                      {"--data", fasta_, "--steps", "16", "--objective", "mlm", "--attention", "relu", "--positions",
                       "rotary", "--save-every", "4", "--seq-len", "24"},
                      "8");
}

// favor-local with FAVOR++ features: the window, feature map and z are part of the checkpoint.
TEST_F(TrainCliTest, ResumeIsBitExactForFavorLocalWithFavorPlusPlus) {
  expect_exact_resume(*this,
                      {"--data", text_, "--steps", "16", "--attention", "favor-local", "--local-window", "5",
                       "--feature-map", "favor++", "--favorpp-z", "6", "--save-every", "4"},
                      "7");
}

class RefusedCheckpoint : public TrainCliTest {
 public:
  void SetUp() override {
    TrainCliTest::SetUp();
    const test::CommandResult r = train({"--data", text_, "--steps", "4", "--save-every", "2", "--out", out("run")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    good_ = test::read_file(RunDirectory(out("run")).checkpoint_path(4));
  }
  // Puts `bytes` in the run directory as its latest checkpoint, tries to resume, and checks the
  // refusal and that nothing in the directory changed.
  void expect_refused(const std::string& bytes, const std::string& message, std::vector<std::string> extra = {}) {
    const RunDirectory run(out("run"));
    if (!bytes.empty()) test::write_bytes(run.checkpoint_path(6), bytes);
    const std::string before = test::directory_fingerprint(out("run"));
    std::vector<std::string> args = {PF_TRAIN_BIN, "--resume", out("run"), "--steps", "8"};
    args.insert(args.end(), extra.begin(), extra.end());
    const test::CommandResult r = test::run_command(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_TRUE(contains(r.err, message)) << "stderr: " << r.err << "\nexpected: " << message;
    EXPECT_EQ(test::directory_fingerprint(out("run")), before) << "a refused run changed the output directory";
  }
  std::string good_;
};

TEST_F(RefusedCheckpoint, Truncated) {
  expect_refused(good_.substr(0, good_.size() / 2), "truncated checkpoint");
}

TEST_F(RefusedCheckpoint, FlippedByte) {
  std::string bad = good_;
  bad[bad.size() / 2] ^= 0x01;
  expect_refused(bad, "corrupt checkpoint: CRC-32 checksum mismatch");
}

TEST_F(RefusedCheckpoint, WrongVersion) {
  std::string bad = good_;
  bad[8 + 8 + std::strlen(kCheckpointKind)] = 7;
  expect_refused(bad, "checkpoint file version 7, this build reads versions 1 to 1");
}

TEST_F(RefusedCheckpoint, NotACheckpoint) {
  expect_refused("this is a text file, not a checkpoint\n", "not a performer-cpp checkpoint file (bad magic bytes)");
}

TEST_F(RefusedCheckpoint, ShapeConflict) {
  expect_refused("", "conflict with the flags given: --dim 64 (the checkpoint has 32)", {"--dim", "64"});
}

TEST_F(RefusedCheckpoint, DataThatDoesNotMatchTheCursor) {
  const std::string other = dir_.write("other.txt", test::word_text(5000, 77));
  expect_refused("", "checkpoint data cursor", {"--data", other});
}

TEST_F(RefusedCheckpoint, ResumeIntoAnotherRunsDirectory) {
  ASSERT_EQ(train({"--data", text_, "--steps", "2", "--out", out("other")}).exit_code, 0);
  const std::string other_before = test::directory_fingerprint(out("other"));
  expect_refused("", "already holds a run", {"--out", out("other")});
  EXPECT_EQ(test::directory_fingerprint(out("other")), other_before);
}

TEST_F(TrainCliTest, LeftoverTemporaryFileDoesNotBreakResume) {
  ASSERT_EQ(train({"--data", text_, "--steps", "12", "--stop-at", "5", "--out", out("crash")}).exit_code, 0);
  const RunDirectory run(out("crash"));
  const std::string intact = test::read_file(run.checkpoint_path(5));
  // A crash in the middle of writing the step-10 checkpoint leaves a partial temporary file.
  const std::string partial = run.path() + "/.ckpt-00000010.ckpt.tmp-4242";
  test::write_bytes(partial, intact.substr(0, intact.size() / 3));
  const test::CommandResult r = test::run_command({PF_TRAIN_BIN, "--resume", out("crash")});
  EXPECT_OK(r);
  EXPECT_TRUE(contains(r.err, "at step 5")) << r.err;
  EXPECT_FALSE(std::filesystem::exists(partial));
  EXPECT_TRUE(std::filesystem::exists(run.checkpoint_path(12)));
}

TEST_F(TrainCliTest, SigtermWritesACheckpointAndResumeMatchesAStraightRun) {
  const std::vector<std::string> flags = {"--data", text_, "--steps", "400", "--save-every", "1000"};
  std::vector<std::string> straight = flags;
  straight.insert(straight.end(), {"--out", out("straight")});
  EXPECT_OK(train(straight));

  std::vector<std::string> args = {PF_TRAIN_BIN};
  for (const std::string& f : test::tiny_flags()) args.push_back(f);
  args.insert(args.end(), flags.begin(), flags.end());
  args.insert(args.end(), {"--out", out("killed")});
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  const std::string err_path = dir_.path("killed.err");
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  // Wait until a few steps are done, then ask it to stop.
  const std::string metrics_path = RunDirectory(out("killed")).metrics_path();
  int status = 0;
  bool exited = false;
  for (int i = 0; i < 30000 && !exited && test::metrics_lines(metrics_path).size() < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    exited = ::waitpid(pid, &status, WNOHANG) == pid;
  }
  ASSERT_FALSE(exited) << "performer-train ended before the signal: " << test::read_file(dir_.path("killed.err"));
  ::kill(pid, SIGTERM);
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM);
  const std::string err = test::read_file(err_path);
  EXPECT_TRUE(contains(err, "interrupted by SIGTERM after step")) << err;
  EXPECT_TRUE(contains(err, "resume with:\n  performer-train --resume " + out("killed"))) << err;
  const std::string latest = RunDirectory(out("killed")).latest();
  ASSERT_FALSE(latest.empty());
  const int64_t stopped_at = load_checkpoint(latest).progress.step;
  EXPECT_GT(stopped_at, 0);
  EXPECT_LT(stopped_at, 400);

  const test::CommandResult r = test::run_command({PF_TRAIN_BIN, "--resume", out("killed")});
  EXPECT_OK(r);
  EXPECT_EQ(metrics("killed"), metrics("straight"));
}

// Non-finite steps: tests/train/test_cli_faults.cpp (real overflow, no test hook).

// --time-limit ends the run like its last step (evaluation, checkpoint, exit 0) once the training wall time
// passes the limit; resuming with the time used up trains nothing, a larger limit goes on.
TEST_F(TrainCliTest, TimeLimitEndsTheRunWithEvaluationAndCheckpoint) {
  // Far more steps than 0.5 s can hold on any machine: the limit ends the run.
  const test::CommandResult r = train({"--data", text_, "--steps", "1000000", "--eval-every", "0", "--time-limit", "0.5",
                                       "--out", out("timed")});
  EXPECT_OK(r);
  EXPECT_TRUE(contains(r.out, "time limit: stopped at step")) << r.out;
  const Checkpoint c = load_checkpoint(RunDirectory(out("timed")).latest());
  EXPECT_GE(c.progress.step, 1);
  EXPECT_LT(c.progress.step, 1000000);
  EXPECT_GE(c.progress.elapsed_s, 0.5);
  const std::vector<std::string> lines = metrics("timed");
  ASSERT_FALSE(lines.empty());
  EXPECT_TRUE(contains(lines.back(), "\"type\":\"eval\"")) << lines.back();
  EXPECT_TRUE(contains(lines.back(), "\"step\":" + std::to_string(c.progress.step))) << lines.back();

  const test::CommandResult again = train({"--resume", out("timed")}, /*tiny=*/false);
  EXPECT_OK(again);
  EXPECT_EQ(load_checkpoint(RunDirectory(out("timed")).latest()).progress.step, c.progress.step);
  const test::CommandResult more =
      train({"--resume", out("timed"), "--time-limit", "0", "--steps", std::to_string(c.progress.step + 2)},
            /*tiny=*/false);
  EXPECT_OK(more);
  EXPECT_EQ(load_checkpoint(RunDirectory(out("timed")).latest()).progress.step, c.progress.step + 2);
}

// ---- defaults never make an explicit command fail (issue 16)

// `performer-train --data FILE --steps 2` trains on a small text file (shorter than one window of the
// default --seq-len 128) and on a small FASTA (fewer records than the default --batch-size 16), with no
// other flag: the default --warmup adapts to --steps, and --eval-every 250, --save-every 500 and
// --keep 3 beyond the run still give the final evaluation and checkpoint.
TEST_F(TrainCliTest, ShortRunOnASmallCorpusTrainsWithTheDefaults) {
  const std::string small_text = dir_.write("small.txt", "the cat sat on the mat. the dog ran to the red mat.\n");
  const std::string small_fasta = dir_.write("small.fasta", ">a\nMKTAYIAKQR\n>b\nMVLSPADKTN\n>c\nMSDNE\n");
  for (const std::string& data : {small_text, small_fasta}) {
    const std::string run = out(std::filesystem::path(data).filename().string() + ".run");
    const test::CommandResult r = train({"--data", data, "--steps", "2", "--out", run}, /*tiny=*/false);
    ASSERT_EQ(r.exit_code, 0) << data << "\n" << r.err;
    EXPECT_TRUE(contains(r.err, "warmup 0 = min(50, steps / 10)")) << r.err;
    EXPECT_TRUE(std::filesystem::exists(RunDirectory(run).checkpoint_path(2))) << data;
    const std::vector<std::string> lines = metrics(std::filesystem::path(run).filename().string());
    ASSERT_FALSE(lines.empty());
    EXPECT_TRUE(contains(lines.back(), "\"step\":2")) << lines.back();
  }
  // --steps 40: warm-up 4, not an error about the default 50.
  const test::CommandResult forty = train({"--data", small_text, "--steps", "40", "--print-config"}, /*tiny=*/false);
  ASSERT_EQ(forty.exit_code, 0) << forty.err;
  EXPECT_TRUE(contains(forty.out, "\nwarmup = -1\n")) << forty.out;  // auto: follows --steps when re-run
}

TEST_F(TrainCliTest, OnlyAnExplicitWarmupBeyondStepsIsAnError) {
  const test::CommandResult r =
      train({"--data", text_, "--steps", "40", "--warmup", "50", "--out", out("never")}, /*tiny=*/false);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, "--warmup 50: must not exceed --steps 40")) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out("never")));
}

// --heads defaults to 4; with a --dim it does not divide it becomes the largest count that does
// (and leaves an even head dim for rotary positions: --dim 20 gives 2 heads of 10, not 4 of 5). An
// explicit --heads is never changed.
TEST_F(TrainCliTest, DefaultHeadsAdaptToTheDim) {
  const test::CommandResult r = train({"--data", text_, "--dim", "30", "--print-config"}, /*tiny=*/false);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "\nheads = 3\n")) << r.out;
  const test::CommandResult rotary =
      train({"--data", text_, "--dim", "20", "--positions", "rotary", "--print-config"}, /*tiny=*/false);
  ASSERT_EQ(rotary.exit_code, 0) << rotary.err;
  EXPECT_TRUE(contains(rotary.out, "\nheads = 2\n")) << rotary.out;
  const test::CommandResult given = train({"--data", text_, "--dim", "30", "--heads", "4"}, /*tiny=*/false);
  EXPECT_EQ(given.exit_code, 2);
  EXPECT_TRUE(contains(given.err, "--heads 4: must divide --dim 30")) << given.err;
}

// --attention defaults to favor-local with a window of 16 (QUALITY.md), and with --objective mlm to favor.
// An explicit --attention is never changed: favor-local with mlm is bidirectional favor-local.
TEST_F(TrainCliTest, DefaultAttentionFollowsTheObjective) {
  const test::CommandResult causal = train({"--data", fasta_, "--print-config"}, /*tiny=*/false);
  ASSERT_EQ(causal.exit_code, 0) << causal.err;
  EXPECT_TRUE(contains(causal.out, "\nattention = \"favor-local\"\n")) << causal.out;
  EXPECT_TRUE(contains(causal.out, "\nlocal-window = 16\n")) << causal.out;
  const test::CommandResult mlm = train({"--data", fasta_, "--objective", "mlm", "--print-config"}, /*tiny=*/false);
  ASSERT_EQ(mlm.exit_code, 0) << mlm.err;
  EXPECT_TRUE(contains(mlm.out, "\nattention = \"favor\"\n")) << mlm.out;
  const test::CommandResult relu =
      train({"--data", fasta_, "--objective", "mlm", "--attention", "relu", "--print-config"}, /*tiny=*/false);
  ASSERT_EQ(relu.exit_code, 0) << relu.err;
  EXPECT_TRUE(contains(relu.out, "\nattention = \"relu\"\n")) << relu.out;
  const test::CommandResult given = train(
      {"--data", fasta_, "--objective", "mlm", "--attention", "favor-local", "--print-config"}, /*tiny=*/false);
  ASSERT_EQ(given.exit_code, 0) << given.err;
  EXPECT_TRUE(contains(given.out, "\nattention = \"favor-local\"\n")) << given.out;
}

// Without --out the run goes to runs/<date>-<time> under the current directory, and the banner says so.
TEST_F(TrainCliTest, BannerSaysWhereTheRunGoes) {
  std::filesystem::create_directory(out("cwd"));
  std::string cmd = "cd " + test::shell_arg(out("cwd")) + " && exec " + test::shell_arg(PF_TRAIN_BIN);
  for (const std::string& f : test::tiny_flags()) cmd += " " + test::shell_arg(f);
  cmd += " --steps 2 --data " + test::shell_arg(text_);
  const test::CommandResult r = test::run_command({"sh", "-c", cmd});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(std::filesystem::exists(out("cwd/runs")));
  const std::string run = std::filesystem::directory_iterator(out("cwd/runs"))->path().string();
  EXPECT_TRUE(contains(r.err, "output: " + run + " (no --out given: runs/<date>-<time> under the current directory)"))
      << r.err;
  const test::CommandResult given = train({"--data", text_, "--steps", "2", "--out", out("given")});
  ASSERT_EQ(given.exit_code, 0) << given.err;
  EXPECT_TRUE(contains(given.err, "output: " + out("given") + "\n")) << given.err;
}

TEST_F(TrainCliTest, BadFastaRefusalNamesTheFlagToSkipIt) {
  const std::string bad = dir_.write("bad.fasta", ">a\nMKV\n>b\nACJDE\n");
  const test::CommandResult r = train({"--data", bad, "--out", out("never")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, bad + ":4: invalid character 'J'")) << r.err;
  EXPECT_TRUE(contains(r.err, "--skip-bad-records")) << r.err;
}

// A DNA FASTA trains (its letters are amino-acid codes too) but the user is warned.
TEST_F(TrainCliTest, NucleotideFastaIsTrainedWithAWarning) {
  std::string dna;
  for (int i = 0; i < 30; ++i) dna += ">g" + std::to_string(i) + "\nACGTTGCAACGTNACGTTTGACCAGTAGGCAT\n";
  const std::string file = dir_.write("genes.fasta", dna);
  const test::CommandResult r = train({"--data", file, "--steps", "2", "--out", out("dna")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "performer-train: warning: " + file + ": 100.0% of the residues are A, C, G, T, U or N"))
      << r.err;
  const test::CommandResult protein = train({"--data", fasta_, "--steps", "2", "--out", out("protein")});
  ASSERT_EQ(protein.exit_code, 0) << protein.err;
  EXPECT_FALSE(contains(protein.err, "warning")) << protein.err;
}

}  // namespace
}  // namespace pf

namespace pf {
namespace {

// Checkpoints are fp32 whatever the precision: a run trained in fp32 resumes in bf16 and back, the
// banner says which products run.
TEST(TrainCliPrecision, CheckpointsResumeInEitherPrecision) {
  if (!bf16_supported()) GTEST_SKIP() << bf16_unsupported_reason();
  test::TempDir dir;
  const std::string text = dir.write("corpus.txt", test::word_text(4000, 3));
  auto train = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {PF_TRAIN_BIN};
    for (const std::string& f : test::tiny_flags()) args.push_back(f);
    args.insert(args.end(), extra.begin(), extra.end());
    return test::run_command(args);
  };
  const std::string run = dir.path("run");
  test::CommandResult r = train({"--data", text, "--steps", "6", "--precision", "fp32", "--out", run});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(test::contains(r.err, "fp32 products")) << r.err;
  const Checkpoint first = load_checkpoint(RunDirectory(run).latest());
  r = test::run_command({PF_TRAIN_BIN, "--resume", run, "--steps", "12", "--precision", "bf16"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(test::contains(r.err, "bf16 products")) << r.err;
  const Checkpoint second = load_checkpoint(RunDirectory(run).latest());
  EXPECT_EQ(second.progress.step, 12);
  for (const auto& [name, t] : second.model_state) {
    ASSERT_TRUE(first.model_state.count(name)) << name;
    EXPECT_EQ(t.shape(), first.model_state.at(name).shape()) << name;
  }
  r = test::run_command({PF_TRAIN_BIN, "--resume", run, "--steps", "14", "--precision", "fp32"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(load_checkpoint(RunDirectory(run).latest()).progress.step, 14);
}

}  // namespace
}  // namespace pf
