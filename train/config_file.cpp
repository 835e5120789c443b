#include "train/config_file.h"

#include <toml++/toml.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "base/format.h"
#include "train/train_config.h"

namespace pf {

namespace {

// Only its members' types are used (decltype(kFieldTypes.*member)).
const TrainConfig kFieldTypes{};

// Line n (1-based) of the file, printable: other bytes as \xNN, at most 80 characters.
std::string line_of(const std::string& content, int64_t n) {
  size_t begin = 0;
  for (int64_t i = 1; i < n && begin != std::string::npos; ++i) {
    begin = content.find('\n', begin);
    if (begin != std::string::npos) ++begin;
  }
  if (begin == std::string::npos || begin > content.size()) return "";
  size_t end = content.find('\n', begin);
  if (end == std::string::npos) end = content.size();
  std::string out;
  for (size_t i = begin; i < end && out.size() < 80; ++i) {
    const unsigned char c = static_cast<unsigned char>(content[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else if (c != '\r') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    }
  }
  return out;
}

// The value of `key = value` on line n as written (comment and spaces removed).
std::string written_value(const std::string& content, int64_t n) {
  std::string line = line_of(content, n);
  const size_t eq = line.find('=');
  if (eq == std::string::npos) return line;
  line = line.substr(eq + 1);
  const size_t hash = line.find(" #");
  if (hash != std::string::npos && line.find('"') == std::string::npos) line = line.substr(0, hash);
  while (!line.empty() && line.back() == ' ') line.pop_back();
  while (!line.empty() && line.front() == ' ') line.erase(0, 1);
  return line;
}

const char* toml_type_name(const toml::node& n) {
  if (n.is_string()) return "a string";
  if (n.is_integer()) return "an integer";
  if (n.is_floating_point()) return "a number";
  if (n.is_boolean()) return "true or false";
  if (n.is_array()) return "a list";
  if (n.is_table()) return "a table";
  return "a date or time";
}

// The text form set_field reads for a TOML value of the field's type T, or "" (with `expected` set)
// for a value of another type.
template <class T>
std::string value_text(const toml::node& n, std::string& expected) {
  if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    expected = "a list of strings, e.g. [\"a.txt\", \"b.txt\"]";
    std::vector<std::string> items;
    if (const auto* s = n.as_string()) {
      items.push_back(s->get());
    } else if (const auto* a = n.as_array()) {
      for (const toml::node& item : *a) {
        if (!item.is_string()) return "";
        items.push_back(*item.value<std::string>());
      }
    } else {
      return "";
    }
    std::string text = "[";
    for (size_t i = 0; i < items.size(); ++i)
      text += (i ? ", " : "") + (items[i].find('"') == std::string::npos ? "\"" + items[i] + "\"" : "'" + items[i] + "'");
    return text + "]";
  } else if constexpr (std::is_same_v<T, std::string> || kNamedField<T>) {
    expected = kNamedField<T> ? "one of " + field_choices<T>() + ", in quotes" : "a string in quotes";
    const auto* s = n.as_string();
    return s ? (s->get().find('"') == std::string::npos ? "\"" + s->get() + "\"" : "'" + s->get() + "'") : "";
  } else if constexpr (std::is_same_v<T, bool>) {
    expected = "true or false";
    const auto* b = n.as_boolean();
    return b ? (b->get() ? "true" : "false") : "";
  } else if constexpr (std::is_floating_point_v<T>) {
    expected = "a number";
    if (const auto* i = n.as_integer()) return std::to_string(i->get());
    const auto* f = n.as_floating_point();
    return f ? exact_str(f->get()) : "";
  } else {
    expected = "an integer";
    const auto* i = n.as_integer();
    return i ? std::to_string(i->get()) : "";
  }
}

// Checks one top-level key and value; returns the value's text form.
std::string read_entry(const std::string& key, const toml::node& node, const std::string& where,
                       const std::string& written) {
  if (node.is_table())
    throw std::invalid_argument(where + "[" + key +
                                "]: unknown table (a performer-train config file has no sections: every key is a "
                                "flag name without --, at the top level)");
  std::string text, expected;
  bool known = false;
  visit_fields([&](const FieldInfo& f, auto get) {
    if (key != f.key) return;
    known = true;
    text = value_text<std::remove_cvref_t<decltype(get(kFieldTypes))>>(node, expected);
  });
  if (!known) {
    std::string hint;
    std::string dashed = key;
    for (char& c : dashed)
      if (c == '_') c = '-';
    if (dashed != key)
      visit_fields([&](const FieldInfo& f, auto) {
        if (dashed == f.key) hint = " (did you mean " + dashed + "?)";
      });
    throw std::invalid_argument(where + key + ": unknown key" + hint +
                                "; the keys are the flag names without -- (performer-train --help)");
  }
  if (text.empty())
    throw std::invalid_argument(where + key + " = " + written + ": expected " + expected + ", not " +
                                toml_type_name(node));
  TrainConfig scratch;
  try {
    set_field(scratch, key, text);
  } catch (const FieldValueError& e) {
    throw std::invalid_argument(where + key + " = " + written + ": " + e.rule);
  }
  return text;
}

}  // namespace

std::map<std::string, std::string> read_config_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw std::invalid_argument("--config " + path + ": " +
                                (std::filesystem::exists(path, ec) ? "not a regular file" : "no such file"));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::invalid_argument("--config " + path + ": cannot read the file");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) throw std::invalid_argument("--config " + path + ": read error");
  const std::string content = bytes.str();
  toml::table table;
  try {
    table = toml::parse(content, path);
  } catch (const toml::parse_error& e) {
    const int64_t line = e.source().begin.line;
    const std::string text = line_of(content, line);
    throw std::invalid_argument("--config " + path + " line " + std::to_string(line) + ": " +
                                std::string(e.description()) + (text.empty() ? "" : " (in: " + text + ")") +
                                "; the config file is TOML: key = value lines, strings in quotes");
  }
  std::map<std::string, std::string> out;
  for (const auto& [k, node] : table) {
    const std::string key(k.str());
    const int64_t line = k.source().begin.line;
    const std::string where = "--config " + path + " line " + std::to_string(line) + ": ";
    out[key] = read_entry(key, node, where, written_value(content, line));
  }
  return out;
}

std::string toml_quote(const std::string& s) {
  std::string out = "\"";
  for (const char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04X", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

namespace {

// A value as TOML (strings escaped as TOML basic strings).
template <class T>
std::string toml_text(const TrainConfig& c, const char* key, const T& v) {
  if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + toml_quote(v[i]);
    return s + "]";
  } else if constexpr (std::is_same_v<T, std::string>) {
    return toml_quote(v);
  } else if constexpr (kNamedField<T>) {
    return toml_quote(flag_text(v));
  } else {
    return field_text(c, key);
  }
}

}  // namespace

std::string to_config_file(const TrainConfig& c) {
  std::ostringstream out;
  out << "# performer-train configuration (TOML). Reproduce the run with:\n"
      << "#   performer-train --config <this file> --out <new directory>\n"
      << "# Any flag given on the command line overrides the value here.\n";
  std::string group;
  visit_fields([&](const FieldInfo& f, auto get) {
    if (group != f.group) out << "\n# ---- " << (group = f.group) << "\n";
    const auto& v = get(c);
    bool empty = false;
    if constexpr (requires { v.empty(); }) empty = v.empty();
    out << "\n# " << f.help << "\n" << (empty ? "# " : "") << f.key << " = " << toml_text(c, f.key, v) << "\n";
  });
  return out.str();
}

}  // namespace pf
