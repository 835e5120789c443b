#include "data/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace pf {

MappedFile MappedFile::open(const std::string& path, const std::string& display_name) {
  MappedFile f;
  f.path_ = path;
  f.name_ = display_name.empty() ? path : display_name;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw std::runtime_error(f.name_ + ": cannot open (" + std::strerror(errno) + "); check the path and permissions");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw std::runtime_error(f.name_ + ": cannot stat (" + std::strerror(err) + ")");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw std::runtime_error(f.name_ + ": not a regular file; give a corpus file, not a directory or device");
  }
  if (st.st_size == 0) {
    ::close(fd);
    throw std::runtime_error(f.name_ + ": file is empty; give a corpus with at least one token");
  }
  f.size_ = static_cast<size_t>(st.st_size);
  void* p = ::mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (p == MAP_FAILED) throw std::runtime_error(f.name_ + ": mmap failed (" + std::strerror(err) + ")");
  f.data_ = static_cast<const char*>(p);
  return f;
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      path_(std::move(other.path_)),
      name_(std::move(other.name_)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    path_ = std::move(other.path_);
    name_ = std::move(other.name_);
  }
  return *this;
}

MappedFile::~MappedFile() {
  release();
}

void MappedFile::release() {
  if (data_ != nullptr) ::munmap(const_cast<char*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
}

void MappedFile::advise_sequential() const {
  if (data_ != nullptr) ::madvise(const_cast<char*>(data_), size_, MADV_SEQUENTIAL);
}

void MappedFile::advise_random() const {
  if (data_ != nullptr) ::madvise(const_cast<char*>(data_), size_, MADV_RANDOM);
}

void MappedFile::release_pages(size_t offset, size_t n) const {
  if (data_ == nullptr || offset >= size_) return;
  const auto page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t begin = offset / page * page;  // the mapping starts page-aligned
  const size_t end = std::min(size_, offset + n);
  if (end > begin) ::madvise(const_cast<char*>(data_) + begin, end - begin, MADV_DONTNEED);
}

void MappedFile::will_need(size_t offset, size_t n) const {
  if (data_ == nullptr || offset >= size_) return;
  const auto page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t begin = offset / page * page;
  const size_t end = std::min(size_, offset + n);
  if (end > begin) ::madvise(const_cast<char*>(data_) + begin, end - begin, MADV_WILLNEED);
}

}  // namespace pf
