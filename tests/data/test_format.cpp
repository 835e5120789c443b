#include <gtest/gtest.h>

#include "data/format.h"

namespace pf {
namespace {

TEST(Format, ParseFormatAcceptsTheThreeNames) {
  EXPECT_EQ(parse_format("auto"), Format::Auto);
  EXPECT_EQ(parse_format("text"), Format::Text);
  EXPECT_EQ(parse_format("fasta"), Format::Fasta);
  EXPECT_EQ(format_name(Format::Fasta), "fasta");
}

TEST(Format, ParseFormatNamesTheBadValue) {
  try {
    parse_format("fastq");
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'fastq'"), std::string::npos) << e.what();
  }
}

TEST(Format, FastaExtensionsWithOrWithoutGz) {
  for (const char* name : {"a.fa", "a.fasta", "a.faa", "a.fas", "dir/A.FASTA", "a.fa.gz", "a.faa.GZ"})
    EXPECT_TRUE(has_fasta_extension(name)) << name;
  for (const char* name : {"a.txt", "a.gz", "a.txt.gz", "fasta", "a.fa.bak", "a.fastq"})
    EXPECT_FALSE(has_fasta_extension(name)) << name;
}

TEST(Format, DetectByExtensionThenContent) {
  EXPECT_EQ(detect_format("x.fa", "hello"), Format::Fasta);  // the name wins
  EXPECT_EQ(detect_format("x.txt", "\n\n  >id\nMKV\n"), Format::Fasta);
  EXPECT_EQ(detect_format("x.txt", "to be or not"), Format::Text);
  EXPECT_EQ(detect_format("x", "   \n"), Format::Text);
}

}  // namespace
}  // namespace pf
