// performer-eval and performer-generate end to end on checkpoints trained by performer-train.
#include <gtest/gtest.h>

#include <cmath>
#include <regex>

#include "train/run_directory.h"
#include "train_test_util.h"

namespace pf {
namespace {

using test::contains;

double json_field(const std::string& json, const std::string& key) {
  const std::regex re("\"" + key + "\":([-0-9.eE+]+)");
  std::smatch m;
  if (!std::regex_search(json, m, re)) return NAN;
  return std::stod(m[1].str());
}

std::string json_raw(const std::string& json, const std::string& key) {
  const std::regex re("\"" + key + "\":([^,}]+)");
  std::smatch m;
  return std::regex_search(json, m, re) ? m[1].str() : "";
}

class ToolsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    const std::string train = dir_->write("train.txt", test::word_text(4000, 11));
    const std::string val = dir_->write("val.txt", test::word_text(300, 12));
    std::vector<std::string> args = {PF_TRAIN_BIN};
    for (const std::string& f : test::tiny_flags()) args.push_back(f);
    for (const char* f : {"--steps", "40", "--eval-batches", "0", "--lr", "0.005"}) args.push_back(f);
    args.insert(args.end(), {"--data", train, "--val-data", val, "--out", dir_->path("text")});
    const test::CommandResult r = test::run_command(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;

    // Proteins that all start MKTAYIAKQ, then one variable residue, then end.
    std::string fasta;
    const char* aa = "ACDEFGHIKLMNPQRSTVWY";
    for (int rep = 0; rep < 10; ++rep)
      for (int i = 0; i < 20; ++i) fasta += ">p" + std::to_string(rep * 20 + i) + "\nMKTAYIAKQ" + aa[i] + "\n";
    const std::string proteins = dir_->write("short.fasta", fasta);
    std::vector<std::string> pargs = {PF_TRAIN_BIN};
    for (const std::string& f : test::tiny_flags()) pargs.push_back(f);
    for (const char* f : {"--steps", "80", "--seq-len", "16", "--batch-size", "8", "--lr", "0.01", "--warmup", "5"})
      pargs.push_back(f);
    pargs.insert(pargs.end(), {"--data", proteins, "--out", dir_->path("protein")});
    const test::CommandResult p = test::run_command(pargs);
    ASSERT_EQ(p.exit_code, 0) << p.err;

    std::vector<std::string> margs = {PF_TRAIN_BIN};
    for (const std::string& f : test::tiny_flags()) margs.push_back(f);
    for (const char* f : {"--steps", "6", "--objective", "mlm"}) margs.push_back(f);
    margs.insert(margs.end(), {"--data", proteins, "--out", dir_->path("mlm")});
    const test::CommandResult m = test::run_command(margs);
    ASSERT_EQ(m.exit_code, 0) << m.err;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static test::TempDir* dir_;
};
test::TempDir* ToolsTest::dir_ = nullptr;

TEST_F(ToolsTest, EvalJsonMatchesTheTrainingEvaluation) {
  const std::string run = dir_->path("text");
  const test::CommandResult r = test::run_command(
      {PF_EVAL_BIN, "--checkpoint", run, "--data", dir_->path("val.txt"), "--json", "--threads", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << "one line: " << r.out;
  const double loss = json_field(r.out, "loss");
  EXPECT_NEAR(json_field(r.out, "bits_per_token"), loss / std::log(2.0), 1e-9);
  EXPECT_NEAR(json_field(r.out, "perplexity"), std::exp(loss), 1e-9 * std::exp(loss));
  const double acc = json_field(r.out, "accuracy");
  EXPECT_GT(acc, 0.0);
  EXPECT_LE(acc, 1.0);
  EXPECT_EQ(json_field(r.out, "step"), 40);
  EXPECT_GT(json_field(r.out, "tokens"), 1000.0);
  EXPECT_TRUE(contains(r.out, "\"objective\":\"causal\""));
  // The same model on the same validation file: exactly the last evaluation of the run.
  const auto lines = test::metrics_lines(RunDirectory(run).metrics_path());
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(json_raw(r.out, "loss"), json_raw(lines.back(), "val_loss")) << lines.back();
  EXPECT_EQ(json_raw(r.out, "accuracy"), json_raw(lines.back(), "val_accuracy"));
}

TEST_F(ToolsTest, EvalTextAndMaskedLm) {
  const test::CommandResult r =
      test::run_command({PF_EVAL_BIN, "--checkpoint", dir_->path("mlm"), "--data", dir_->path("short.fasta")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "bits/token")) << r.out;
  EXPECT_TRUE(contains(r.out, "masked-token accuracy")) << r.out;
  const test::CommandResult bad =
      test::run_command({PF_EVAL_BIN, "--checkpoint", dir_->path("val.txt"), "--data", dir_->path("val.txt")});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_TRUE(contains(bad.err, "not a performer-cpp checkpoint file")) << bad.err;
}

// performer-eval scores every token of every record, in consecutive windows of the model's seq-len
// (16 here): a causal record of L residues framed <bos> ... <eos> has L + 1 targets.
TEST_F(ToolsTest, EvalScoresEveryTokenOfEveryRecord) {
  std::string fasta;
  const char* aa = "ACDEFGHIKLMNPQRSTVWY";
  int64_t expected = 0;
  for (int64_t len : {400, 100, 37, 5, 15, 16}) {
    fasta += ">r" + std::to_string(len) + "\n";
    for (int64_t i = 0; i < len; ++i) fasta += aa[(i * 3 + len) % 20];
    fasta += "\n";
    expected += len + 1;
  }
  const std::string file = dir_->write("long.fasta", fasta);
  const test::CommandResult r =
      test::run_command({PF_EVAL_BIN, "--checkpoint", dir_->path("protein"), "--data", file, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json_field(r.out, "tokens"), static_cast<double>(expected)) << r.out;  // first windows only: 86

  // Text: every byte but the first, over many windows of 32.
  const std::string text = dir_->write("long.txt", test::word_text(500, 13));
  const test::CommandResult t =
      test::run_command({PF_EVAL_BIN, "--checkpoint", dir_->path("text"), "--data", text, "--json"});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_EQ(json_field(t.out, "tokens"), static_cast<double>(test::read_file(text).size() - 1)) << t.out;
}

// A text shorter than one window (seq-len + 1 = 33 bytes) is scored as one partial window; it is not
// split into training and validation parts first.
TEST_F(ToolsTest, EvalReadsATextShorterThanOneWindow) {
  const std::string file = dir_->write("short.txt", "the cat sat on");
  const test::CommandResult r =
      test::run_command({PF_EVAL_BIN, "--checkpoint", dir_->path("text"), "--data", file, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json_field(r.out, "tokens"), 13.0) << r.out;
  const test::CommandResult one =
      test::run_command({PF_EVAL_BIN, "--checkpoint", dir_->path("text"), "--data", dir_->write("one.txt", "x")});
  EXPECT_EQ(one.exit_code, 2);
  EXPECT_TRUE(contains(one.err, "--data: nothing to score")) << one.err;
}

TEST_F(ToolsTest, GenerateContinuesTextPrompt) {
  const std::vector<std::string> args = {
      PF_GENERATE_BIN, "--checkpoint", dir_->path("text"), "--prompt", "the cat ", "--tokens", "20", "--seed", "5",
      "--top-k",       "10",           "--temperature",    "0.8"};
  const test::CommandResult a = test::run_command(args), b = test::run_command(args);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out.rfind("the cat ", 0), 0u) << a.out;
  EXPECT_GT(a.out.size(), std::string("the cat \n").size());
  EXPECT_EQ(a.out, b.out) << "same seed, same text";
  EXPECT_TRUE(contains(a.err, "tokens/s")) << a.err;
  EXPECT_TRUE(contains(a.err, "recurrent FAVOR state")) << a.err;

  const test::CommandResult empty = test::run_command({PF_GENERATE_BIN, "--checkpoint", dir_->path("text")});
  EXPECT_EQ(empty.exit_code, 2);
  EXPECT_TRUE(contains(empty.err, "--prompt is required")) << empty.err;
}

TEST_F(ToolsTest, GenerateProteinStopsAtEndToken) {
  const test::CommandResult r =
      test::run_command({PF_GENERATE_BIN, "--checkpoint", dir_->path("protein"), "--tokens", "15", "--greedy"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.size(), 11u) << r.out;  // MKTAYIAKQ, one residue, newline
  EXPECT_EQ(r.out.rfind("MKTAYIAKQ", 0), 0u) << r.out;
  EXPECT_TRUE(contains(r.err, "stopped at <eos>")) << r.err;

  const test::CommandResult prompt = test::run_command(
      {PF_GENERATE_BIN, "--checkpoint", dir_->path("protein"), "--prompt", "MKT", "--tokens", "15", "--greedy"});
  ASSERT_EQ(prompt.exit_code, 0) << prompt.err;
  EXPECT_EQ(prompt.out.rfind("MKTAYIAKQ", 0), 0u) << prompt.out;

  const test::CommandResult bad =
      test::run_command({PF_GENERATE_BIN, "--checkpoint", dir_->path("protein"), "--prompt", "MK7", "--tokens", "5"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_TRUE(contains(bad.err, "--prompt")) << bad.err;
  const test::CommandResult mlm = test::run_command({PF_GENERATE_BIN, "--checkpoint", dir_->path("mlm")});
  EXPECT_EQ(mlm.exit_code, 2);
  EXPECT_TRUE(contains(mlm.err, "masked-LM")) << mlm.err;
}

}  // namespace
}  // namespace pf
