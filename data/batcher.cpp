#include "data/batcher.h"

#include <bit>
#include <stdexcept>

#include "base/hash.h"
#include "base/random.h"

namespace pf {

Objective parse_objective(std::string_view name) {
  if (name == "causal") return Objective::Causal;
  if (name == "mlm") return Objective::Mlm;
  throw std::invalid_argument("unknown objective '" + std::string(name) + "'; expected 'causal' or 'mlm'");
}

std::string objective_name(Objective objective) {
  return objective == Objective::Causal ? "causal" : "mlm";
}

uint64_t derive_seed(uint64_t seed, uint64_t stream) {
  return mix64(seed ^ mix64(stream));
}

Batch padded_batch(int64_t batch, int64_t seq, int32_t pad_id) {
  Batch b;
  b.batch = batch;
  b.seq = seq;
  const auto n = static_cast<size_t>(batch * seq);
  b.inputs.assign(n, pad_id);
  b.targets.assign(n, kIgnoreIndex);
  b.key_mask.assign(n, 0);
  return b;
}

uint64_t batching_fingerprint(const BatchOptions& options, std::string_view corpus_kind, int64_t items,
                              int64_t tokens) {
  uint64_t h = fnv1a64(corpus_kind);
  for (uint64_t v :
       {static_cast<uint64_t>(items), static_cast<uint64_t>(tokens), static_cast<uint64_t>(options.seq_len),
        static_cast<uint64_t>(options.batch_size), static_cast<uint64_t>(options.objective),
        static_cast<uint64_t>(options.pack), std::bit_cast<uint64_t>(options.mask_prob), options.seed})
    h = mix64(h ^ v);
  return h;
}

}  // namespace pf
