// Settings as typed fields: what one field of a config struct says about itself, and its text form.
//
// Every config struct of the project (ModelConfig, DataConfig, TokenizerConfig, OptimizerConfig,
// ScheduleConfig, RunConfig) lists its fields once, in a static visit_fields(v) that calls
// v(FieldSpec, member pointer) per field. A FieldSpec holds the flag name (also the config-file and
// checkpoint key), the help text, what a resumed run may do with it, and its numeric range. Generic code
// walks those lists to build the command line, read and write config files, validate, store
// checkpoints and compare them on resume (train/train_config.h composes the lists).
//
// Field types: std::vector<std::string>, std::string, bool, int64_t, uint64_t, double, float, an enum
// with a name table (base/enum_names.h), or std::optional of such an enum ("auto" = no value).
//
// Text forms. field_text: the stored form (checkpoint config maps, config files): strings and names
// quoted, lists as ["a", "b"], numbers in the shortest form that reads back exactly. flag_text: as
// on a command line (strings and names bare). parse_field reads either form whole and checks the
// range; a bad value throws FieldValueError naming the flag and the text as written.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "base/enum_names.h"

namespace pf {

// What a resumed run may do with a field.
enum class OnResume {
  Model,  // shape or meaning of the parameters: must match the checkpoint
  Data,   // the data stream (files, batching, seed): must match, or the cursor means nothing
  Free,   // may change on resume (steps, lr, evaluation, output ...)
};

// The allowed values of a numeric field: [lo, hi], an open end excluding the bound itself. `rule` is
// the message for a value outside ("must be > 0"); a field without a range has rule == nullptr.
struct Range {
  double lo = 0, hi = 0;
  bool lo_open = false, hi_open = false;
  const char* rule = nullptr;
  bool contains(double v) const {  // NaN never is
    return (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
  }
};

inline constexpr double kMaxCount = 1e15;                    // sizes and counts: far above what fits
inline constexpr double kMaxFloat = 3.4028234663852886e38;   // values that travel as float
inline constexpr double kMaxSeed = 9223372036854775807.0;    // a TOML integer (signed 64 bits)
inline constexpr Range kPositive{1, kMaxCount, false, false, "must be > 0"};
inline constexpr Range kNonNegative{0, kMaxCount, false, false, "must be >= 0"};
inline constexpr Range kFraction{0, 1, false, true, "must be in [0, 1)"};
inline constexpr Range kSeed{0, kMaxSeed, false, false, "must be in [0, 9223372036854775807]"};

struct FieldSpec {
  const char* key;   // the flag without "--" ("seq-len"); nullptr: not a setting of its own (derived)
  const char* help;  // one line for --help, the config file and train/USAGE.md
  OnResume resume = OnResume::Free;
  Range range = {};  // numeric fields
};

// A value that cannot be read or breaks its field's rule: what() is "--key text: rule".
class FieldValueError : public std::invalid_argument {
 public:
  FieldValueError(const std::string& key, const std::string& text, const std::string& rule)
      : std::invalid_argument("--" + key + " " + text + ": " + rule), key(key), text(text), rule(rule) {}
  std::string key, text, rule;
};

namespace field_detail {
template <class T>
struct is_optional_enum : std::false_type {};
template <NamedEnum E>
struct is_optional_enum<std::optional<E>> : std::true_type {};

std::string quote(const std::string& s);    // "s", or 's' when s holds a '"'
std::string unquote(const std::string& s);  // trims spaces, removes one pair of matching quotes
std::vector<std::string> parse_list(const std::string& text);  // ["a", "b"] or one value
std::string list_text(const std::vector<std::string>& v);
std::string number_text(double v);
std::string number_text(float v);
bool parse_bool(const std::string& t, bool& out);
bool parse_real(const std::string& t, double& out);
// 0: ok, 1: not an integer, 2: out of the type's range.
int parse_int(const std::string& t, int64_t& out);
int parse_uint(const std::string& t, uint64_t& out);
}  // namespace field_detail

// Whether a field of type T takes names (an enum, or an optional enum).
template <class T>
inline constexpr bool kNamedField = NamedEnum<T> || field_detail::is_optional_enum<T>::value;

inline constexpr const char* kAutoName = "auto";  // the text of an empty std::optional<E> field

// Whether v keeps the field's range (always true for fields without one; unsigned values must also
// fit a signed 64-bit TOML integer).
template <class T>
bool field_within(const FieldSpec& f, const T& v) {
  if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
    if constexpr (std::is_unsigned_v<T>)
      if (v > static_cast<T>(INT64_MAX)) return false;
    return !f.range.rule || f.range.contains(static_cast<double>(v));
  } else {
    return true;
  }
}

template <class T>
std::string flag_text(const T& v) {
  using namespace field_detail;
  if constexpr (std::is_same_v<T, std::vector<std::string>>) return list_text(v);
  else if constexpr (std::is_same_v<T, std::string>) return v;
  else if constexpr (std::is_same_v<T, bool>) return v ? "true" : "false";
  else if constexpr (std::is_floating_point_v<T>) return number_text(v);
  else if constexpr (NamedEnum<T>) return enum_name(v);
  else if constexpr (is_optional_enum<T>::value) return v ? enum_name(*v) : kAutoName;
  else return std::to_string(v);
}

template <class T>
std::string field_text(const T& v) {
  if constexpr (std::is_same_v<T, std::string> || NamedEnum<T> || field_detail::is_optional_enum<T>::value)
    return field_detail::quote(flag_text(v));
  else
    return flag_text(v);
}

// Reads `text` (either form) into out; throws FieldValueError(f.key, text, reason).
template <class T>
void parse_field(const FieldSpec& f, const std::string& text, T& out) {
  using namespace field_detail;
  const std::string t = unquote(text);
  const std::string key = f.key ? f.key : "?";
  auto fail = [&](const std::string& why) { throw FieldValueError(key, t, why); };
  const char* rule = f.range.rule ? f.range.rule : "out of range";
  T v{};
  if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    v = parse_list(text);
  } else if constexpr (std::is_same_v<T, std::string>) {
    v = t;
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!parse_bool(t, v)) fail("expected true or false");
  } else if constexpr (std::is_floating_point_v<T>) {
    double d = 0;
    if (!parse_real(t, d)) fail("expected a number");
    if (f.range.rule && !f.range.contains(d)) fail(rule);
    v = static_cast<T>(d);
  } else if constexpr (NamedEnum<T>) {
    const auto e = enum_from_name<T>(t);
    if (!e) throw FieldValueError(key, "'" + t + "'", "unknown value (expected one of: " + enum_choices<T>() + ")");
    v = *e;
  } else if constexpr (is_optional_enum<T>::value) {
    using E = typename T::value_type;
    if (t != kAutoName) {
      const auto e = enum_from_name<E>(t);
      if (!e)
        throw FieldValueError(key, "'" + t + "'",
                              "unknown value (expected one of: " + std::string(kAutoName) + ", " + enum_choices<E>() + ")");
      v = *e;
    }
  } else if constexpr (std::is_unsigned_v<T>) {
    uint64_t u = 0;
    const int r = parse_uint(t, u);
    if (r == 1) fail("expected an integer");
    if (r == 2) fail(rule);
    v = static_cast<T>(u);
  } else {
    int64_t i = 0;
    const int r = parse_int(t, i);
    if (r == 1) fail("expected an integer");
    if (r == 2) fail(rule);
    v = static_cast<T>(i);
  }
  if (!field_within(f, v)) fail(rule);
  out = std::move(v);
}

// The names a field of type T takes ("favor, relu, ..."), or "" when it is not enumerated.
template <class T>
std::string field_choices() {
  if constexpr (NamedEnum<T>) return enum_choices<T>();
  else if constexpr (field_detail::is_optional_enum<T>::value)
    return std::string(kAutoName) + ", " + enum_choices<typename T::value_type>();
  else return "";
}

}  // namespace pf
