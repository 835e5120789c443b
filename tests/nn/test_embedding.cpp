// Embedding: lookup, initialization scale, gradients accumulated for repeated ids, errors.
#include <gtest/gtest.h>

#include <cmath>

#include "nn/embedding.h"
#include "nn_test_util.h"

using namespace pf;

TEST(Embedding, LooksUpRowsWithIdsShape) {
  Generator gen(1);
  Embedding emb(10, 4, gen);
  EXPECT_EQ(emb.named_parameters()[0].first, "weight");
  std::vector<int32_t> ids = {3, 0, 9, 3, 5, 1};
  Var y = emb.forward(ids, {2, 3});
  ASSERT_EQ(y.shape(), (Shape{2, 3, 4}));
  for (size_t i = 0; i < ids.size(); ++i)
    for (int64_t c = 0; c < 4; ++c) EXPECT_EQ(y.value().data()[i * 4 + c], emb.weight.value().at({ids[i], c}));
}

TEST(Embedding, InitScaleIsStddev) {
  Generator gen(2);
  Embedding emb(1000, 64, gen, 0.02f);
  double sq = 0;
  for (float v : emb.weight.value().to_vector()) sq += double(v) * v;
  const double n = 64000, sd = std::sqrt(sq / n);
  // Sample std of N(0, s^2): relative standard error 1/sqrt(2N); 6 sigma.
  EXPECT_NEAR(sd, 0.02, 6 * 0.02 / std::sqrt(2 * n));
}

TEST(Embedding, RepeatedIdsAccumulateGradient) {
  Generator gen(3);
  Embedding emb(5, 2, gen);
  sum(emb.forward({1, 1, 4, 1}, {4})).backward();
  Tensor g = emb.weight.grad();
  EXPECT_EQ(g.to_vector(), (std::vector<float>{0, 0, 3, 3, 0, 0, 0, 0, 1, 1}));
  auto f = [&emb](const std::vector<Var>& v) {
    emb.weight = v[0];
    return emb.forward({2, 0, 2, 4}, {2, 2});
  };
  test::check_gradients(f, {emb.weight.value().clone()});
}

TEST(Embedding, RejectsIdsOutsideTheVocabulary) {
  Generator gen(4);
  Embedding emb(5, 2, gen);
  EXPECT_THROW(emb.forward({5}, {1}), std::out_of_range);
  EXPECT_THROW(emb.forward({-1}, {1}), std::out_of_range);
  EXPECT_THROW(emb.forward({1, 2}, {3}), std::invalid_argument);
}
