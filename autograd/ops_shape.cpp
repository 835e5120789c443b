// Shape ops: reshape (a view), permute / transpose, slice and concat along an axis.
#include <numeric>
#include <stdexcept>

#include "autograd/ops.h"
#include "autograd/parallel.h"

namespace pf {

namespace {

std::vector<int64_t> strides_of(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (size_t i = s.size(); i-- > 1;) st[i - 1] = st[i] * s[i];
  return st;
}

}  // namespace

Var reshape(const Var& a, Shape shape) {
  Tensor out = a.value().reshape(std::move(shape));
  return make_result(std::move(out), needs_grad({&a}), "reshape", [a = a.slot_ptr()](const Tensor& g) {
    a->accumulate_grad(g.reshape(a->shape));
  });
}

Tensor permute_tensor(const Tensor& t, const std::vector<int64_t>& order) {
  const Shape& s = t.shape();
  const size_t d = s.size();
  if (order.size() != d) throw std::invalid_argument("permute: order has " + std::to_string(order.size()) +
                                                     " axes for shape " + shape_str(s));
  std::vector<bool> seen(d, false);
  for (int64_t o : order) {
    if (o < 0 || o >= static_cast<int64_t>(d) || seen[o])
      throw std::invalid_argument("permute: order is not a permutation of the axes of " + shape_str(s));
    seen[o] = true;
  }
  Shape out_shape(d);
  for (size_t i = 0; i < d; ++i) out_shape[i] = s[order[i]];
  Tensor out = Tensor::empty(out_shape);
  const std::vector<int64_t> in_st = strides_of(s);
  // Source stride for each output axis.
  std::vector<int64_t> st(d);
  for (size_t i = 0; i < d; ++i) st[i] = in_st[order[i]];
  const float* src = t.data();
  float* dst = out.data();
  if (d == 0) {
    dst[0] = src[0];
    return out;
  }
  // Parallel over the leading output axis (or the two leading when the first is small).
  const int64_t inner_n = out.numel() / std::max<int64_t>(1, out_shape[0]);
  parallel_for(
      out_shape[0],
      [&](int64_t b, int64_t e) {
        std::vector<int64_t> idx(d, 0);
        for (int64_t i0 = b; i0 < e; ++i0) {
          std::fill(idx.begin(), idx.end(), 0);
          idx[0] = i0;
          int64_t src_off = i0 * st[0];
          float* o = dst + i0 * inner_n;
          const int64_t last = out_shape[d - 1], last_st = st[d - 1];
          if (d == 1) {
            o[0] = src[src_off];
            continue;
          }
          for (int64_t n = 0; n < inner_n; n += last) {
            const float* s0 = src + src_off;
            for (int64_t j = 0; j < last; ++j) o[n + j] = s0[j * last_st];
            // advance the odometer over axes d-2 .. 1
            for (size_t k = d - 1; k-- > 1;) {
              ++idx[k];
              src_off += st[k];
              if (idx[k] < out_shape[k]) break;
              src_off -= st[k] * out_shape[k];
              idx[k] = 0;
            }
          }
        }
      },
      rows_grain(inner_n));
  return out;
}

Var permute(const Var& a, const std::vector<int64_t>& order) {
  Tensor out = permute_tensor(a.value(), order);
  std::vector<int64_t> inverse(order.size());
  for (size_t i = 0; i < order.size(); ++i) inverse[order[i]] = static_cast<int64_t>(i);
  // Saves only the inverse permutation.
  return make_result(std::move(out), needs_grad({&a}), "permute", [a = a.slot_ptr(), inverse](const Tensor& g) {
    a->accumulate_grad(permute_tensor(g, inverse));
  });
}

Var transpose(const Var& a, int64_t axis0, int64_t axis1) {
  const int64_t d = a.dim();
  int64_t x = normalize_axis(axis0, d, "transpose", a.shape()), y = normalize_axis(axis1, d, "transpose", a.shape());
  std::vector<int64_t> order(d);
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[x], order[y]);
  return permute(a, order);
}

Var slice(const Var& a, int64_t axis, int64_t start, int64_t end) {
  int64_t ax = normalize_axis(axis, a.dim(), "slice", a.shape());
  int64_t outer, n, inner;
  split_axis(a.shape(), ax, outer, n, inner);
  if (start < 0 || end > n || start > end)
    throw std::invalid_argument("slice: range [" + std::to_string(start) + ", " + std::to_string(end) +
                                ") out of bounds for axis " + std::to_string(axis) + " of shape " + shape_str(a.shape()));
  Shape os = a.shape();
  os[ax] = end - start;
  Tensor out = Tensor::empty(os);
  const int64_t len = (end - start) * inner;
  const float* src = a.value().data();
  float* dst = out.data();
  for (int64_t o = 0; o < outer; ++o) std::copy(src + (o * n + start) * inner, src + (o * n + start) * inner + len, dst + o * len);
  // Saves the bounds; the backward scatters into a zero gradient of the input's shape.
  return make_result(std::move(out), needs_grad({&a}), "slice",
                     [a = a.slot_ptr(), outer, n, inner, start, len](const Tensor& g) {
                       float* da = a->grad_buffer().data();
                       const float* pg = g.data();
                       for (int64_t o = 0; o < outer; ++o)
                         for (int64_t j = 0; j < len; ++j) da[(o * n + start) * inner + j] += pg[o * len + j];
                     });
}

Var concat(const std::vector<Var>& parts, int64_t axis) {
  if (parts.empty()) throw std::invalid_argument("concat: no tensors given");
  const Shape& s0 = parts[0].shape();
  int64_t ax = normalize_axis(axis, static_cast<int64_t>(s0.size()), "concat", s0);
  Shape os = s0;
  os[ax] = 0;
  for (const Var& p : parts) {
    Shape a = p.shape(), b = s0;
    if (a.size() != b.size()) throw_shape_error("concat", "ranks differ", b, a);
    a[ax] = b[ax] = 0;
    if (a != b) throw_shape_error("concat", "shapes differ outside the concatenation axis", s0, p.shape());
    os[ax] += p.shape()[ax];
  }
  int64_t outer, n, inner;
  split_axis(os, ax, outer, n, inner);
  Tensor out = Tensor::empty(os);
  std::vector<int64_t> offsets;
  int64_t off = 0;
  for (const Var& p : parts) {
    const int64_t len = p.shape()[ax] * inner;
    const float* src = p.value().data();
    for (int64_t o = 0; o < outer; ++o) std::copy(src + o * len, src + (o + 1) * len, out.data() + o * n * inner + off);
    offsets.push_back(off);
    off += len;
  }
  std::vector<std::shared_ptr<GradSlot>> impls;
  for (const Var& p : parts) impls.push_back(p.slot_ptr());
  return make_result(std::move(out), needs_grad(parts), "concat",
                     [impls, offsets, outer, row = n * inner, inner, ax](const Tensor& g) {
                       for (size_t k = 0; k < impls.size(); ++k) {
                         if (!impls[k]->requires_grad) continue;
                         const int64_t len = impls[k]->shape[ax] * inner;
                         float* d = impls[k]->grad_buffer().data();
                         for (int64_t o = 0; o < outer; ++o)
                           for (int64_t j = 0; j < len; ++j) d[o * len + j] += g.data()[o * row + offsets[k] + j];
                       }
                     });
}

}  // namespace pf
