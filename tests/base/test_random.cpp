// Generator (base/random.h): the stream, the transforms, state save/restore, shuffled_indices.
#include <gtest/gtest.h>

#include <algorithm>
#include <cereal/archives/binary.hpp>
#include <cereal/types/string.hpp>
#include <cmath>
#include <sstream>

#include "base/random.h"
#include "tests/archive_round_trip.h"


using namespace pf;

TEST(Generator, SameSeedSameSequence) {
  Generator a(7), b(7), c(8);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    float x = a.normal(), y = b.normal(), z = c.normal();
    EXPECT_EQ(x, y);
    differs |= x != z;
  }
  EXPECT_TRUE(differs);
}

TEST(Generator, StateRestoresMidStream) {
  Generator a(3);
  a.normal();  // leaves a cached Box-Muller value behind
  std::string s = a.state();
  std::vector<float> expected;
  for (int i = 0; i < 10; ++i) expected.push_back(i % 2 ? a.normal() : a.uniform());
  Generator b(999);
  b.set_state(s);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(expected[i], i % 2 ? b.normal() : b.uniform());
}

TEST(Generator, CerealRoundTrip) {
  Generator a(11);
  a.normal();
  Generator b = test::archive_round_trip(a);
  EXPECT_TRUE(a == b);
  EXPECT_EQ(a.normal(), b.normal());
  EXPECT_EQ(a.below(1000), b.below(1000));
}

TEST(Generator, RejectsMalformedState) {
  Generator a;
  EXPECT_THROW(a.set_state("not a state"), std::invalid_argument);
}

TEST(Generator, IntegerRangeAndUniformity) {
  Generator g(5);
  std::vector<int> counts(10, 0);
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    uint64_t v = g.below(10);
    ASSERT_LT(v, 10u);
    counts[v]++;
  }
  // Each count ~ Binomial(n, 0.1): sd = sqrt(n*0.1*0.9) = 94.9; 5 sigma.
  for (int c : counts) EXPECT_NEAR(c, n / 10, 5 * 94.9);
  EXPECT_THROW(g.below(0), std::invalid_argument);
}



namespace pf {
namespace {

TEST(GeneratorData, EngineMatchesTheStandardSequence) {
  // The C++ standard fixes mt19937_64's 10000th output for the default seed, so streams (and hence
  // batches) are the same on every standard library.
  Generator rng(5489u);
  uint64_t x = 0;
  for (int i = 0; i < 10000; ++i) x = rng.next_u64();
  EXPECT_EQ(x, 9981545732273789042ull);
}

TEST(GeneratorData, SameSeedSameStreamDifferentSeedDifferentStream) {
  Generator a(7), b(7), c(8);
  int differ = 0;
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.below(1000);
    EXPECT_EQ(x, b.below(1000));
    differ += x != c.below(1000);
  }
  EXPECT_GT(differ, 90);
}

TEST(GeneratorData, BelowIsInRangeAndUniform) {
  // 7 buckets, N = 70000 draws: each count ~ Binomial(N, 1/7), sigma = sqrt(N p (1-p)) ~ 92.6;
  // a 5-sigma band fails a correct generator with probability < 1e-5 (and the seed is fixed).
  Generator rng(123);
  const int n = 70000, k = 7;
  std::vector<int> counts(k, 0);
  for (int i = 0; i < n; ++i) {
    const uint64_t x = rng.below(k);
    ASSERT_LT(x, static_cast<uint64_t>(k));
    ++counts[x];
  }
  const double p = 1.0 / k, sigma = std::sqrt(n * p * (1 - p));
  for (int c : counts) EXPECT_NEAR(c, n * p, 5 * sigma);
  EXPECT_THROW(rng.below(0), std::invalid_argument);
}

TEST(GeneratorData, UniformIsInUnitInterval) {
  Generator rng(9);
  double sum = 0;
  for (int i = 0; i < 10000; ++i) {
    const double u = rng.uniform_double();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  // Mean of 10000 U(0,1): sigma = sqrt(1/12 / 10000) ~ 0.0029; 5 sigma ~ 0.0144.
  EXPECT_NEAR(sum / 10000, 0.5, 0.0145);
}

TEST(GeneratorData, StateRoundTripContinuesTheStream) {
  Generator a(42);
  for (int i = 0; i < 17; ++i) a.next_u64();
  const std::string saved = a.state();
  std::vector<uint64_t> expected;
  for (int i = 0; i < 50; ++i) expected.push_back(a.next_u64());
  Generator b(0);
  b.set_state(saved);
  for (uint64_t e : expected) EXPECT_EQ(b.next_u64(), e);
}

TEST(GeneratorData, SetStateRejectsGarbageAndKeepsState) {
  Generator a(42);
  const std::string before = a.state();
  EXPECT_THROW(a.set_state("not a state"), std::invalid_argument);
  EXPECT_EQ(a.state(), before);
}

TEST(ShuffledIndices, IsADeterministicPermutation) {
  const std::vector<int64_t> p = shuffled_indices(1000, 5);
  EXPECT_EQ(p, shuffled_indices(1000, 5));
  EXPECT_NE(p, shuffled_indices(1000, 6));
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) EXPECT_EQ(sorted[static_cast<size_t>(i)], i);
  EXPECT_TRUE(shuffled_indices(0, 1).empty());
}

}  // namespace
}  // namespace pf

// A state saved as the engine text alone (what data cursors held before the generators were one)
// restores the engine with no cached normal value.
TEST(Generator, AcceptsTheEngineTextAlone) {
  pf::Generator a(3);
  for (int i = 0; i < 5; ++i) a.next_u64();
  std::ostringstream engine_only;
  std::mt19937_64 e(3);
  for (int i = 0; i < 5; ++i) e();
  engine_only << e;
  pf::Generator b(0);
  b.set_state(engine_only.str());
  EXPECT_TRUE(a == b);
  EXPECT_THROW(b.set_state(engine_only.str() + " 2 0"), std::invalid_argument);
  EXPECT_THROW(b.set_state(engine_only.str() + " 1"), std::invalid_argument);
}
