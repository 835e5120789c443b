// TextCorpus: one or more text files read as a single byte stream through memory maps.
//
// Files are concatenated in the order given (no separator: a window may run from the end of one file
// into the next, as in any concatenated-document corpus). Nothing is loaded: copy_tokens reads the
// bytes a window needs straight from the maps, so the corpus may be larger than RAM.
//
// A corpus can also hold token ids already encoded (from_tokens: a SentencePiece-encoded text,
// data/tokenizer.h): then positions, ranges and size() count tokens, copy_tokens copies ids, and
// bytes() says how many bytes of the original text a range of tokens stands for.
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

  // Token ids in memory; bytes[i] = bytes of the original text token i stands for (may be empty: then
  // bytes() is unknown, -1).
  static TextCorpus from_tokens(std::vector<int32_t> ids, const std::vector<int32_t>& bytes);

  void add(MappedFile file);
  // Tokens: bytes for a byte corpus, ids for from_tokens.
  int64_t size() const { return encoded_ ? static_cast<int64_t>(ids_.size()) : starts_.back(); }
  // Bytes of the original text that tokens [offset, offset + n) stand for: n for a byte corpus, the sum
  // of their byte counts for from_tokens (-1 when not known). Throws std::out_of_range like copy_tokens.
  int64_t bytes(int64_t offset, int64_t n) const;
  int64_t num_files() const { return static_cast<int64_t>(files_.size()); }
  const MappedFile& file(int64_t i) const { return files_[static_cast<size_t>(i)]; }

  // Writes the n bytes at [offset, offset + n) as token ids 0..255 to out[0..n).
  // Throws std::out_of_range if the range leaves the corpus.
  void copy_tokens(int64_t offset, int64_t n, int32_t* out) const;

 private:
  std::vector<MappedFile> files_;
  bool encoded_ = false;
  std::vector<int32_t> ids_;               // from_tokens
  std::vector<int64_t> byte_prefix_;       // from_tokens: byte_prefix_[i] = bytes of tokens [0, i)
  std::vector<int64_t> starts_ = {0};  // file i covers [starts_[i], starts_[i+1])
};

}  // namespace pf
