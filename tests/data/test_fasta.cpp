#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>

#include "data/fasta.h"
#include "data/vocab.h"
#include "tests/temp_dir.h"

namespace pf {
namespace {

using test::TempDir;

std::string residues(const ProteinCorpus& c, int64_t i) {
  const auto t = c.tokens(i);
  return Vocab::protein().decode(std::vector<int32_t>(t.begin(), t.end()));
}

// Parses one temp file with the given content.
ProteinCorpus parse(const std::string& content, FastaStats* stats = nullptr, bool skip = false) {
  TempDir dir;
  FastaOptions options;
  options.skip_bad_records = skip;
  return read_fasta({dir.write("in.fasta", content)}, options, stats);
}

// The error message of parsing `content` as file "in.fasta" (empty if it parsed).
std::string error_of(const std::string& content) {
  try {
    parse(content);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(Fasta, MultiLineRecords) {
  const ProteinCorpus c = parse(">sp|P1 first protein\nMKV\nLAT\nG\n>sp|P2\nAC\nDE\n");
  ASSERT_EQ(c.size(), 2);
  EXPECT_EQ(c.id(0), "sp|P1");
  EXPECT_EQ(residues(c, 0), "MKVLATG");
  EXPECT_EQ(c.id(1), "sp|P2");
  EXPECT_EQ(residues(c, 1), "ACDE");
  EXPECT_EQ(c.residues(), 11);
}

TEST(Fasta, OneLineRecords) {
  const ProteinCorpus c = parse(">a\nMKVLATG\n>b\nACDE\n>c\nW\n");
  ASSERT_EQ(c.size(), 3);
  EXPECT_EQ(residues(c, 0), "MKVLATG");
  EXPECT_EQ(residues(c, 2), "W");
}

// Blank lines anywhere, CRLF line ends and a terminal '*' are layouts of the same two records.
TEST(Fasta, LayoutsOfTheSameRecords) {
  const std::pair<const char*, const char*> layouts[] = {
      {"blank lines anywhere", "\n\n>a\n\nMKV\n\n  \nLA\n\n>b\nAC\n\n\n"},
      {"CRLF line ends", ">a desc\r\nMKV\r\nLA\r\n\r\n>b\r\nAC\r\n"},
      {"terminal stars", ">a\nMKV\nLA*\n>b\nAC\n*\n"},
  };
  for (const auto& [layout, text] : layouts) {
    const ProteinCorpus c = parse(text);
    ASSERT_EQ(c.size(), 2) << layout;
    EXPECT_EQ(c.id(0), "a") << layout;
    EXPECT_EQ(residues(c, 0), "MKVLA") << layout;
    EXPECT_EQ(residues(c, 1), "AC") << layout;
  }
}

TEST(Fasta, LowercaseResiduesAreUppercased) {
  const ProteinCorpus c = parse(">a\nmkvLAt\nxbzuo\n");
  EXPECT_EQ(residues(c, 0), "MKVLATXBZUO");
}

TEST(Fasta, StarInTheMiddleIsAnErrorWithLine) {
  const std::string msg = error_of(">a\nMK*\nVL\n");
  EXPECT_NE(msg.find("in.fasta:3:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'*'"), std::string::npos) << msg;
}

TEST(Fasta, TrailingHeaderWhitespaceAndIdIsTheFirstWord) {
  const ProteinCorpus c = parse(">sp|P1   \t\nMKV\n>  tr|Q2 some description   \nAC\n");
  EXPECT_EQ(c.id(0), "sp|P1");
  EXPECT_EQ(c.id(1), "tr|Q2");
}

TEST(Fasta, MissingFinalNewline) {
  const ProteinCorpus c = parse(">a\nMKV\n>b\nACDE");
  ASSERT_EQ(c.size(), 2);
  EXPECT_EQ(residues(c, 1), "ACDE");
}

TEST(Fasta, GzipInput) {
  TempDir dir;
  const std::string gz = dir.write_gz("in.fasta.gz", ">a\nMKV\nLA\n>b\nAC\n");
  FastaOptions options;
  options.cache_dir = dir.path("cache");
  const ProteinCorpus c = read_fasta({gz}, options);
  ASSERT_EQ(c.size(), 2);
  EXPECT_EQ(residues(c, 0), "MKVLA");
  EXPECT_EQ(residues(c, 1), "AC");
}

TEST(Fasta, GzipErrorsNameTheGzFile) {
  TempDir dir;
  const std::string gz = dir.write_gz("bad.fa.gz", ">a\nMKV\nM1V\n");
  FastaOptions options;
  options.cache_dir = dir.path("cache");
  try {
    read_fasta({gz}, options);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(gz + ":3:"), std::string::npos) << e.what();
  }
}

TEST(Fasta, SeveralFilesInOrder) {
  TempDir dir;
  const std::string a = dir.write("a.fa", ">a1\nMK\n>a2\nVL\n");
  const std::string b = dir.write("b.fa", ">b1\nAC\n");
  FastaStats stats;
  const ProteinCorpus c = read_fasta({a, b}, {}, &stats);
  ASSERT_EQ(c.size(), 3);
  EXPECT_EQ(c.id(2), "b1");
  EXPECT_EQ(stats.files, 2);
  EXPECT_EQ(stats.records, 3);
  EXPECT_EQ(stats.residues, 6);
}

TEST(Fasta, EmptyRecordIsAnErrorNamingFileAndLine) {
  const std::string msg = error_of(">a\nMKV\n>empty\n\n>c\nAC\n");
  EXPECT_NE(msg.find("in.fasta:3:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'empty'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no residues"), std::string::npos) << msg;
}

TEST(Fasta, EmptyLastRecordIsAnError) {
  const std::string msg = error_of(">a\nMKV\n>last\n");
  EXPECT_NE(msg.find("in.fasta:3:"), std::string::npos) << msg;
}

TEST(Fasta, FileWithNoRecordsIsAnError) {
  const std::string msg = error_of("\n   \n\r\n");
  EXPECT_NE(msg.find("in.fasta"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no FASTA records"), std::string::npos) << msg;
}

TEST(Fasta, InvalidCharacterIsAnErrorNamingFileLineAndCharacter) {
  const std::string msg = error_of(">a\nMKV\nLA\n>b\nACJDE\n");
  EXPECT_NE(msg.find("in.fasta:5:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'J'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("column 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'b'"), std::string::npos) << msg;
}

// The refusals that --skip-bad-records would turn into skips name that flag as the user types it.
TEST(Fasta, RefusalsNameTheSkipBadRecordsFlag) {
  for (const char* fasta : {">a\nMKV\n>b\nACJDE\n", ">a\nMKV\n>empty\n\n>c\nAC\n", ">a\nM*K\n", ">a\nM*\n*\n"}) {
    const std::string msg = error_of(fasta);
    EXPECT_NE(msg.find("--skip-bad-records"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("set skip_bad_records"), std::string::npos) << msg;
  }
}

// DNA and RNA read as amino acids (A C G T U N are all valid codes): the statistics notice it.
TEST(Fasta, NucleotideContentIsCounted) {
  FastaStats dna, protein;
  parse(">g1\nACGTACGTTAGCNNACGU\n>g2\nacgtacgtac\n", &dna, false);
  EXPECT_EQ(dna.nucleotide_residues, dna.residues);
  EXPECT_TRUE(dna.looks_like_nucleotides());
  parse(">p\nMKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQTLGQHDFSAGEGLYTHMKALRPDEDRLSPLHSVYVDQWDWERVMGDGERQFSTLKSTVEAIWAGIKATEAAVSEEFGLAPFLPDQIHFVHSQELLSRYPDLDAKGRERAIAKDLGAVFLVGIGGKLSDGHRHDVRAPDYDDWUAIGLNDGGELRTHGERLCDIGETHVRLPDHIT\n",
        &protein, false);
  EXPECT_FALSE(protein.looks_like_nucleotides()) << protein.nucleotide_residues << " of " << protein.residues;
}

TEST(Fasta, SequenceBeforeTheFirstHeaderIsAnErrorNamingTheLine) {
  const std::string msg = error_of("\nMKV\n>a\nAC\n");
  EXPECT_NE(msg.find("in.fasta:2:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("before the first"), std::string::npos) << msg;
}

TEST(Fasta, SkipBadRecordsSkipsAndCounts) {
  FastaStats stats;
  const ProteinCorpus c = parse(">ok1\nMKV\n>empty\n>bad\nAC1DE\nMORE\n>ok2\nLA\n>star\nM*K\n>ok3\nW", &stats, true);
  ASSERT_EQ(c.size(), 3);
  EXPECT_EQ(c.id(0), "ok1");
  EXPECT_EQ(c.id(1), "ok2");
  EXPECT_EQ(c.id(2), "ok3");
  EXPECT_EQ(residues(c, 1), "LA");
  EXPECT_EQ(stats.records, 3);
  EXPECT_EQ(stats.skipped_records, 3);
  ASSERT_EQ(stats.skipped_examples.size(), 3u);
  EXPECT_NE(stats.skipped_examples[1].find("in.fasta:5:"), std::string::npos) << stats.skipped_examples[1];
  EXPECT_EQ(stats.residues, 6);
}

TEST(Fasta, TokensMatchTheProteinVocab) {
  const std::string codes = "ACDEFGHIKLMNPQRSTVWYXBZUOacdefghiklmnpqrstvwyxbzuo";
  const ProteinCorpus c = parse(">all\n" + codes + "\n");
  const auto t = c.tokens(0);
  EXPECT_EQ(std::vector<int32_t>(t.begin(), t.end()), Vocab::protein().encode(codes));
}

TEST(Fasta, ContentHashIgnoresCaseWrappingAndId) {
  const ProteinCorpus c = parse(">a\nMKVLA\n>b other\nmk\nvla*\n>c\nMKVLG\n");
  EXPECT_EQ(c.content_hash(0), c.content_hash(1));
  EXPECT_NE(c.content_hash(0), c.content_hash(2));
}

TEST(Fasta, MissingAndEmptyFilesAreErrorsNamingTheFile) {
  TempDir dir;
  const std::string missing = dir.path("nope.fa");
  try {
    read_fasta({missing}, {});
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
  const std::string empty = dir.write("empty.fa", "");
  try {
    read_fasta({empty}, {});
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(empty + ": file is empty"), std::string::npos) << e.what();
  }
}

// Indexing speed on a real corpus. Disabled by default (tests never read shared data); run with
//   PF_BENCH_FASTA=/path/to.fasta ./test_fasta --gtest_also_run_disabled_tests --gtest_filter='*Index*'
TEST(Fasta, DISABLED_IndexLargeFileTiming) {
  const char* path = std::getenv("PF_BENCH_FASTA");
  if (path == nullptr) GTEST_SKIP() << "set PF_BENCH_FASTA to a FASTA file";
  for (int run = 0; run < 3; ++run) {
    const auto t0 = std::chrono::steady_clock::now();
    FastaStats stats;
    const ProteinCorpus c = read_fasta({path}, {}, &stats);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("indexed %s: %lld records, %lld residues in %.1f ms\n", path, static_cast<long long>(c.size()),
                static_cast<long long>(c.residues()), ms);
    EXPECT_LT(ms, 1000.0);
  }
}

}  // namespace
}  // namespace pf
