#include "nn/linear.h"

#include <cmath>
#include <stdexcept>

#include "autograd/ops.h"
#include "nn/init.h"

namespace pf {

Linear::Linear(int64_t in, int64_t out, bool with_bias, Generator& gen) : in_features(in), out_features(out) {
  if (in <= 0 || out <= 0)
    throw std::invalid_argument("Linear: in and out must be positive, got in=" + std::to_string(in) +
                                " out=" + std::to_string(out));
  Tensor w({out, in});
  kaiming_uniform_(w, gen, std::sqrt(5.0f));
  weight = register_parameter("weight", w);
  if (with_bias) {
    const float bound = 1.0f / std::sqrt(static_cast<float>(in));
    Tensor b({out});
    uniform_(b, gen, -bound, bound);
    bias = register_parameter("bias", b);
  }
}

Var Linear::forward(const Var& x) const {
  if (x.dim() < 1 || x.shape().back() != in_features)
    throw_shape_error("Linear", "input's last axis must equal in_features; input vs weight (out, in)", x.shape(),
                      weight.shape());
  // matmul needs a matrix: a single vector (in) is treated as one row.
  const bool vector_in = x.dim() == 1;
  Var x2 = vector_in ? reshape(x, {1, in_features}) : x;
  Var y = linear(x2, weight, bias);  // (..., out): one GEMM, bias preloaded

  return vector_in ? reshape(y, {out_features}) : y;
}

}  // namespace pf
