#include "nn/feed_forward.h"

#include "autograd/ops.h"

namespace pf {

FeedForward::FeedForward(int64_t dim, int64_t hidden, float dropout, Generator& init_gen,
                         std::shared_ptr<Generator> dropout_gen) {
  fc1 = register_module("fc1", std::make_shared<Linear>(dim, hidden, true, init_gen));
  fc2 = register_module("fc2", std::make_shared<Linear>(hidden, dim, true, init_gen));
  drop = register_module("drop", std::make_shared<Dropout>(dropout, std::move(dropout_gen)));
}

Var FeedForward::forward(const Var& x) const {
  Var h = gelu(fc1->forward(x));  // (..., hidden)
  return fc2->forward(drop->forward(h));
}

}  // namespace pf
