// Corpus formats and how a file's format is decided.
//
// Auto decides per file: by name first (.fa .fasta .faa .fas, each optionally followed by .gz,
// case-insensitive -> Fasta), then by content (the first byte that is not whitespace is '>' -> Fasta),
// else Text. Text means bytes: any file is valid text.
#pragma once

#include <string>
#include <string_view>

namespace pf {

enum class Format { Auto, Text, Fasta };

// "auto" | "text" | "fasta"; anything else throws std::invalid_argument naming the value.
Format parse_format(std::string_view name);
std::string format_name(Format format);

// True when the file name has a FASTA extension (with or without .gz).
bool has_fasta_extension(const std::string& path);
// Resolves Auto for one file whose (decompressed) content is given; never returns Auto.
Format detect_format(const std::string& path, std::string_view content);

}  // namespace pf
