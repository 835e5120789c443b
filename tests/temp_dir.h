// TempDir: a private directory for one test's files, removed with everything in it at the end.
// Tests never read shared data: each writes the small corpus it needs here.
#pragma once

#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace pf::test {

class TempDir {
 public:
  TempDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/pf_test_XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + pattern);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string path(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& dir() const { return path_; }

  // Writes bytes exactly as given (no newline translation); returns the full path.
  std::string write(const std::string& name, const std::string& content) const {
    const std::string p = path(name);
    std::ofstream out(p, std::ios::binary);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    if (!out) throw std::runtime_error("cannot write " + p);
    return p;
  }

  // Writes content gzip-compressed through zlib's gzopen, as a user's tool would.
  std::string write_gz(const std::string& name, const std::string& content) const {
    const std::string p = path(name);
    gzFile f = gzopen(p.c_str(), "wb");
    if (f == nullptr) throw std::runtime_error("gzopen failed for " + p);
    if (!content.empty() && gzwrite(f, content.data(), static_cast<unsigned>(content.size())) <= 0)
      throw std::runtime_error("gzwrite failed for " + p);
    gzclose(f);
    return p;
  }

 private:
  std::filesystem::path path_;
};

}  // namespace pf::test
