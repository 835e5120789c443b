#include "base/random.h"

#include <cmath>
#include <cstring>
#include <numeric>
#include <sstream>
#include <stdexcept>

namespace pf {

Generator::Generator(uint64_t seed) { this->seed(seed); }

void Generator::seed(uint64_t seed) {
  engine_.seed(seed);
  has_cached_ = false;
  cached_ = 0.0;
}

float Generator::uniform() { return static_cast<float>(engine_() >> 40) * (1.0f / 16777216.0f); }

float Generator::normal() {
  if (has_cached_) {
    has_cached_ = false;
    return static_cast<float>(cached_);
  }
  // Box-Muller: u1 in (0, 1] so that log(u1) is finite.
  double u1 = 1.0 - uniform_double();
  double u2 = uniform_double();
  double r = std::sqrt(-2.0 * std::log(u1));
  double theta = 2.0 * M_PI * u2;
  cached_ = r * std::sin(theta);
  has_cached_ = true;
  return static_cast<float>(r * std::cos(theta));
}

uint64_t Generator::below(uint64_t n) {
  if (n == 0) throw std::invalid_argument("Generator::below: n must be > 0");
  const uint64_t threshold = (0 - n) % n;  // 2^64 mod n
  for (;;) {
    const uint64_t x = engine_();
    if (x >= threshold) return x % n;
  }
}

std::string Generator::state() const {
  std::ostringstream os;
  os << engine_ << ' ' << (has_cached_ ? 1 : 0) << ' ';
  uint64_t bits;
  std::memcpy(&bits, &cached_, sizeof bits);
  os << bits;
  return os.str();
}

void Generator::set_state(const std::string& state) {
  std::istringstream is(state);
  std::mt19937_64 engine;
  is >> engine;
  if (is.fail())
    throw std::invalid_argument("random generator state: not a valid mt19937_64 state (" +
                                std::to_string(state.size()) + " characters); the saved state is corrupt");
  int has_cached = 0;
  uint64_t bits = 0;
  if (!(is >> std::ws).eof()) {
    is >> has_cached >> bits;
    if (is.fail() || (has_cached != 0 && has_cached != 1) || !(is >> std::ws).eof())
      throw std::invalid_argument("random generator state: the cached normal value after the engine state is "
                                  "malformed; the saved state is corrupt");
  }
  engine_ = engine;
  has_cached_ = has_cached != 0;
  std::memcpy(&cached_, &bits, sizeof bits);
}

std::vector<int64_t> shuffled_indices(int64_t n, uint64_t seed) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  Generator rng(seed);
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(i) + 1));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  return order;
}

}  // namespace pf
