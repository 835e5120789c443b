// Finite-difference gradient check for float32 ops.
//
// Storage is float32, so naive per-element central differences are too noisy to catch a
// backward that is off by a few percent. Instead the op's output is contracted with a fixed
// random tensor R into a probe loss L(x) = sum(R * f(x)), accumulated in double, and for
// several random unit directions v per input we compare the analytic directional derivative
// <dL/dx, v> with the central difference (L(x + h v) - L(x - h v)) / 2h. A backward scaled by
// 1.05 changes every directional derivative by 5%, far above the ~1e-3 noise, so it fails
// (tests/autograd/test_gradcheck.cpp proves this with a planted bug).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "autograd/var.h"

namespace pf {

struct GradcheckOptions {
  float step = 1e-2f;        // h
  float rtol = 1e-2f;        // relative tolerance on each directional derivative
  float atol = 1e-4f;        // absolute floor (for derivatives near zero)
  int directions = 6;        // random directions per input
  uint64_t seed = 1234;
  std::vector<bool> check;   // which inputs to check (default: all)
};

struct GradcheckResult {
  bool ok = true;
  double worst_rel_error = 0.0;
  std::string message;  // first failure: input, direction, analytic vs numeric
};

using GradcheckFn = std::function<Var(const std::vector<Var>&)>;

// Checks d f / d inputs. `f` must be deterministic (same inputs -> same output). It records on its
// own tape (TapeScope): a graph the caller has recorded but not yet back-propagated is left as it was.
GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace pf
