// DataRng: the data pipeline's random source (crop offsets, window offsets, masking, epoch orders).
//
// std::mt19937_64's output sequence is fixed by the C++ standard, but std::uniform_int_distribution
// and friends are not (libstdc++ and libc++ differ), so every transform from 64-bit words to numbers
// is written here. The state is saved as the engine's operator<< text, which the standard also fixes.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace pf {

// splitmix64 finalizer: a bijective 64-bit mixer (Steele et al., 2014). Used to derive independent
// seeds from (seed, stream) pairs and to whiten hashes.
uint64_t mix64(uint64_t x);

class DataRng {
 public:
  explicit DataRng(uint64_t seed = 0) : engine_(seed) {}

  uint64_t next_u64() { return engine_(); }
  // Uniform integer in [0, n), n > 0. Rejection sampling: words below 2^64 mod n are redrawn, so
  // every residue class has the same number of accepted words (no modulo bias).
  uint64_t below(uint64_t n);
  // Uniform double in [0, 1) from the top 53 bits.
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

  std::string state() const;
  // Throws std::invalid_argument if the text is not a saved mt19937_64 state.
  void set_state(const std::string& state);

 private:
  std::mt19937_64 engine_;
};

// A seeded permutation of 0..n-1 (Fisher-Yates with DataRng::below), the same on every platform.
std::vector<int64_t> shuffled_indices(int64_t n, uint64_t seed);

}  // namespace pf
