// A value written to a cereal archive and read back into a default-constructed one: the round trip of
// every serialization test (binary by default; pass cereal's JSON archives for the text form).
#pragma once

#include <cereal/archives/binary.hpp>
#include <sstream>

namespace pf::test {

template <class Out = cereal::BinaryOutputArchive, class In = cereal::BinaryInputArchive, class T>
T archive_round_trip(const T& value) {
  std::stringstream ss;
  {
    Out ar(ss);
    ar(value);
  }
  T back;
  {
    In ar(ss);
    ar(back);
  }
  return back;
}

}  // namespace pf::test
