#include "performer/favor_options.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "base/format.h"

namespace pf {

void FavorOptions::validate() const {
  if (chunk_size < 1)
    throw std::invalid_argument("FavorOptions: chunk_size must be >= 1, got " + std::to_string(chunk_size));
  if (!(eps >= 0.0f) || !std::isfinite(eps))
    throw std::invalid_argument("FavorOptions: eps must be finite and >= 0, got " + float_str(eps));
  if (!(relu_floor >= 0.0f) || !std::isfinite(relu_floor))
    throw std::invalid_argument("FavorOptions: relu_floor must be finite and >= 0, got " + float_str(relu_floor));
  if (!(feature_a < 0.125f) || !std::isfinite(feature_a))
    throw std::invalid_argument("FavorOptions: feature_a (FAVOR++ A) must be finite and < 1/8, got " +
                                float_str(feature_a));
  if (feature_a != 0.0f && kind != FeatureKind::Softmax)
    throw std::invalid_argument("FavorOptions: feature_a (FAVOR++) needs the softmax kernel, got " +
                                float_str(feature_a) + " with relu features");
}

}  // namespace pf
