// Helpers shared by the autograd tests.
#pragma once

#include <gtest/gtest.h>

#include "base/random.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"

namespace pf::test {

inline Tensor randn(Shape s, uint64_t seed, float scale = 1.0f) {
  Generator g(seed);
  return Tensor::randn(std::move(s), g, 0.0f, scale);
}

// Values in [low, high): for ops defined on a positive domain (log, sqrt, pow, div).
inline Tensor rand(Shape s, uint64_t seed, float low, float high) {
  Generator g(seed);
  return Tensor::rand(std::move(s), g, low, high);
}

#define EXPECT_GRADCHECK(fn, inputs)                        \
  do {                                                      \
    auto _r = ::pf::gradcheck((fn), (inputs));              \
    EXPECT_TRUE(_r.ok) << _r.message;                       \
  } while (0)

inline void expect_values(const Tensor& t, const std::vector<float>& expected, float tol = 1e-6f) {
  ASSERT_EQ(t.numel(), static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(t.data()[i], expected[i], tol) << "at " << i;
}

}  // namespace pf::test

namespace pf::test {

// Checks an op's backward against finite differences, and proves the check is tight enough:
// the same check must FAIL when every backward is scaled by 1.05 (a planted 5% bug).
inline void check_gradients(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                            GradcheckOptions opt = GradcheckOptions()) {
  auto good = gradcheck(fn, inputs, opt);
  EXPECT_TRUE(good.ok) << good.message;
  auto bad = [&] {
    GradientHookGuard scaled([](const char*, Tensor& g) { g.vec() *= 1.05f; });  // a planted 5% bug everywhere
    return gradcheck(fn, inputs, opt);
  }();
  EXPECT_FALSE(bad.ok) << "gradcheck did not detect a backward scaled by 1.05";
}

}  // namespace pf::test
