// Number formatting, one home for the project:
//   float_str(v)   a float for error messages, 7 significant digits ("1e-09", "-0.5"), unlike
//                  std::to_string's fixed six decimals (which prints 1e-9 as "0.000000");
//   exact_str(v)   the shortest text (at least 6 significant digits) that reads back to exactly v:
//                  for config files, JSON lines and metadata that must round-trip;
//   human_count(n) a count for people: "950", "12.3k", "4.56M", "1.23G".
#pragma once

#include <string>

namespace pf {

std::string float_str(double v);
std::string exact_str(double v);
std::string exact_str(float v);
std::string human_count(double n);

}  // namespace pf
