#include "nn/safetensors.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/format.h"

namespace pf {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian; this build assumes a little-endian CPU");

namespace {

// The header, read and written with nlohmann-json. Ordered: members keep the order of the file (the
// first problem in the file is the one reported) and of writing (metadata first, then the tensors in
// name order, each as dtype, shape, data_offsets).
using Json = nlohmann::ordered_json;

// True if `s` is well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF): the
// library's writer refuses anything else.
bool is_utf8(const std::string& s) {
  try {
    static_cast<void>(Json(s).dump());
    return true;
  } catch (const Json::type_error&) {
    return false;
  }
}

// ------------------------------------------------------------------ the header's JSON

constexpr int kMaxDepth = 64;

// The library's message without its "[json.exception.parse_error.101] " prefix, bytes above 0x7F
// written as \xNN (the library echoes the bytes it read last, which may be the ill-formed UTF-8).
std::string library_message(const nlohmann::json::exception& e) {
  std::string_view what = e.what();
  if (what.starts_with("[json.exception.") && what.find("] ") != std::string_view::npos)
    what.remove_prefix(what.find("] ") + 2);
  std::string out;
  for (const char c : what) {
    const unsigned char b = static_cast<unsigned char>(c);
    static constexpr char kHex[] = "0123456789abcdef";
    if (b < 0x80)
      out += c;
    else
      out += {'\\', 'x', kHex[b >> 4], kHex[b & 0xF]};
  }
  return out;
}

// One JSON document (RFC 8259, only whitespace after it) with what the library leaves to its caller:
// no key twice in an object, no nesting deeper than kMaxDepth, no NUL byte (which the library takes
// for the end of the text, so that it would accept anything after one). Throws std::runtime_error.
Json parse_header(std::string_view header) {
  if (const size_t nul = header.find('\0'); nul != std::string_view::npos)
    throw std::runtime_error("a NUL byte at byte " + std::to_string(nul) + " (JSON text holds none)");
  std::vector<std::set<std::string>> keys;  // of each object being read
  auto rules = [&keys](int depth, Json::parse_event_t event, Json& parsed) {
    using Event = Json::parse_event_t;
    if ((event == Event::object_start || event == Event::array_start || event == Event::value) && depth > kMaxDepth)
      throw std::runtime_error("JSON nested deeper than " + std::to_string(kMaxDepth) + " levels");
    if (event == Event::object_start) keys.emplace_back();
    if (event == Event::object_end) keys.pop_back();
    if (event == Event::key && !keys.back().insert(parsed.get_ref<const std::string&>()).second)
      throw std::runtime_error("duplicate key " + json_quote(parsed.get_ref<const std::string&>()));
    return true;
  };
  try {
    return Json::parse(header, rules);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(library_message(e));
  }
}

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

// A non-negative JSON integer (no sign, fraction or exponent) that fits uint64: the library reads
// exactly those as unsigned ("-0" is signed, "1.0" and "1e0" are floating-point, larger ones too).
std::optional<uint64_t> as_count(const Json& v) {
  if (!v.is_number_unsigned()) return std::nullopt;
  return v.get<uint64_t>();
}

// ------------------------------------------------------------------ reading the entries

struct Entry {
  std::string name;
  const DtypeInfo* dtype = nullptr;
  Shape shape;
  uint64_t numel = 1;
  uint64_t begin = 0, end = 0;
};

// A refusal of the file named `source`.
SafetensorsError malformed(const std::string& source, const std::string& what) {
  return SafetensorsError(source + ": not a valid safetensors file: " + what);
}

// The "__metadata__" object: string values only.
SafetensorsMetadata read_metadata(const Json& v, const std::string& source) {
  if (!v.is_object()) throw malformed(source, "\"__metadata__\" is not an object");
  SafetensorsMetadata out;
  for (const auto& [k, value] : v.get_ref<const Json::object_t&>()) {
    if (!value.is_string())
      throw malformed(source, "metadata value of " + json_quote(k) + " is not a string (the format allows strings only)");
    out.emplace(k, value.get<std::string>());
  }
  return out;
}

// The dtype, shape and data_offsets of one tensor, checked against a data buffer of `buffer_size` bytes.
Entry read_entry(const std::string& name, const Json& v, uint64_t buffer_size, const std::string& source) {
  const std::string tensor = "tensor " + json_quote(name) + ": ";
  auto fail = [&](const std::string& what) { return malformed(source, tensor + what); };
  if (!v.is_object()) throw fail("its entry is not an object");
  for (const auto& [field, value] : v.get_ref<const Json::object_t&>())
    if (field != "dtype" && field != "shape" && field != "data_offsets")
      throw fail("unexpected field " + json_quote(field) + " (expected dtype, shape and data_offsets)");
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!v.contains(field)) throw fail("missing field " + json_quote(field));
  const Json &dtype = v.at("dtype"), &shape = v.at("shape"), &offsets = v.at("data_offsets");
  Entry e;
  e.name = name;
  if (!dtype.is_string()) throw fail("dtype is not a string");
  e.dtype = find_dtype(dtype.get<std::string>());
  if (!e.dtype) throw fail("unknown dtype " + json_quote(dtype.get<std::string>()));
  if (!e.dtype->supported)
    throw fail("dtype " + dtype.get<std::string>() +
               " is not supported (floating-point weights only: F32, or F64, F16, BF16 converted to F32)");
  if (!shape.is_array()) throw fail("shape is not an array");
  for (const Json& d : shape) {
    const std::optional<uint64_t> x = as_count(d);
    if (!x || *x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw fail("shape holds something other than a non-negative integer");
    if (*x != 0 && e.numel > std::numeric_limits<uint64_t>::max() / 8 / *x) throw fail("shape too large");
    e.numel *= *x;
    e.shape.push_back(static_cast<int64_t>(*x));
  }
  if (!offsets.is_array() || offsets.size() != 2 || !as_count(offsets[0]) || !as_count(offsets[1]))
    throw fail("data_offsets is not [begin, end] with non-negative integers");
  e.begin = *as_count(offsets[0]);
  e.end = *as_count(offsets[1]);
  const std::string range = "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "]";
  if (e.end < e.begin) throw fail(range + " end before they begin");
  if (e.end > buffer_size)
    throw fail(range + " out of range: the data buffer has " + std::to_string(buffer_size) + " bytes (truncated file?)");
  if (e.end - e.begin != e.numel * e.dtype->bytes)
    throw fail("wrong shape: " + std::to_string(e.numel) + " values of " + e.dtype->name + " need " +
               std::to_string(e.numel * e.dtype->bytes) + " bytes, data_offsets give " + std::to_string(e.end - e.begin));
  return e;
}

// The tensors tile the buffer: sorted by offset, each begins where the previous one ended.
void check_tiling(const std::vector<Entry>& entries, uint64_t buffer_size, const std::string& source) {
  std::vector<const Entry*> order;
  for (const Entry& e : entries) order.push_back(&e);
  std::stable_sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t at = 0;
  const Entry* prev = nullptr;
  for (const Entry* e : order) {
    if (e->begin < at)
      throw malformed(source, "tensors " + json_quote(prev->name) + " and " + json_quote(e->name) + " overlap (bytes [" +
                                  std::to_string(e->begin) + ", " + std::to_string(at) + ") of the data buffer)");
    if (e->begin > at)
      throw malformed(source, "a gap in the data buffer: bytes [" + std::to_string(at) + ", " +
                                  std::to_string(e->begin) + ") before tensor " + json_quote(e->name) + " belong to no tensor");
    at = e->end;
    prev = e;
  }
  if (at != buffer_size)
    throw malformed(source, std::to_string(buffer_size - at) + " bytes after the last tensor's data belong to no tensor");
}

}  // namespace

// ------------------------------------------------------------------ writing

std::string serialize_safetensors(const StateDict& tensors, const SafetensorsMetadata& metadata) {
  Json header = Json::object();
  if (!metadata.empty()) {
    for (const auto& [k, v] : metadata)
      if (!is_utf8(k) || !is_utf8(v))
        throw std::invalid_argument("safetensors: metadata key " + json_quote(k) + " or its value is not valid UTF-8");
    header["__metadata__"] = metadata;
  }
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__")
      throw std::invalid_argument("safetensors: \"__metadata__\" is reserved and cannot be a tensor name");
    if (!is_utf8(name)) throw std::invalid_argument("safetensors: tensor name " + json_quote(name) + " is not valid UTF-8");
    if (!t.defined()) throw std::invalid_argument("safetensors: tensor " + json_quote(name) + " is undefined");
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * 4;
    Json entry = Json::object();
    entry["dtype"] = "F32";
    entry["shape"] = t.shape();
    entry["data_offsets"] = Json::array({offset, offset + bytes});
    header[name] = std::move(entry);
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  if (text.size() > kSafetensorsMaxHeader)
    throw std::invalid_argument("safetensors: the header would be " + std::to_string(text.size()) +
                                " bytes, over the format's limit of 100 MB");
  std::string out;
  out.reserve(8 + text.size() + offset);
  const uint64_t n = text.size();
  out.append(reinterpret_cast<const char*>(&n), 8);
  out += text;
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
  if (bytes.size() < 8)
    throw malformed(source, "truncated: " + std::to_string(bytes.size()) + " bytes, shorter than the 8-byte header length");
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  if (n > kSafetensorsMaxHeader)
    throw malformed(source, "header too large: its length field says " + std::to_string(n) +
                                " bytes, over the format's limit of 100 MB (not a safetensors file, or a damaged one)");
  if (n > bytes.size() - 8)
    throw malformed(source, "truncated: the header should be " + std::to_string(n) + " bytes but only " +
                                std::to_string(bytes.size() - 8) + " follow the length field");
  const std::string_view header = bytes.substr(8, n);
  const std::string_view buffer = bytes.substr(8 + n);
  // Checked before the library reads it, which would skip a byte order mark and leading whitespace.
  if (header.empty() || header[0] != '{') throw malformed(source, "the header does not start with '{' (bad JSON)");
  Json doc;
  try {
    doc = parse_header(header);
  } catch (const std::runtime_error& e) {
    throw malformed(source, std::string("bad JSON in the header: ") + e.what());
  }
  Safetensors out;
  std::vector<Entry> entries;
  for (const auto& [name, v] : doc.get_ref<const Json::object_t&>()) {
    if (name == "__metadata__")
      out.metadata = read_metadata(v, source);
    else
      entries.push_back(read_entry(name, v, buffer.size(), source));
  }
  check_tiling(entries, buffer.size(), source);
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
