// The options of the FAVOR+ kernels (performer/favor.h explains each): shared by the public
// functions and the kernels' internals (favor_kernels.h), so that neither includes the other.
#pragma once

#include <algorithm>
#include <cstdint>

#include "performer/features.h"

namespace pf {

// Denominators below this are replaced by it (performer/favor.h, "The guard").
constexpr float kFavorDenominatorFloor = 1e-30f;

enum class KeyShift { PerKey, Shared };  // performer/favor.h, "Where eps is added"

struct FavorOptions {
  FeatureKind kind = FeatureKind::Softmax;
  float eps = 1e-6f;        // Softmax feature floor, added at the key's own shift; >= 0
  int64_t chunk_size = 64;  // C: positions per chunk (causal and bidirectional kernels); >= 1
  KeyShift key_shift = KeyShift::PerKey;
  float relu_floor = 1e-3f;  // Relu feature floor (the Performer-ReLU constant); >= 0
  // FAVOR++ (optimal positive random features, performer/favor.h, "FAVOR++"): the parameter A < 1/8 of
  // phi(x)_f ~ (1 - 4A)^(D/4) exp(A |w_f|^2 + sqrt(1 - 4A) w_f.x' - |x'|^2 / 2). 0 is FAVOR+.
  // Softmax features only.
  float feature_a = 0.0f;
  // The chunk length every kernel uses for a sequence of T positions: chunk_size, at most T, at least 1.
  int64_t chunk_length(int64_t T) const { return std::max<int64_t>(1, std::min(chunk_size, T)); }
  // Throws std::invalid_argument naming the bad field and its value.
  void validate() const;
};

}  // namespace pf
