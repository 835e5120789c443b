// Generator: the project's one source of randomness, used by autograd (initialization, dropout,
// random features) and by data (crop offsets, masking, epoch orders).
//
// A seeded 64-bit Mersenne twister (std::mt19937_64, whose output sequence the C++ standard fixes)
// with our own transforms from 64-bit words to numbers: std::uniform_int_distribution and friends
// differ between standard libraries, and their hidden caches would escape save/restore. The full
// state, including the cached second Box-Muller value, is saved as text and restored.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace pf {

// splitmix64 finalizer: a bijective 64-bit mixer (Steele et al., 2014). Used to derive independent
// seeds from (seed, stream) pairs and to whiten hashes, and by dropout once per element (inline, so
// that the loops of autograd/kernels.h dropout_block vectorize).
inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

class Generator {
 public:
  explicit Generator(uint64_t seed = 0x5eed);

  void seed(uint64_t seed);
  uint64_t next_u64() { return engine_(); }
  // Uniform in [0, 1) with 24 random bits (exactly representable in float32).
  float uniform();
  float uniform(float low, float high) { return low + (high - low) * uniform(); }
  // Uniform in [0, 1) from the top 53 bits.
  double uniform_double() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  // Standard normal (Box-Muller on doubles, both values used).
  float normal();
  float normal(float mean, float stddev) { return mean + stddev * normal(); }
  // Uniform integer in [0, n), n > 0. Rejection sampling: words below 2^64 mod n are redrawn, so
  // every residue class has the same number of accepted words (no modulo bias).
  uint64_t below(uint64_t n);
  // A fresh seed for a child generator (so that sub-streams stay reproducible).
  uint64_t fork_seed() { return next_u64() ^ 0x9E3779B97F4A7C15ull; }

  // Whole state as text: the engine's operator<< text (fixed by the standard), then the Box-Muller
  // cache. set_state() restores it, and also accepts the engine text alone (no cached value).
  // Throws std::invalid_argument (the state unchanged) if the text is not such a state.
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

// A seeded permutation of 0..n-1 (Fisher-Yates with Generator::below), the same on every platform.
std::vector<int64_t> shuffled_indices(int64_t n, uint64_t seed);

}  // namespace pf
