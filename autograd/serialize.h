// cereal serialization for Tensor, and the header every file this project writes starts with.
//
// A Tensor is stored as its shape (a vector of int64, fixed width) followed by numel float32
// values (raw bytes in binary archives, a plain list in text archives). Loading validates the
// shape before allocating, so a corrupt file fails with a message instead of a huge allocation.
//
// File header: 8 magic bytes "PFCPPBIN", the kind of file as a string ("state_dict",
// "optimizer", "checkpoint", ...) and a uint32 version. read_file_header() tells apart "not one of
// our files at all", "one of our files but the wrong kind" and "a version this build cannot read",
// and names the file in every message.
#pragma once

#include <cereal/cereal.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "autograd/tensor.h"

namespace pf {

// Limits that a sane tensor on disk never reaches; anything beyond them is corruption.
constexpr int64_t kMaxSerializedDims = 16;
constexpr int64_t kMaxSerializedNumel = int64_t{1} << 36;  // 256 GiB of floats

namespace detail {

template <class Archive>
constexpr bool kIsBinaryArchive = cereal::traits::is_output_serializable<cereal::BinaryData<float*>, Archive>::value ||
                                  cereal::traits::is_input_serializable<cereal::BinaryData<float*>, Archive>::value;

inline void check_serialized_shape(const std::vector<int64_t>& shape) {
  if (static_cast<int64_t>(shape.size()) > kMaxSerializedDims)
    throw std::runtime_error("Tensor load: " + std::to_string(shape.size()) + " dimensions (corrupt data?)");
  int64_t n = 1;
  for (int64_t s : shape) {
    if (s < 0 || (s > 0 && n > kMaxSerializedNumel / s))
      throw std::runtime_error("Tensor load: implausible shape " + shape_str(shape) + " (corrupt data?)");
    n *= s;
  }
}

}  // namespace detail

template <class Archive>
void save(Archive& ar, const Tensor& t) {
  if (!t.defined()) throw std::invalid_argument("Tensor save: cannot serialize an undefined Tensor");
  const std::vector<int64_t> shape(t.shape().begin(), t.shape().end());
  ar(cereal::make_nvp("shape", shape));
  if constexpr (detail::kIsBinaryArchive<Archive>) {
    ar(cereal::binary_data(t.data(), static_cast<size_t>(t.numel()) * sizeof(float)));
  } else {
    ar(cereal::make_nvp("data", t.to_vector()));
  }
}

template <class Archive>
void load(Archive& ar, Tensor& t) {
  std::vector<int64_t> shape;
  ar(cereal::make_nvp("shape", shape));
  detail::check_serialized_shape(shape);
  Tensor out = Tensor::empty(Shape(shape.begin(), shape.end()));
  if constexpr (detail::kIsBinaryArchive<Archive>) {
    ar(cereal::binary_data(out.data(), static_cast<size_t>(out.numel()) * sizeof(float)));
  } else {
    std::vector<float> data;
    ar(cereal::make_nvp("data", data));
    if (static_cast<int64_t>(data.size()) != out.numel())
      throw std::runtime_error("Tensor load: " + std::to_string(data.size()) + " values for shape " +
                               shape_str(out.shape()));
    std::memcpy(out.data(), data.data(), data.size() * sizeof(float));
  }
  t = std::move(out);
}

// ---- file header ----

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
