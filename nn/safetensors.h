// safetensors files (https://github.com/huggingface/safetensors, the format PyTorch, JAX and the
// Hugging Face tools exchange weights in): a state dict by name, with string metadata.
//
// Layout, as the specification has it:
//   8 bytes   N, unsigned little-endian: the size of the header
//   N bytes   the header, UTF-8 JSON:
//               {"name": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...,
//                "__metadata__": {"key": "value", ...}}      (metadata optional, string values only)
//             padded at the end with spaces (0x20) so that N is a multiple of 8
//   rest      the byte buffer: every tensor's values, row-major, little-endian; data_offsets are
//             relative to the start of this buffer, and the tensors cover it without gaps or overlaps.
// Names are unique and "__metadata__" is not a tensor name; N is at most 100 MB.
//
// The header is read and written with nlohmann-json; what the specification asks beyond that
// library's parser (no duplicate key at any level, no nesting deeper than 64 levels, no NUL byte, the
// header starting with '{' itself) is checked around it.
//
// Writing: every tensor as F32, in the order of their names (a StateDict is sorted), atomically
// (base/atomic_file.h). Reading accepts F32 and converts F64, F16 and BF16 to float32; every
// other dtype is refused. A malformed file (truncated, header too large, not UTF-8, bad JSON,
// missing or unexpected fields, offsets out of range, overlapping or leaving gaps, a byte count
// that does not fit the shape and dtype, unknown dtype, duplicate names) is refused with a
// SafetensorsError naming the file and the problem; nothing half-read is ever returned.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>

#include "nn/module.h"

namespace pf {

inline constexpr uint64_t kSafetensorsMaxHeader = 100'000'000;  // bytes, as the specification

using SafetensorsMetadata = std::map<std::string, std::string>;

struct Safetensors {
  StateDict tensors;             // name -> float32 tensor of the stored shape
  SafetensorsMetadata metadata;  // the "__metadata__" object (empty when the file has none)
};

class SafetensorsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The bytes of a file holding `tensors` (F32) and `metadata`. Throws std::invalid_argument for a name
// the format cannot hold ("__metadata__", not UTF-8) or an undefined tensor.
std::string serialize_safetensors(const StateDict& tensors, const SafetensorsMetadata& metadata = {});
// `source` names the bytes in error messages (the file name).
Safetensors parse_safetensors(std::string_view bytes, const std::string& source);

// Atomic write; throws std::runtime_error naming the path on I/O errors.
void save_safetensors(const std::string& path, const StateDict& tensors, const SafetensorsMetadata& metadata = {});
// Throws SafetensorsError (unreadable or malformed file).
Safetensors load_safetensors(const std::string& path);

}  // namespace pf
