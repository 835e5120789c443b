// Corpus formats and how a file's format is decided.
//
// Auto decides per file: by name first (.fa .fasta .faa .fas, each optionally followed by .gz,
// case-insensitive -> Fasta), then by content (the first byte that is not whitespace is '>' -> Fasta),
// else Text. Text means bytes: any file is valid text.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <utility>

#include "base/enum_names.h"

namespace pf {

enum class Format { Auto, Text, Fasta };
template <>
struct EnumNames<Format> {
  static constexpr std::array<std::pair<Format, const char*>, 3> table{
      {{Format::Auto, "auto"}, {Format::Text, "text"}, {Format::Fasta, "fasta"}}};
};

// The names of the table above; parse throws std::invalid_argument naming the value.
inline Format parse_format(std::string_view name) { return parse_enum<Format>(name, "corpus format"); }
inline std::string format_name(Format format) { return enum_name(format); }

// True when the file name has a FASTA extension (with or without .gz).
bool has_fasta_extension(const std::string& path);
// Resolves Auto for one file whose (decompressed) content is given; never returns Auto.
Format detect_format(const std::string& path, std::string_view content);

}  // namespace pf
