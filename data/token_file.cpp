#include "data/token_file.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace pf {

TokenWidth width_for(uint64_t max_id) {
  if (max_id <= 0xFFu) return TokenWidth::U8;
  if (max_id <= 0xFFFFu) return TokenWidth::U16;
  return TokenWidth::U32;
}

std::string width_name(TokenWidth w) {
  switch (w) {
    case TokenWidth::U8: return "u8";
    case TokenWidth::U16: return "u16";
    case TokenWidth::U32: return "u32";
    case TokenWidth::I64: return "i64";
  }
  return "?";
}

TokenWidth parse_width(const std::string& name, const std::string& what) {
  for (TokenWidth w : {TokenWidth::U8, TokenWidth::U16, TokenWidth::U32, TokenWidth::I64})
    if (width_name(w) == name) return w;
  throw std::invalid_argument(what + ": unknown value type '" + name + "' (expected u8, u16, u32 or i64)");
}

struct ShardWriter::State_ {
  XXH3_state_t* s = XXH3_createState();
  ~State_() { XXH3_freeState(s); }
};

ShardWriter::ShardWriter(std::string dir, std::string stem, TokenWidth width, int64_t max_per_shard)
    : dir_(std::move(dir)), stem_(std::move(stem)), width_(width), max_per_shard_(max_per_shard) {
  if (max_per_shard_ < 1) throw std::logic_error("ShardWriter: max_per_shard must be >= 1");
}

ShardWriter::~ShardWriter() {
  if (file_ != nullptr) std::fclose(file_);  // an unfinished writer: the caller removes the directory
  delete hash_;
}

void ShardWriter::open_next() {
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, ".%03zu", shards_.size());
  ShardInfo info;
  info.file = stem_ + suffix;
  const std::string path = dir_ + "/" + info.file;
  file_ = std::fopen(path.c_str(), "wb");
  if (file_ == nullptr)
    throw std::runtime_error(path + ": cannot create (" + std::string(std::strerror(errno)) + ")");
  shards_.push_back(info);
  if (hash_ == nullptr) hash_ = new State_();
  XXH3_64bits_reset(hash_->s);
}

void ShardWriter::write_bytes(const void* data, size_t n, int64_t values) {
  const std::string path = dir_ + "/" + shards_.back().file;
  if (n > 0 && std::fwrite(data, 1, n, file_) != n)
    throw std::runtime_error(path + ": write failed (" + std::string(std::strerror(errno)) +
                             "); is the disk full? Free space or give another --cache-dir");
  XXH3_64bits_update(hash_->s, data, n);
  shards_.back().count += values;
  total_ += values;
}

void ShardWriter::close_current() {
  if (file_ == nullptr) return;
  const std::string path = dir_ + "/" + shards_.back().file;
  shards_.back().xxh3 = XXH3_64bits_digest(hash_->s);
  const bool ok = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
  const int err = errno;
  const bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!ok || !closed)
    throw std::runtime_error(path + ": write failed (" + std::string(std::strerror(err)) +
                             "); is the disk full? Free space or give another --cache-dir");
}

void ShardWriter::append(std::span<const int32_t> values) {
  size_t i = 0;
  const auto w = static_cast<size_t>(width_);
  const uint64_t limit = width_ == TokenWidth::U8 ? 0xFFu : width_ == TokenWidth::U16 ? 0xFFFFu : 0xFFFFFFFFu;
  while (i < values.size()) {
    if (file_ == nullptr || shards_.back().count == max_per_shard_) {
      close_current();
      open_next();
    }
    const size_t n = std::min<size_t>(values.size() - i, static_cast<size_t>(max_per_shard_ - shards_.back().count));
    buf_.resize(n * w);
    for (size_t k = 0; k < n; ++k) {
      const auto v = static_cast<uint64_t>(static_cast<uint32_t>(values[i + k]));
      if (values[i + k] < 0 || v > limit)
        throw std::logic_error("ShardWriter: id " + std::to_string(values[i + k]) + " does not fit " + width_name(width_));
      std::memcpy(buf_.data() + k * w, &v, w);  // little-endian host (x86-64, aarch64)
    }
    write_bytes(buf_.data(), n * w, static_cast<int64_t>(n));
    i += n;
  }
}

void ShardWriter::append(std::span<const uint8_t> values) {
  if (width_ != TokenWidth::U8) throw std::logic_error("ShardWriter: bytes appended to a " + width_name(width_) + " file");
  size_t i = 0;
  while (i < values.size()) {
    if (file_ == nullptr || shards_.back().count == max_per_shard_) {
      close_current();
      open_next();
    }
    const size_t n = std::min<size_t>(values.size() - i, static_cast<size_t>(max_per_shard_ - shards_.back().count));
    write_bytes(values.data() + i, n, static_cast<int64_t>(n));
    i += n;
  }
}

void ShardWriter::append(std::span<const int64_t> values) {
  if (width_ != TokenWidth::I64) throw std::logic_error("ShardWriter: int64 appended to a " + width_name(width_) + " file");
  if (file_ == nullptr) open_next();  // index files are never split
  write_bytes(values.data(), values.size() * sizeof(int64_t), static_cast<int64_t>(values.size()));
}

std::vector<ShardInfo> ShardWriter::finish() {
  if (file_ == nullptr && shards_.empty()) open_next();  // an empty part still has one (empty) file
  close_current();
  return shards_;
}

uint64_t hash_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(path + ": cannot open (" + std::string(std::strerror(errno)) + ")");
  ShardWriter::State_ state;
  XXH3_64bits_reset(state.s);
  std::vector<char> buf(4u << 20);
  off_t offset = 0;
  for (;;) {
    const ssize_t n = ::pread(fd, buf.data(), buf.size(), offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      throw std::runtime_error(path + ": read error (" + std::string(std::strerror(err)) + ")");
    }
    if (n == 0) break;
    XXH3_64bits_update(state.s, buf.data(), static_cast<size_t>(n));
    offset += n;
  }
  ::close(fd);
  return XXH3_64bits_digest(state.s);
}

uint64_t hash_bytes(const void* data, size_t size) {
  return XXH3_64bits(data, size);
}

std::string hex64(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

uint64_t parse_hex64(const std::string& text, const std::string& what) {
  if (text.size() != 16 || text.find_first_not_of("0123456789abcdef") != std::string::npos)
    throw std::invalid_argument(what + ": '" + text + "' is not 16 lowercase hex digits");
  return std::stoull(text, nullptr, 16);
}

}  // namespace pf
