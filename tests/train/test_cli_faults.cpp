// performer-train under faults (issue 16), run as a user would run it: the disk fills up while a
// checkpoint is written, the output directory cannot be written or disappears during the run, a
// second process is started on a run directory that is still training, and kill -9 strikes at
// random moments 20 times in a row. No hook in the program: the faults are real (a file-size limit,
// another user, a removed directory, signals).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <thread>

#include "base/atomic_file.h"
#include "base/random.h"
#include "train/checkpoint.h"
#include "train/run_directory.h"
#include "train_test_util.h"

namespace pf {
namespace {

using test::contains;
namespace fs = std::filesystem;

using test::spawn;
using test::wait_for;

std::vector<std::string> temp_files(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (is_atomic_temp_name(e.path().filename().string())) out.push_back(e.path().string());
  return out;
}

class TrainFaultTest : public ::testing::Test {
 public:
  void SetUp() override { text_ = dir_.write("corpus.txt", test::word_text(4000, 3)); }
  std::vector<std::string> train_args(const std::vector<std::string>& extra, bool tiny = true) const {
    std::vector<std::string> args = {PF_TRAIN_BIN};
    if (tiny)
      for (const std::string& f : test::tiny_flags()) args.push_back(f);
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  test::CommandResult train(const std::vector<std::string>& extra, bool tiny = true) const {
    return test::run_command(train_args(extra, tiny));
  }
  std::string out(const std::string& name) const { return dir_.path(name); }
  // Polls until `ready` or the child ends (then false).
  static bool wait_until(pid_t pid, const std::function<bool()>& ready) {
    for (int i = 0; i < 3000; ++i) {
      if (ready()) return true;
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  // A long run into out(name) (far more steps than any test needs) that checkpoints every `save_every`
  // steps, frozen with SIGSTOP once it has a checkpoint, so that it meets whatever the test does next
  // whatever the machine's speed. Its pid, or -1 after a fatal failure.
  pid_t start_frozen(const std::string& name, const std::string& save_every, const std::string& err_path) {
    const pid_t pid = spawn(train_args({"--data", text_, "--steps", "100000", "--save-every", save_every,
                                        "--eval-every", "0", "--out", out(name)}),
                            err_path);
    EXPECT_GT(pid, 0);
    if (pid <= 0) return -1;
    const RunDirectory run(out(name));
    const bool ready = wait_until(pid, [&] { return !run.latest().empty(); });
    EXPECT_TRUE(ready) << test::read_file(err_path);
    if (!ready) return -1;
    ::kill(pid, SIGSTOP);
    return pid;
  }

 protected:
  test::TempDir dir_;
  std::string text_;
};


// ---- 2. Disk full while writing a checkpoint (a file-size limit below the checkpoint's size: every
// write past it fails with EFBIG, as on a full disk): a clear error naming the file, exit 1, the
// previous checkpoint and best.ckpt intact and loadable, no temporary file; a resume once the
// space is back continues.
TEST_F(TrainFaultTest, DiskFullWhileSavingKeepsThePreviousCheckpoints) {
  ASSERT_EQ(train({"--data", text_, "--steps", "12", "--stop-at", "4", "--save-every", "2", "--eval-every", "2", "--out",
                   out("full")})
                .exit_code,
            0);
  const RunDirectory run(out("full"));
  const std::string ckpt4 = test::read_file(run.checkpoint_path(4));
  const std::string best = test::read_file(run.best_path());
  ASSERT_FALSE(ckpt4.empty());
  ASSERT_FALSE(best.empty());
  const rlim_t limit = static_cast<rlim_t>(ckpt4.size() / 2);  // metrics lines, config and stderr stay far below

  const std::string err_path = out("full.err");
  const pid_t pid = spawn(train_args({"--resume", out("full")}, false), err_path, [limit] {
    ::signal(SIGXFSZ, SIG_IGN);  // write() fails with EFBIG instead of the signal killing the process
    struct rlimit r = {limit, limit};
    ::setrlimit(RLIMIT_FSIZE, &r);
  });
  ASSERT_GT(pid, 0);
  const int code = wait_for(pid);
  const std::string err = test::read_file(err_path);
  EXPECT_EQ(code, 1) << err;
  EXPECT_TRUE(contains(err, "performer-train: error: cannot save ")) << err;
  EXPECT_TRUE(contains(err, "cannot write " + out("full") + "/")) << err;
  EXPECT_TRUE(contains(err, std::strerror(EFBIG))) << err;
  EXPECT_TRUE(contains(err, "the newest checkpoint on disk is " + run.checkpoint_path(4))) << err;
  EXPECT_EQ(temp_files(out("full")), std::vector<std::string>{}) << "temporary files left behind";
  EXPECT_EQ(test::read_file(run.checkpoint_path(4)), ckpt4);
  EXPECT_EQ(test::read_file(run.best_path()), best);
  EXPECT_EQ(load_checkpoint(run.checkpoint_path(4)).progress.step, 4);
  EXPECT_NO_THROW(load_checkpoint(run.best_path()));
  EXPECT_EQ(run.latest(), run.checkpoint_path(4));

  const test::CommandResult again = test::run_command({PF_TRAIN_BIN, "--resume", out("full")});
  EXPECT_OK(again);
  EXPECT_TRUE(contains(again.err, "at step 4")) << again.err;
  EXPECT_EQ(load_checkpoint(run.latest()).progress.step, 12);
}

// ---- 3. An output directory that cannot be written: refused before training, with the directory
// named, exit 1, not a crash. Root may write anywhere, so as root the program runs as `nobody`.
void drop_to_nobody() {
  if (::geteuid() == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(125);
  }
}

TEST_F(TrainFaultTest, OutputDirectoryThatCannotBeWrittenIsRefusedBeforeTraining) {
  // A first run (as this user), then the directory is made read-only for the user who resumes.
  ASSERT_EQ(train({"--data", text_, "--steps", "8", "--stop-at", "4", "--out", out("ro")}).exit_code, 0);
  fs::permissions(dir_.path(""), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                     fs::perms::others_read | fs::perms::others_exec);
  for (const auto& e : fs::directory_iterator(out("ro")))
    fs::permissions(e.path(), fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
  const fs::perms read_only = fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                              fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec;
  fs::permissions(out("ro"), read_only);
  fs::create_directory(out("ro_empty"));
  fs::permissions(out("ro_empty"), read_only);
  const std::string before = test::directory_fingerprint(out("ro"));

  struct Case {
    std::vector<std::string> args;
    std::string dir;
  } cases[] = {{train_args({"--resume", out("ro")}, false), out("ro")},
               {train_args({"--data", text_, "--steps", "4", "--out", out("ro_empty")}), out("ro_empty")}};
  for (const Case& c : cases) {
    const std::string err_path = out("ro.err");
    const int code = wait_for(spawn(c.args, err_path, drop_to_nobody));
    const std::string err = test::read_file(err_path);
    EXPECT_EQ(code, 1) << err;
    EXPECT_TRUE(contains(err, "performer-train: error: the output directory " + c.dir + " is not usable")) << err;
    EXPECT_TRUE(contains(err, std::strerror(EACCES))) << err;
    EXPECT_FALSE(contains(err, "step 1/")) << "it trained: " << err;
  }
  EXPECT_EQ(test::directory_fingerprint(out("ro")), before);
  fs::permissions(out("ro"), fs::perms::owner_all);
  fs::permissions(out("ro_empty"), fs::perms::owner_all);
}

// ---- 3. The output directory removed during the run: a clear error at the next save (exit 1), not
// a crash.
TEST_F(TrainFaultTest, OutputDirectoryRemovedDuringTheRunIsAClearError) {
  const std::string err_path = out("gone.err");
  // Frozen while its directory is removed, then continued: it meets the missing directory at its next save.
  const pid_t pid = start_frozen("gone", "4", err_path);
  ASSERT_GT(pid, 0);
  std::error_code ec;
  for (int i = 0; i < 50 && fs::exists(out("gone")); ++i) fs::remove_all(out("gone"), ec);
  ASSERT_FALSE(fs::exists(out("gone")));
  ::kill(pid, SIGCONT);
  const int code = wait_for(pid);
  const std::string err = test::read_file(err_path);
  EXPECT_EQ(code, 1) << err;
  EXPECT_TRUE(contains(err, "performer-train: error: cannot save the checkpoint of step ")) << err;
  EXPECT_TRUE(contains(err, "the output directory " + out("gone") + " no longer exists (removed during the run?)"))
      << err;
}

// ---- 4. Two processes on one run directory: the second is refused while the first trains (also
// with --overwrite), performer-eval may still read; after kill -9 of the first, resume works.
TEST_F(TrainFaultTest, SecondWriterIsRefusedAndKillNineReleasesTheLock) {
  const std::string err_path = out("first.err");
  // Frozen once it has a checkpoint: it holds its lock while the others try.
  const pid_t first = start_frozen("busy", "2", err_path);
  ASSERT_GT(first, 0);
  const RunDirectory run(out("busy"));

  const std::string in_use = "the output directory " + out("busy") + " is in use: another performer-train is writing";
  const test::CommandResult resume = test::run_command({PF_TRAIN_BIN, "--resume", out("busy")});
  EXPECT_EQ(resume.exit_code, 2) << resume.err;
  EXPECT_TRUE(contains(resume.err, in_use)) << resume.err;
  const test::CommandResult overwrite = train({"--data", text_, "--steps", "4", "--out", out("busy"), "--overwrite"});
  EXPECT_EQ(overwrite.exit_code, 2) << overwrite.err;
  EXPECT_TRUE(contains(overwrite.err, in_use)) << overwrite.err;
  const test::CommandResult eval =
      test::run_command({PF_EVAL_BIN, "--checkpoint", out("busy"), "--data", text_, "--batches", "1"});
  EXPECT_OK(eval);

  ::kill(first, SIGKILL);
  EXPECT_EQ(wait_for(first), 1000 + SIGKILL);
  const int64_t at = load_checkpoint(run.latest()).progress.step;
  const test::CommandResult after =
      test::run_command({PF_TRAIN_BIN, "--resume", out("busy"), "--steps", std::to_string(at + 2)});
  EXPECT_OK(after);
  EXPECT_TRUE(contains(after.err, "at step " + std::to_string(at))) << after.err;
  EXPECT_EQ(load_checkpoint(run.latest()).progress.step, at + 2);
}

// ---- 5. kill -9 at random moments, 20 times in a row, during a run that saves every step: after
// each kill the newest checkpoint loads, and the next resume goes on; in the end the run's metrics
// and final checkpoint are those of a run never interrupted.
TEST_F(TrainFaultTest, KillNineTwentyTimesThenTheRunEqualsAStraightOne) {
  const std::vector<std::string> flags = {"--data", text_, "--steps", "1000", "--save-every", "1", "--keep", "2"};
  std::vector<std::string> straight = flags;
  straight.insert(straight.end(), {"--out", out("straight")});
  ASSERT_EQ(train(straight).exit_code, 0);

  // The moments: three rounds in four wait until the run has saved a step beyond the previous
  // round's newest checkpoint (so the run moves on whatever the speed of the machine) and then kill
  // it 0 to 20 ms later, in a step, a metrics line or a checkpoint write; every fourth round kills 0
  // to 40 ms after the start (loading, cleaning up, truncating metrics.jsonl, writing config.toml).
  // A step that saves takes a few ms here (2.5 ms measured), so 20 rounds of at most 20 ms and a poll
  // use a fraction of the 1000 steps.
  std::vector<std::string> first = flags;
  first.insert(first.end(), {"--out", out("killed")});
  std::vector<std::string> resume = {"--resume", out("killed")};
  const RunDirectory run(out("killed"));
  const std::string err_path = out("killed.err");
  auto newest_step = [&]() -> int64_t {
    const auto all = run.checkpoints();
    return all.empty() ? 0 : all.back().first;
  };
  Generator gen(16);
  int kills = 0, during_write = 0;
  int64_t before = 0;
  for (int round = 0; round < 20; ++round) {
    const pid_t pid = spawn(train_args(round == 0 ? first : resume, round == 0), err_path);
    ASSERT_GT(pid, 0);
    if (round % 4 == 3) {
      std::this_thread::sleep_for(std::chrono::microseconds(gen.below(40000)));
    } else {
      const bool moved = wait_until(pid, [&] { return newest_step() > before; });
      if (!moved) FAIL() << "round " << round << ": the run ended before the signal: " << test::read_file(err_path);
      std::this_thread::sleep_for(std::chrono::microseconds(gen.below(20000)));
    }
    ::kill(pid, SIGKILL);
    const int code = wait_for(pid);
    ASSERT_EQ(code, 1000 + SIGKILL) << "round " << round << ": " << test::read_file(err_path);
    ++kills;
    if (!temp_files(out("killed")).empty()) ++during_write;
    const std::string latest = run.latest();
    ASSERT_FALSE(latest.empty()) << "round " << round;
    Checkpoint c;
    ASSERT_NO_THROW(c = load_checkpoint(latest)) << "round " << round;
    EXPECT_GE(c.progress.step, before) << "round " << round;
    before = c.progress.step;
  }
  EXPECT_EQ(kills, 20) << "every round should have been killed mid-run";
  RecordProperty("kills_during_a_file_write", during_write);  // informative: it depends on timing
  std::printf("kill -9: %d of %d during a file write (a temporary file left)\n", during_write, kills);
  // A line cut short (a write torn by a crash of the machine) does not break the resume either.
  {
    std::ofstream torn(run.metrics_path(), std::ios::app | std::ios::binary);
    torn << R"({"type":"train","step":99999,"lo)";
  }
  const test::CommandResult last = test::run_command({PF_TRAIN_BIN, "--resume", out("killed")});
  EXPECT_OK(last);
  test::expect_same_run(out("straight"), out("killed"));
  EXPECT_EQ(temp_files(out("killed")), std::vector<std::string>{});
}

// ---- 9. Real non-finite values (no hook): a learning rate so large that the first update sends the
// parameters to about 1e29, after which every logit overflows. Each such step is skipped, logged and
// counted; after --max-nonfinite of them in a row the run stops with exit code 3 and a checkpoint of
// the last good, finite parameters.
TEST_F(TrainFaultTest, OverflowingStepsAreSkippedThenStopTheRun) {
  const test::CommandResult r = train({"--data", text_, "--steps", "20", "--lr", "1e30", "--out", out("nan")});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_TRUE(contains(r.err, "step 2: non-finite loss")) << r.err;
  EXPECT_TRUE(contains(r.err, "update skipped, parameters unchanged (1 in a row)")) << r.err;
  EXPECT_TRUE(contains(r.err, "stopped: 5 non-finite steps in a row (last at step 6)")) << r.err;
  const Checkpoint c = load_checkpoint(RunDirectory(out("nan")).latest());
  EXPECT_EQ(c.progress.step, 6);
  EXPECT_EQ(c.progress.skipped_steps, 5);
  // The parameters are those after step 1, the one update applied.
  ASSERT_EQ(train({"--data", text_, "--steps", "20", "--lr", "1e30", "--stop-at", "1", "--out", out("one")}).exit_code,
            0);
  const Checkpoint one = load_checkpoint(RunDirectory(out("one")).latest());
  int64_t compared = 0;
  for (const auto& [name, v] : c.model_state) {
    for (float x : v.to_vector()) ASSERT_TRUE(std::isfinite(x)) << name;
    if (name.find("projection") != std::string::npos) continue;  // buffers redrawn every 3 steps
    EXPECT_EQ(max_abs_diff(v, one.model_state.at(name)), 0.0f) << name;
    ++compared;
  }
  EXPECT_GT(compared, 5);
  const std::vector<std::string> lines = test::metrics_lines(RunDirectory(out("nan")).metrics_path());
  int skips = 0;
  for (const std::string& line : lines) skips += contains(line, R"("type":"skip")") ? 1 : 0;
  EXPECT_EQ(skips, 5);
}

}  // namespace
}  // namespace pf
