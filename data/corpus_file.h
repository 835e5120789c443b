// Opening one corpus file, plain or gzip-compressed, as a memory map.
//
// A gzip file (recognized by its magic bytes 1f 8b, whatever its name) is decompressed ONCE to a cache
// file and the cache is mapped, so .gz corpora get the same larger-than-RAM, random-access reading as
// plain ones (zlib streams cannot be seeked). Where the cache goes, first match wins:
//   1. cache_dir, when the caller gives one (DataConfig::cache_dir, performer-train --cache-dir;
//      created if missing);
//   2. the user's cache directory: $XDG_CACHE_HOME/performer-cpp (when XDG_CACHE_HOME is an absolute
//      path), else $HOME/.cache/performer-cpp (created if missing). Never the directory holding the
//      .gz: that may be a shared or system directory (/usr/share/doc/...) that is writable only
//      because the program runs as root;
//   3. $TMPDIR, else /tmp, when the user cache directory cannot be created or written.
// The cache is named <name without .gz>.<16 hex digits>.pfcache, the digits a hash of the .gz's
// absolute path, size and modification time: an edited .gz gets a new cache, an unchanged one reuses
// its cache on every run. The cache is written to a temporary name and renamed into place, so a crash
// or two concurrent runs never leave a truncated cache that a later run would trust. Stale caches are
// not deleted automatically; they are safe to remove at any time.
#pragma once

#include <string>

#include "data/mapped_file.h"

namespace pf {

// True when the file starts with the gzip magic bytes. Throws std::runtime_error naming the file if
// it cannot be opened.
bool is_gzip_file(const std::string& path);

// The per-user cache directory of rule 2 (not created here).
std::string user_cache_dir();

// The cache root of rules 1-3 (created if missing): .gz caches and prepared datasets
// (data/prepared.h, under datasets/) live here.
std::string dataset_cache_root(const std::string& cache_dir);

// Where the decompressed cache of gz_path lives (rules above); creates cache_dir or the user cache
// directory if missing, nothing else.
std::string gzip_cache_path(const std::string& gz_path, const std::string& cache_dir);

// Decompresses gz_path to its cache unless the cache already exists; returns the cache path. Errors
// (corrupt or truncated gzip, disk full) throw std::runtime_error naming gz_path.
std::string decompress_to_cache(const std::string& gz_path, const std::string& cache_dir);

// Maps a plain file, or the cache of a gzip file; messages name `path` (what the user gave).
MappedFile open_corpus_file(const std::string& path, const std::string& cache_dir);

}  // namespace pf
