// TextCorpus: one or more text files read as a single byte stream through memory maps.
//
// Files are concatenated in the order given (no separator: a window may run from the end of one file
// into the next, as in any concatenated-document corpus). Nothing is loaded: copy_tokens reads the
// bytes a window needs straight from the maps, so the corpus may be larger than RAM.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/mapped_file.h"

namespace pf {

// Half-open byte range [begin, end) of a TextCorpus.
struct TextRange {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};

class TextCorpus {
 public:
  // Maps each file (decompressing .gz once, see data/corpus_file.h); errors name the file.
  static TextCorpus open(const std::vector<std::string>& files, const std::string& cache_dir);

  void add(MappedFile file);
  int64_t size() const { return starts_.back(); }  // bytes = tokens
  int64_t num_files() const { return static_cast<int64_t>(files_.size()); }
  const MappedFile& file(int64_t i) const { return files_[static_cast<size_t>(i)]; }

  // Writes the n bytes at [offset, offset + n) as token ids 0..255 to out[0..n).
  // Throws std::out_of_range if the range leaves the corpus.
  void copy_tokens(int64_t offset, int64_t n, int32_t* out) const;

 private:
  std::vector<MappedFile> files_;
  std::vector<int64_t> starts_ = {0};  // file i covers [starts_[i], starts_[i+1])
};

}  // namespace pf
