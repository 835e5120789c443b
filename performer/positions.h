// Position information: sinusoidal tables (added to the token embeddings) and rotary embeddings
// (applied to queries and keys inside attention, before the FAVOR+ feature map). Learned absolute
// positions are a plain Embedding of max_seq_len and live in the model.
//
// Tables are computed for an arbitrary range of positions [start, start + count), so a full
// forward pass (start 0) and the recurrent decoder (one position at a time) use the same
// numbers: every entry is computed in double from its own position and rounded once.
#pragma once

#include <cstdint>

#include "autograd/tensor.h"
#include "autograd/var.h"

namespace pf {

// Sinusoidal positions (Vaswani et al. 2017, section 3.5):
// PE(p, 2i) = sin(p / 10000^(2i/C)), PE(p, 2i+1) = cos(p / 10000^(2i/C)). Returns (count, C).
Tensor sinusoidal_positions(int64_t start, int64_t count, int64_t dim);

// Rotary position embedding (Su et al. 2021, RoFormer, eq. 34), in the "rotate half" layout:
// channel i < D/2 is paired with channel i + D/2 and the pair is rotated by the angle
// p * 10000^(-2i/D). Rotating q at position m and k at position n makes q.k depend on m - n only.
struct RotaryTables {
  Tensor cos;         // (T, D): [cos(theta), cos(theta)]
  Tensor signed_sin;  // (T, D): [-sin(theta), sin(theta)]
};
RotaryTables rotary_tables(int64_t start, int64_t count, int64_t head_dim);

// x (..., T, D) -> x * cos + swap_halves(x) * signed_sin, with the tables (T, D) broadcast over the
// leading axes. Composed from differentiable ops (slice, concat, mul, add).
Var apply_rotary(const Var& x, const RotaryTables& tables);

}  // namespace pf
