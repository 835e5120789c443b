#include "performer/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/format.h"

namespace pf {

void SamplingOptions::validate() const {
  if (!(temperature > 0.0f && std::isfinite(temperature)))
    throw std::invalid_argument("SamplingOptions: temperature (" + float_str(temperature) +
                                ") must be finite and > 0; use greedy = true for argmax decoding");
  if (top_k < 0)
    throw std::invalid_argument("SamplingOptions: top_k (" + std::to_string(top_k) + ") must be >= 0 (0 = off)");
  if (!(top_p > 0.0f && top_p <= 1.0f))
    throw std::invalid_argument("SamplingOptions: top_p (" + float_str(top_p) + ") must be in (0, 1] (1 = off)");
}

int32_t sample_token(const float* logits, int64_t vocab, const SamplingOptions& opt, Generator& gen) {
  opt.validate();
  if (vocab <= 0) throw std::invalid_argument("sample_token: vocab (" + std::to_string(vocab) + ") must be > 0");
  for (int64_t i = 0; i < vocab; ++i)
    if (!std::isfinite(logits[i]))
      throw std::invalid_argument("sample_token: logit " + std::to_string(i) + " is not finite (" +
                                  float_str(logits[i]) + ")");
  if (opt.greedy) return static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);

  // Rank candidates: higher logit first, lower id first on ties (deterministic).
  std::vector<int32_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  size_t keep = order.size();
  if (opt.top_k > 0) keep = std::min(keep, static_cast<size_t>(opt.top_k));

  // Probabilities of the kept candidates (softmax of logits / temperature, in double).
  const double inv_t = 1.0 / static_cast<double>(opt.temperature), top = logits[order[0]];
  std::vector<double> prob(keep);
  double total = 0.0;
  for (size_t i = 0; i < keep; ++i) total += prob[i] = std::exp((logits[order[i]] - top) * inv_t);
  // Nucleus: the shortest prefix of the ranking whose mass (within the top-k set) reaches top_p.
  if (opt.top_p < 1.0f) {
    double mass = 0.0;
    size_t n = 0;
    while (n < keep) {
      mass += prob[n++] / total;
      if (mass >= static_cast<double>(opt.top_p)) break;
    }
    keep = n;
  }
  double kept = 0.0;
  for (size_t i = 0; i < keep; ++i) kept += prob[i];
  const double u = gen.uniform_double() * kept;
  double acc = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    acc += prob[i];
    if (u < acc) return order[i];
  }
  return order[keep - 1];  // u within rounding of the total
}

}  // namespace pf
