#include <gtest/gtest.h>

#include <cereal/archives/binary.hpp>
#include <cereal/types/string.hpp>
#include <sstream>

#include "autograd/generator.h"

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
  std::stringstream ss;
  {
    cereal::BinaryOutputArchive ar(ss);
    ar(a);
  }
  Generator b;
  {
    cereal::BinaryInputArchive ar(ss);
    ar(b);
  }
  EXPECT_TRUE(a == b);
  EXPECT_EQ(a.normal(), b.normal());
  EXPECT_EQ(a.integer(1000), b.integer(1000));
}

TEST(Generator, RejectsMalformedState) {
  Generator a;
  EXPECT_THROW(a.set_state("not a state"), std::runtime_error);
}

TEST(Generator, IntegerRangeAndUniformity) {
  Generator g(5);
  std::vector<int> counts(10, 0);
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    uint64_t v = g.integer(10);
    ASSERT_LT(v, 10u);
    counts[v]++;
  }
  // Each count ~ Binomial(n, 0.1): sd = sqrt(n*0.1*0.9) = 94.9; 5 sigma.
  for (int c : counts) EXPECT_NEAR(c, n / 10, 5 * 94.9);
  EXPECT_THROW(g.integer(0), std::invalid_argument);
}
