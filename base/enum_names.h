// One name table per enumerated setting. An enum E gets its names by a specialization
//
//   template <> struct EnumNames<AttentionKind> {
//     static constexpr std::array<std::pair<AttentionKind, const char*>, 4> table{{
//         {AttentionKind::Favor, "favor"}, ...}};
//   };
//
// next to the enum's declaration, and every spelling of its values in the project (flags, config
// files, checkpoints, metadata, messages, --help) comes from that table through the functions below.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pf {

template <class E>
struct EnumNames;

template <class E>
concept NamedEnum = requires { EnumNames<E>::table; };

// The value's name ("favor-local").
template <NamedEnum E>
const char* enum_name(E e) {
  for (const auto& [value, name] : EnumNames<E>::table)
    if (value == e) return name;
  return "?";
}

// The value of a name, if it is one.
template <NamedEnum E>
std::optional<E> enum_from_name(std::string_view s) {
  for (const auto& [value, name] : EnumNames<E>::table)
    if (s == name) return value;
  return std::nullopt;
}

// "favor, relu, softmax, favor-local": the names in table order, for messages and --help.
template <NamedEnum E>
std::string enum_choices() {
  std::string out;
  for (const auto& [value, name] : EnumNames<E>::table) out += (out.empty() ? "" : ", ") + std::string(name);
  return out;
}

// The names in table order, for command-line checks (CLI11's IsMember).
template <NamedEnum E>
std::vector<std::string> enum_names() {
  std::vector<std::string> out;
  for (const auto& [value, name] : EnumNames<E>::table) out.emplace_back(name);
  return out;
}

// The value of a name; throws std::invalid_argument "<what> 'x': unknown value (expected one of: ...)".
template <NamedEnum E>
E parse_enum(std::string_view s, const std::string& what) {
  if (const auto e = enum_from_name<E>(s)) return *e;
  throw std::invalid_argument(what + " '" + std::string(s) + "': unknown value (expected one of: " +
                              enum_choices<E>() + ")");
}

}  // namespace pf
