// Embedding: a (V, C) table of learned vectors looked up by integer id.
#pragma once

#include <cstdint>
#include <vector>

#include "base/random.h"
#include "autograd/var.h"
#include "nn/module.h"

namespace pf {

class Embedding : public Module {
 public:
  // Rows ~ N(0, stddev^2) (GPT-2's 0.02 by default), drawn from `gen`.
  Embedding(int64_t num, int64_t dim, Generator& gen, float stddev = 0.02f);

  // ids of shape ids_shape (e.g. (B, T)) -> ids_shape + (C). Ids outside [0, V) throw.
  Var forward(const std::vector<int32_t>& ids, const Shape& ids_shape) const;

  Var weight;  // (V, C)
  int64_t num_embeddings, embedding_dim;
};

}  // namespace pf
