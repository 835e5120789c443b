#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "data/data_module.h"
#include "data/fasta.h"
#include "base/random.h"
#include "data/split.h"
#include "tests/temp_dir.h"

namespace pf {
namespace {

using test::TempDir;

std::string random_protein(Generator& rng, int64_t len) {
  static const std::string codes = "ACDEFGHIKLMNPQRSTVWY";
  std::string s;
  for (int64_t i = 0; i < len; ++i) s.push_back(codes[rng.below(codes.size())]);
  return s;
}

std::string residues(const ProteinCorpus& c, int64_t i) {
  const auto t = c.tokens(i);
  return Vocab::protein().decode(std::vector<int32_t>(t.begin(), t.end()));
}

TEST(Split, RecordsAreDisjointAndCoverTheCorpus) {
  ProteinCorpus c;
  FastaStats stats;
  Generator rng(1);
  std::string fasta;
  for (int i = 0; i < 500; ++i) fasta += ">r" + std::to_string(i) + "\n" + random_protein(rng, 5 + i % 30) + "\n";
  parse_fasta(fasta, "mem", {}, c, stats);
  const RecordSplit s = split_records(c, 0.2);
  std::set<int64_t> train(s.train.begin(), s.train.end()), val(s.val.begin(), s.val.end());
  EXPECT_EQ(train.size() + val.size(), 500u);
  for (int64_t v : val) EXPECT_EQ(train.count(v), 0u);
  EXPECT_FALSE(val.empty());
  EXPECT_TRUE(std::is_sorted(s.train.begin(), s.train.end()));  // file order kept
}

TEST(Split, ExactDuplicatesLandOnOneSide) {
  // 1000 distinct sequences, each written 1-4 times with different ids, case, wrapping and '*'.
  Generator rng(2);
  std::string fasta;
  for (int i = 0; i < 1000; ++i) {
    const std::string seq = random_protein(rng, 10 + static_cast<int64_t>(rng.below(40)));
    const int copies = 1 + static_cast<int>(rng.below(4));
    for (int k = 0; k < copies; ++k) {
      std::string body = seq;
      if (k == 1) {
        for (char& ch : body) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      }
      if (k == 2) body = body.substr(0, body.size() / 2) + "\n" + body.substr(body.size() / 2);
      if (k == 3) body += "*";
      fasta += ">s" + std::to_string(i) + "_copy" + std::to_string(k) + " desc\n" + body + "\n";
    }
  }
  ProteinCorpus c;
  FastaStats stats;
  parse_fasta(fasta, "mem", {}, c, stats);
  const RecordSplit s = split_records(c, 0.3);
  std::map<std::string, std::set<bool>> sides;  // sequence -> which sides it appears on
  for (int64_t i : s.train) sides[residues(c, i)].insert(false);
  for (int64_t i : s.val) sides[residues(c, i)].insert(true);
  EXPECT_EQ(sides.size(), 1000u);
  for (const auto& [seq, where] : sides) EXPECT_EQ(where.size(), 1u) << seq << " is on both sides";
}

TEST(Split, ValidationShareWithinFiveSigma) {
  // 20000 distinct sequences, fraction p = 0.1: the validation count is Binomial(n, p) if the hash
  // behaves like a random function; sigma = sqrt(n p (1-p)) = 42.4, bound 5 sigma = 212.
  Generator rng(3);
  std::string fasta;
  const int n = 20000;
  for (int i = 0; i < n; ++i) fasta += ">r\n" + random_protein(rng, 20) + "\n";
  ProteinCorpus c;
  FastaStats stats;
  parse_fasta(fasta, "mem", {}, c, stats);
  const RecordSplit s = split_records(c, 0.1);
  const double p = 0.1, sigma = std::sqrt(n * p * (1 - p));
  EXPECT_NEAR(static_cast<double>(s.val.size()), n * p, 5 * sigma);
  EXPECT_TRUE(split_records(c, 0.0).val.empty());
}

TEST(Split, DependsOnContentNotOnPosition) {
  ProteinCorpus a, b;
  FastaStats stats;
  parse_fasta(">x\nMKVLA\n>y\nACDEF\n>z\nWWWWW\n", "a", {}, a, stats);
  parse_fasta(">z\nWWWWW\n>x\nMKVLA\n>y\nACDEF\n", "b", {}, b, stats);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 3; ++j)
      if (residues(a, i) == residues(b, j)) {
        EXPECT_EQ(is_validation(a.content_hash(i), 0.5), is_validation(b.content_hash(j), 0.5));
      }
}

TEST(Split, TextHoldsOutTheTail) {
  const TextSplit s = split_text(1000, 0.1);
  EXPECT_EQ(s.train.begin, 0);
  EXPECT_EQ(s.train.end, 900);
  EXPECT_EQ(s.val.begin, 900);
  EXPECT_EQ(s.val.end, 1000);
  const TextSplit none = split_text(1000, 0.0);
  EXPECT_EQ(none.train.size(), 1000);
  EXPECT_EQ(none.val.size(), 0);
}

TEST(Split, TextModuleNeverTrainsOnTheHeldOutTail) {
  // Train bytes are 'a'..'z' cycling; the tail (last 20%) is all digits. No training window may
  // contain a digit, and every validation target is a digit.
  TempDir dir;
  std::string text;
  for (int i = 0; i < 800; ++i) text.push_back(static_cast<char>('a' + i % 26));
  for (int i = 0; i < 200; ++i) text.push_back(static_cast<char>('0' + i % 10));
  DataConfig cfg;
  cfg.train_files = {dir.write("t.txt", text)};
  cfg.val_fraction = 0.2;
  cfg.seq_len = 16;
  cfg.batch_size = 8;
  cfg.seed = 4;
  DataModule m(cfg);
  for (int step = 0; step < 50; ++step) {
    const Batch b = m.next_train_batch();
    for (int32_t t : b.inputs) EXPECT_FALSE(t >= '0' && t <= '9');
    for (int32_t t : b.targets) EXPECT_FALSE(t >= '0' && t <= '9');
  }
  int64_t targets = 0;
  for (const Batch& b : m.eval_batches(0))
    for (int32_t t : b.targets)
      if (t != kIgnoreIndex) {
        EXPECT_TRUE(t >= '0' && t <= '9');
        ++targets;
      }
  EXPECT_EQ(targets, 199);  // every held-out byte but the first is predicted once
}

TEST(Split, SeparateValidationFilesReplaceTheFraction) {
  TempDir dir;
  DataConfig cfg;
  cfg.train_files = {dir.write("train.fa", ">a\nMKVLA\n>b\nACDEF\n>c\nGHIKL\n")};
  cfg.val_files = {dir.write("val.fa", ">v\nWWWW\n")};
  cfg.val_fraction = 0.5;  // ignored: val files are given
  cfg.seq_len = 8;
  cfg.batch_size = 2;
  DataModule m(cfg);
  EXPECT_NE(m.describe().find("train 3 / val 1 records"), std::string::npos) << m.describe();
  const std::vector<Batch> val = m.eval_batches(0);
  ASSERT_EQ(val.size(), 1u);
  EXPECT_EQ(val[0].batch, 1);
  EXPECT_EQ(m.vocab().decode(std::vector<int32_t>(val[0].inputs.begin(), val[0].inputs.begin() + 5)), "<bos>WWWW");
}

TEST(Split, NoValidationWhenFractionIsZero) {
  TempDir dir;
  DataModule m(DataConfig{
      .train_files = {dir.write("train.fa", ">a\nMKVLA\n>b\nACDEF\n")}, .val_fraction = 0.0, .seq_len = 8, .batch_size = 2});
  EXPECT_TRUE(m.eval_batches(0).empty());
}

// A corpus of one or a few records must not lose all of them to validation (then there would be
// nothing to train on): with val_fraction 0.99 every record hashes into validation, but the first
// one trains.
TEST(Split, ATinyCorpusAlwaysKeepsATrainingRecord) {
  ProteinCorpus c;
  FastaStats stats;
  parse_fasta(">only\nMKVLA\n", "mem", {}, c, stats);
  RecordSplit s = split_records(c, 0.999999);
  EXPECT_EQ(s.train, std::vector<int64_t>{0});
  EXPECT_TRUE(s.val.empty());

  ProteinCorpus three;
  parse_fasta(">a\nMKVLA\n>b\nWWW\n>c\nACDEF\n", "mem", {}, three, stats);
  s = split_records(three, 0.999999);
  EXPECT_EQ(s.train, std::vector<int64_t>{0});
  EXPECT_EQ(s.val, (std::vector<int64_t>{1, 2}));

  TempDir dir;
  // This used to throw "no training records".
  DataModule m(
      DataConfig{.train_files = {dir.write("one.fa", ">only\nMKVLA\n")}, .val_fraction = 0.999999, .seq_len = 8, .batch_size = 4});
  EXPECT_EQ(m.next_train_batch().batch, 4);
  EXPECT_TRUE(m.eval_batches(0).empty());
}

}  // namespace
}  // namespace pf
