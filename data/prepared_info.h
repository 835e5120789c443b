// PreparedInfo: how a DataModule found its prepared dataset (data/prepared.h), for the banner.
#pragma once

#include <cstdint>
#include <string>

namespace pf {

struct PreparedInfo {
  std::string dir;
  bool reused = false;   // false: prepared by this process
  double seconds = 0.0;  // preparing (or finding) and opening
  uint64_t fingerprint = 0;
};

}  // namespace pf
