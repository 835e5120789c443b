#include "data/corpus_file.h"

#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "base/hash.h"

namespace pf {

namespace fs = std::filesystem;

bool is_gzip_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::runtime_error(path + ": cannot open (" + std::strerror(errno) + "); check the path and permissions");
  unsigned char magic[2] = {0, 0};
  in.read(reinterpret_cast<char*>(magic), 2);
  return in.gcount() == 2 && magic[0] == 0x1F && magic[1] == 0x8B;
}

std::string user_cache_dir() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg != nullptr && *xdg == '/') return (fs::path(xdg) / "performer-cpp").string();
  const char* home = std::getenv("HOME");
  if (home != nullptr && *home != '\0') return (fs::path(home) / ".cache" / "performer-cpp").string();
  const char* tmp = std::getenv("TMPDIR");
  return (fs::path((tmp != nullptr && *tmp != '\0') ? tmp : "/tmp") / "performer-cpp").string();
}

std::string dataset_cache_root(const std::string& cache_dir) {
  std::error_code ec;
  fs::path dir;
  if (!cache_dir.empty()) {
    dir = cache_dir;
    fs::create_directories(dir, ec);
    if (ec)
      throw std::runtime_error("--cache-dir " + cache_dir + ": cannot create (" + ec.message() +
                               "); give a writable directory");
  } else {
    dir = user_cache_dir();
    fs::create_directories(dir, ec);
    if (ec || ::access(dir.c_str(), W_OK) != 0) {
      const char* tmp = std::getenv("TMPDIR");
      dir = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
    }
  }
  return dir.string();
}

std::string gzip_cache_path(const std::string& gz_path, const std::string& cache_dir) {
  std::error_code ec;
  const fs::path source = fs::absolute(gz_path, ec);
  const auto size = fs::file_size(source, ec);
  const auto mtime = fs::last_write_time(source, ec).time_since_epoch().count();
  uint64_t key = fnv1a64(source.string());
  key = fnv1a64_update(key, std::to_string(size));
  key = fnv1a64_update(key, std::to_string(mtime));

  const fs::path dir = dataset_cache_root(cache_dir);

  std::string stem = source.filename().string();
  if (stem.size() > 3 && stem.compare(stem.size() - 3, 3, ".gz") == 0) stem.resize(stem.size() - 3);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(key));
  return (dir / (stem + "." + hex + ".pfcache")).string();
}

std::string decompress_to_cache(const std::string& gz_path, const std::string& cache_dir) {
  const std::string cache = gzip_cache_path(gz_path, cache_dir);
  if (fs::exists(cache)) return cache;  // complete by construction: only ever renamed into place

  const std::string tmp = cache + ".tmp." + std::to_string(::getpid());
  gzFile in = gzopen(gz_path.c_str(), "rb");
  if (in == nullptr)
    throw std::runtime_error(gz_path + ": cannot open for decompression (" + std::strerror(errno) + ")");
  gzbuffer(in, 1 << 18);
  std::FILE* out = std::fopen(tmp.c_str(), "wb");
  if (out == nullptr) {
    gzclose(in);
    throw std::runtime_error(gz_path + ": cannot write decompression cache " + tmp + " (" + std::strerror(errno) +
                             "); set a writable cache directory");
  }
  std::vector<char> buf(1 << 20);
  std::string error;
  for (;;) {
    const int n = gzread(in, buf.data(), static_cast<unsigned>(buf.size()));
    if (n < 0) break;  // reported by gzerror below
    if (n == 0) break;
    if (std::fwrite(buf.data(), 1, static_cast<size_t>(n), out) != static_cast<size_t>(n)) {
      error = std::string("writing cache ") + tmp + " failed (" + std::strerror(errno) + "); disk full?";
      break;
    }
  }
  int zerr = Z_OK;
  const char* zmsg = gzerror(in, &zerr);
  if (error.empty() && zerr != Z_OK && zerr != Z_STREAM_END)
    error = std::string("corrupt or truncated gzip data (zlib: ") + zmsg + ")";
  gzclose(in);
  if (std::fclose(out) != 0 && error.empty())
    error = std::string("closing cache ") + tmp + " failed (" + std::strerror(errno) + ")";
  if (!error.empty()) {
    std::remove(tmp.c_str());
    throw std::runtime_error(gz_path + ": " + error);
  }
  std::error_code ec;
  fs::rename(tmp, cache, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw std::runtime_error(gz_path + ": cannot move cache into place at " + cache + " (" + ec.message() + ")");
  }
  return cache;
}

MappedFile open_corpus_file(const std::string& path, const std::string& cache_dir) {
  if (!is_gzip_file(path)) return MappedFile::open(path);
  return MappedFile::open(decompress_to_cache(path, cache_dir), path);
}

}  // namespace pf
