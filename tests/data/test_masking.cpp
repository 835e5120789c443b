#include <gtest/gtest.h>

#include <cmath>

#include "data/batch.h"
#include "data/masking.h"

namespace pf {
namespace {

// Statistical bounds: counts are binomial, so each check allows 5 standard deviations of its
// binomial, sqrt(n p (1-p)). With a fixed seed the test is deterministic; the bound says a correct
// implementation would fail it for fewer than 1 in 10^6 seeds, while a wrong rate (say 12% instead of
// 15%) misses it by tens of sigmas at these sample sizes.
double five_sigma(double n, double p) {
  return 5.0 * std::sqrt(n * p * (1.0 - p));
}

TEST(Masking, ProportionsWithinFiveSigma) {
  const Vocab v = Vocab::protein();
  const auto& standard = v.mlm_replacement_ids();
  Generator rng(11);
  const int rows = 1000, T = 200;  // n = 200000 eligible tokens
  int64_t eligible = 0, selected = 0, to_mask = 0, unchanged = 0, to_other = 0;
  for (int r = 0; r < rows; ++r) {
    std::vector<int32_t> in(T), tg(T);
    std::vector<uint8_t> km(T, 1);
    for (int t = 0; t < T; ++t) in[static_cast<size_t>(t)] = standard[rng.below(standard.size())];
    const std::vector<int32_t> original = in;
    apply_mlm_mask(in, tg, km, v, 0.15, rng);
    for (int t = 0; t < T; ++t) {
      const auto i = static_cast<size_t>(t);
      ++eligible;
      if (tg[i] == kIgnoreIndex) {
        EXPECT_EQ(in[i], original[i]);  // unselected positions are untouched
        continue;
      }
      ++selected;
      EXPECT_EQ(tg[i], original[i]);  // the target is always the original token
      if (in[i] == v.mask_id())
        ++to_mask;
      else if (in[i] == original[i])
        ++unchanged;
      else
        ++to_other;
      EXPECT_FALSE(v.is_special(in[i]) && in[i] != v.mask_id());
    }
  }
  // Selection: Binomial(200000, 0.15): sigma 159.7, bound +-798 around 30000.
  EXPECT_NEAR(static_cast<double>(selected), eligible * 0.15, five_sigma(eligible, 0.15));
  // Among k ~ 30000 selected: mask 0.8; unchanged 0.1 + 0.1/20 (a random residue equal to the
  // original); other residue 0.1 * 19/20.
  const auto k = static_cast<double>(selected);
  EXPECT_NEAR(static_cast<double>(to_mask), k * 0.8, five_sigma(k, 0.8));
  EXPECT_NEAR(static_cast<double>(unchanged), k * 0.105, five_sigma(k, 0.105));
  EXPECT_NEAR(static_cast<double>(to_other), k * 0.095, five_sigma(k, 0.095));
}

TEST(Masking, PaddingAndSpecialTokensAreNeverSelected) {
  const Vocab v = Vocab::protein();
  Generator rng(12);
  // Row: bos, 6 residues, eos, 4 pads; mask_prob 1 selects every eligible position.
  std::vector<int32_t> row = {v.bos_id()};
  for (int32_t id : v.encode("MKVLAT")) row.push_back(id);
  row.push_back(v.eos_id());
  std::vector<uint8_t> km(row.size(), 1);
  for (int i = 0; i < 4; ++i) {
    row.push_back(v.pad_id());
    km.push_back(0);
  }
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<int32_t> in = row, tg(row.size());
    apply_mlm_mask(in, tg, km, v, 1.0, rng);
    EXPECT_EQ(tg[0], kIgnoreIndex);
    EXPECT_EQ(in[0], v.bos_id());
    for (size_t t = 1; t <= 6; ++t) EXPECT_EQ(tg[t], row[t]);
    EXPECT_EQ(tg[7], kIgnoreIndex);
    EXPECT_EQ(in[7], v.eos_id());
    for (size_t t = 8; t < row.size(); ++t) {
      EXPECT_EQ(tg[t], kIgnoreIndex);
      EXPECT_EQ(in[t], v.pad_id());
    }
  }
}

TEST(Masking, TextReplacementsAreBytes) {
  const Vocab v = Vocab::bytes();
  Generator rng(13);
  std::vector<int32_t> in(5000, 'a'), tg(5000);
  std::vector<uint8_t> km(5000, 1);
  apply_mlm_mask(in, tg, km, v, 1.0, rng);
  int64_t other = 0;
  for (size_t t = 0; t < in.size(); ++t) {
    EXPECT_EQ(tg[t], 'a');
    EXPECT_TRUE(in[t] == v.mask_id() || (in[t] >= 0 && in[t] < 256));
    other += in[t] != v.mask_id() && in[t] != 'a';
  }
  // Random byte different from 'a': p = 0.1 * 255/256 over n = 5000.
  EXPECT_NEAR(static_cast<double>(other), 5000 * 0.1 * 255 / 256, five_sigma(5000, 0.1 * 255 / 256));
}

TEST(Masking, IsAFunctionOfTheGeneratorState) {
  const Vocab v = Vocab::protein();
  const std::vector<int32_t> row = v.encode("MKVLATGHIKLMNPQRSTVWYACDE");
  std::vector<uint8_t> km(row.size(), 1);
  Generator a(5), b(5);
  std::vector<int32_t> in_a = row, in_b = row, tg_a(row.size()), tg_b(row.size());
  apply_mlm_mask(in_a, tg_a, km, v, 0.5, a);
  apply_mlm_mask(in_b, tg_b, km, v, 0.5, b);
  EXPECT_EQ(in_a, in_b);
  EXPECT_EQ(tg_a, tg_b);
}

}  // namespace
}  // namespace pf
