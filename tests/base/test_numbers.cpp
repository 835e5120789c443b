// base/format.h and base/hash.h: the text forms of numbers and strings the project prints and reads back, and the hash.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>

#include "base/format.h"
#include "base/hash.h"
#include "base/random.h"

namespace pf {
namespace {

TEST(Format, ExactStrReadsBackToTheSameDouble) {
  Generator g(4);
  for (int i = 0; i < 2000; ++i) {
    const double v = std::ldexp(g.uniform_double() - 0.5, static_cast<int>(g.below(80)) - 40);
    const std::string s = exact_str(v);
    EXPECT_EQ(std::strtod(s.c_str(), nullptr), v) << s;
  }
  EXPECT_EQ(exact_str(0.1), "0.1");
  EXPECT_EQ(exact_str(2e-3), "0.002");
  EXPECT_EQ(exact_str(100000.0), "100000");  // at least 6 significant digits: no "1e+05"
}

TEST(Format, ExactStrReadsBackToTheSameFloat) {
  Generator g(5);
  for (int i = 0; i < 2000; ++i) {
    const float v = std::ldexp(g.uniform() - 0.5f, static_cast<int>(g.below(60)) - 30);
    const std::string s = exact_str(v);
    EXPECT_EQ(std::strtof(s.c_str(), nullptr), v) << s;
  }
  EXPECT_EQ(exact_str(1e-6f), "1e-06");
  EXPECT_EQ(exact_str(0.1f), "0.1");
}

TEST(Format, FloatStrHasSignificantDigits) {
  EXPECT_EQ(float_str(1e-9), "1e-09");
  EXPECT_EQ(float_str(-0.5), "-0.5");
}

TEST(Format, HumanCount) {
  EXPECT_EQ(human_count(950), "950");
  EXPECT_EQ(human_count(12345), "12.3k");
  EXPECT_EQ(human_count(4561234), "4.56M");
  EXPECT_EQ(human_count(1.234e9), "1.23G");
}

// The escapes of every JSON string the project writes (nlohmann-json's: metrics lines, safetensors
// headers and messages): the short forms, \u00XX in lower case for the other control characters, '/', DEL and
// UTF-8 as they are; bytes that are not UTF-8 become U+FFFD so that the line stays valid JSON.
TEST(Format, JsonQuote) {
  EXPECT_EQ(json_quote(""), R"("")");
  EXPECT_EQ(json_quote("a\"b\\c/d"), R"("a\"b\\c/d")");
  EXPECT_EQ(json_quote("\b\f\n\r\t"), R"("\b\f\n\r\t")");
  EXPECT_EQ(json_quote(std::string("\x00\x01\x1f\x7f", 4)), "\"\\u0000\\u0001\\u001f\x7f\"");
  EXPECT_EQ(json_quote("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
  EXPECT_EQ(json_quote("a\xff" "b"), "\"a\xef\xbf\xbd" "b\"");
}

// FNV-1a 64 reference values (the published test vectors for "" and "a"), and piecewise = whole.
TEST(Hash, Fnv1a64) {
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64_update(fnv1a64("foo"), "bar"), fnv1a64("foobar"));
}

}  // namespace
}  // namespace pf
