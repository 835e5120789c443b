// cereal serialization for Tensor (the header every file of this project starts with is in
// base/file_header.h).
//
// A Tensor is stored as its shape (a vector of int64, fixed width) followed by numel float32
// values (raw bytes in binary archives, a plain list in text archives). Loading validates the
// shape before allocating, so a corrupt file fails with a message instead of a huge allocation.
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

}  // namespace pf
