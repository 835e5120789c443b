// Prepared datasets: a corpus tokenized once into memory-mapped token shards, read by every later run.
//
// A prepared dataset is a directory:
//   manifest.json          written last (its presence means the directory is complete): format version,
//                          each source file's path, size, modification time and XXH3-64, the tokenizer
//                          and its hash, the split rule and its result, token and record counts, every
//                          shard's size and XXH3-64 checksum, and the dataset's content fingerprint
//   train.tokens.NNN       token ids of the training part, end to end (u8, u16 or u32 by vocabulary)
//   val.tokens.NNN         the same for the validation part
//   train.offsets.000      FASTA: record i is tokens [offsets[i], offsets[i+1]) (i64, records + 1)
//   val.bytes.NNN          SentencePiece text: the bytes of the original text each validation token
//                          stands for (bits per byte)
//   tokenizer.model        SentencePiece text: the model the tokens were encoded with
// Byte-level text in the automatic cache holds no token shards: its tokens are the source bytes, read
// in place (the manifest names the source ranges and their checksums).
//
// Text: the last val_fraction of the bytes is held out (moved forward to a UTF-8 character boundary
// for SentencePiece), as data/split.h says; FASTA: each record's side is decided from its content
// hash while it is parsed (data/split.h) and the two sides are written to separate parts, so no
// record list or record id is held in memory. A SentencePiece model is trained on a bounded, seeded
// sample of the training part (tokenizer_sample_bytes, stratified blocks of whole lines), never the
// whole corpus; encoding streams through the text in pieces of about 1 MiB cut after a newline,
// encoded in parallel over `threads` and written in order: the same bytes for any thread count.
//
// Where it lives: prepare_dataset() with out_dir "" uses the cache: <cache root>/datasets/<name>-<key>,
// the cache root chosen as for .gz corpora (data/corpus_file.h: cache_dir, $XDG_CACHE_HOME/performer-cpp,
// ~/.cache/performer-cpp, $TMPDIR). The key hashes every source's absolute path, size and modification
// time and every processing setting, so an edited source gets a new dataset and an unchanged one is
// reused. Writing goes to "<dir>.tmp-<pid>" under an exclusive lock file "<dir>.lock" (a second process
// preparing the same data waits, then reuses), shards are fsync'd, the manifest is written last and the
// directory renamed into place: a killed preparation leaves only a temporary directory, which the next
// preparation removes. Any failure (a full disk included) removes the temporary directory and throws
// std::runtime_error naming the file. Opening checks every shard's size and checksum and names the
// file that does not match.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/data_config.h"
#include "data/fasta.h"
#include "data/prepared_info.h"
#include "data/protein_corpus.h"
#include "data/text_corpus.h"
#include "data/token_file.h"

namespace pf {

class SentencePieceModel;

inline constexpr int kPreparedVersion = 1;
inline constexpr const char* kManifestName = "manifest.json";

struct SourceFile {
  std::string path;      // absolute
  int64_t size = 0;      // bytes (of the decompressed data for .gz)
  int64_t mtime_ns = 0;  // modification time of the file given
  uint64_t xxh3 = 0;     // XXH3-64 of the bytes read (decompressed for .gz)
};

// A byte range of a source file read in place (byte-level text in the cache).
struct SourceRange {
  std::string path;  // the file mapped (for .gz: its decompression cache)
  int64_t begin = 0, end = 0;
};

struct PreparedPart {
  TokenWidth width = TokenWidth::U8;
  std::vector<ShardInfo> tokens;
  std::vector<SourceRange> ranges;  // instead of tokens: byte-level text read in place
  std::vector<ShardInfo> offsets;   // FASTA: record offsets (i64)
  TokenWidth bytes_width = TokenWidth::U8;
  std::vector<ShardInfo> bytes;     // SentencePiece validation: original bytes per token
  int64_t token_count = 0, records = 0, text_bytes = 0;
};

struct Manifest {
  int version = kPreparedVersion;
  std::string kind;  // "text" | "fasta"
  std::vector<SourceFile> sources, val_sources;
  std::string tokenizer = "bytes";  // bytes | sentencepiece | protein
  std::string tokenizer_origin;     // how the model came about (trained on a sample, a file, a checkpoint)
  std::string tokenizer_hash;       // fnv1a64 of the SentencePiece model (data/tokenizer.h), hex
  int64_t pieces = 0;
  int64_t sample_bytes = 0;         // bytes of the sample the tokenizer was trained on
  std::string split_rule;           // "tail" | "content-hash" | "val-files" | "none"
  double val_fraction = 0.0;
  bool skip_bad_records = false;
  FastaStats stats;                 // FASTA
  PreparedPart train, val;
  bool has_val = false;
  std::string key;                  // the cache key (hex), "" outside the cache
  uint64_t fingerprint = 0;         // content: tokenizer, split, every shard or source checksum
  double prepare_seconds = 0.0;
};

// The dataset directory for `config` (cache or config.prepared_dir), preparing it when missing.
// Thread-safe across processes (lock file). `info` says what happened.
std::string prepare_dataset(const DataConfig& config, const std::string& out_dir = "", PreparedInfo* info = nullptr);

// The cache's dataset for `config` when it is already prepared, else "" (never prepares).
std::string cached_dataset(const DataConfig& config);

// True when `path` is a directory holding a manifest.json.
bool is_prepared_dir(const std::string& path);

// An opened prepared dataset: the manifest and the mapped parts.
class PreparedDataset {
 public:
  // Throws std::runtime_error naming the file: no manifest, another format version, a missing,
  // truncated or edited shard (size and XXH3-64 are checked), or a source range whose file changed.
  static PreparedDataset open(const std::string& dir, int threads = 0);

  const Manifest& manifest() const { return manifest_; }
  const std::string& dir() const { return dir_; }
  // Text parts (null when the part is absent).
  std::shared_ptr<const TextCorpus> text(bool val) const { return val ? text_val_ : text_train_; }
  std::shared_ptr<const ProteinCorpus> proteins(bool val) const { return val ? prot_val_ : prot_train_; }
  std::shared_ptr<const SentencePieceModel> tokenizer() const { return tokenizer_; }
  // Drops the mapped pages this process has touched from its memory (they stay in the page cache):
  // the kernel maps file pages in large blocks around each read, so random reads over a large
  // dataset would otherwise grow the resident size towards the dataset's size.
  void release_pages() const;

 private:
  std::string dir_;
  Manifest manifest_;
  std::shared_ptr<const TextCorpus> text_train_, text_val_;
  std::shared_ptr<const ProteinCorpus> prot_train_, prot_val_;
  std::shared_ptr<const SentencePieceModel> tokenizer_;
  std::vector<std::shared_ptr<const MappedFile>> maps_;
};

// Manifest <-> JSON text (data/prepared_manifest.cpp). Parsing throws std::runtime_error naming `file`.
std::string manifest_json(const Manifest& m);
Manifest parse_manifest(const std::string& text, const std::string& file);
uint64_t content_fingerprint(const Manifest& m);

// Internals shared by the preparation files.
namespace prepared_detail {
// Fills m.train / m.val (and the tokenizer fields) writing shards into tmp_dir.
void prepare_text(const DataConfig& config, const std::vector<std::string>& train_paths,
                  const std::vector<std::string>& val_paths, const std::string& tmp_dir, bool in_place, Manifest& m);
void prepare_fasta(const DataConfig& config, const std::vector<std::string>& train_paths,
                   const std::vector<std::string>& val_paths, const std::string& tmp_dir, Manifest& m);
// A source file as the manifest records it (absolute path, size, modification time; xxh3 0 until
// hashed). Throws std::runtime_error naming the file if it is missing, not a regular file, or empty.
SourceFile identify_source(const std::string& path);
int64_t mtime_ns(const struct stat& st);
// The number of worker threads: config.threads, else the hardware's.
int worker_threads(int requested);
}  // namespace prepared_detail

}  // namespace pf
