// Writing a file so that a crash at any moment leaves either the old file or the complete new one.
// The one helper for every file the project writes whole (state dicts and optimizer state in nn/,
// checkpoints, config and metrics rewrites in train/, safetensors files); it lives in base/, the
// lowest layer, so that every layer shares it.
//
// write_file_atomic(path, bytes): write to a temporary file in the same directory (same file system,
// so rename is atomic), flush, fsync, rename over `path`, then fsync the directory so the rename
// itself is durable. A crash or kill -9 before the rename leaves a stray temporary file (named
// ".<name>.tmp-<pid>", which nothing else reads) and the previous `path` untouched.
#pragma once

#include <string>
#include <string_view>

namespace pf {

// Throws std::runtime_error naming the path and the system error (disk full, file too large,
// permission, missing directory ...); on any failure the temporary file is removed and `path` is
// unchanged.
void write_file_atomic(const std::string& path, std::string_view bytes);

// The temporary name write_file_atomic uses for `path` in this process.
std::string atomic_temp_path(const std::string& path);

// True for names write_file_atomic leaves behind after a crash (".<name>.tmp-<pid>").
bool is_atomic_temp_name(const std::string& file_name);

// fsync of a directory (after creating, renaming or removing entries in it); errors are ignored
// where the file system does not support it.
void sync_directory(const std::string& dir);

// Reads a whole file; throws std::runtime_error naming the file if it cannot be opened or read.
std::string read_file_bytes(const std::string& path);

}  // namespace pf
