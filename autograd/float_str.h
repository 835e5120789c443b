// A float for error messages, with significant digits ("1e-09", "-0.5"), unlike std::to_string's
// fixed six decimals (which prints 1e-9 as "0.000000"). Use it wherever a float goes into a message.
// Header-only and dependency-free, so every layer (data/ included) may use it.
#pragma once

#include <sstream>
#include <string>

namespace pf {

inline std::string float_str(double v) {
  std::ostringstream os;
  os.precision(7);
  os << v;
  return os.str();
}

}  // namespace pf
