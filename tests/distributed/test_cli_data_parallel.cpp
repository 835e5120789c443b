// performer-train under mpirun, end to end (this test starts mpirun itself): 2 ranks train to the
// losses of one process with the same --batch-size, write world-size and comm_ms, stop together on a
// SIGTERM sent to one rank's process, and resume from rank 0's checkpoint under 2 ranks and under 1.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <regex>
#include <thread>

#include "tests/train/train_test_util.h"
#include "train/checkpoint.h"
#include "train/run_directory.h"

namespace pf {
namespace {

using test::contains;

// The tiny run of the train tests with a global batch of 8 rows, fp32 products and clipping.
std::vector<std::string> flags(const std::string& corpus) {
  std::vector<std::string> f = {"--data", corpus, "--precision", "fp32", "--clip", "0.5", "--steps", "20"};
  for (const std::string& s : test::tiny_flags()) f.push_back(s);
  for (size_t i = 0; i + 1 < f.size(); ++i)
    if (f[i] == "--batch-size") f[i + 1] = "8";
  return f;
}

std::vector<std::string> mpirun(int ranks) {
  return {PF_MPIEXEC, "-np", std::to_string(ranks), "--oversubscribe", "--allow-run-as-root"};
}

std::vector<std::string> cat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The numbers of `key` in the lines of one type of a metrics file.
std::vector<double> values(const std::string& metrics, const std::string& type, const std::string& key) {
  std::vector<double> out;
  const std::regex re("\"" + key + "\":([-0-9.eE+]+)");
  for (const std::string& line : test::metrics_lines(metrics)) {
    if (!contains(line, "\"type\":\"" + type + "\"")) continue;
    std::smatch m;
    if (std::regex_search(line, m, re)) out.push_back(std::stod(m[1]));
  }
  return out;
}

TEST(CliDataParallel, TwoRanksTrainToOneProcessLosses) {
  test::TempDir dir;
  const std::string corpus = dir.write("corpus.txt", test::word_text(4000, 5));
  const auto one = test::run_command(cat({PF_TRAIN_BIN}, cat(flags(corpus), {"--out", dir.path("one")})));
  ASSERT_EQ(one.exit_code, 0) << one.err;
  const auto two = test::run_command(cat(mpirun(2), cat({PF_TRAIN_BIN}, cat(flags(corpus), {"--out", dir.path("two")}))));
  ASSERT_EQ(two.exit_code, 0) << two.out << two.err;
  EXPECT_TRUE(contains(two.err, "parallel: data parallel: 2 ranks")) << two.err;
  EXPECT_TRUE(contains(one.err, "parallel: one process")) << one.err;
  // Only rank 0 prints: one banner.
  EXPECT_EQ(two.err.find("performer-train: starting a new run"), two.err.rfind("performer-train: starting a new run"));

  const auto l1 = values(dir.path("one/metrics.jsonl"), "train", "loss");
  const auto l2 = values(dir.path("two/metrics.jsonl"), "train", "loss");
  ASSERT_EQ(l1.size(), 20u);
  ASSERT_EQ(l2.size(), 20u);
  for (size_t i = 0; i < l1.size(); ++i) EXPECT_NEAR(l2[i], l1[i], 1e-5 * l1[i]) << "step " << i + 1;
  const auto v1 = values(dir.path("one/metrics.jsonl"), "eval", "val_loss");
  const auto v2 = values(dir.path("two/metrics.jsonl"), "eval", "val_loss");
  ASSERT_EQ(v1.size(), v2.size());
  ASSERT_FALSE(v1.empty());
  EXPECT_EQ(v2[0], v1[0]);  // step 0: the same weights, sharded evaluation is bit-identical
  const auto b1 = values(dir.path("one/metrics.jsonl"), "eval", "val_bits_per_byte");
  const auto b2 = values(dir.path("two/metrics.jsonl"), "eval", "val_bits_per_byte");
  ASSERT_EQ(b1.size(), v1.size());
  ASSERT_EQ(b2.size(), v2.size());
  EXPECT_EQ(b2[0], b1[0]);
  for (size_t i = 0; i < v1.size(); ++i) EXPECT_NEAR(v2[i], v1[i], 1e-5 * v1[i]);
  EXPECT_EQ(values(dir.path("two/metrics.jsonl"), "train", "comm_ms").size(), 20u);
  EXPECT_TRUE(values(dir.path("one/metrics.jsonl"), "train", "comm_ms").empty());
  EXPECT_TRUE(contains(test::read_file(dir.path("two/config.toml")), "world-size = 2"));
  EXPECT_TRUE(contains(test::read_file(dir.path("one/config.toml")), "world-size = 1"));
}

// The pid of the process of this job's rank `rank`: its environment holds OMPI_COMM_WORLD_RANK and its
// command line the unique output directory.
pid_t rank_pid(const std::string& out_dir, int rank) {
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string cmd = test::read_file(e.path().string() + "/cmdline");
    if (cmd.find(out_dir) == std::string::npos || cmd.find("performer-train") == std::string::npos) continue;
    const std::string env = test::read_file(e.path().string() + "/environ");
    if (env.find(std::string("OMPI_COMM_WORLD_RANK=") + std::to_string(rank) + '\0') != std::string::npos)
      return static_cast<pid_t>(std::stol(name));
  }
  return -1;
}

TEST(CliDataParallel, SigtermToOneRankStopsBothAndResumes) {
  test::TempDir dir;
  const std::string corpus = dir.write("corpus.txt", test::word_text(4000, 5));
  const std::string out = dir.path("sig");
  std::vector<std::string> args = cat(mpirun(2), cat({PF_TRAIN_BIN}, cat(flags(corpus), {"--out", out})));
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == "--steps") args[i + 1] = "100000";
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const int log = ::open((out + ".log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(log, 1);
    ::dup2(log, 2);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  // Wait for training to be under way (a train line of step 5), then SIGTERM rank 1 only.
  pid_t target = -1;
  for (int i = 0; i < 600 && target < 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (values(out + "/metrics.jsonl", "train", "loss").size() >= 5) target = rank_pid(out, 1);
  }
  ASSERT_GT(target, 0) << test::read_file(out + ".log");
  ASSERT_EQ(::kill(target, SIGTERM), 0);
  int status = 0;
  ::waitpid(child, &status, 0);
  const std::string log = test::read_file(out + ".log");
  ASSERT_TRUE(WIFEXITED(status)) << log;
  EXPECT_EQ(WEXITSTATUS(status), 143) << log;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(log, m, std::regex("interrupted by SIGTERM after step ([0-9]+)"))) << log;
  const int64_t step = std::stoll(m[1]);
  EXPECT_TRUE(contains(log, "mpirun -np 2 performer-train --resume")) << log;
  const Checkpoint ck = load_checkpoint(resolve_resume_path(out));  // rank 0's latest: the stop step
  EXPECT_EQ(ck.progress.step, step);
  EXPECT_EQ(ck.config.distributed.world_size, 2);
  EXPECT_EQ(ck.rank_model_rngs.size(), 2u);

  // Resume under 2 ranks, then under one process (a note says it is not bit for bit).
  const auto two = test::run_command(
      cat(mpirun(2), {PF_TRAIN_BIN, "--resume", out, "--steps", std::to_string(step + 3), "--eval-every", "0"}));
  ASSERT_EQ(two.exit_code, 0) << two.err;
  EXPECT_FALSE(contains(two.err, "not bit for bit")) << two.err;
  const auto one = test::run_command({PF_TRAIN_BIN, "--resume", out, "--steps", std::to_string(step + 6)});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_TRUE(contains(one.err, "written by 2 ranks and this run has 1 process")) << one.err;
  EXPECT_TRUE(contains(one.err, "not bit for bit")) << one.err;
  const auto losses = values(out + "/metrics.jsonl", "train", "loss");
  ASSERT_EQ(static_cast<int64_t>(losses.size()), step + 6);
  for (double l : losses) EXPECT_TRUE(std::isfinite(l));
}

TEST(CliDataParallel, TooSmallBatchIsRefusedNamingTheFlag) {
  test::TempDir dir;
  const std::string corpus = dir.write("corpus.txt", test::word_text(500, 5));
  const auto r = test::run_command(cat(mpirun(2), {PF_TRAIN_BIN, "--data", corpus, "--batch-size", "1", "--steps", "2",
                                                   "--out", dir.path("x")}));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "--batch-size 1: must be at least the number of ranks, 2")) << r.err;
}

// Two ranks given different corpora (an MPMD launch: one --data per rank) are refused: every rank must
// train on the same bytes. Rank 0 prepares the dataset while the other waits; both read the same files.
TEST(CliDataParallel, RanksWithDifferentDataAreRefusedAndOneDatasetIsShared) {
  test::TempDir dir;
  const std::string a = dir.write("a.txt", test::word_text(600, 5));
  const std::string b = dir.write("b.txt", test::word_text(600, 6));
  const std::vector<std::string> rest = {"--steps", "2", "--cache-dir", dir.path("cache"), "--out", dir.path("x")};
  std::vector<std::string> args = {PF_MPIEXEC, "--oversubscribe", "--allow-run-as-root", "-np", "1", PF_TRAIN_BIN,
                                   "--data", a};
  args = cat(cat(args, rest), {":", "-np", "1", PF_TRAIN_BIN, "--data", b});
  args = cat(args, rest);
  const auto r = test::run_command(args);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "differs from rank 0's")) << r.err;
  EXPECT_TRUE(contains(r.err, "same --data")) << r.err;
  // The same data on both ranks: one dataset in the cache, prepared once.
  const auto ok = test::run_command(cat(mpirun(2), cat({PF_TRAIN_BIN}, cat(flags(a), {"--cache-dir", dir.path("cache2"),
                                                                                     "--out", dir.path("y")}))));
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  int datasets = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path("cache2/datasets")))
    datasets += std::filesystem::is_directory(e.path());
  EXPECT_EQ(datasets, 1);
}

// Issue 30, item 11: when one rank alone fails (here rank 1 is given a corpus that does not exist, as
// when a file is missing on one host), its own message reaches the user, with its rank, before the job
// is ended.
TEST(CliDataParallel, OneRanksOwnErrorReachesTheUser) {
  test::TempDir dir;
  const std::string corpus = dir.write("corpus.txt", test::word_text(500, 5));
  const std::string missing = dir.path("only-on-another-host.txt");
  const std::vector<std::string> rank0 = {PF_TRAIN_BIN, "--data", corpus, "--steps", "2", "--batch-size", "4",
                                          "--out", dir.path("x")};
  std::vector<std::string> rank1 = rank0;
  rank1[2] = missing;
  const auto r = test::run_command(cat(cat({PF_MPIEXEC, "--oversubscribe", "--allow-run-as-root", "-np", "1"}, rank0),
                                       cat({":", "-np", "1"}, rank1)));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "performer-train: rank 1 of 2: error: --data " + missing + ": no such file")) << r.err;
}

}  // namespace
}  // namespace pf
