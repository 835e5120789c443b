// Element-wise ops: binary with broadcasting, and unary maps.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

#include "autograd/kernels.h"
#include "autograd/ops.h"
#include "autograd/parallel.h"

namespace pf {

// ---------------------------------------------------------------- broadcasting helpers

Shape broadcast_shape(const Shape& a, const Shape& b, const char* op) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1) throw_shape_error(op, "shapes cannot be broadcast", a, b);
    out[i] = da == 1 ? db : da;
  }
  return out;
}

namespace {

// Strides of `shape` (right-aligned inside `out`), with 0 on broadcast axes.
std::vector<int64_t> broadcast_strides(const Shape& shape, const Shape& out) {
  std::vector<int64_t> st(out.size(), 0);
  int64_t s = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    size_t k = shape.size() - 1 - i;
    size_t o = out.size() - 1 - i;
    st[o] = shape[k] == 1 ? 0 : s;
    s *= shape[k];
  }
  return st;
}

// Is `small` (after dropping its leading 1s) a suffix of `big`?
bool is_suffix(const Shape& small, const Shape& big) {
  size_t lead = 0;
  while (lead < small.size() && small[lead] == 1) ++lead;
  size_t n = small.size() - lead;
  if (n > big.size()) return false;
  for (size_t i = 0; i < n; ++i)
    if (small[lead + i] != big[big.size() - n + i]) return false;
  return true;
}

// Calls f(out_index, index_into_a, index_into_b) for every element of `out`, in order.
template <class F>
void for_each_broadcast(const Shape& out, const std::vector<int64_t>& sa, const std::vector<int64_t>& sb, F&& f) {
  const int64_t n = shape_numel(out);
  const size_t d = out.size();
  std::vector<int64_t> idx(d, 0);
  int64_t ia = 0, ib = 0;
  for (int64_t i = 0; i < n; ++i) {
    f(i, ia, ib);
    for (size_t k = d; k-- > 0;) {
      ++idx[k];
      ia += sa[k];
      ib += sb[k];
      if (idx[k] < out[k]) break;
      ia -= sa[k] * out[k];
      ib -= sb[k] * out[k];
      idx[k] = 0;
    }
  }
}

// out = f(a, b) with broadcasting. Fast paths: equal shapes, scalar operand, suffix operand.
template <class F>
Tensor binary_map(const Tensor& a, const Tensor& b, const char* op, F f) {
  if (a.shape() == b.shape()) {
    Tensor out = Tensor::empty(a.shape());
    const float *pa = a.data(), *pb = b.data();
    float* po = out.data();
    parallel_for(out.numel(), [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) po[i] = f(pa[i], pb[i]);
    });
    return out;
  }
  Shape shape = broadcast_shape(a.shape(), b.shape(), op);
  Tensor out = Tensor::empty(shape);
  const float *pa = a.data(), *pb = b.data();
  float* po = out.data();
  const int64_t n = out.numel(), na = a.numel(), nb = b.numel();
  // One operand has the output's shape and the other repeats every m elements (a bias over rows):
  // rows of m, the inner loop vectorizes. g(full element, repeated element).
  auto repeat_rows = [&](const float* full, const float* rep, int64_t m, auto g) {
    parallel_for(
        n / m,
        [&](int64_t s, int64_t e) {
          for (int64_t r = s; r < e; ++r) {
            const float* fr = full + r * m;
            float* orow = po + r * m;
            for (int64_t j = 0; j < m; ++j) orow[j] = g(fr[j], rep[j]);
          }
        },
        rows_grain(m));
  };
  if (a.shape() == shape && is_suffix(b.shape(), shape)) {
    repeat_rows(pa, pb, nb, [&](float x, float y) { return f(x, y); });
  } else if (b.shape() == shape && is_suffix(a.shape(), shape)) {
    repeat_rows(pb, pa, na, [&](float y, float x) { return f(x, y); });
  } else {
    auto sa = broadcast_strides(a.shape(), shape), sb = broadcast_strides(b.shape(), shape);
    for_each_broadcast(shape, sa, sb, [&](int64_t i, int64_t ia, int64_t ib) { po[i] = f(pa[ia], pb[ib]); });
  }
  return out;
}

}  // namespace

Tensor reduce_to_shape(const Tensor& g, const Shape& target) {
  if (g.shape() == target) return g;
  Tensor out(target);
  float* po = out.data();
  const float* pg = g.data();
  const int64_t n = g.numel(), nt = out.numel();
  if (nt == 1) {
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) s += pg[i];
    po[0] = static_cast<float>(s);
  } else if (is_suffix(target, g.shape())) {
    // Sum rows of a (n / nt, nt) view: parallel over columns keeps the order fixed.
    const int64_t rows = n / nt;
    parallel_for(
        nt,
        [&](int64_t s, int64_t e) {
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t j = s; j < e; ++j) po[j] += pg[r * nt + j];
        },
        1024);
  } else {
    auto st = broadcast_strides(target, g.shape());
    std::vector<int64_t> zero(g.shape().size(), 0);
    for_each_broadcast(g.shape(), st, zero, [&](int64_t i, int64_t it, int64_t) { po[it] += pg[i]; });
  }
  return out;
}

Tensor broadcast_to(const Tensor& t, const Shape& shape) {
  if (t.shape() == shape) return t;
  Shape s = broadcast_shape(t.shape(), shape, "broadcast_to");
  if (s != shape) throw_shape_error("broadcast_to", "cannot broadcast", t.shape(), shape);
  Tensor zeros = Tensor(shape);
  return binary_map(t, zeros, "broadcast_to", [](float x, float) { return x; });
}

// ---------------------------------------------------------------- binary ops

Var add(const Var& a, const Var& b) {
  Tensor out = binary_map(a.value(), b.value(), "add", [](float x, float y) { return x + y; });
  bool rg = needs_grad({&a, &b});
  // Saves no value, only the inputs' gradient slots: d(a+b)/da = d(a+b)/db = 1.
  return make_result(std::move(out), rg, "add", [a = a.slot_ptr(), b = b.slot_ptr()](const Tensor& g) {
    if (a->requires_grad) a->accumulate_grad(reduce_to_shape(g, a->shape));
    if (b->requires_grad) b->accumulate_grad(reduce_to_shape(g, b->shape));
  });
}

Var sub(const Var& a, const Var& b) {
  Tensor out = binary_map(a.value(), b.value(), "sub", [](float x, float y) { return x - y; });
  bool rg = needs_grad({&a, &b});
  return make_result(std::move(out), rg, "sub", [a = a.slot_ptr(), b = b.slot_ptr()](const Tensor& g) {
    if (a->requires_grad) a->accumulate_grad(reduce_to_shape(g, a->shape));
    if (b->requires_grad) {
      Tensor ng = binary_map(g, Tensor::scalar(-1.0f), "sub", [](float x, float y) { return x * y; });
      b->accumulate_grad(reduce_to_shape(ng, b->shape));
    }
  });
}

Var mul(const Var& a, const Var& b) {
  Tensor out = binary_map(a.value(), b.value(), "mul", [](float x, float y) { return x * y; });
  bool rg = needs_grad({&a, &b});
  // d(ab)/da = b, d(ab)/db = a: saves (shares, does not copy) each value only if the other input
  // wants a gradient.
  Tensor av = rg && b.requires_grad() ? a.value() : Tensor(), bv = rg && a.requires_grad() ? b.value() : Tensor();
  return make_result(std::move(out), rg, "mul",
                     [a = a.slot_ptr(), b = b.slot_ptr(), av, bv](const Tensor& g) {
    auto times = [](float x, float y) { return x * y; };
    if (a->requires_grad) a->accumulate_grad(reduce_to_shape(binary_map(g, bv, "mul", times), a->shape));
    if (b->requires_grad) b->accumulate_grad(reduce_to_shape(binary_map(g, av, "mul", times), b->shape));
  });
}

Var div(const Var& a, const Var& b) {
  Tensor out = binary_map(a.value(), b.value(), "div", [](float x, float y) { return x / y; });
  bool rg = needs_grad({&a, &b});
  // d(a/b)/da = 1/b; d(a/b)/db = -a/b^2 = -out/b.
  Tensor av = rg && b.requires_grad() ? a.value() : Tensor(), bv = rg ? b.value() : Tensor();
  return make_result(std::move(out), rg, "div", [a = a.slot_ptr(), b = b.slot_ptr(), av, bv](const Tensor& g) {
    if (a->requires_grad)
      a->accumulate_grad(
          reduce_to_shape(binary_map(g, bv, "div", [](float x, float y) { return x / y; }), a->shape));
    if (b->requires_grad) {
      Tensor ga = binary_map(g, av, "div", [](float x, float y) { return x * y; });
      Tensor q = binary_map(ga, bv, "div", [](float x, float y) { return -x / (y * y); });
      b->accumulate_grad(reduce_to_shape(q, b->shape));
    }
  });
}

// ---------------------------------------------------------------- unary ops

namespace {

template <class F>
Tensor unary_map(const Tensor& a, F f) {
  Tensor out = Tensor::empty(a.shape());
  const float* pa = a.data();
  float* po = out.data();
  parallel_for(a.numel(), [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) po[i] = f(pa[i]);
  });
  return out;
}

// grad_in[i] += g[i] * f(x[i], y[i]) where x is the saved input and y the saved output.
template <class F>
void accumulate_unary(GradSlot* in, const Tensor& g, const Tensor& x, const Tensor& y, F f) {
  Tensor d = Tensor::empty(g.shape());
  const float *pg = g.data(), *px = x.defined() ? x.data() : nullptr, *py = y.defined() ? y.data() : nullptr;
  float* pd = d.data();
  parallel_for(g.numel(), [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) pd[i] = pg[i] * f(px ? px[i] : 0.0f, py ? py[i] : 0.0f);
  });
  in->accumulate_grad(std::move(d));
}

}  // namespace

Var neg(const Var& a) { return mul_scalar(a, -1.0f); }

Var add_scalar(const Var& a, float s) {
  Tensor out = unary_map(a.value(), [s](float x) { return x + s; });
  return make_result(std::move(out), needs_grad({&a}), "add_scalar",
                     [a = a.slot_ptr()](const Tensor& g) { a->accumulate_grad(g); });
}

Var mul_scalar(const Var& a, float s) {
  Tensor out = unary_map(a.value(), [s](float x) { return x * s; });
  return make_result(std::move(out), needs_grad({&a}), "mul_scalar", [a = a.slot_ptr(), s](const Tensor& g) {
    a->accumulate_grad(unary_map(g, [s](float x) { return x * s; }));
  });
}

Var exp(const Var& a) {
  Tensor out = unary_map(a.value(), [](float x) { return std::exp(x); });
  // Saves the output: d exp(x)/dx = exp(x).
  return make_result(out, needs_grad({&a}), "exp", [a = a.slot_ptr(), y = out](const Tensor& g) {
    accumulate_unary(a.get(), g, Tensor(), y, [](float, float y) { return y; });
  });
}

Var log(const Var& a) {
  Tensor out = unary_map(a.value(), [](float x) { return std::log(x); });
  return make_result(std::move(out), needs_grad({&a}), "log", [a = a.slot_ptr(), x = a.value()](const Tensor& g) {
    accumulate_unary(a.get(), g, x, Tensor(), [](float x, float) { return 1.0f / x; });
  });
}

Var sqrt(const Var& a) {
  Tensor out = unary_map(a.value(), [](float x) { return std::sqrt(x); });
  return make_result(out, needs_grad({&a}), "sqrt", [a = a.slot_ptr(), y = out](const Tensor& g) {
    accumulate_unary(a.get(), g, Tensor(), y, [](float, float y) { return 0.5f / y; });
  });
}

Var pow(const Var& a, float p) {
  Tensor out = unary_map(a.value(), [p](float x) { return std::pow(x, p); });
  return make_result(std::move(out), needs_grad({&a}), "pow", [a = a.slot_ptr(), x = a.value(), p](const Tensor& g) {
    accumulate_unary(a.get(), g, x, Tensor(), [p](float x, float) { return p * std::pow(x, p - 1.0f); });
  });
}

Var tanh(const Var& a) {
  Tensor out = unary_map(a.value(), [](float x) { return std::tanh(x); });
  return make_result(out, needs_grad({&a}), "tanh", [a = a.slot_ptr(), y = out](const Tensor& g) {
    accumulate_unary(a.get(), g, Tensor(), y, [](float, float y) { return 1.0f - y * y; });
  });
}

Var sigmoid(const Var& a) {
  Tensor out = unary_map(a.value(), [](float x) { return 1.0f / (1.0f + std::exp(-x)); });
  return make_result(out, needs_grad({&a}), "sigmoid", [a = a.slot_ptr(), y = out](const Tensor& g) {
    accumulate_unary(a.get(), g, Tensor(), y, [](float, float y) { return y * (1.0f - y); });
  });
}

Var relu(const Var& a) {
  Tensor out = unary_map(a.value(), [](float x) { return x > 0.0f ? x : 0.0f; });
  return make_result(out, needs_grad({&a}), "relu", [a = a.slot_ptr(), y = out](const Tensor& g) {
    accumulate_unary(a.get(), g, Tensor(), y, [](float, float y) { return y > 0.0f ? 1.0f : 0.0f; });
  });
}

namespace {
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluC = 0.044715f;
}  // namespace

// GELU in blocks of Eigen arrays (vectorized exp; GELU sits on the model's largest activation,
// B*T x 4C). With u = sqrt(2/pi) (x + 0.044715 x^3): 0.5 (1 + tanh u) = sigmoid(2u) =: s, so
// gelu = x s and d gelu/dx = s + 2 x s (1 - s) u'. The sigmoid form keeps the tails accurate
// where 1 + tanh(u) would cancel to 0.
void kernels::gelu(const float* px, float* py, int64_t n) {
  parallel_for(n, [&](int64_t s, int64_t e) {
    Eigen::Map<const Eigen::ArrayXf> x(px + s, e - s);
    Eigen::Map<Eigen::ArrayXf> y(py + s, e - s);
    y = x / (1.0f + (-2.0f * kSqrt2OverPi * (x + kGeluC * x.cube())).exp());
  });
}

void kernels::gelu_backward(const float* px, const float* pg, float* pd, int64_t count) {
  parallel_for(count, [&](int64_t s, int64_t e) {
    // Blocks that stay in L1: the sigmoid is a temporary of one block, not of the whole range.
    constexpr int64_t kBlock = 1024;
    Eigen::Array<float, kBlock, 1> sg_block;
    for (int64_t b = s; b < e; b += kBlock) {
      const int64_t n = std::min(kBlock, e - b);
      Eigen::Map<const Eigen::ArrayXf> x(px + b, n), gg(pg + b, n);
      auto sg = sg_block.head(n);
      sg = 1.0f / (1.0f + (-2.0f * kSqrt2OverPi * (x + kGeluC * x.cube())).exp());
      Eigen::Map<Eigen::ArrayXf>(pd + b, n) =
          gg * (sg + 2.0f * x * sg * (1.0f - sg) * kSqrt2OverPi * (1.0f + 3.0f * kGeluC * x.square()));
    }
  });
}

void kernels::apply_dropout_mask(float* x, int64_t n, uint64_t base, float keep, float scale) {
  parallel_for(n, [&](int64_t s, int64_t e) { dropout_block(x + s, x + s, e - s, base, s, keep, scale); });
}

Var gelu(const Var& a) {
  Tensor out = Tensor::empty(a.shape());
  kernels::gelu(a.value().data(), out.data(), a.numel());
  // Saves the input; the backward recomputes the sigmoid rather than keeping a second tensor.
  return make_result(std::move(out), needs_grad({&a}), "gelu", [a = a.slot_ptr(), x = a.value()](const Tensor& g) {
    Tensor d = Tensor::empty(g.shape());
    kernels::gelu_backward(x.data(), g.data(), d.data(), g.numel());
    a->accumulate_grad(std::move(d));
  });
}

}  // namespace pf
