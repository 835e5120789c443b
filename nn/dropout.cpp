#include "nn/dropout.h"

#include <stdexcept>

#include "autograd/ops.h"
#include "base/format.h"

namespace pf {

Dropout::Dropout(float p, std::shared_ptr<Generator> gen) : p_(p), gen_(std::move(gen)) {
  if (!(p >= 0.f && p < 1.f)) throw std::invalid_argument("Dropout: p must be in [0, 1), got " + float_str(p));
  if (p > 0.f && !gen_) throw std::invalid_argument("Dropout: p = " + float_str(p) + " needs a Generator");
}

Var Dropout::forward(const Var& x) const {
  if (!is_training() || p_ == 0.f) return x;
  return dropout(x, p_, true, *gen_);
}

}  // namespace pf
