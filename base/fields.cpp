#include "base/fields.h"

#include <cctype>
#include <charconv>
#include <cstdlib>

#include "base/format.h"

namespace pf::field_detail {

std::string quote(const std::string& s) {
  const char q = s.find('"') == std::string::npos ? '"' : '\'';
  return q + s + q;
}

std::string unquote(const std::string& text) {
  std::string s = text;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t b = 0;
  while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  s = s.substr(b);
  if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front())
    return s.substr(1, s.size() - 2);
  return s;
}

std::vector<std::string> parse_list(const std::string& text) {
  std::string t = unquote(text);
  std::vector<std::string> out;
  if (t.size() >= 2 && t.front() == '[' && t.back() == ']') {
    t = t.substr(1, t.size() - 2);
    std::string item;
    char in_quote = 0;
    for (char ch : t) {
      if (in_quote) {
        if (ch == in_quote) in_quote = 0;
        item += ch;
      } else if (ch == '"' || ch == '\'') {
        in_quote = ch;
        item += ch;
      } else if (ch == ',') {
        out.push_back(unquote(item));
        item.clear();
      } else {
        item += ch;
      }
    }
    if (!unquote(item).empty()) out.push_back(unquote(item));
    return out;
  }
  if (!t.empty()) out.push_back(t);
  return out;
}

std::string list_text(const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + quote(v[i]);
  return s + "]";
}

std::string number_text(double v) { return exact_str(v); }
std::string number_text(float v) { return exact_str(v); }

bool parse_bool(const std::string& t, bool& out) {
  if (t == "true" || t == "1" || t == "on" || t == "yes") {
    out = true;
    return true;
  }
  if (t == "false" || t == "0" || t == "off" || t == "no") {
    out = false;
    return true;
  }
  return false;
}

bool parse_real(const std::string& t, double& out) {
  if (t.empty()) return false;
  char* end = nullptr;
  out = std::strtod(t.c_str(), &end);
  return end == t.c_str() + t.size();
}

int parse_int(const std::string& t, int64_t& out) {
  const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
  if (ec == std::errc::result_out_of_range && ptr == t.data() + t.size()) return 2;
  if (t.empty() || ec != std::errc() || ptr != t.data() + t.size()) return 1;
  return 0;
}

int parse_uint(const std::string& t, uint64_t& out) {
  if (!t.empty() && t[0] == '-') {
    int64_t neg = 0;
    return parse_int(t, neg) == 1 ? 1 : 2;  // a negative integer is out of range, not malformed
  }
  const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
  if (ec == std::errc::result_out_of_range && ptr == t.data() + t.size()) return 2;
  if (t.empty() || ec != std::errc() || ptr != t.data() + t.size()) return 1;
  return 0;
}

}  // namespace pf::field_detail
