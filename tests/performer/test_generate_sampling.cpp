// sample_token: greedy is argmax; top-k and top-p never leave their sets; seeded = reproducible;
// the empirical distribution follows softmax(logits / temperature); options are validated.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <stdexcept>
#include <vector>

#include "performer/sampling.h"

using namespace pf;

namespace {

const std::vector<float> kLogits = {0.5f, 2.0f, -1.0f, 1.5f, 0.0f, 3.0f, -2.0f, 1.0f};  // ranking: 5 1 3 7 0 4 2 6

}  // namespace

TEST(Sampling, GreedyIsArgmaxAndDrawsNothing) {
  Generator gen(1), untouched(1);
  SamplingOptions opt;
  opt.greedy = true;
  EXPECT_EQ(sample_token(kLogits.data(), 8, opt, gen), 5);
  const std::vector<float> ties = {1.0f, 4.0f, 4.0f, 0.0f};
  EXPECT_EQ(sample_token(ties.data(), 4, opt, gen), 1);  // first maximum
  EXPECT_TRUE(gen == untouched);
}

TEST(Sampling, TopKNeverLeavesTheKBest) {
  Generator gen(7);
  SamplingOptions opt;
  opt.top_k = 3;
  opt.temperature = 5.0f;  // flat: every allowed token gets drawn
  std::set<int32_t> seen;
  for (int i = 0; i < 2000; ++i) seen.insert(sample_token(kLogits.data(), 8, opt, gen));
  EXPECT_EQ(seen, (std::set<int32_t>{5, 1, 3}));
  opt.top_k = 1;
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sample_token(kLogits.data(), 8, opt, gen), 5);
  opt.top_k = 100;  // larger than the vocabulary: all tokens allowed
  EXPECT_NO_THROW(sample_token(kLogits.data(), 8, opt, gen));
}

TEST(Sampling, TopPNeverLeavesTheNucleus) {
  // probabilities 0.5, 0.3, 0.15, 0.05 (logits = log p)
  const std::vector<float> logits = {std::log(0.15f), std::log(0.5f), std::log(0.05f), std::log(0.3f)};
  Generator gen(3);
  SamplingOptions opt;
  opt.top_p = 0.7f;  // 0.5 < 0.7 <= 0.8: the nucleus is {1, 3}
  std::set<int32_t> seen;
  for (int i = 0; i < 2000; ++i) seen.insert(sample_token(logits.data(), 4, opt, gen));
  EXPECT_EQ(seen, (std::set<int32_t>{1, 3}));
  opt.top_p = 0.4f;  // the top token alone already reaches 0.4
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sample_token(logits.data(), 4, opt, gen), 1);
  opt.top_p = 0.9f;  // {1, 3, 0}
  seen.clear();
  for (int i = 0; i < 2000; ++i) seen.insert(sample_token(logits.data(), 4, opt, gen));
  EXPECT_EQ(seen, (std::set<int32_t>{1, 3, 0}));
}

TEST(Sampling, TopKThenTopP) {
  Generator gen(5);
  SamplingOptions opt;
  opt.top_k = 4;
  opt.top_p = 0.999f;  // within the top-4 renormalized set, so never token 0, 4, 2 or 6
  for (int i = 0; i < 2000; ++i) {
    const int32_t t = sample_token(kLogits.data(), 8, opt, gen);
    EXPECT_TRUE(t == 5 || t == 1 || t == 3 || t == 7) << t;
  }
}

TEST(Sampling, SameSeedSameSamples) {
  SamplingOptions opt;
  opt.temperature = 0.8f;
  opt.top_k = 6;
  opt.top_p = 0.95f;
  Generator a(42), b(42), c(43);
  std::vector<int32_t> sa, sb, sc;
  for (int i = 0; i < 200; ++i) {
    sa.push_back(sample_token(kLogits.data(), 8, opt, a));
    sb.push_back(sample_token(kLogits.data(), 8, opt, b));
    sc.push_back(sample_token(kLogits.data(), 8, opt, c));
  }
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
}

TEST(Sampling, FrequenciesFollowTheTemperedSoftmax) {
  const std::vector<float> logits = {0.0f, 1.0f, 2.0f};
  for (float temperature : {0.5f, 1.0f, 2.0f}) {
    SamplingOptions opt;
    opt.temperature = temperature;
    Generator gen(11);
    const int n = 40000;
    std::vector<int> count(3, 0);
    for (int i = 0; i < n; ++i) ++count[sample_token(logits.data(), 3, opt, gen)];
    double z = 0.0;
    for (float l : logits) z += std::exp(l / temperature);
    for (int k = 0; k < 3; ++k) {
      const double p = std::exp(logits[k] / temperature) / z;
      // 6 standard deviations of a binomial frequency: a fixed seed, so this is deterministic anyway.
      EXPECT_NEAR(count[k] / static_cast<double>(n), p, 6.0 * std::sqrt(p * (1 - p) / n)) << "T " << temperature;
    }
  }
}

TEST(Sampling, OptionsAreValidated) {
  Generator gen(1);
  auto expect_bad = [&](SamplingOptions opt, const std::string& field) {
    try {
      opt.validate();
      FAIL() << field;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
    EXPECT_THROW(sample_token(kLogits.data(), 8, opt, gen), std::invalid_argument);
  };
  SamplingOptions o;
  o.temperature = 0.0f;
  expect_bad(o, "temperature");
  o.temperature = -1.0f;
  expect_bad(o, "temperature");
  o.temperature = INFINITY;
  expect_bad(o, "temperature");
  o = {};
  o.top_k = -1;
  expect_bad(o, "top_k");
  o = {};
  o.top_p = 0.0f;
  expect_bad(o, "top_p");
  o.top_p = 1.5f;
  expect_bad(o, "top_p");
  const std::vector<float> nan_logits = {0.0f, NAN};
  EXPECT_THROW(sample_token(nan_logits.data(), 2, SamplingOptions{}, gen), std::invalid_argument);
}
