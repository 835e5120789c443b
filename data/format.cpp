#include "data/format.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace pf {

bool has_fasta_extension(const std::string& path) {
  std::string lower = path;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto ends_with = [&](std::string_view suffix) {
    return lower.size() >= suffix.size() && lower.compare(lower.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends_with(".gz")) lower.resize(lower.size() - 3);
  for (std::string_view ext : {".fa", ".fasta", ".faa", ".fas"})
    if (ends_with(ext)) return true;
  return false;
}

Format detect_format(const std::string& path, std::string_view content) {
  if (has_fasta_extension(path)) return Format::Fasta;
  for (unsigned char c : content) {
    if (std::isspace(c)) continue;
    return c == '>' ? Format::Fasta : Format::Text;
  }
  return Format::Text;
}

}  // namespace pf
