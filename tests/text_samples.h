// Generated text for tests that need words rather than random bytes (tokenizer training, subword
// runs): never read from shared data, the same on every machine.
#pragma once

#include <cstdint>
#include <string>

namespace pf::test {

// Word-like text: words of 1-3 syllables, punctuation, newlines, and some multi-byte UTF-8
// characters (2, 3 and 4 bytes), from a fixed linear congruential sequence.
inline std::string syllable_text(int words, uint32_t seed) {
  static const char* syl[] = {"ka", "lo", "mi", "ten", "ra", "su", "vel", "on", "dri", "pa",
                              "é",  "nu", "str", "ö",  "ga", "☃",  "be",  "x",  "🙂",  "ith"};
  uint32_t s = seed;
  auto next = [&] { return (s = s * 1664525u + 1013904223u) >> 8; };
  std::string t;
  for (int w = 0; w < words; ++w) {
    const int n = 1 + static_cast<int>(next() % 3);
    for (int k = 0; k < n; ++k) t += syl[next() % 20];
    const uint32_t r = next() % 16;
    t += r == 0 ? ".\n" : r == 1 ? ", " : r == 2 ? "\n" : " ";
  }
  return t;
}

}  // namespace pf::test
