// MappedFile: a read-only memory map of a whole file.
//
// Text corpora are read through the map, so a corpus larger than RAM trains: the kernel pages in the
// windows a batch touches and drops them under pressure. Empty and missing files are errors here (an
// empty file cannot be mapped, and it is never what the user meant), named by their display name:
// for a decompressed .gz cache that is the original .gz path, the file the user actually gave.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace pf {

class MappedFile {
 public:
  MappedFile() = default;
  // Throws std::runtime_error naming display_name (or path when it is empty) if the file is missing,
  // unreadable, a directory, or empty.
  static MappedFile open(const std::string& path, const std::string& display_name = "");

  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::string_view view() const { return {data_, size_}; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }  // the file actually mapped
  const std::string& name() const { return name_; }  // the file to name in messages
  bool is_mapped() const { return data_ != nullptr; }

  // Hints for the kernel's read-ahead: sequential for a one-pass parse, random for window sampling.
  void advise_sequential() const;
  void advise_random() const;
  // Drops the pages of [offset, offset + n) from this process's memory (they are read again from the
  // file if touched): a one-pass reader keeps its resident memory bounded on files larger than RAM.
  void release_pages(size_t offset, size_t n) const;
  // Asks the kernel to start reading [offset, offset + n) now (MADV_WILLNEED), so that a one-pass
  // reader finds the next part in memory instead of waiting on the disk page by page.
  void will_need(size_t offset, size_t n) const;

 private:
  void release();
  const char* data_ = nullptr;
  size_t size_ = 0;
  std::string path_, name_;
};

}  // namespace pf
