#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "test_util.h"

using namespace pf;
using test::check_gradients;

TEST(Shape, ReshapeSharesStorage) {
  Var a(Tensor::arange(6));
  Var r = reshape(a, {2, 3});
  EXPECT_EQ(r.shape(), (Shape{2, 3}));
  EXPECT_TRUE(r.value().shares_storage_with(a.value()));
  EXPECT_THROW(reshape(a, {4, 2}), std::invalid_argument);
}

TEST(Shape, TransposeAndPermute) {
  Var a(Tensor::arange(24).reshape({2, 3, 4}));
  Var t = transpose(a, 0, 2);
  EXPECT_EQ(t.shape(), (Shape{4, 3, 2}));
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k = 0; k < 4; ++k) EXPECT_EQ(t.value().at({k, j, i}), a.value().at({i, j, k}));
  Var p = permute(a, {1, 2, 0});
  EXPECT_EQ(p.shape(), (Shape{3, 4, 2}));
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k = 0; k < 4; ++k) EXPECT_EQ(p.value().at({j, k, i}), a.value().at({i, j, k}));
  EXPECT_THROW(permute(a, {0, 0, 1}), std::invalid_argument);
  EXPECT_THROW(transpose(a, 0, 3), std::invalid_argument);
}

TEST(Shape, SliceAndConcat) {
  Var a(Tensor::arange(12).reshape({3, 4}));
  test::expect_values(slice(a, 1, 1, 3).value(), {1, 2, 5, 6, 9, 10});
  test::expect_values(slice(a, 0, 2, 3).value(), {8, 9, 10, 11});
  EXPECT_THROW(slice(a, 1, 2, 5), std::invalid_argument);
  Var b(Tensor::full({3, 1}, -1.0f));
  Var c = concat({a, b}, 1);
  EXPECT_EQ(c.shape(), (Shape{3, 5}));
  test::expect_values(c.value(), {0, 1, 2, 3, -1, 4, 5, 6, 7, -1, 8, 9, 10, 11, -1});
  Var d = concat({a, a}, 0);
  EXPECT_EQ(d.shape(), (Shape{6, 4}));
  EXPECT_THROW(concat({a, Var(Tensor::zeros({2, 2}))}, 0), std::invalid_argument);
}

TEST(Shape, Gradients) {
  auto x = test::randn({2, 3, 4}, 41);
  check_gradients([](const std::vector<Var>& a) { return reshape(a[0], {6, 4}); }, {x});
  check_gradients([](const std::vector<Var>& a) { return transpose(a[0], 1, 2); }, {x});
  check_gradients([](const std::vector<Var>& a) { return permute(a[0], {2, 0, 1}); }, {x});
  check_gradients([](const std::vector<Var>& a) { return slice(a[0], 1, 1, 3); }, {x});
  check_gradients([](const std::vector<Var>& a) { return slice(a[0], 2, 0, 1); }, {x});
  check_gradients([](const std::vector<Var>& a) { return concat({a[0], a[1]}, 1); }, {x, test::randn({2, 2, 4}, 42)});
  check_gradients([](const std::vector<Var>& a) { return concat({a[0], a[1], a[0]}, 2); }, {x, test::randn({2, 3, 1}, 43)});
}

TEST(Shape, LargePermuteMatchesDefinition) {
  Tensor x = test::randn({4, 64, 8, 32}, 44);  // (B, T, H, D) -> (B, H, T, D)
  Tensor y = permute_tensor(x, {0, 2, 1, 3});
  for (int64_t b = 0; b < 4; b += 3)
    for (int64_t t = 0; t < 64; t += 7)
      for (int64_t h = 0; h < 8; ++h)
        for (int64_t d = 0; d < 32; d += 5) EXPECT_EQ(y.at({b, h, t, d}), x.at({b, t, h, d}));
}
