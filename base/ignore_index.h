// Target value of positions excluded from the loss (padding, unselected masked-LM positions): the
// batches of data/ carry it and the cross-entropy of autograd/ skips it. Same value as PyTorch's
// default ignore_index, so reference comparisons line up.
#pragma once

#include <cstdint>

namespace pf {

inline constexpr int32_t kIgnoreIndex = -100;

}  // namespace pf
