// FNV-1a 64-bit: a tiny, fixed, platform-independent content hash. Used for the deterministic
// train/validation split of sequences and for naming decompression caches. Not cryptographic.
#pragma once

#include <cstdint>
#include <string_view>

namespace pf {

inline constexpr uint64_t kFnvOffset = 0xCBF29CE484222325ull;
inline constexpr uint64_t kFnvPrime = 0x100000001B3ull;

// Feed bytes into a running hash (start from kFnvOffset), so a hash can be built piece by piece.
inline uint64_t fnv1a64_update(uint64_t h, std::string_view bytes) {
  for (unsigned char c : bytes) h = (h ^ c) * kFnvPrime;
  return h;
}

inline uint64_t fnv1a64(std::string_view bytes) {
  return fnv1a64_update(kFnvOffset, bytes);
}

}  // namespace pf
