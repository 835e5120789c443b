// Internals shared by the favor-local kernels (favor_local.cpp: causal, favor_local_bidirectional.cpp,
// favor_local_step.cpp: the recurrent form). Not part of the public API: the math is in favor_local.h.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "performer/favor_kernels.h"
#include "performer/favor_options.h"

namespace pf::favor_local_detail {

inline void check_local_options(const char* op, int64_t window, const FavorOptions& opt) {
  if (window < 1)
    throw std::invalid_argument(std::string(op) + ": window must be >= 1, got " + std::to_string(window));
  if (opt.kind != FeatureKind::Softmax)
    throw std::invalid_argument(std::string(op) +
                                ": the far field must estimate the softmax kernel (FeatureKind::Softmax), got relu");
}

// The shared scale of one query (favor_local.h): m the largest near logit (-inf if none), denF the far
// denominator at the far shift `shift` (= a_i + r_i, plus the head's log-gain when mixing is learned),
// far_present false when the query has no far key. Sets c = max(m, lF) and g = exp(shift - c) (0 when
// the far part is off: no far key or denF below the floor).
inline void shared_scale(float m, float denF, float shift, bool far_present, float& c, float& g) {
  const bool far = far_present && shift > favor_detail::kNegInf && denF >= kFavorDenominatorFloor;
  const float lF = far ? shift + std::log(denF) : favor_detail::kNegInf;
  c = std::max(m, lF);
  g = far ? std::exp(shift - c) : 0.0f;
}

// The learned per-head log-gain lambda (H) of the far field, or 0 without one. `gain` may be undefined.
inline float head_log_gain(const Var& gain, int64_t bh, int64_t H) {
  return gain.defined() ? gain.value().data()[bh % H] : 0.0f;
}

// Checks that gain is undefined or a (H) vector.
inline void check_gain(const char* op, const Var& gain, int64_t H) {
  if (gain.defined() && (gain.dim() != 1 || gain.size(0) != H))
    throw_shape_error(op, "far_log_gain must be (H)", gain.shape(), Shape{H});
}

// Adds the per-(batch, head) gradients dl (B*H) of the log-gain into its gradient (H).
inline void add_gain_grad(const float* dl, int64_t BH, int64_t H, float* dgain) {
  for (int64_t bh = 0; bh < BH; ++bh) dgain[bh % H] += dl[bh];
}

}  // namespace pf::favor_local_detail
