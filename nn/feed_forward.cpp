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
  Var h = fc1->forward(x);  // (..., hidden)
  // fc2(drop(gelu(h))) in one node that saves only h: gelu(h) and its dropped-out copy, the block's
  // two other hidden-sized activations, are recomputed by the backward instead of kept.
  return gelu_linear(h, fc2->weight, fc2->bias, drop->p(), drop->is_training(), drop->generator().get());
}

}  // namespace pf
