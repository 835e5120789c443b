#include "nn/layer_norm.h"

#include <stdexcept>

#include "autograd/ops.h"
#include "base/format.h"

namespace pf {

LayerNorm::LayerNorm(int64_t d, float e) : dim(d), eps(e) {
  if (d <= 0) throw std::invalid_argument("LayerNorm: dim must be positive, got " + std::to_string(d));
  if (!(e > 0.f)) throw std::invalid_argument("LayerNorm: eps must be > 0, got " + float_str(e));
  gain = register_parameter("weight", Tensor::ones({d}));
  bias = register_parameter("bias", Tensor::zeros({d}));
}

Var LayerNorm::forward(const Var& x) const {
  if (x.dim() < 1 || x.shape().back() != dim)
    throw_shape_error("LayerNorm", "input's last axis must equal the normalized dim; input vs gain", x.shape(),
                      gain.shape());
  return layer_norm(x, gain, bias, eps);
}

}  // namespace pf
