#include "data/rng.h"

#include <numeric>
#include <sstream>
#include <stdexcept>

namespace pf {

uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t DataRng::below(uint64_t n) {
  if (n == 0) throw std::invalid_argument("DataRng::below: n must be > 0");
  const uint64_t threshold = (0 - n) % n;  // 2^64 mod n
  for (;;) {
    const uint64_t x = engine_();
    if (x >= threshold) return x % n;
  }
}

std::string DataRng::state() const {
  std::ostringstream out;
  out << engine_;
  return out.str();
}

void DataRng::set_state(const std::string& state) {
  std::istringstream in(state);
  std::mt19937_64 engine;
  in >> engine;
  if (in.fail())
    throw std::invalid_argument("DataRng: the saved generator state is not a valid mt19937_64 state (" +
                                std::to_string(state.size()) + " characters); the cursor is corrupt");
  engine_ = engine;
}

std::vector<int64_t> shuffled_indices(int64_t n, uint64_t seed) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  DataRng rng(seed);
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(i) + 1));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  return order;
}

}  // namespace pf
