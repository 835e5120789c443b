// Generator: the one source of randomness. A seeded 64-bit Mersenne twister with our own
// uniform and normal transforms (not std::*_distribution, whose output differs between
// standard libraries and whose hidden caches would escape save/restore). The full state,
// including the cached second Box-Muller value, can be saved and restored.
#pragma once

#include <cstdint>
#include <random>
#include <string>

namespace pf {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0x5eed);

  void seed(uint64_t seed);
  uint64_t next_u64() { return engine_(); }
  // Uniform in [0, 1) with 24 random bits (exactly representable in float32).
  float uniform();
  float uniform(float low, float high) { return low + (high - low) * uniform(); }
  double uniform_double();  // [0, 1), 53 bits
  // Standard normal (Box-Muller on doubles, both values used).
  float normal();
  float normal(float mean, float stddev) { return mean + stddev * normal(); }
  // Uniform integer in [0, n), without modulo bias. n must be > 0.
  uint64_t integer(uint64_t n);
  // A fresh seed for a child generator (so that sub-streams stay reproducible).
  uint64_t fork_seed() { return next_u64() ^ 0x9E3779B97F4A7C15ull; }

  // Whole state as text (engine state plus the Box-Muller cache); set_state() restores it.
  std::string state() const;
  void set_state(const std::string& state);

  template <class Archive>
  void save(Archive& ar) const {
    ar(state());
  }
  template <class Archive>
  void load(Archive& ar) {
    std::string s;
    ar(s);
    set_state(s);
  }

  bool operator==(const Generator& other) const {
    return engine_ == other.engine_ && has_cached_ == other.has_cached_ &&
           (!has_cached_ || cached_ == other.cached_);
  }

 private:
  std::mt19937_64 engine_;
  bool has_cached_ = false;
  double cached_ = 0.0;
};

}  // namespace pf
