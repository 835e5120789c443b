#include "nn/safetensors.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "base/atomic_file.h"

namespace pf {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian; this build assumes a little-endian CPU");

namespace {

// ------------------------------------------------------------------ UTF-8 and JSON strings

// True if `s` is well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF).
bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    int n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + static_cast<size_t>(n) >= s.size()) return false;  // the sequence runs past the end
    for (int k = 1; k <= n; ++k) {
      const unsigned char d = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    static constexpr uint32_t kMin[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += static_cast<size_t>(n) + 1;
  }
  return true;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}


// ------------------------------------------------------------------ a small strict JSON parser (RFC 8259)

struct Json {
  enum class Kind { Null, Bool, Number, String, Array, Object } kind = Kind::Null;
  bool boolean = false;
  std::string text;  // String: the decoded value; Number: the literal as written
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> members;  // Object, in file order (duplicates refused)
};

class JsonParser {
 public:
  explicit JsonParser(std::string_view s) : s_(s) {}

  // The one value of the document; only whitespace may follow it. Throws std::runtime_error
  // with the byte offset of the problem.
  Json document() {
    Json v = value(0);
    skip_ws();
    if (i_ != s_.size()) error("unexpected characters after the JSON value");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 64;

  [[noreturn]] void error(const std::string& what) const {
    throw std::runtime_error(what + " at byte " + std::to_string(i_) + " of the header");
  }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  char peek() {
    skip_ws();
    if (i_ >= s_.size()) error("unexpected end of the JSON text");
    return s_[i_];
  }
  void expect(char c) {
    if (peek() != c) error(std::string("expected '") + c + "'");
    ++i_;
  }

  Json value(int depth) {
    if (depth > kMaxDepth) error("JSON nested deeper than " + std::to_string(kMaxDepth) + " levels");
    const char c = peek();
    Json v;
    if (c == '{') {
      v.kind = Json::Kind::Object;
      ++i_;
      if (peek() == '}') {
        ++i_;
        return v;
      }
      for (;;) {
        if (peek() != '"') error("expected a string key");
        std::string key = string();
        for (const auto& m : v.members)
          if (m.first == key) error("duplicate key " + json_quote(key));
        expect(':');
        v.members.emplace_back(std::move(key), value(depth + 1));
        const char d = peek();
        ++i_;
        if (d == '}') return v;
        if (d != ',') {
          --i_;
          error("expected ',' or '}'");
        }
      }
    }
    if (c == '[') {
      v.kind = Json::Kind::Array;
      ++i_;
      if (peek() == ']') {
        ++i_;
        return v;
      }
      for (;;) {
        v.items.push_back(value(depth + 1));
        const char d = peek();
        ++i_;
        if (d == ']') return v;
        if (d != ',') {
          --i_;
          error("expected ',' or ']'");
        }
      }
    }
    if (c == '"') {
      v.kind = Json::Kind::String;
      v.text = string();
      return v;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      v.kind = Json::Kind::Number;
      v.text = number();
      return v;
    }
    for (const auto& [word, kind, b] : {std::tuple{"true", Json::Kind::Bool, true},
                                        std::tuple{"false", Json::Kind::Bool, false},
                                        std::tuple{"null", Json::Kind::Null, false}}) {
      const size_t n = std::strlen(word);
      if (s_.substr(i_, n) == word) {
        i_ += n;
        v.kind = kind;
        v.boolean = b;
        return v;
      }
    }
    error("unexpected character '" + std::string(1, c) + "'");
  }

  std::string number() {
    const size_t start = i_;
    auto digits = [&] {
      const size_t from = i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      if (i_ == from) error("malformed number");
    };
    if (s_[i_] == '-') ++i_;
    if (i_ < s_.size() && s_[i_] == '0')
      ++i_;
    else
      digits();
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      digits();
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      digits();
    }
    return std::string(s_.substr(start, i_ - start));
  }

  uint32_t hex4() {
    if (i_ + 4 > s_.size()) error("truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = s_[i_++];
      v <<= 4;
      if (h >= '0' && h <= '9')
        v |= static_cast<uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f')
        v |= static_cast<uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F')
        v |= static_cast<uint32_t>(h - 'A' + 10);
      else
        error("bad hex digit in \\u escape");
    }
    return v;
  }

  std::string string() {
    ++i_;  // the opening quote
    std::string out;
    for (;;) {
      if (i_ >= s_.size()) error("unterminated string");
      const char c = s_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) {
        --i_;
        error("control character in a string (must be escaped)");
      }
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) error("unterminated string");
      const char e = s_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xDC00 && cp <= 0xDFFF) error("lone low surrogate in \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (i_ + 2 > s_.size() || s_[i_] != '\\' || s_[i_ + 1] != 'u') error("lone high surrogate in \\u escape");
            i_ += 2;
            const uint32_t lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) error("bad surrogate pair in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default:
          --i_;
          error(std::string("bad escape '\\") + e + "'");
      }
    }
  }

  std::string_view s_;
  size_t i_ = 0;
};

// ------------------------------------------------------------------ dtypes

struct DtypeInfo {
  const char* name;
  size_t bytes;
  bool supported;  // converted to float32 on reading
};

// Every dtype of the specification.
constexpr DtypeInfo kDtypes[] = {
    {"F32", 4, true},      {"F64", 8, true},      {"F16", 2, true},      {"BF16", 2, true},
    {"BOOL", 1, false},    {"U8", 1, false},      {"I8", 1, false},      {"I16", 2, false},
    {"U16", 2, false},     {"I32", 4, false},     {"U32", 4, false},     {"I64", 8, false},
    {"U64", 8, false},     {"F8_E4M3", 1, false}, {"F8_E5M2", 1, false},
};

const DtypeInfo* find_dtype(const std::string& name) {
  for (const DtypeInfo& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const int exp = (h >> 10) & 0x1F;
  const uint32_t mant = h & 0x3FF;
  float v;
  if (exp == 0)
    v = std::ldexp(static_cast<float>(mant), -24);  // zero and subnormals
  else if (exp == 31)
    v = mant ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  else
    v = std::ldexp(static_cast<float>(mant | 0x400), exp - 25);
  return sign ? -v : v;
}

void convert(const char* src, const DtypeInfo& d, float* dst, int64_t n) {
  const std::string name = d.name;
  if (name == "F32") {
    std::memcpy(dst, src, static_cast<size_t>(n) * 4);
  } else if (name == "F64") {
    for (int64_t i = 0; i < n; ++i) {
      double x;
      std::memcpy(&x, src + 8 * i, 8);
      dst[i] = static_cast<float>(x);
    }
  } else if (name == "BF16") {
    for (int64_t i = 0; i < n; ++i) {
      uint16_t b;
      std::memcpy(&b, src + 2 * i, 2);
      const uint32_t bits = static_cast<uint32_t>(b) << 16;
      std::memcpy(dst + i, &bits, 4);
    }
  } else {  // F16
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      dst[i] = half_to_float(h);
    }
  }
}

// A non-negative JSON integer (no sign, fraction or exponent) that fits uint64.
std::optional<uint64_t> as_count(const Json& v) {
  if (v.kind != Json::Kind::Number || v.text.empty() || v.text.size() > 20) return std::nullopt;
  uint64_t x = 0;
  for (const char c : v.text) {
    if (c < '0' || c > '9') return std::nullopt;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (x > (std::numeric_limits<uint64_t>::max() - digit) / 10) return std::nullopt;
    x = x * 10 + digit;
  }
  return x;
}

struct Entry {
  std::string name;
  const DtypeInfo* dtype = nullptr;
  Shape shape;
  uint64_t numel = 1;
  uint64_t begin = 0, end = 0;
};

}  // namespace

// A JSON string literal: '"' and '\' escaped, control characters as \uXXXX (\n, \t ... short forms),
// everything else (UTF-8 included) as is.
std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (const char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

// ------------------------------------------------------------------ writing

std::string serialize_safetensors(const StateDict& tensors, const SafetensorsMetadata& metadata) {
  std::string header = "{";
  bool first = true;
  auto sep = [&] {
    if (!first) header += ",";
    first = false;
  };
  if (!metadata.empty()) {
    sep();
    header += "\"__metadata__\":{";
    bool first_meta = true;
    for (const auto& [k, v] : metadata) {
      if (!valid_utf8(k) || !valid_utf8(v))
        throw std::invalid_argument("safetensors: metadata key " + json_quote(k) + " or its value is not valid UTF-8");
      if (!first_meta) header += ',';
      header += json_quote(k) + ":" + json_quote(v);
      first_meta = false;
    }
    header += "}";
  }
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__")
      throw std::invalid_argument("safetensors: \"__metadata__\" is reserved and cannot be a tensor name");
    if (!valid_utf8(name)) throw std::invalid_argument("safetensors: tensor name " + json_quote(name) + " is not valid UTF-8");
    if (!t.defined()) throw std::invalid_argument("safetensors: tensor " + json_quote(name) + " is undefined");
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * 4;
    sep();
    header += json_quote(name) + ":{\"dtype\":\"F32\",\"shape\":[";
    for (size_t a = 0; a < t.shape().size(); ++a) {
      if (a) header += ',';
      header += std::to_string(t.shape()[a]);
    }
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + bytes) + "]}";
    offset += bytes;
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  if (header.size() > kSafetensorsMaxHeader)
    throw std::invalid_argument("safetensors: the header would be " + std::to_string(header.size()) +
                                " bytes, over the format's limit of 100 MB");
  std::string out;
  out.reserve(8 + header.size() + offset);
  const uint64_t n = header.size();
  out.append(reinterpret_cast<const char*>(&n), 8);
  out += header;
  for (const auto& [name, t] : tensors)
    out.append(reinterpret_cast<const char*>(t.data()), static_cast<size_t>(t.numel()) * 4);
  return out;
}

void save_safetensors(const std::string& path, const StateDict& tensors, const SafetensorsMetadata& metadata) {
  std::string bytes;
  try {
    bytes = serialize_safetensors(tensors, metadata);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(path + ": " + e.what());
  }
  write_file_atomic(path, bytes);
}

// ------------------------------------------------------------------ reading

Safetensors parse_safetensors(std::string_view bytes, const std::string& source) {
  auto fail = [&](const std::string& what) -> SafetensorsError {
    return SafetensorsError(source + ": not a valid safetensors file: " + what);
  };
  if (bytes.size() < 8)
    throw fail("truncated: " + std::to_string(bytes.size()) + " bytes, shorter than the 8-byte header length");
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  if (n > kSafetensorsMaxHeader)
    throw fail("header too large: its length field says " + std::to_string(n) +
               " bytes, over the format's limit of 100 MB (not a safetensors file, or a damaged one)");
  if (n > bytes.size() - 8)
    throw fail("truncated: the header should be " + std::to_string(n) + " bytes but only " +
               std::to_string(bytes.size() - 8) + " follow the length field");
  const std::string_view header = bytes.substr(8, n);
  const std::string_view buffer = bytes.substr(8 + n);
  if (!valid_utf8(header)) throw fail("the header is not valid UTF-8");
  if (header.empty() || header[0] != '{') throw fail("the header does not start with '{' (bad JSON)");
  Json doc;
  try {
    doc = JsonParser(header).document();
  } catch (const std::runtime_error& e) {
    throw fail(std::string("bad JSON in the header: ") + e.what());
  }
  if (doc.kind != Json::Kind::Object) throw fail("bad JSON in the header: not an object");

  Safetensors out;
  std::vector<Entry> entries;
  for (const auto& [name, v] : doc.members) {
    const std::string quoted = json_quote(name);
    if (name == "__metadata__") {
      if (v.kind != Json::Kind::Object) throw fail("\"__metadata__\" is not an object");
      for (const auto& [k, mv] : v.members) {
        if (mv.kind != Json::Kind::String)
          throw fail("metadata value of " + json_quote(k) + " is not a string (the format allows strings only)");
        out.metadata.emplace(k, mv.text);
      }
      continue;
    }
    if (v.kind != Json::Kind::Object) throw fail("tensor " + quoted + ": its entry is not an object");
    Entry e;
    e.name = name;
    const Json *dtype = nullptr, *shape = nullptr, *offsets = nullptr;
    for (const auto& [field, fv] : v.members) {
      if (field == "dtype")
        dtype = &fv;
      else if (field == "shape")
        shape = &fv;
      else if (field == "data_offsets")
        offsets = &fv;
      else
        throw fail("tensor " + quoted + ": unexpected field " + json_quote(field) +
                   " (expected dtype, shape and data_offsets)");
    }
    if (!dtype || !shape || !offsets)
      throw fail("tensor " + quoted + ": missing field " +
                 std::string(!dtype ? "\"dtype\"" : !shape ? "\"shape\"" : "\"data_offsets\""));
    if (dtype->kind != Json::Kind::String) throw fail("tensor " + quoted + ": dtype is not a string");
    e.dtype = find_dtype(dtype->text);
    if (!e.dtype) throw fail("tensor " + quoted + ": unknown dtype " + json_quote(dtype->text));
    if (!e.dtype->supported)
      throw fail("tensor " + quoted + ": dtype " + dtype->text +
                 " is not supported (floating-point weights only: F32, or F64, F16, BF16 converted to F32)");
    if (shape->kind != Json::Kind::Array) throw fail("tensor " + quoted + ": shape is not an array");
    for (const Json& d : shape->items) {
      const std::optional<uint64_t> x = as_count(d);
      if (!x || *x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw fail("tensor " + quoted + ": shape holds something other than a non-negative integer");
      if (*x != 0 && e.numel > std::numeric_limits<uint64_t>::max() / 8 / *x)
        throw fail("tensor " + quoted + ": shape too large");
      e.numel *= *x;
      e.shape.push_back(static_cast<int64_t>(*x));
    }
    if (offsets->kind != Json::Kind::Array || offsets->items.size() != 2 || !as_count(offsets->items[0]) ||
        !as_count(offsets->items[1]))
      throw fail("tensor " + quoted + ": data_offsets is not [begin, end] with non-negative integers");
    e.begin = *as_count(offsets->items[0]);
    e.end = *as_count(offsets->items[1]);
    if (e.end < e.begin)
      throw fail("tensor " + quoted + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                 "] end before they begin");
    if (e.end > buffer.size())
      throw fail("tensor " + quoted + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                 "] out of range: the data buffer has " + std::to_string(buffer.size()) +
                 " bytes (truncated file?)");
    if (e.end - e.begin != e.numel * e.dtype->bytes)
      throw fail("tensor " + quoted + ": wrong shape: " + std::to_string(e.numel) + " values of " + e.dtype->name +
                 " need " + std::to_string(e.numel * e.dtype->bytes) + " bytes, data_offsets give " +
                 std::to_string(e.end - e.begin));
    entries.push_back(std::move(e));
  }
  // The tensors tile the buffer: sorted by offset, each begins where the previous one ended.
  std::vector<const Entry*> order;
  for (const Entry& e : entries) order.push_back(&e);
  std::stable_sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t at = 0;
  const Entry* prev = nullptr;
  for (const Entry* e : order) {
    if (e->begin < at)
      throw fail("tensors " + json_quote(prev->name) + " and " + json_quote(e->name) + " overlap (bytes [" +
                 std::to_string(e->begin) + ", " + std::to_string(at) + ") of the data buffer)");
    if (e->begin > at)
      throw fail("a gap in the data buffer: bytes [" + std::to_string(at) + ", " + std::to_string(e->begin) +
                 ") before tensor " + json_quote(e->name) + " belong to no tensor");
    at = e->end;
    prev = e;
  }
  if (at != buffer.size())
    throw fail(std::to_string(buffer.size() - at) + " bytes after the last tensor's data belong to no tensor");

  for (const Entry& e : entries) {
    Tensor t(e.shape);
    convert(buffer.data() + e.begin, *e.dtype, t.data(), static_cast<int64_t>(e.numel));
    out.tensors.emplace(e.name, std::move(t));
  }
  return out;
}

Safetensors load_safetensors(const std::string& path) {
  std::string bytes;
  try {
    bytes = read_file_bytes(path);
  } catch (const std::exception& e) {
    throw SafetensorsError(e.what());
  }
  return parse_safetensors(bytes, path);
}

}  // namespace pf
