// Helpers shared by the nn tests (on top of the autograd tests' randn, rand and check_gradients).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "tests/autograd/test_util.h"

namespace pf::test {

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

}  // namespace pf::test
