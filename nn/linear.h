// Linear: y = x W^T + b, the weight stored (out, in) as in PyTorch so checkpoints read alike.
#pragma once

#include "base/random.h"
#include "autograd/var.h"
#include "nn/module.h"

namespace pf {

class Linear : public Module {
 public:
  // Initialized as PyTorch's nn.Linear: W, b ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform with
  // a = sqrt(5)), drawn from `gen` (weight first, then bias).
  Linear(int64_t in, int64_t out, bool bias, Generator& gen);

  // (..., in) -> (..., out): one GEMM over all leading axes (matmul(x, weight, false, true)).
  Var forward(const Var& x) const;
  Var operator()(const Var& x) const { return forward(x); }

  Var weight;  // (out, in)
  Var bias;    // (out), or undefined when constructed without bias
  int64_t in_features, out_features;
};

}  // namespace pf
