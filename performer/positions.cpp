#include "performer/positions.h"

#include <cmath>
#include <stdexcept>

#include "autograd/ops.h"

namespace pf {

Tensor sinusoidal_positions(int64_t start, int64_t count, int64_t dim) {
  if (start < 0 || count < 0 || dim <= 0)
    throw std::invalid_argument("sinusoidal_positions: need start >= 0, count >= 0, dim > 0 (got " +
                                std::to_string(start) + ", " + std::to_string(count) + ", " + std::to_string(dim) +
                                ")");
  Tensor out({count, dim});  // (T, C)
  float* p = out.data();
  for (int64_t t = 0; t < count; ++t) {
    const double pos = static_cast<double>(start + t);
    for (int64_t c = 0; c < dim; ++c) {
      const int64_t pair = c / 2;  // channels 2i and 2i+1 share one frequency
      const double angle = pos * std::pow(10000.0, -2.0 * static_cast<double>(pair) / static_cast<double>(dim));
      p[t * dim + c] = static_cast<float>(c % 2 == 0 ? std::sin(angle) : std::cos(angle));
    }
  }
  return out;
}

RotaryTables rotary_tables(int64_t start, int64_t count, int64_t head_dim) {
  if (start < 0 || count < 0 || head_dim <= 0 || head_dim % 2 != 0)
    throw std::invalid_argument("rotary_tables: need start >= 0, count >= 0 and an even head_dim > 0 (got " +
                                std::to_string(start) + ", " + std::to_string(count) + ", " + std::to_string(head_dim) +
                                ")");
  const int64_t D = head_dim, half = D / 2;
  RotaryTables r{Tensor({count, D}), Tensor({count, D})};
  float* pc = r.cos.data();
  float* ps = r.signed_sin.data();
  for (int64_t t = 0; t < count; ++t) {
    const double pos = static_cast<double>(start + t);
    for (int64_t i = 0; i < half; ++i) {
      const double angle = pos * std::pow(10000.0, -2.0 * static_cast<double>(i) / static_cast<double>(D));
      const float c = static_cast<float>(std::cos(angle)), s = static_cast<float>(std::sin(angle));
      pc[t * D + i] = c;
      pc[t * D + half + i] = c;
      ps[t * D + i] = -s;
      ps[t * D + half + i] = s;
    }
  }
  return r;
}

Var apply_rotary(const Var& x, const RotaryTables& tables) {
  if (x.dim() < 2 || x.size(-2) != tables.cos.size(0) || x.size(-1) != tables.cos.size(1))
    throw_shape_error("apply_rotary", "x (..., T, D) must end with the table shape (T, D)", x.shape(),
                      tables.cos.shape());
  const int64_t D = x.size(-1), half = D / 2, last = x.dim() - 1;
  // (x1, x2) -> (x2, x1); with signed_sin = (-sin, sin) this gives (x1 cos - x2 sin, x2 cos + x1 sin).
  Var swapped = concat({slice(x, last, half, D), slice(x, last, 0, half)}, last);
  return add(mul(x, constant(tables.cos)), mul(swapped, constant(tables.signed_sin)));
}

}  // namespace pf
