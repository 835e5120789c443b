// Dropout (Srivastava et al. 2014), inverted: survivors are scaled by 1/(1-p) in training so that
// evaluation is the identity. The masks come from a Generator shared with the model, which saves
// its state in checkpoints so a resumed run draws the same masks.
#pragma once

#include <memory>

#include "base/random.h"
#include "autograd/var.h"
#include "nn/module.h"

namespace pf {

class Dropout : public Module {
 public:
  // p in [0, 1). gen may be null only when p == 0.
  Dropout(float p, std::shared_ptr<Generator> gen);

  // Identity in eval() or when p == 0; otherwise draws a fresh mask.
  Var forward(const Var& x) const;
  Var operator()(const Var& x) const { return forward(x); }

  float p() const { return p_; }
  const std::shared_ptr<Generator>& generator() const { return gen_; }

 private:
  float p_;
  std::shared_ptr<Generator> gen_;
};

}  // namespace pf
