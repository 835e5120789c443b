// performer-prepare and performer-train on prepared datasets, end to end: prepare -> train -> kill -9
// -> resume equals an uninterrupted run; a full disk, a killed preparation and two preparations at
// once leave nothing a later run would trust; a lost cache is prepared again and the run resumes.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <thread>

#include "train/checkpoint.h"
#include "train/run_directory.h"
#include "tests/temp_dir.h"
#include "tests/train/train_test_util.h"

namespace pf {
namespace {

namespace fs = std::filesystem;
using test::contains;

using test::spawn;
using test::wait_for;

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Protein records, wrapped, about `bytes` long.
std::string fasta_of(int64_t bytes, uint64_t seed) {
  std::string s;
  for (int64_t i = 0; static_cast<int64_t>(s.size()) < bytes; ++i) s += test::random_fasta(200, seed + static_cast<uint64_t>(i));
  return s;
}

class PrepareCliTest : public ::testing::Test {
 protected:
  std::string out(const std::string& name) const { return dir_.path(name); }
  test::TempDir dir_;
};

TEST_F(PrepareCliTest, PrepareTrainKillResumeEqualsAStraightRun) {
  const std::string corpus = dir_.write("c.txt", test::word_text(20000, 3));
  const auto prep = test::run_command({PF_PREPARE_BIN, "--data", corpus, "--tokenizer", "sentencepiece", "--vocab-size",
                                       "300", "--out", out("ds"), "--threads", "2"});
  ASSERT_EQ(prep.exit_code, 0) << prep.err;
  EXPECT_TRUE(contains(prep.out, "prepared " + out("ds"))) << prep.out;
  std::vector<std::string> flags = {"--data", out("ds"), "--steps", "400", "--save-every", "1", "--keep", "2"};
  for (const std::string& f : test::tiny_flags()) flags.push_back(f);
  std::vector<std::string> straight = {PF_TRAIN_BIN};
  straight.insert(straight.end(), flags.begin(), flags.end());
  straight.insert(straight.end(), {"--out", out("straight")});
  const auto s = test::run_command(straight);
  ASSERT_EQ(s.exit_code, 0) << s.err;
  EXPECT_TRUE(contains(s.err, "dataset: reused")) << s.err;
  EXPECT_TRUE(contains(s.err, "sentencepiece 300 pieces")) << s.err;

  std::vector<std::string> first = {PF_TRAIN_BIN};
  first.insert(first.end(), flags.begin(), flags.end());
  first.insert(first.end(), {"--out", out("killed")});
  const RunDirectory run(out("killed"));
  const pid_t pid = spawn(first, out("killed.err"));
  for (int i = 0; i < 6000 && run.checkpoints().size() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ::kill(pid, SIGKILL);
  ASSERT_EQ(wait_for(pid), 1000 + SIGKILL) << test::read_file(out("killed.err"));
  ASSERT_FALSE(run.latest().empty());
  const auto resumed = test::run_command({PF_TRAIN_BIN, "--resume", out("killed")});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  test::expect_same_run(out("straight"), out("killed"));
}

TEST_F(PrepareCliTest, ALostCacheIsPreparedAgainAndTheRunResumes) {
  const std::string corpus = dir_.write("p.fasta", fasta_of(200000, 4));
  std::vector<std::string> args = {PF_TRAIN_BIN, "--data", corpus, "--cache-dir", out("cache"), "--steps", "6",
                                   "--stop-at", "3", "--out", out("run")};
  for (const std::string& f : test::tiny_flags()) args.push_back(f);
  const auto first = test::run_command(args);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_TRUE(contains(first.err, "dataset: prepared")) << first.err;
  fs::remove_all(out("cache"));
  const auto again = test::run_command({PF_TRAIN_BIN, "--resume", out("run")});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_TRUE(contains(again.err, "dataset: prepared")) << again.err;
  EXPECT_EQ(load_checkpoint(RunDirectory(out("run")).latest()).progress.step, 6);
  // An edit of the corpus (same size): the resume is refused, naming the file.
  std::string text = test::read_file(corpus);
  text[text.find('\n', 10) + 5] = text[text.find('\n', 10) + 5] == 'A' ? 'C' : 'A';
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  test::write_bytes(corpus, text);
  const auto edited = test::run_command({PF_TRAIN_BIN, "--resume", out("run"), "--steps", "8"});
  EXPECT_EQ(edited.exit_code, 2) << edited.err;
  EXPECT_TRUE(contains(edited.err, corpus) && contains(edited.err, "changed")) << edited.err;
}

// The same for a SentencePiece run: the training text edited after the first run (same size) is
// a new dataset, and resuming on it is refused naming the file.
TEST_F(PrepareCliTest, AResumeAfterTheSentencePieceTrainingTextChangedIsRefused) {
  const std::string corpus = dir_.write("s.txt", test::word_text(6000, 7));
  std::vector<std::string> args = {PF_TRAIN_BIN, "--data", corpus, "--tokenizer", "sentencepiece", "--vocab-size",
                                   "300", "--cache-dir", out("cache"), "--steps", "6", "--stop-at", "3", "--out",
                                   out("run")};
  for (const std::string& f : test::tiny_flags()) args.push_back(f);
  const auto first = test::run_command(args);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  std::string text = test::read_file(corpus);
  text[100] = text[100] == 'a' ? 'e' : 'a';
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  test::write_bytes(corpus, text);
  const auto resumed = test::run_command({PF_TRAIN_BIN, "--resume", out("run")});
  EXPECT_EQ(resumed.exit_code, 2) << resumed.err;
  EXPECT_TRUE(contains(resumed.err, corpus) && contains(resumed.err, "changed")) << resumed.err;
}

TEST_F(PrepareCliTest, AFullDiskDuringPreparationLeavesNothingBehind) {
  const std::string corpus = dir_.write("big.fasta", fasta_of(3 << 20, 5));
  const std::string err = out("full.err");
  const pid_t pid = spawn({PF_PREPARE_BIN, "--data", corpus, "--cache-dir", out("cache")}, err, [] {
    ::signal(SIGXFSZ, SIG_IGN);  // write() fails with EFBIG, as on a full disk
    struct rlimit r = {1 << 20, 1 << 20};
    ::setrlimit(RLIMIT_FSIZE, &r);
  });
  const int code = wait_for(pid);
  const std::string message = test::read_file(err);
  EXPECT_EQ(code, 2) << message;
  EXPECT_TRUE(contains(message, out("cache/datasets/big.fasta-"))) << message;
  EXPECT_TRUE(contains(message, std::strerror(EFBIG))) << message;
  for (const std::string& e : entries(out("cache/datasets"))) EXPECT_TRUE(e.ends_with(".lock")) << e;
  const auto later = test::run_command({PF_PREPARE_BIN, "--data", corpus, "--cache-dir", out("cache")});
  EXPECT_EQ(later.exit_code, 0) << later.err;
  EXPECT_TRUE(contains(later.out, "prepared ")) << later.out;
}

// A cache on a file system too small for the dataset: refused before any work, with the estimate.
// A 2 MiB tmpfs needs root (CI runs as root); elsewhere the test says why it is skipped.
TEST_F(PrepareCliTest, ACorpusThatCannotFitIsRefusedBeforeTheWork) {
  const std::string small = out("small");
  fs::create_directories(small);
  if (::geteuid() != 0 || std::system(("mount -t tmpfs -o size=2m tmpfs " + small + " 2>/dev/null").c_str()) != 0)
    GTEST_SKIP() << "needs root to mount a 2 MiB tmpfs";
  const std::string corpus = dir_.write("big.fasta", fasta_of(4 << 20, 8));
  const auto r = test::run_command({PF_PREPARE_BIN, "--data", corpus, "--cache-dir", small});
  const auto train = test::run_command({PF_TRAIN_BIN, "--data", corpus, "--cache-dir", small, "--steps", "1", "--out",
                                        out("run")});
  std::vector<std::string> left = entries(small + "/datasets");
  std::system(("umount " + small).c_str());
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "needs about 4 MiB") && contains(r.err, "MiB free") && contains(r.err, small)) << r.err;
  EXPECT_EQ(train.exit_code, 2) << train.err;
  EXPECT_TRUE(contains(train.err, "needs about 4 MiB")) << train.err;
  for (const std::string& e : left) EXPECT_TRUE(e.ends_with(".lock")) << e;
}

TEST_F(PrepareCliTest, AKilledPreparationIsNeverTrustedAndTwoAtOnceDoTheWorkOnce) {
  const std::string corpus = dir_.write("k.fasta", fasta_of(12 << 20, 6));
  const std::vector<std::string> args = {PF_PREPARE_BIN, "--data", corpus, "--cache-dir", out("cache"), "--threads", "1"};
  const pid_t killed = spawn(args, out("k.err"));
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  ::kill(killed, SIGKILL);
  wait_for(killed);
  for (const std::string& e : entries(out("cache/datasets"))) {  // only a lock, a temporary dir, or a finished dataset
    if (!e.ends_with(".lock") && e.find(".tmp-") == std::string::npos) {
      EXPECT_TRUE(fs::exists(out("cache/datasets/" + e + "/manifest.json"))) << e;
    }
  }
  const pid_t a = spawn(args, out("a.err"));
  const pid_t b = spawn(args, out("b.err"));
  EXPECT_EQ(wait_for(a), 0) << test::read_file(out("a.err"));
  EXPECT_EQ(wait_for(b), 0) << test::read_file(out("b.err"));
  int datasets = 0;
  for (const std::string& e : entries(out("cache/datasets"))) {
    EXPECT_EQ(e.find(".tmp-"), std::string::npos) << "a temporary directory was left: " << e;
    datasets += fs::is_directory(out("cache/datasets/" + e));
  }
  EXPECT_EQ(datasets, 1);
  const auto third = test::run_command(args);
  EXPECT_TRUE(contains(third.out, "reused ")) << third.out;
}

TEST_F(PrepareCliTest, BadInputIsRefusedByName) {
  const auto missing = test::run_command({PF_PREPARE_BIN, "--data", out("nope.txt")});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_TRUE(contains(missing.err, out("nope.txt"))) << missing.err;
  const std::string corpus = dir_.write("ok.txt", test::word_text(500, 1));
  ASSERT_EQ(test::run_command({PF_PREPARE_BIN, "--data", corpus, "--out", out("ds")}).exit_code, 0);
  const auto exists = test::run_command({PF_PREPARE_BIN, "--data", corpus, "--out", out("ds")});
  EXPECT_EQ(exists.exit_code, 2);
  EXPECT_TRUE(contains(exists.err, "already exists")) << exists.err;
  const auto bad = test::run_command({PF_PREPARE_BIN, "--data", dir_.write("bad.fasta", ">a\nMK1V\n"), "--out", out("b")});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_TRUE(contains(bad.err, "bad.fasta:2:")) << bad.err;
  EXPECT_FALSE(fs::exists(out("b")));
  const auto with_other = test::run_command({PF_TRAIN_BIN, "--data", out("ds"), corpus, "--steps", "1"});
  EXPECT_EQ(with_other.exit_code, 2);
  EXPECT_TRUE(contains(with_other.err, "prepared dataset")) << with_other.err;
}

}  // namespace
}  // namespace pf
