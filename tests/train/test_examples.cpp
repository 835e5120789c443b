// The examples (examples/text_lm.cpp, examples/protein_lm.cpp) build against the public API and run.
#include <gtest/gtest.h>

#include "train/checkpoint.h"
#include "train_test_util.h"

namespace pf {
namespace {

using test::contains;

TEST(Examples, TextLmTrainsSavesAndSamples) {
  test::TempDir dir;
  const std::string corpus = dir.write("corpus.txt", test::word_text(3000, 21));
  const std::string ckpt = dir.path("text.ckpt");
  const test::CommandResult r = test::run_command({PF_TEXT_LM_BIN, corpus, "30", ckpt});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "step 30")) << r.out;
  EXPECT_TRUE(contains(r.out, "validation: loss")) << r.out;
  EXPECT_TRUE(contains(r.out, "sample: ")) << r.out;
  EXPECT_EQ(load_checkpoint(ckpt).progress.step, 30);
}

TEST(Examples, ProteinLmTrainsAndResumes) {
  test::TempDir dir;
  const std::string fasta = dir.write("p.fasta", test::random_fasta(200, 8));
  const std::string ckpt = dir.path("protein.ckpt");
  const test::CommandResult a = test::run_command({PF_PROTEIN_LM_BIN, fasta, "20", ckpt});
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  EXPECT_TRUE(contains(a.out, "validation: loss")) << a.out;
  EXPECT_TRUE(contains(a.out, "sample (")) << a.out;
  const test::CommandResult b = test::run_command({PF_PROTEIN_LM_BIN, fasta, "30", ckpt});
  ASSERT_EQ(b.exit_code, 0) << b.out << b.err;
  EXPECT_TRUE(contains(b.out, "resumed " + ckpt + " at step 20")) << b.out;
  EXPECT_EQ(load_checkpoint(ckpt).progress.step, 30);
}

}  // namespace
}  // namespace pf
