// LayerNorm over the last axis (Ba, Kiros and Hinton 2016): (x - mean) / sqrt(var + eps) * gain + bias,
// using the fused layer_norm op. In the state dict the gain is called "weight" (as in PyTorch).
#pragma once

#include "autograd/var.h"
#include "nn/module.h"

namespace pf {

class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t dim, float eps = 1e-5f);

  // (..., C) -> (..., C)
  Var forward(const Var& x) const;
  Var operator()(const Var& x) const { return forward(x); }

  Var gain;  // (C), ones; state-dict name "weight"
  Var bias;  // (C), zeros
  int64_t dim;
  float eps;
};

}  // namespace pf
