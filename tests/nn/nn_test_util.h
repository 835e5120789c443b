// Helpers shared by the nn tests.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "autograd/generator.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"

namespace pf::test {

inline Tensor randn(Shape s, uint64_t seed, float scale = 1.0f) {
  Generator g(seed);
  return Tensor::randn(std::move(s), g, 0.0f, scale);
}

// A golden vector (flat values + shape) as a Tensor.
inline Tensor from_golden(const std::vector<float>& values, const std::vector<int64_t>& shape) {
  return Tensor::from_vector(values, Shape(shape.begin(), shape.end()));
}

// |actual - expected| <= rtol * |expected| + atol for every element (and the same numel).
inline void expect_close(const Tensor& actual, const std::vector<float>& expected, float rtol, float atol,
                         const char* what = "") {
  ASSERT_EQ(actual.numel(), static_cast<int64_t>(expected.size())) << what;
  int reported = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const float a = actual.data()[i], e = expected[i];
    const float tol = rtol * std::fabs(e) + atol;
    if (!(std::fabs(a - e) <= tol) && reported++ < 5)
      ADD_FAILURE() << what << "[" << i << "]: got " << a << ", expected " << e << " (tolerance " << tol << ")";
  }
}

// Bitwise equality (stronger than ==: tells -0 from 0, compares NaN payloads).
inline bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.numel() * sizeof(float)) == 0;
}

// Checks a backward against finite differences and proves the check is tight enough: the same
// check must FAIL when every backward is scaled by 1.05 (a planted 5% bug).
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
