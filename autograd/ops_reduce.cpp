// Reductions: sum / mean over everything or along one axis, and max along an axis.
#include <cmath>
#include <limits>
#include <stdexcept>

#include "autograd/ops.h"
#include "autograd/parallel.h"

namespace pf {

namespace {

Shape reduced_shape(const Shape& s, int64_t axis, bool keepdim) {
  Shape out = s;
  if (keepdim) out[axis] = 1;
  else out.erase(out.begin() + axis);
  return out;
}

// Sum of all elements in double, in fixed blocks so the order does not depend on threads.
double total(const Tensor& t) {
  const float* p = t.data();
  const int64_t n = t.numel();
  constexpr int64_t kBlock = 4096;
  const int64_t nb = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(nb, 0.0);
  parallel_for(
      nb,
      [&](int64_t s, int64_t e) {
        for (int64_t b = s; b < e; ++b) {
          double acc = 0.0;
          for (int64_t i = b * kBlock; i < std::min(n, (b + 1) * kBlock); ++i) acc += p[i];
          partial[b] = acc;
        }
      },
      8);
  double sum = 0.0;
  for (double v : partial) sum += v;
  return sum;
}

Tensor sum_axis(const Tensor& a, int64_t axis, bool keepdim) {
  int64_t outer, n, inner;
  split_axis(a.shape(), axis, outer, n, inner);
  Tensor out(reduced_shape(a.shape(), axis, keepdim));
  const float* pa = a.data();
  float* po = out.data();
  parallel_for(
      outer,
      [&](int64_t s, int64_t e) {
        for (int64_t o = s; o < e; ++o)
          for (int64_t k = 0; k < n; ++k) {
            const float* row = pa + (o * n + k) * inner;
            float* dst = po + o * inner;
            for (int64_t i = 0; i < inner; ++i) dst[i] += row[i];
          }
      },
      rows_grain(n * inner));
  return out;
}

// Spreads g (reduced shape) back over `axis` of `shape`, times `scale`.
Tensor expand_axis(const Tensor& g, const Shape& shape, int64_t axis, float scale) {
  int64_t outer, n, inner;
  split_axis(shape, axis, outer, n, inner);
  Tensor out = Tensor::empty(shape);
  const float* pg = g.data();
  float* po = out.data();
  parallel_for(
      outer,
      [&](int64_t s, int64_t e) {
        for (int64_t o = s; o < e; ++o)
          for (int64_t k = 0; k < n; ++k)
            for (int64_t i = 0; i < inner; ++i) po[(o * n + k) * inner + i] = pg[o * inner + i] * scale;
      },
      rows_grain(n * inner));
  return out;
}

}  // namespace

Var sum(const Var& a) {
  Tensor out = Tensor::scalar(static_cast<float>(total(a.value())));
  return make_result(std::move(out), needs_grad({&a}), "sum", [a = a.slot_ptr()](const Tensor& g) {
    a->accumulate_grad(Tensor::full(a->shape, g.item()));
  });
}

Var mean(const Var& a) {
  const int64_t n = a.numel();
  if (n == 0) throw std::invalid_argument("mean: empty tensor of shape " + shape_str(a.shape()));
  Tensor out = Tensor::scalar(static_cast<float>(total(a.value()) / static_cast<double>(n)));
  return make_result(std::move(out), needs_grad({&a}), "mean", [a = a.slot_ptr(), n](const Tensor& g) {
    a->accumulate_grad(Tensor::full(a->shape, g.item() / static_cast<float>(n)));
  });
}

Var sum(const Var& a, int64_t axis, bool keepdim) {
  int64_t ax = normalize_axis(axis, a.dim(), "sum", a.shape());
  Tensor out = sum_axis(a.value(), ax, keepdim);
  return make_result(std::move(out), needs_grad({&a}), "sum_axis", [a = a.slot_ptr(), ax](const Tensor& g) {
    a->accumulate_grad(expand_axis(g, a->shape, ax, 1.0f));
  });
}

Var mean(const Var& a, int64_t axis, bool keepdim) {
  int64_t ax = normalize_axis(axis, a.dim(), "mean", a.shape());
  const int64_t n = a.shape()[ax];
  if (n == 0) throw std::invalid_argument("mean: empty axis in shape " + shape_str(a.shape()));
  Tensor out = sum_axis(a.value(), ax, keepdim);
  const float inv = 1.0f / static_cast<float>(n);
  out.vec() *= inv;
  return make_result(std::move(out), needs_grad({&a}), "mean_axis", [a = a.slot_ptr(), ax, inv](const Tensor& g) {
    a->accumulate_grad(expand_axis(g, a->shape, ax, inv));
  });
}

Var max(const Var& a, int64_t axis, bool keepdim) {
  int64_t ax = normalize_axis(axis, a.dim(), "max", a.shape());
  int64_t outer, n, inner;
  split_axis(a.shape(), ax, outer, n, inner);
  if (n == 0) throw std::invalid_argument("max: empty axis in shape " + shape_str(a.shape()));
  Tensor out = Tensor::empty(reduced_shape(a.shape(), ax, keepdim));
  // The arg-max of each output element is saved for the backward (a flat index into a).
  auto argmax = std::make_shared<std::vector<int64_t>>(outer * inner);
  const float* pa = a.value().data();
  float* po = out.data();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      int64_t best = (o * n) * inner + i;
      for (int64_t k = 1; k < n; ++k) {
        int64_t idx = (o * n + k) * inner + i;
        if (pa[idx] > pa[best] || std::isnan(pa[idx])) best = idx;
      }
      po[o * inner + i] = pa[best];
      (*argmax)[o * inner + i] = best;
    }
  return make_result(std::move(out), needs_grad({&a}), "max", [a = a.slot_ptr(), argmax](const Tensor& g) {
    Tensor d(a->shape);
    const float* pg = g.data();
    for (size_t j = 0; j < argmax->size(); ++j) d.data()[(*argmax)[j]] += pg[j];
    a->accumulate_grad(std::move(d));
  });
}

}  // namespace pf
