// nn/safetensors.h: the byte layout of the specification, round trips, and every kind of malformed
// file refused with a message naming the file and the problem.
#include "nn/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "base/random.h"

namespace pf {
namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// A file from a header text and a data buffer, exactly as given (no padding added).
std::string file_bytes(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

std::string floats(std::initializer_list<float> values) {
  std::string s;
  for (float v : values) s.append(reinterpret_cast<const char*>(&v), 4);
  return s;
}

// The message parse_safetensors throws for these bytes ("" if it does not throw).
std::string error_of(const std::string& bytes) {
  try {
    parse_safetensors(bytes, "bad.safetensors");
  } catch (const SafetensorsError& e) {
    return e.what();
  }
  return "";
}

StateDict sample_state() {
  Generator g(3);
  StateDict s;
  s["a.weight"] = Tensor::randn({3, 4}, g);
  s["b.bias"] = Tensor::randn({5}, g);
  s["scalar"] = Tensor::scalar(2.5f);
  s["empty"] = Tensor::zeros({0, 3});
  s["name with \"quotes\" and \\backslash\\"] = Tensor::randn({2}, g);
  s["unicode \xc3\xa9\xe2\x82\xac / tab\t newline\n"] = Tensor::randn({1, 1, 2}, g);
  return s;
}

TEST(Safetensors, LayoutFollowsTheSpecification) {
  const StateDict s = sample_state();
  const std::string bytes = serialize_safetensors(s, {{"format", "pt"}, {"k\"ey", "va\\lue"}});
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u) << "header padded to a multiple of 8";
  const std::string header = bytes.substr(8, n);
  EXPECT_EQ(header.front(), '{');
  const size_t close = header.find_last_of('}');
  EXPECT_EQ(header.find_first_not_of(' ', close + 1), std::string::npos) << "padding is spaces";
  EXPECT_LT(header.size() - close - 1, 8u);
  EXPECT_TRUE(contains(header, R"("a.weight":{"dtype":"F32","shape":[3,4],"data_offsets":[)")) << header;
  EXPECT_TRUE(contains(header, R"("scalar":{"dtype":"F32","shape":[],)")) << header;
  EXPECT_TRUE(contains(header, R"("name with \"quotes\" and \\backslash\\")")) << header;
  EXPECT_TRUE(contains(header, R"(tab\t newline\n")")) << header;
  EXPECT_TRUE(contains(header, R"("__metadata__":{"format":"pt","k\"ey":"va\\lue"})")) << header;
  // The data buffer: every tensor's floats, contiguous, in name order, and nothing else.
  size_t data = 0;
  for (const auto& [name, t] : s) data += static_cast<size_t>(t.numel()) * 4;
  EXPECT_EQ(bytes.size(), 8 + n + data);
  const Tensor& a = s.at("a.weight");
  const size_t at = header.find(R"("a.weight")");
  const size_t off = header.find("data_offsets\":[", at) + 15;
  const uint64_t begin = std::stoull(header.substr(off));
  EXPECT_EQ(std::memcmp(bytes.data() + 8 + n + begin, a.data(), 48), 0);
}

TEST(Safetensors, RoundTripIsBitExact) {
  const StateDict s = sample_state();
  const SafetensorsMetadata meta{{"dim", "32"}, {"note", "\xe2\x82\xac \"q\" \\"}};
  const Safetensors back = parse_safetensors(serialize_safetensors(s, meta), "mem");
  EXPECT_EQ(back.metadata, meta);
  ASSERT_EQ(back.tensors.size(), s.size());
  for (const auto& [name, t] : s) {
    ASSERT_TRUE(back.tensors.count(name)) << name;
    const Tensor& b = back.tensors.at(name);
    EXPECT_EQ(b.shape(), t.shape()) << name;
    EXPECT_EQ(std::memcmp(b.data(), t.data(), static_cast<size_t>(t.numel()) * 4), 0) << name;
  }
  // Without metadata there is no "__metadata__" entry, and an empty state dict is a valid file.
  const std::string none = serialize_safetensors({}, {});
  EXPECT_EQ(none.substr(8, 2), "{}");
  EXPECT_TRUE(parse_safetensors(none, "mem").tensors.empty());
}

TEST(Safetensors, SaveIsAtomicAndLoadNamesTheFile) {
  const std::string dir = testing::TempDir() + "pf_safetensors_test";
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/w.safetensors";
  save_safetensors(path, sample_state(), {{"a", "b"}});
  const Safetensors back = load_safetensors(path);
  EXPECT_EQ(back.tensors.size(), sample_state().size());
  for (const auto& e : std::filesystem::directory_iterator(dir))
    EXPECT_EQ(e.path().filename(), "w.safetensors") << "no temporary file left";
  try {
    load_safetensors(dir + "/missing.safetensors");
    FAIL() << "expected an error";
  } catch (const SafetensorsError& e) {
    EXPECT_TRUE(contains(e.what(), "missing.safetensors")) << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(Safetensors, ReadsOtherFloatDtypesAsFloat32) {
  std::string data;
  const double d[2] = {0.1, -3.0};
  data.append(reinterpret_cast<const char*>(d), 16);
  const uint16_t half[3] = {0x3C00, 0xC000, 0x0001};  // 1, -2, smallest subnormal 2^-24
  data.append(reinterpret_cast<const char*>(half), 6);
  const uint16_t bf[2] = {0x3F80, 0x4049};  // 1, 3.140625
  data.append(reinterpret_cast<const char*>(bf), 4);
  const std::string header = R"({"d":{"dtype":"F64","shape":[2],"data_offsets":[0,16]},)"
                             R"("h":{"dtype":"F16","shape":[3],"data_offsets":[16,22]},)"
                             R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[22,26]}})";
  const Safetensors s = parse_safetensors(file_bytes(header, data), "mem");
  EXPECT_EQ(s.tensors.at("d").to_vector(), (std::vector<float>{0.1f, -3.0f}));
  EXPECT_EQ(s.tensors.at("h").to_vector(), (std::vector<float>{1.0f, -2.0f, std::ldexp(1.0f, -24)}));
  EXPECT_EQ(s.tensors.at("b").to_vector(), (std::vector<float>{1.0f, 3.140625f}));
}

TEST(Safetensors, ParsesJsonRobustly) {
  // Whitespace, escapes (\u with a surrogate pair, \/), members in any order, tensors in any order of
  // offsets, and a header not padded at all are all fine.
  const std::string header =
      "{ \"__metadata__\" : { \"x\\u00e9\\ud83d\\ude00\\/\" : \"1\" } ,\n"
      "  \"b\" : { \"shape\" : [ 1 ] , \"data_offsets\" : [ 4 , 8 ] , \"dtype\" : \"F32\" } ,\n"
      "  \"a\\\"q\" : { \"dtype\" : \"F32\" , \"shape\" : [ 1 ] , \"data_offsets\" : [ 0 , 4 ] } }\t\r\n";
  const Safetensors s = parse_safetensors(file_bytes(header, floats({1.0f, 2.0f})), "mem");
  EXPECT_EQ(s.metadata.at("x\xc3\xa9\xf0\x9f\x98\x80/"), "1");
  EXPECT_EQ(s.tensors.at("a\"q").item(), 1.0f);
  EXPECT_EQ(s.tensors.at("b").item(), 2.0f);
}

TEST(Safetensors, RefusesMalformedFiles) {
  const std::string two = floats({1.0f, 2.0f});
  const std::string ok = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  ASSERT_EQ(error_of(file_bytes(ok, two)), "");
  struct Case {
    const char* what;
    std::string bytes;
    const char* expect;
  };
  std::string huge(8, '\0');
  const uint64_t big = kSafetensorsMaxHeader + 1;
  std::memcpy(huge.data(), &big, 8);
  const std::vector<Case> cases = {
      {"empty file", "", "truncated"},
      {"short length field", std::string(5, '\0'), "truncated"},
      {"header too large", huge + std::string(16, ' '), "header too large"},
      {"header cut short", file_bytes(ok, two).substr(0, 20), "truncated"},
      {"data cut short", file_bytes(ok, two).substr(0, 8 + ok.size() + 6), "out of range"},
      {"bad JSON", file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})", two), "bad JSON"},
      {"trailing comma", file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],}})", two), "bad JSON"},
      {"not an object", file_bytes("[1, 2]", two), "does not start with '{'"},
      {"text after the object", file_bytes(ok + " x", two), "bad JSON"},
      {"bad escape", file_bytes(R"({"a\q":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", two),
       "forbidden character after backslash"},
      {"raw control character", file_bytes("{\"a\n\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", two),
       "control character"},
      {"not UTF-8", file_bytes("{\"\xff\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", two), "UTF-8"},
      {"duplicate name",
       file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                  two),
       "duplicate key \"a\""},
      {"unknown dtype", file_bytes(R"({"a":{"dtype":"F31","shape":[2],"data_offsets":[0,8]}})", two),
       "unknown dtype \"F31\""},
      {"integer dtype", file_bytes(R"({"a":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})", two),
       "dtype I32 is not supported"},
      {"wrong shape", file_bytes(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", two), "wrong shape"},
      {"negative dim", file_bytes(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", two),
       "non-negative integer"},
      {"fractional offset", file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}})", two),
       "data_offsets"},
      {"end before begin", file_bytes(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", two),
       "end before they begin"},
      {"offset out of range", file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", two),
       "out of range"},
      {"overlap",
       file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                  two),
       "overlap"},
      {"gap", file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", two), "gap"},
      {"bytes after the data", file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", two),
       "4 bytes after the last tensor"},
      {"missing field", file_bytes(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", two), "missing field \"shape\""},
      {"unexpected field", file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", two),
       "unexpected field \"x\""},
      {"metadata not strings", file_bytes(R"({"__metadata__":{"dim":32},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", two),
       "not a string"},
      {"deep nesting", file_bytes(std::string(100, '[') + std::string(100, ']'), ""), "does not start with '{'"},
      {"deep nesting in an object", file_bytes("{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}", ""),
       "nested deeper"},
  };
  for (const Case& c : cases) {
    const std::string e = error_of(c.bytes);
    EXPECT_TRUE(contains(e, "bad.safetensors")) << c.what << ": " << e;
    EXPECT_TRUE(contains(e, c.expect)) << c.what << ": expected '" << c.expect << "' in: " << e;
  }
}

// Every dtype of the specification this reader does not convert is refused by name, with a byte count
// that fits its shape (so only the dtype can be the reason): PyTorch's integer buffers are I64.
TEST(Safetensors, RefusesEveryUnsupportedDtype) {
  const std::vector<std::pair<std::string, int>> dtypes = {{"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"I16", 2},
                                                           {"U16", 2},  {"I32", 4}, {"U32", 4}, {"I64", 8},
                                                           {"U64", 8},  {"F8_E4M3", 1}, {"F8_E5M2", 1}};
  for (const auto& [dtype, bytes] : dtypes) {
    const std::string header = "{\"buf\":{\"dtype\":\"" + dtype + "\",\"shape\":[2],\"data_offsets\":[0," +
                               std::to_string(2 * bytes) + "]}}";
    const std::string e = error_of(file_bytes(header, std::string(static_cast<size_t>(2 * bytes), '\1')));
    EXPECT_TRUE(contains(e, "bad.safetensors") && contains(e, "dtype " + dtype + " is not supported"))
        << dtype << ": " << e;
  }
}

// The whole file, byte for byte, for names and metadata that need every kind of escape: the bytes the
// writer has produced since the format was added (control characters as \u00XX in lower case, short
// escapes where JSON has them, '/', DEL and UTF-8 as they are).
TEST(Safetensors, WrittenBytesAreStable) {
  StateDict s;
  s["b"] = Tensor::from_vector({1.0f, -2.0f}, {2});
  s["a/\x01\x7f\"\\\xc3\xa9"] = Tensor::scalar(0.5f);
  s["c"] = Tensor::zeros({0, 3});
  const std::string bytes = serialize_safetensors(s, {{"k\t\b\f\r\n", "v\x1f"}, {"Z", ""}});
  const std::string header =
      R"({"__metadata__":{"Z":"","k\t\b\f\r\n":"v\u001f"},)"
      "\"a/\\u0001\x7f\\\"\\\\\xc3\xa9\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},)"
      R"("c":{"dtype":"F32","shape":[0,3],"data_offsets":[12,12]}})";
  const std::string padded = header + std::string((8 - header.size() % 8) % 8, ' ');
  EXPECT_EQ(bytes, file_bytes(padded, floats({0.5f, 1.0f, -2.0f})));
  const Safetensors back = parse_safetensors(bytes, "mem");
  EXPECT_EQ(serialize_safetensors(back.tensors, back.metadata), bytes);
}

// The rules of the specification beyond the malformed files above, each at the level it applies to.
TEST(Safetensors, RefusesWhatTheSpecificationForbidsAtEveryLevel) {
  const std::string two = floats({1.0f, 2.0f});
  const std::string entry = R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  auto with = [&](const std::string& header) { return file_bytes(header, two); };
  auto nested = [](int levels) { return std::string(static_cast<size_t>(levels), '[') + std::string(static_cast<size_t>(levels), ']'); };
  struct Case {
    const char* what;
    std::string bytes;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {"duplicate metadata key", with(R"({"__metadata__":{"k":"1","k":"2"},"a":)" + entry + "}"), "duplicate key \"k\""},
      {"duplicate field", with(R"({"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})"),
       "duplicate key \"dtype\""},
      {"duplicate metadata", with(R"({"__metadata__":{},"__metadata__":{},"a":)" + entry + "}"),
       "duplicate key \"__metadata__\""},
      {"metadata not an object", with(R"({"__metadata__":["x"],"a":)" + entry + "}"), "\"__metadata__\" is not an object"},
      {"entry not an object", with(R"({"a":[0,8]})"), "its entry is not an object"},
      {"dtype not a string", with(R"({"a":{"dtype":1,"shape":[2],"data_offsets":[0,8]}})"), "dtype is not a string"},
      {"shape not an array", with(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})"), "shape is not an array"},
      {"negative zero", with(R"({"a":{"dtype":"F32","shape":[-0],"data_offsets":[0,8]}})"), "non-negative integer"},
      {"exponent", with(R"({"a":{"dtype":"F32","shape":[2e0],"data_offsets":[0,8]}})"), "non-negative integer"},
      {"dimension over int64", with(R"({"a":{"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,8]}})"),
       "non-negative integer"},
      {"shape too large", with(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})"),
       "shape too large"},
      {"offset over uint64", with(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551616]}})"),
       "data_offsets"},
      {"three offsets", with(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}})"), "data_offsets"},
      {"missing dtype first", with(R"({"a":{"x":1}})"), "unexpected field \"x\""},
      {"missing all fields", with(R"({"a":{}})"), "missing field \"dtype\""},
      {"leading space", with(" " + std::string(R"({"a":)") + entry + "}"), "does not start with '{'"},
      {"byte order mark", with("\xef\xbb\xbf" + std::string(R"({"a":)") + entry + "}"), "does not start with '{'"},
      {"empty header", with(""), "does not start with '{'"},
      {"comment", with(R"({"a":/* c */)" + entry + "}"), "bad JSON"},
      {"single quotes", with(R"({'a':)" + entry + "}"), "bad JSON"},
      {"NaN literal", with(R"({"__metadata__":{"k":NaN},"a":)" + entry + "}"), "bad JSON"},
      {"lone surrogate", with(R"({"\ud800":)" + entry + "}"), "bad JSON"},
      {"unterminated string", with(R"({"a)"), "bad JSON"},
      {"two values", with(R"({"a":)" + entry + "}{}"), "bad JSON"},
      {"NUL after the object", with(R"({"a":)" + entry + "}" + std::string(1, '\0')), "bad JSON"},
      {"NUL and text after the object", with(R"({"a":)" + entry + "}" + std::string(1, '\0') + "x"), "bad JSON"},
      {"NUL in a key", with("{\"a" + std::string(1, '\0') + "\":" + entry + "}"), "bad JSON"},
      {"not UTF-8 outside a string", with("{\xc3\xa9}"), "not a valid safetensors file"},
      {"overlong UTF-8", with("{\"\xc0\xaf\":" + entry + "}"), "UTF-8"},
      {"UTF-8 surrogate", with("{\"\xed\xa0\x80\":" + entry + "}"), "UTF-8"},
      {"64 levels: parsed, then refused as an entry", with(R"({"a":)" + nested(64) + "}"), "its entry is not an object"},
      {"65 levels", with(R"({"a":)" + nested(65) + "}"), "nested deeper than 64 levels"},
  };
  for (const Case& c : cases) {
    const std::string e = error_of(c.bytes);
    EXPECT_TRUE(contains(e, "bad.safetensors: not a valid safetensors file")) << c.what << ": " << e;
    EXPECT_TRUE(contains(e, c.expect)) << c.what << ": expected '" << c.expect << "' in: " << e;
  }
}

TEST(Safetensors, WriterRefusesNamesTheFormatCannotHold) {
  StateDict s;
  s["__metadata__"] = Tensor::zeros({1});
  EXPECT_THROW(serialize_safetensors(s), std::invalid_argument);
  StateDict bad_utf8;
  bad_utf8["\xc3("] = Tensor::zeros({1});
  EXPECT_THROW(serialize_safetensors(bad_utf8), std::invalid_argument);
}

}  // namespace
}  // namespace pf
