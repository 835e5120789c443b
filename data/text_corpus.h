// TextCorpus: a token stream read through memory maps: the bytes of text files, or the token ids of a
// prepared dataset's shards (data/prepared.h), or ids in memory.
//
// Files are concatenated in the order given (no separator: a window may run from the end of one file
// into the next, as in any concatenated-document corpus). Nothing is loaded: copy_tokens reads the
// tokens a window needs straight from the maps, so the corpus may be larger than RAM and the process's
// memory does not grow with it.
//
// A corpus of encoded ids (SentencePiece, data/tokenizer.h) may also know how many bytes of the
// original text each token stands for: bytes() sums them (bits per byte).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/mapped_file.h"
#include "data/token_file.h"

namespace pf {

// Half-open range [begin, end) of tokens of a TextCorpus.
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

  // A byte corpus: appends a whole file.
  void add(MappedFile file);
  // Appends `count` tokens of width w stored at byte `offset` of a mapped file (a shard, or a range of
  // a source file read in place).
  void add_tokens(std::shared_ptr<const MappedFile> file, int64_t offset, int64_t count, TokenWidth w);
  // Appends the byte counts of the next `count` tokens (all tokens must get one for bytes() to know).
  void add_byte_counts(std::shared_ptr<const MappedFile> file, int64_t count, TokenWidth w);

  int64_t size() const { return starts_.back(); }  // tokens
  // Bytes of the original text that tokens [offset, offset + n) stand for: n for a byte corpus, the sum
  // of their byte counts for encoded ids (-1 when not known). Throws std::out_of_range like copy_tokens.
  int64_t bytes(int64_t offset, int64_t n) const;
  // Byte corpora built with add(): the files, in order.
  int64_t num_files() const { return static_cast<int64_t>(files_.size()); }
  const MappedFile& file(int64_t i) const { return *files_[static_cast<size_t>(i)]; }

  // Writes the n tokens at [offset, offset + n) to out[0..n).
  // Throws std::out_of_range if the range leaves the corpus.
  void copy_tokens(int64_t offset, int64_t n, int32_t* out) const;

 private:
  struct Segment {
    const uint8_t* data = nullptr;
    int width = 1;
  };
  static void copy_from(const std::vector<Segment>& segs, const std::vector<int64_t>& starts, int64_t offset, int64_t n,
                        int32_t* out);

  bool encoded_ = false;
  std::vector<std::shared_ptr<const MappedFile>> files_;  // add(): the byte files
  std::vector<std::shared_ptr<const void>> keep_;         // whatever the segments point into
  std::vector<Segment> segs_;
  std::vector<int64_t> starts_ = {0};  // segment i covers tokens [starts_[i], starts_[i+1])
  std::vector<Segment> byte_segs_;
  std::vector<int64_t> byte_starts_ = {0};
};

}  // namespace pf
