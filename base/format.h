// Number and text formatting, one home for the project:
//   float_str(v)   a float for error messages, 7 significant digits ("1e-09", "-0.5"), unlike
//                  std::to_string's fixed six decimals (which prints 1e-9 as "0.000000");
//   exact_str(v)   the shortest text (at least 6 significant digits) that reads back to exactly v:
//                  for config files, JSON lines and metadata that must round-trip;
//   human_count(n) a count for people: "950", "12.3k", "4.56M", "1.23G";
//   json_quote(s)  a JSON string literal (nlohmann-json's escaping: '"' and '\' escaped, control
//                  characters as \b \f \n \r \t or \u00XX, everything else as is; bytes that are not
//                  UTF-8 become U+FFFD, so that the text is always valid JSON).
#pragma once

#include <string>
#include <string_view>

namespace pf {

std::string float_str(double v);
std::string exact_str(double v);
std::string exact_str(float v);
std::string human_count(double n);
std::string json_quote(std::string_view s);

}  // namespace pf
