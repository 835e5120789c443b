#include "autograd/generator.h"

#include <cmath>
#include <cstring>
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

double Generator::uniform_double() {
  return static_cast<double>(engine_() >> 11) * (1.0 / 9007199254740992.0);
}

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

uint64_t Generator::integer(uint64_t n) {
  if (n == 0) throw std::invalid_argument("Generator::integer: n must be > 0");
  // Rejection sampling: draw until the value falls below the largest multiple of n.
  const uint64_t limit = UINT64_MAX - (UINT64_MAX % n);
  uint64_t x;
  do {
    x = engine_();
  } while (x >= limit);
  return x % n;
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
  int has_cached = 0;
  uint64_t bits = 0;
  is >> engine >> has_cached >> bits;
  if (is.fail()) throw std::runtime_error("Generator::set_state: malformed generator state");
  engine_ = engine;
  has_cached_ = has_cached != 0;
  std::memcpy(&cached_, &bits, sizeof bits);
}

}  // namespace pf
