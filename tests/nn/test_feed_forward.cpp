// FeedForward: structure and names, forward = fc2(dropout(gelu(fc1(x)))), finite-difference
// gradients (with and without an active dropout mask).
#include <gtest/gtest.h>

#include "nn/feed_forward.h"
#include "nn_test_util.h"

using namespace pf;

TEST(FeedForward, NamesAndShapes) {
  Generator gen(1);
  FeedForward ff(4, 16, 0.1f, gen, std::make_shared<Generator>(2));
  std::vector<std::string> names;
  for (auto& [n, v] : ff.named_parameters()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}));
  EXPECT_EQ(ff.fc1->weight.shape(), (Shape{16, 4}));
  EXPECT_EQ(ff.fc2->weight.shape(), (Shape{4, 16}));
  EXPECT_EQ(ff.forward(Var(Tensor({2, 3, 4}))).shape(), (Shape{2, 3, 4}));
}

TEST(FeedForward, EvalForwardIsLinearGeluLinear) {
  Generator gen(1);
  FeedForward ff(4, 8, 0.5f, gen, std::make_shared<Generator>(2));
  ff.eval();
  Var x(test::randn({2, 3, 4}, 3));
  Var expected = ff.fc2->forward(gelu(ff.fc1->forward(x)));
  EXPECT_TRUE(test::bitwise_equal(ff.forward(x).value(), expected.value()));
  ff.train();
  EXPECT_FALSE(test::bitwise_equal(ff.forward(x).value(), expected.value())) << "dropout inactive in training";
}

TEST(FeedForward, GradientsMatchFiniteDifferences) {
  Generator gen(4);
  auto drop_gen = std::make_shared<Generator>(5);
  for (bool training : {false, true}) {
    FeedForward ff(4, 8, 0.2f, gen, drop_gen);
    ff.train(training);
    auto f = [&ff, &drop_gen](const std::vector<Var>& v) {
      drop_gen->seed(11);  // the same dropout mask on every evaluation
      ff.fc1->weight = v[1];
      ff.fc1->bias = v[2];
      ff.fc2->weight = v[3];
      ff.fc2->bias = v[4];
      return ff.forward(v[0]);
    };
    test::check_gradients(f, {test::randn({2, 3, 4}, 6), ff.fc1->weight.value().clone(), ff.fc1->bias.value().clone(),
                              ff.fc2->weight.value().clone(), ff.fc2->bias.value().clone()});
  }
}
