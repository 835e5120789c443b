#include "nn/clip.h"

#include <cmath>
#include <stdexcept>

#include "base/format.h"

namespace pf {

double grad_norm(const std::vector<Var>& params) {
  double sq = 0.0;
  for (const Var& p : params) {
    if (!p.defined() || !p.has_grad()) continue;
    const float* g = p.grad().data();
    for (int64_t i = 0; i < p.grad().numel(); ++i) sq += static_cast<double>(g[i]) * g[i];
  }
  return std::sqrt(sq);
}

float clip_grad_norm(const std::vector<Var>& params, float max_norm) {
  if (!(max_norm > 0.f))
    throw std::invalid_argument("clip_grad_norm: max_norm must be > 0, got " + float_str(max_norm));
  const double norm = grad_norm(params);
  if (!std::isfinite(norm) || norm <= max_norm) return static_cast<float>(norm);
  const float scale = static_cast<float>(max_norm / norm);
  for (const Var& p : params) {
    if (!p.defined() || !p.has_grad()) continue;
    Tensor g = p.grad();  // same storage
    float* pg = g.data();
    for (int64_t i = 0; i < g.numel(); ++i) pg[i] *= scale;
  }
  return static_cast<float>(norm);
}

}  // namespace pf
