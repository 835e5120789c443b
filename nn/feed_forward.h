// The transformer's position-wise feed-forward block: Linear -> GELU -> Dropout -> Linear,
// (B, T, C) -> (B, T, hidden) -> (B, T, C).
#pragma once

#include <memory>

#include "base/random.h"
#include "autograd/var.h"
#include "nn/dropout.h"
#include "nn/linear.h"
#include "nn/module.h"

namespace pf {

class FeedForward : public Module {
 public:
  // Weights drawn from init_gen (fc1, then fc2); dropout masks from dropout_gen.
  FeedForward(int64_t dim, int64_t hidden, float dropout, Generator& init_gen, std::shared_ptr<Generator> dropout_gen);

  // (..., C) -> (..., C)
  Var forward(const Var& x) const;
  Var operator()(const Var& x) const { return forward(x); }

  std::shared_ptr<Linear> fc1;  // C -> hidden
  std::shared_ptr<Linear> fc2;  // hidden -> C
  std::shared_ptr<Dropout> drop;
};

}  // namespace pf
