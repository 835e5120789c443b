#include "nn/embedding.h"

#include <stdexcept>

#include "autograd/ops.h"
#include "nn/init.h"

namespace pf {

Embedding::Embedding(int64_t num, int64_t dim, Generator& gen, float stddev) : num_embeddings(num), embedding_dim(dim) {
  if (num <= 0 || dim <= 0)
    throw std::invalid_argument("Embedding: num and dim must be positive, got num=" + std::to_string(num) +
                                " dim=" + std::to_string(dim));
  Tensor w({num, dim});
  normal_(w, gen, 0.f, stddev);
  weight = register_parameter("weight", w);
}

Var Embedding::forward(const std::vector<int32_t>& ids, const Shape& ids_shape) const {
  return embedding(weight, ids, ids_shape);
}

}  // namespace pf
