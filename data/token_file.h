// Token shard files of a prepared dataset (data/prepared.h): little-endian unsigned integers of one
// width (1, 2 or 4 bytes, the narrowest that holds the vocabulary), nothing else in the file.
//
//   ShardWriter w(dir, "train.tokens", TokenWidth::U16, /*max_tokens_per_shard=*/1 << 28);
//   w.append(ids);                 // as many times as needed; shards roll over at the limit
//   std::vector<ShardInfo> shards = w.finish();   // names, counts and XXH3-64 checksums
//
// Every write error (a full disk, a file-size limit, a missing directory) throws std::runtime_error
// naming the file and the system's reason; the caller removes the whole unfinished dataset.
#pragma once

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

namespace pf {

// U8/U16/U32 for token ids, I64 for index files (record offsets).
enum class TokenWidth : int { U8 = 1, U16 = 2, U32 = 4, I64 = 8 };

// The narrowest width whose range holds ids 0 .. max_id.
TokenWidth width_for(uint64_t max_id);
std::string width_name(TokenWidth w);  // "u8" | "u16" | "u32" | "i64"
// Throws std::invalid_argument naming `what` for anything else.
TokenWidth parse_width(const std::string& name, const std::string& what);

struct ShardInfo {
  std::string file;     // name inside the dataset directory
  int64_t count = 0;    // values in the file
  uint64_t xxh3 = 0;    // XXH3-64 of the file's bytes
};

class ShardWriter {
 public:
  ShardWriter(std::string dir, std::string stem, TokenWidth width, int64_t max_per_shard);
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;
  ~ShardWriter();

  // Values must fit the width (checked: throws std::logic_error otherwise).
  void append(std::span<const int32_t> values);
  void append(std::span<const uint8_t> values);  // U8 writers only
  void append(std::span<const int64_t> values);  // I64 writers only
  int64_t count() const { return total_; }
  // Flushes and closes the last shard (fsync'd); returns every shard written, in order.
  std::vector<ShardInfo> finish();

  struct State_;  // an XXH3 streaming state (also used by hash_file)

 private:
  void open_next();
  void write_bytes(const void* data, size_t n, int64_t values);
  void close_current();

  std::string dir_, stem_;
  TokenWidth width_;
  int64_t max_per_shard_;
  std::FILE* file_ = nullptr;
  State_* hash_ = nullptr;  // XXH3 streaming state of the open shard
  std::vector<ShardInfo> shards_;
  std::vector<uint8_t> buf_;
  int64_t total_ = 0;
};

// XXH3-64 of a whole file read with pread in 4 MiB blocks (the page cache, not this process's
// memory); throws std::runtime_error naming the file if it cannot be read.
uint64_t hash_file(const std::string& path);
// XXH3-64 of a byte range in memory, and the hex form used in manifests.
uint64_t hash_bytes(const void* data, size_t size);
std::string hex64(uint64_t v);
// Throws std::invalid_argument naming `what` when `text` is not 16 hex digits.
uint64_t parse_hex64(const std::string& text, const std::string& what);

}  // namespace pf
