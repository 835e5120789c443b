#include "base/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace pf {

namespace {

std::string parent_of(const std::string& path) {
  const std::filesystem::path p(path);
  return p.has_parent_path() ? p.parent_path().string() : std::string(".");
}

}  // namespace

std::string atomic_temp_path(const std::string& path) {
  const std::filesystem::path p(path);
  std::string name = ".";  // appended piecewise: GCC 12 warns (-Wrestrict, a false positive) on "." + string
  name += p.filename().string();
  name += ".tmp-";
  name += std::to_string(::getpid());
  return p.has_parent_path() ? (p.parent_path() / name).string() : name;
}

bool is_atomic_temp_name(const std::string& file_name) {
  return !file_name.empty() && file_name[0] == '.' && file_name.find(".tmp-") != std::string::npos;
}

void sync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  const std::string tmp = atomic_temp_path(path);
  // Every message names the file being written, the step that failed and the system error.
  auto message = [&](const std::string& step, int err) {
    return "cannot write " + path + ": " + step + " failed: " + std::strerror(err);
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(message("creating the temporary file " + tmp, errno));
  auto fail = [&](const std::string& step) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    throw std::runtime_error(message(step, err));
  };
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("writing the temporary file " + tmp);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) fail("fsync of the temporary file " + tmp);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error(message("closing the temporary file " + tmp, err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error(message("renaming the temporary file " + tmp + " into place", err));
  }
  sync_directory(parent_of(path));
}

std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw std::runtime_error("cannot read " + path);
  return std::move(ss).str();
}

}  // namespace pf
