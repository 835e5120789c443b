// Differentiable ops. Each is a free function; its backward closure is written right under the
// forward in the .cpp, with a comment saying what it saves and why. Shapes are checked on entry
// and a mismatch throws std::invalid_argument naming the op and both shapes.
//
// Letters used in shape comments: B batch, T time, C channels, H heads, D head dim,
// M random features, V vocabulary.
#pragma once

#include <cstdint>
#include <vector>

#include "autograd/tensor.h"
#include "autograd/var.h"
#include "base/ignore_index.h"

namespace pf {

class Generator;

// A value that never requires a gradient.
inline Var constant(Tensor t) { return Var(std::move(t), false); }

// ---- element-wise binary, with numpy-style broadcasting (trailing dimensions aligned) ----
Var add(const Var& a, const Var& b);
Var sub(const Var& a, const Var& b);
Var mul(const Var& a, const Var& b);
Var div(const Var& a, const Var& b);
// Broadcast result shape of two shapes; throws naming `op` and both shapes if incompatible.
Shape broadcast_shape(const Shape& a, const Shape& b, const char* op);
// Sum g over broadcast axes so that it has `target` shape (the backward of broadcasting).
Tensor reduce_to_shape(const Tensor& g, const Shape& target);
// Materialize t broadcast to `shape`.
Tensor broadcast_to(const Tensor& t, const Shape& shape);

// ---- element-wise unary ----
Var neg(const Var& a);
Var add_scalar(const Var& a, float s);
Var mul_scalar(const Var& a, float s);
Var exp(const Var& a);
Var log(const Var& a);
Var sqrt(const Var& a);
Var pow(const Var& a, float exponent);
Var tanh(const Var& a);
Var sigmoid(const Var& a);
Var relu(const Var& a);
Var gelu(const Var& a);  // tanh approximation (Hendrycks and Gimpel)

inline Var operator+(const Var& a, const Var& b) { return add(a, b); }
inline Var operator-(const Var& a, const Var& b) { return sub(a, b); }
inline Var operator*(const Var& a, const Var& b) { return mul(a, b); }
inline Var operator/(const Var& a, const Var& b) { return div(a, b); }
inline Var operator-(const Var& a) { return neg(a); }
inline Var operator+(const Var& a, float s) { return add_scalar(a, s); }
inline Var operator-(const Var& a, float s) { return add_scalar(a, -s); }
inline Var operator*(const Var& a, float s) { return mul_scalar(a, s); }
inline Var operator*(float s, const Var& a) { return mul_scalar(a, s); }
inline Var operator/(const Var& a, float s) { return mul_scalar(a, 1.0f / s); }

// ---- reductions ----
Var sum(const Var& a);                                    // all elements -> shape ()
Var sum(const Var& a, int64_t axis, bool keepdim = false);
Var mean(const Var& a);
Var mean(const Var& a, int64_t axis, bool keepdim = false);
// Maximum along an axis; the gradient goes to the (first) arg-max.
Var max(const Var& a, int64_t axis, bool keepdim = false);

// ---- matrix products ----
// (..., M, K) x (..., K, N) -> (..., M, N). The right operand is either 2-D (shared by every
// batch: one large GEMM) or has the same leading dimensions as the left. trans_a / trans_b
// use the transpose of the last two axes of that operand without materializing it.
Var matmul(const Var& a, const Var& b, bool trans_a = false, bool trans_b = false);

// Fused affine map y = x W^T + b (the Linear layer): x (..., in), W (out, in), b (out) or
// undefined. One GEMM with the bias preloaded into the output, one tape node.
Var linear(const Var& x, const Var& weight, const Var& bias);
// linear(dropout(gelu(h), p, training, *gen), weight, bias) as one node that saves only h: the
// backward recomputes gelu(h) and the dropout mask (a function of the one word drawn from gen)
// instead of keeping gelu(h) and its dropped-out copy, the feed-forward block's two largest
// activations. Values, gradients and the generator's stream equal the separate ops' bit for bit.
// gen may be null when p == 0 or not training.
Var gelu_linear(const Var& h, const Var& weight, const Var& bias, float p = 0.0f, bool training = false,
                Generator* gen = nullptr);

// ---- shape ----
Var reshape(const Var& a, Shape shape);
Var transpose(const Var& a, int64_t axis0, int64_t axis1);
Var permute(const Var& a, const std::vector<int64_t>& order);
Var slice(const Var& a, int64_t axis, int64_t start, int64_t end);  // [start, end)
Var concat(const std::vector<Var>& parts, int64_t axis);
// Tensor-level helpers used by ops and modules.
Tensor permute_tensor(const Tensor& t, const std::vector<int64_t>& order);

// ---- neural-network ops ----
Var softmax(const Var& a);      // along the last axis
Var log_softmax(const Var& a);  // along the last axis
// Layer norm over the last axis: (x - mean) / sqrt(var + eps) * gain + bias. Fused: saves
// the per-row mean and reciprocal standard deviation. gain, bias: (C).
Var layer_norm(const Var& x, const Var& gain, const Var& bias, float eps = 1e-5f);
// Gathers rows of weight (V, C) for ids of shape `ids_shape` -> ids_shape + (C).
// The backward scatter-adds, so repeated ids accumulate.
Var embedding(const Var& weight, const std::vector<int32_t>& ids, const Shape& ids_shape);
// Mean cross-entropy of logits (..., V) against integer targets (one per row), skipping rows whose
// target is ignore_index. Fused and numerically stable (log-sum-exp). If every target is
// ignored the loss is 0 with a zero gradient.
Var cross_entropy(const Var& logits, const std::vector<int32_t>& targets, int32_t ignore_index = kIgnoreIndex);
// Inverted dropout: zeroes with probability p and scales survivors by 1/(1-p); identity when
// !training or p == 0. The mask comes from `gen`.
Var dropout(const Var& a, float p, bool training, Generator& gen);
// Where mask != 0 (mask broadcasts to a's shape) the output is `value` and the gradient is 0.
Var masked_fill(const Var& a, const Tensor& mask, float value);
// cond != 0 ? a : b, element-wise; cond broadcasts to the common shape of a and b (which must match).
Var where(const Tensor& cond, const Var& a, const Var& b);

}  // namespace pf
