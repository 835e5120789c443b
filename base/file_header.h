// The header every binary file this project writes starts with: 8 magic bytes "PFCPPBIN", the
// kind of file as a string ("state_dict", "optimizer", "checkpoint", ...) and a uint32 version.
// read_file_header() tells apart "not one of our files at all", "one of our files but the wrong
// kind" and "a version this build cannot read", and names the file in every message.
#pragma once

#include <cereal/cereal.hpp>
#include <cereal/types/string.hpp>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

namespace pf {

constexpr char kFileMagic[8] = {'P', 'F', 'C', 'P', 'P', 'B', 'I', 'N'};

// Writes magic, kind and version (binary archives only).
template <class Archive>
void write_file_header(Archive& ar, const std::string& kind, uint32_t version) {
  char magic[8];
  std::memcpy(magic, kFileMagic, 8);
  ar(cereal::binary_data(magic, 8));
  ar(kind, version);
}

// Reads and checks the header; returns the file's version (1 <= version <= max_version).
// `source` names the file (or stream) in the error messages. Throws std::runtime_error.
template <class Archive>
uint32_t read_file_header(Archive& ar, const std::string& expected_kind, uint32_t max_version,
                          const std::string& source) {
  char magic[8] = {};
  try {
    ar(cereal::binary_data(magic, 8));
  } catch (const cereal::Exception&) {
    throw std::runtime_error(source + ": not a performer-cpp " + expected_kind + " file (shorter than its header)");
  }
  if (std::memcmp(magic, kFileMagic, 8) != 0)
    throw std::runtime_error(source + ": not a performer-cpp " + expected_kind + " file (bad magic bytes)");
  // The kind is a short string; check its length before reading it so garbage cannot allocate.
  uint64_t len = 0;
  std::string kind;
  uint32_t version = 0;
  try {
    ar(cereal::make_size_tag(len));
    if (len > 64) throw std::runtime_error("kind too long");
    kind.resize(static_cast<size_t>(len));
    ar(cereal::binary_data(kind.data(), kind.size()));
    ar(version);
  } catch (const std::exception&) {
    throw std::runtime_error(source + ": corrupt performer-cpp file header");
  }
  if (kind != expected_kind)
    throw std::runtime_error(source + ": is a '" + kind + "' file, expected a '" + expected_kind + "' file");
  if (version == 0 || version > max_version)
    throw std::runtime_error(source + ": " + kind + " file version " + std::to_string(version) +
                             ", this build reads versions 1 to " + std::to_string(max_version) +
                             " (written by a newer or incompatible build)");
  return version;
}

}  // namespace pf
