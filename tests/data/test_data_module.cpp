#include <gtest/gtest.h>

#include <cereal/archives/binary.hpp>
#include <sstream>

#include "data/data_module.h"
#include "tests/temp_dir.h"

namespace pf {
namespace {

using test::TempDir;

DataConfig config_for(std::vector<std::string> files) {
  DataConfig cfg;
  cfg.train_files = std::move(files);
  cfg.seq_len = 8;
  cfg.batch_size = 2;
  cfg.val_fraction = 0.0;
  return cfg;
}

std::string error_of(const DataConfig& cfg) {
  try {
    DataModule m(cfg);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// n bytes of "abc...zab...".
std::string alphabet(int n) {
  std::string text;
  for (int i = 0; i < n; ++i) text += static_cast<char>('a' + i % 26);
  return text;
}

TEST(DataModule, VocabularyFollowsTheFormat) {
  TempDir dir;
  EXPECT_EQ(DataModule(config_for({dir.write("a.fasta", ">a\nMKVLATGHIKL\n")})).vocab().name(), "protein");
  EXPECT_EQ(DataModule(config_for({dir.write("a.txt", "plain text, long enough")})).vocab().name(), "bytes");
  // By content: a FASTA file without a FASTA name.
  DataModule by_content(config_for({dir.write("seqs.dat", "\n>a\nMKV\n")}));
  EXPECT_EQ(by_content.format(), Format::Fasta);
  // Forced text: a FASTA file read as bytes.
  DataConfig forced = config_for({dir.path("a.fasta")});
  forced.format = Format::Text;
  EXPECT_EQ(DataModule(forced).vocab().name(), "bytes");
}

TEST(DataModule, MixedFormatsAreAnErrorNamingTheFile) {
  TempDir dir;
  const std::string fa = dir.write("a.fa", ">a\nMKVLATG\n");
  const std::string txt = dir.write("b.txt", "some plain text here");
  const std::string msg = error_of(config_for({fa, txt}));
  EXPECT_NE(msg.find("mixed corpus formats"), std::string::npos) << msg;
  EXPECT_NE(msg.find(txt), std::string::npos) << msg;
  DataConfig val_mixed = config_for({fa});
  val_mixed.val_files = {txt};
  EXPECT_NE(error_of(val_mixed).find(txt), std::string::npos);
}

TEST(DataModule, InvalidConfigNamesTheField) {
  TempDir dir;
  const std::string fa = dir.write("a.fa", ">a\nMKV\n");
  DataConfig c = config_for({fa});
  c.seq_len = 0;
  EXPECT_NE(error_of(c).find("--seq-len 0: must be > 0"), std::string::npos);
  c = config_for({fa});
  c.batch_size = -1;
  EXPECT_NE(error_of(c).find("--batch-size -1: must be > 0"), std::string::npos);
  c = config_for({fa});
  c.val_fraction = 1.0;
  EXPECT_NE(error_of(c).find("--val-fraction 1: must be in [0, 1)"), std::string::npos);
  c = config_for({fa});
  c.mask_prob = 0.0;
  EXPECT_NE(error_of(c).find("--mask-prob 0: must be in (0, 1]"), std::string::npos);
  EXPECT_NE(error_of(config_for({})).find("--data (none): give at least one corpus file"), std::string::npos);
}

TEST(DataModule, DescribeReportsRecordsSkipsAndSplit) {
  TempDir dir;
  DataConfig c = config_for({dir.write("a.fa", ">a\nMKV\n>bad\nM1\n>c\nACDEF\n>d\nWWW\n")});
  c.skip_bad_records = true;
  DataModule m(c);
  EXPECT_EQ(m.describe(), "fasta: 3 records (1 skipped), 11 residues; train 3 / val 0 records");
  EXPECT_EQ(m.fasta_stats().skipped_records, 1);
  c.skip_bad_records = false;
  EXPECT_NE(error_of(c).find(":4:"), std::string::npos);
}

// Floats in messages keep their significant digits: std::to_string printed -1e-9 as "-0.000000".
TEST(DataModule, TinyFloatsInMessagesAreReadable) {
  TempDir dir;
  DataConfig c = config_for({dir.write("a.fa", ">a\nMKV\n")});
  c.val_fraction = -1e-9;
  EXPECT_NE(error_of(c).find("--val-fraction -1e-09: must be in [0, 1)"), std::string::npos) << error_of(c);
  c.val_fraction = 0.0;
  c.mask_prob = -1e-9;
  EXPECT_NE(error_of(c).find("--mask-prob -1e-09: must be in (0, 1]"), std::string::npos) << error_of(c);
}

// A nucleotide FASTA is read with the protein vocabulary (there is no other), with a warning that
// names the file; a protein FASTA gets none.
TEST(DataModule, NucleotideFastaGetsAWarning) {
  TempDir dir;
  const std::string dna = dir.write("genes.fa", ">g1\nACGTTGCAACGTNACGT\n>g2\nTTGACCAGTAGGCAT\n");
  DataModule m(config_for({dna}));
  ASSERT_EQ(m.warnings().size(), 1u);
  EXPECT_NE(m.warnings()[0].find(dna + ": 100.0% of the residues are A, C, G, T, U or N"), std::string::npos)
      << m.warnings()[0];
  EXPECT_NE(m.warnings()[0].find("looks like DNA or RNA"), std::string::npos) << m.warnings()[0];
  DataModule p(config_for({dir.write("p.fa", ">p\nMKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ\n")}));
  EXPECT_TRUE(p.warnings().empty());
}

TEST(DataModule, GzipTextTrains) {
  TempDir dir;
  DataConfig c = config_for({dir.write_gz("corpus.txt.gz", alphabet(500))});
  c.cache_dir = dir.path("cache");
  c.val_fraction = 0.1;
  DataModule m(c);
  EXPECT_EQ(m.format(), Format::Text);
  EXPECT_EQ(m.describe(), "text: 1 file, 500 bytes; train 450 / val 50 bytes");
  const Batch b = m.next_train_batch();
  for (int64_t r = 0; r < 2; ++r)
    EXPECT_EQ((b.inputs[static_cast<size_t>(r * 8)] - 'a' + 1) % 26, b.inputs[static_cast<size_t>(r * 8 + 1)] - 'a');
}

// Counts of a thousand and more read as human_count (base/format.h) writes them, like the rest of
// the programs' output.
TEST(DataModule, DescriptionCountsAreHumanCounts) {
  TempDir dir;
  DataConfig c = config_for({dir.write("corpus.txt", alphabet(12345))});
  c.cache_dir = dir.path("cache");
  c.val_fraction = 0.1;
  EXPECT_EQ(DataModule(c).describe(), "text: 1 file, 12.3k bytes; train 11.1k / val 1.2k bytes");
}

TEST(DataModule, VocabAndCursorSaveTogetherWithCereal) {
  TempDir dir;
  DataConfig c = config_for({dir.write("a.fa", ">a\nMKV\n>b\nACDEF\n>c\nWWW\n")});
  DataModule m(c);
  m.next_train_batch();
  std::stringstream ss;
  {
    cereal::BinaryOutputArchive ar(ss);
    ar(m.vocab(), m.cursor());
  }
  const Batch expected = m.next_train_batch();
  Vocab vocab;
  DataCursor cursor;
  {
    cereal::BinaryInputArchive ar(ss);
    ar(vocab, cursor);
  }
  EXPECT_EQ(vocab, m.vocab());
  DataModule resumed(c);
  resumed.restore(cursor);
  EXPECT_EQ(resumed.next_train_batch().inputs, expected.inputs);
}

}  // namespace
}  // namespace pf
