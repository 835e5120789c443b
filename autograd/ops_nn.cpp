// Neural-network ops: softmax family, fused layer norm, embedding, fused cross-entropy,
// dropout and masking.
#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>
#include <vector>

#include "base/format.h"
#include "base/random.h"
#include "autograd/kernels.h"
#include "autograd/ops.h"
#include "autograd/parallel.h"

namespace pf {

namespace {

// (rows, cols) view of a tensor whose last axis is the one reduced.
void rows_cols(const Tensor& t, const char* op, int64_t& rows, int64_t& cols) {
  if (t.dim() == 0) throw std::invalid_argument(std::string(op) + ": needs at least one axis, got shape ()");
  cols = t.shape().back();
  rows = cols ? t.numel() / cols : 0;
}

using Arr = Eigen::Map<Eigen::ArrayXf>;
using CArr = Eigen::Map<const Eigen::ArrayXf>;

}  // namespace

// ------------------------------------------------------------------ softmax

namespace {

// A row-wise op over the last axis whose backward reads its own output y: fwd(x_row, y_row) and
// bwd(y_row, dy_row, dx_row), each row on its own, rows in parallel.
template <class Fwd, class Bwd>
Var rowwise(const Var& a, const char* name, Fwd fwd, Bwd bwd) {
  int64_t rows, cols;
  rows_cols(a.value(), name, rows, cols);
  Tensor out = Tensor::empty(a.shape());
  const float* px = a.value().data();
  float* py = out.data();
  auto each_row = [cols](int64_t rows, auto f) {
    parallel_for(rows, [&](int64_t s, int64_t e) { for (int64_t r = s; r < e; ++r) f(r); }, rows_grain(cols));
  };
  each_row(rows, [&](int64_t r) {
    CArr x(px + r * cols, cols);
    Arr y(py + r * cols, cols);
    fwd(x, y);
  });
  return make_result(out, needs_grad({&a}), name, [a = a.slot_ptr(), y = out, rows, cols, bwd, each_row](const Tensor& g) {
    float* dx = a->grad_buffer().data();
    each_row(rows, [&](int64_t r) {
      CArr yr(y.data() + r * cols, cols), gr(g.data() + r * cols, cols);
      Arr d(dx + r * cols, cols);
      bwd(yr, gr, d);
    });
  });
}

}  // namespace

// Saves the output: dx = y * (dy - sum(dy * y)).
Var softmax(const Var& a) {
  return rowwise(
      a, "softmax",
      [](const CArr& x, Arr& y) {
        y = (x - x.maxCoeff()).exp();
        y /= y.sum();
      },
      [](const CArr& y, const CArr& g, Arr& d) { d += y * (g - (g * y).sum()); });
}

// Saves the output: dx = dy - softmax * sum(dy), softmax = exp(y).
Var log_softmax(const Var& a) {
  return rowwise(
      a, "log_softmax",
      [](const CArr& x, Arr& y) {
        // (x - m) - log(sum exp(x - m)): subtracting a rounded lse from a large x would lose digits.
        const float m = x.maxCoeff();
        y = (x - m) - std::log((x - m).exp().sum());
      },
      [](const CArr& y, const CArr& g, Arr& d) { d += g - y.exp() * g.sum(); });
}

// ------------------------------------------------------------------ layer norm

Var layer_norm(const Var& x, const Var& gain, const Var& bias, float eps) {
  int64_t rows, C;
  rows_cols(x.value(), "layer_norm", rows, C);
  if (gain.shape() != Shape{C}) throw_shape_error("layer_norm", "gain must be (C) for input", x.shape(), gain.shape());
  if (bias.shape() != Shape{C}) throw_shape_error("layer_norm", "bias must be (C) for input", x.shape(), bias.shape());
  Tensor out = Tensor::empty(x.shape());
  Tensor mean_t = Tensor::empty({rows}), rstd_t = Tensor::empty({rows});
  const float* px = x.value().data();
  const float* pw = gain.value().data();
  const float* pb = bias.value().data();
  float* py = out.data();
  float* pm = mean_t.data();
  float* ps = rstd_t.data();
  parallel_for(
      rows,
      [&](int64_t s, int64_t e) {
        for (int64_t r = s; r < e; ++r) {
          CArr xr(px + r * C, C);
          const float m = xr.sum() / static_cast<float>(C);
          const float var = (xr - m).square().sum() / static_cast<float>(C);
          const float rs = 1.0f / std::sqrt(var + eps);
          pm[r] = m;
          ps[r] = rs;
          Arr(py + r * C, C) = (xr - m) * rs * CArr(pw, C) + CArr(pb, C);
        }
      },
      rows_grain(C));
  // Saves x and the gain (shared, not copied), the per-row mean and reciprocal std (B*T floats each);
  // xhat is recomputed.
  return make_result(
      std::move(out), needs_grad({&x, &gain, &bias}), "layer_norm",
      [x = x.slot_ptr(), w = gain.slot_ptr(), b = bias.slot_ptr(), xv = x.value(), wv = gain.value(), mean_t, rstd_t,
       rows, C](const Tensor& g) {
        const float* px = xv.data();
        const float* pw = wv.data();
        const float* pg = g.data();
        if (x->requires_grad) {
          float* dx = x->grad_buffer().data();
          parallel_for(
              rows,
              [&](int64_t s, int64_t e) {
                Eigen::ArrayXf xhat(C), dxhat(C);
                for (int64_t r = s; r < e; ++r) {
                  const float rs = rstd_t.data()[r];
                  xhat = (CArr(px + r * C, C) - mean_t.data()[r]) * rs;
                  dxhat = CArr(pg + r * C, C) * CArr(pw, C);
                  const float m1 = dxhat.mean(), m2 = (dxhat * xhat).mean();
                  Arr(dx + r * C, C) += rs * (dxhat - m1 - xhat * m2);
                }
              },
              rows_grain(C));
        }
        if (w->requires_grad || b->requires_grad) {
          // Column sums over the rows, one serial pass in row order (a fixed order: the same bits at any
          // thread count).
          Tensor dw(Shape{C}), db(Shape{C});
          for (int64_t r = 0; r < rows; ++r) {
            const float rs = rstd_t.data()[r], m = mean_t.data()[r];
            for (int64_t c = 0; c < C; ++c) {
              const float gv = pg[r * C + c];
              dw.data()[c] += gv * (px[r * C + c] - m) * rs;
              db.data()[c] += gv;
            }
          }
          if (w->requires_grad) w->accumulate_grad(std::move(dw));
          if (b->requires_grad) b->accumulate_grad(std::move(db));
        }
      });
}

// ------------------------------------------------------------------ embedding

Var embedding(const Var& weight, const std::vector<int32_t>& ids, const Shape& ids_shape) {
  if (weight.dim() != 2) throw_shape_error("embedding", "weight must be (V, C); ids", ids_shape, weight.shape());
  if (static_cast<int64_t>(ids.size()) != shape_numel(ids_shape))
    throw std::invalid_argument("embedding: " + std::to_string(ids.size()) + " ids do not fill shape " +
                                shape_str(ids_shape));
  const int64_t V = weight.shape()[0], C = weight.shape()[1];
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= V)
      throw std::out_of_range("embedding: id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                              " is outside the vocabulary of " + std::to_string(V));
  Shape os = ids_shape;
  os.push_back(C);
  Tensor out = Tensor::empty(os);
  const float* pw = weight.value().data();
  float* po = out.data();
  const int64_t n = static_cast<int64_t>(ids.size());
  parallel_for(
      n, [&](int64_t s, int64_t e) {
        for (int64_t i = s; i < e; ++i) std::copy(pw + ids[i] * C, pw + (ids[i] + 1) * C, po + i * C);
      },
      rows_grain(C));
  // Saves the ids; the backward scatter-adds rows (repeated ids accumulate). Parallel over
  // column blocks so each thread owns its columns and the order of additions is fixed.
  return make_result(std::move(out), needs_grad({&weight}), "embedding",
                     [w = weight.slot_ptr(), ids, C, n](const Tensor& g) {
                       float* dw = w->grad_buffer().data();
                       const float* pg = g.data();
                       parallel_for(
                           C,
                           [&](int64_t cs, int64_t ce) {
                             for (int64_t i = 0; i < n; ++i)
                               for (int64_t c = cs; c < ce; ++c) dw[ids[i] * C + c] += pg[i * C + c];
                           },
                           64);
                     });
}

// ------------------------------------------------------------------ cross-entropy

Var cross_entropy(const Var& logits, const std::vector<int32_t>& targets, int32_t ignore_index) {
  int64_t rows, V;
  rows_cols(logits.value(), "cross_entropy", rows, V);
  if (static_cast<int64_t>(targets.size()) != rows)
    throw std::invalid_argument("cross_entropy: " + std::to_string(targets.size()) + " targets for logits of shape " +
                                shape_str(logits.shape()) + " (" + std::to_string(rows) + " rows)");
  int64_t count = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t t = targets[r];
    if (t == ignore_index) continue;
    if (t < 0 || t >= V)
      throw std::out_of_range("cross_entropy: target " + std::to_string(t) + " at row " + std::to_string(r) +
                              " is outside [0, " + std::to_string(V) + ")");
    ++count;
  }
  // Per row: the max and log(sum(exp(x - max))), saved for the backward (2 floats a row).
  Tensor row_max = Tensor::empty({rows}), log_sums = Tensor::empty({rows});
  std::vector<double> row_loss(rows, 0.0);
  const float* px = logits.value().data();
  parallel_for(
      rows,
      [&](int64_t s, int64_t e) {
        for (int64_t r = s; r < e; ++r) {
          CArr x(px + r * V, V);
          const float m = x.maxCoeff();
          const float log_sum = std::log((x - m).exp().sum());
          row_max.data()[r] = m;
          log_sums.data()[r] = log_sum;
          if (targets[r] != ignore_index) row_loss[r] = static_cast<double>(log_sum) - (px[r * V + targets[r]] - m);
        }
      },
      rows_grain(V));
  double total = 0.0;
  for (double v : row_loss) total += v;
  const float loss = count ? static_cast<float>(total / static_cast<double>(count)) : 0.0f;
  // Saves the logits (shared, not copied), the targets and the row statistics:
  // d loss / d logits = (softmax - onehot) / count.
  return make_result(Tensor::scalar(loss), needs_grad({&logits}), "cross_entropy",
                     [x = logits.slot_ptr(), xv = logits.value(), targets, row_max, log_sums, rows, V, count,
                      ignore_index](const Tensor& g) {
                       if (count == 0) return;
                       const float scale = g.item() / static_cast<float>(count);
                       float* dx = x->grad_buffer().data();
                       const float* px = xv.data();
                       parallel_for(
                           rows,
                           [&](int64_t s, int64_t e) {
                             for (int64_t r = s; r < e; ++r) {
                               if (targets[r] == ignore_index) continue;
                               Arr d(dx + r * V, V);
                               d += ((CArr(px + r * V, V) - row_max.data()[r]) - log_sums.data()[r]).exp() * scale;
                               dx[r * V + targets[r]] -= scale;
                             }
                           },
                           rows_grain(V));
                     });
}

// ------------------------------------------------------------------ dropout and masks

// The mask is a counter-based function of one word drawn from `gen`: element i is kept when the top 24
// bits of splitmix64's i-th output from that word, read as u in [0, 1), are below 1 - p. So one call
// advances `gen` by one draw (replay and resume see the same masks), the mask is the same for every
// thread count, and it is generated in parallel (a sequential draw per element made dropout about a
// quarter of a B1 training step). The backward recomputes it from the word (nothing is saved).
Var dropout(const Var& a, float p, bool training, Generator& gen) {
  if (p < 0.0f || p >= 1.0f) throw std::invalid_argument("dropout: p must be in [0, 1), got " + float_str(p));
  if (!training || p == 0.0f) return a;
  const float keep = 1.0f - p, scale = 1.0f / keep;
  const uint64_t base = gen.next_u64();
  Tensor out = Tensor::empty(a.shape());
  const float* x = a.value().data();
  float* y = out.data();
  parallel_for(a.numel(), [&](int64_t b, int64_t e) { kernels::dropout_block(x + b, y + b, e - b, base, b, keep, scale); });
  return make_result(std::move(out), needs_grad({&a}), "dropout", [a = a.slot_ptr(), base, keep, scale](const Tensor& g) {
    Tensor d = Tensor::empty(g.shape());
    const float* pg = g.data();
    float* pd = d.data();
    parallel_for(d.numel(),
                 [&](int64_t b, int64_t e) { kernels::dropout_block(pg + b, pd + b, e - b, base, b, keep, scale); });
    a->accumulate_grad(std::move(d));
  });
}

Var masked_fill(const Var& a, const Tensor& mask, float value) {
  Tensor m = broadcast_to(mask, a.shape());  // saved: where the gradient is blocked
  Tensor out = a.value().clone();
  for (int64_t i = 0; i < out.numel(); ++i)
    if (m.data()[i] != 0.0f) out.data()[i] = value;
  return make_result(std::move(out), needs_grad({&a}), "masked_fill", [a = a.slot_ptr(), m](const Tensor& g) {
    Tensor d = g.clone();
    for (int64_t i = 0; i < d.numel(); ++i)
      if (m.data()[i] != 0.0f) d.data()[i] = 0.0f;
    a->accumulate_grad(std::move(d));
  });
}

Var where(const Tensor& cond, const Var& a, const Var& b) {
  if (a.shape() != b.shape()) throw_shape_error("where", "a and b must have the same shape", a.shape(), b.shape());
  Tensor c = broadcast_to(cond, a.shape());  // saved: which side each gradient goes to
  Tensor out = Tensor::empty(a.shape());
  for (int64_t i = 0; i < out.numel(); ++i)
    out.data()[i] = c.data()[i] != 0.0f ? a.value().data()[i] : b.value().data()[i];
  return make_result(std::move(out), needs_grad({&a, &b}), "where",
                     [a = a.slot_ptr(), b = b.slot_ptr(), c](const Tensor& g) {
                       if (a->requires_grad) {
                         Tensor d = g.clone();
                         for (int64_t i = 0; i < d.numel(); ++i)
                           if (c.data()[i] == 0.0f) d.data()[i] = 0.0f;
                         a->accumulate_grad(std::move(d));
                       }
                       if (b->requires_grad) {
                         Tensor d = g.clone();
                         for (int64_t i = 0; i < d.numel(); ++i)
                           if (c.data()[i] != 0.0f) d.data()[i] = 0.0f;
                         b->accumulate_grad(std::move(d));
                       }
                     });
}

}  // namespace pf
