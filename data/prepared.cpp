// Prepared datasets: where they live, the lock, preparing once, opening (data/prepared.h).
#include "data/prepared.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "base/atomic_file.h"
#include "base/hash.h"
#include "data/corpus_file.h"
#include "data/tokenizer.h"

namespace pf {

namespace fs = std::filesystem;

namespace prepared_detail {

SourceFile identify_source(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw std::runtime_error(path + ": cannot open (" + std::string(std::strerror(errno)) + "); check the path and permissions");
  if (!S_ISREG(st.st_mode))
    throw std::runtime_error(path + ": not a regular file; give a corpus file (or a prepared dataset directory)");
  if (st.st_size == 0) throw std::runtime_error(path + ": file is empty; give a corpus with at least one token");
  std::error_code ec;
  return {fs::absolute(path, ec).lexically_normal().string(), static_cast<int64_t>(st.st_size), mtime_ns(st), 0};
}

int64_t mtime_ns(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

int worker_threads(int requested) {
  if (requested > 0) return requested;
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}
}  // namespace prepared_detail

namespace {

// The tokenizer part of the key: what decides the token ids.
std::string tokenizer_key(const DataConfig& c) {
  if (!c.tokenizer.sentencepiece()) return enum_name(TokenizerKind::Bytes);
  if (!c.tokenizer.proto.empty()) return "model:" + hex64(fnv1a64(c.tokenizer.proto));
  if (!c.tokenizer.model.empty()) return "model:" + SentencePieceModel::from_file(c.tokenizer.model)->hash_hex();
  return "train:" + std::string(enum_name(c.tokenizer.type)) + ":" + std::to_string(c.tokenizer.vocab_size) + ":" + std::to_string(c.tokenizer.sample_bytes) +
         ":" + std::to_string(c.tokenizer.sample_seed);
}

std::string cache_key(const DataConfig& c, bool in_place) {
  nlohmann::json j = {{"version", kPreparedVersion}, {"format", format_name(c.format)},
                      {"tokenizer", tokenizer_key(c)}, {"skip_bad_records", c.skip_bad_records},
                      {"in_place", in_place}, {"eval_only", c.eval_only}};
  j["val_fraction"] = c.val_files.empty() && !c.eval_only ? c.val_fraction : 0.0;
  for (const auto* list : {&c.train_files, &c.val_files}) {
    nlohmann::json a = nlohmann::json::array();
    for (const std::string& f : *list) {
      const SourceFile id = prepared_detail::identify_source(f);
      a.push_back({id.path, id.size, id.mtime_ns});
    }
    j[list == &c.train_files ? "train" : "val"] = a;
  }
  return hex64(hash_bytes(j.dump().data(), j.dump().size()));
}

std::string dataset_name(const DataConfig& c) {
  const std::vector<std::string>& files = c.train_files.empty() ? c.val_files : c.train_files;
  std::string stem = fs::path(files.empty() ? "data" : files[0]).filename().string();
  for (char& ch : stem)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-' && ch != '_') ch = '_';
  if (stem.size() > 40) stem.resize(40);
  return stem;
}

// An exclusive lock on `path` for the life of the object (flock: released by the kernel if killed).
class FileLock {
 public:
  explicit FileLock(const std::string& path, const std::string& what) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0)
      throw std::runtime_error(path + ": cannot create the lock file (" + std::string(std::strerror(errno)) +
                               "); give a writable --cache-dir");
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      std::fprintf(stderr, "prepare: another process is preparing %s; waiting for it (lock %s)\n", what.c_str(),
                   path.c_str());
      if (::flock(fd_, LOCK_EX) != 0) throw std::runtime_error(path + ": cannot lock (" + std::string(std::strerror(errno)) + ")");
    }
  }
  ~FileLock() { ::close(fd_); }

 private:
  int fd_ = -1;
};

// Refuses before any work when the estimated dataset does not fit the free space.
void check_free_space(const std::string& dir, int64_t estimate) {
  struct statvfs vfs {};
  if (estimate <= 0 || ::statvfs(dir.c_str(), &vfs) != 0) return;
  const auto free_bytes = static_cast<int64_t>(vfs.f_bavail) * static_cast<int64_t>(vfs.f_frsize);
  if (estimate > free_bytes)
    throw std::runtime_error(dir + ": the prepared dataset needs about " + std::to_string(estimate >> 20) +
                             " MiB but the file system has " + std::to_string(free_bytes >> 20) +
                             " MiB free; free space or give another --cache-dir");
}

int64_t estimate_bytes(const DataConfig& c, bool in_place) {
  if (in_place) return 0;
  int64_t total = 0;
  for (const auto* list : {&c.train_files, &c.val_files})
    for (const std::string& f : *list) total += prepared_detail::identify_source(f).size;
  // Token ids take about 3/4 of the text's bytes as u16 SentencePiece pieces, residues about one byte
  // per input byte; the validation byte counts and the offsets add a little.
  return c.tokenizer.sentencepiece() ? total : total + total / 16;
}

void write_dataset(const DataConfig& c, const std::string& tmp, bool in_place, const std::string& key) {
  const auto start = std::chrono::steady_clock::now();
  Manifest m;
  m.key = key;
  m.skip_bad_records = c.skip_bad_records;
  // Map every file once (decompressing .gz into the .gz cache), decide the format, insist they agree.
  Format format = c.format;
  std::string first;
  auto resolve = [&](const std::vector<std::string>& files) {
    for (const std::string& f : files) {
      const Format got = c.format == Format::Auto ? detect_format(f, open_corpus_file(f, c.cache_dir).view()) : c.format;
      if (first.empty()) {
        format = got;
        first = f;
      } else if (got != format) {
        throw std::invalid_argument("mixed corpus formats: " + first + " is " + format_name(format) + " but " + f +
                                    " is " + format_name(got) + "; give files of one kind (or force one with format)");
      }
    }
  };
  resolve(c.train_files);
  resolve(c.val_files);
  if (format == Format::Fasta)
    prepared_detail::prepare_fasta(c, c.train_files, c.val_files, tmp, m);
  else
    prepared_detail::prepare_text(c, c.train_files, c.val_files, tmp, in_place, m);
  m.fingerprint = content_fingerprint(m);
  m.prepare_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  write_file_atomic(tmp + "/" + kManifestName, manifest_json(m));
}

// Byte-level text from plain files is read in place in the cache (its tokens are its bytes).
bool reads_in_place(const DataConfig& c) {
  bool in_place = !c.tokenizer.sentencepiece() && c.format != Format::Fasta;
  for (const auto* list : {&c.train_files, &c.val_files})
    for (const std::string& f : *list) {
      in_place = in_place && !is_gzip_file(f);
      if (in_place && c.format == Format::Auto)
        in_place = detect_format(f, MappedFile::open(f).view()) == Format::Text;
    }
  return in_place;
}

std::string cache_path(const DataConfig& c, const std::string& key) {
  const std::string root = (fs::path(dataset_cache_root(c.cache_dir)) / "datasets").string();
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) throw std::runtime_error(root + ": cannot create the dataset cache (" + ec.message() + "); give a writable --cache-dir");
  return root + "/" + dataset_name(c) + "-" + key;
}

}  // namespace

std::string cached_dataset(const DataConfig& config) {
  const std::string dir = cache_path(config, cache_key(config, reads_in_place(config)));
  return is_prepared_dir(dir) ? dir : "";
}

bool is_prepared_dir(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && fs::exists(fs::path(path) / kManifestName, ec);
}

std::string prepare_dataset(const DataConfig& config, const std::string& out_dir, PreparedInfo* info) {
  const auto start = std::chrono::steady_clock::now();
  PreparedInfo local;
  PreparedInfo& out = info ? *info : local;
  out = PreparedInfo{};
  auto done = [&](const std::string& dir, bool reused) {
    out.dir = dir;
    out.reused = reused;
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return dir;
  };
  const std::vector<std::string>& files = config.eval_only ? config.val_files : config.train_files;
  if (files.size() == 1 && is_prepared_dir(files[0])) return done(files[0], true);
  for (const auto* list : {&config.train_files, &config.val_files})
    for (const std::string& f : *list)
      if (is_prepared_dir(f))
        throw std::invalid_argument(f + " is a prepared dataset: give it alone as the data (it holds its own "
                                    "validation part), not together with other files");
  const bool in_place = out_dir.empty() && reads_in_place(config);
  const std::string key = cache_key(config, in_place);
  std::string dir = out_dir;
  if (dir.empty()) {
    dir = cache_path(config, key);
    if (is_prepared_dir(dir)) return done(dir, true);
  } else if (fs::exists(dir)) {
    throw std::invalid_argument("--out " + dir + ": already exists; remove it or choose another directory");
  }
  const std::string parent = fs::absolute(dir).parent_path().string();
  FileLock lock(dir + ".lock", dataset_name(config));
  if (is_prepared_dir(dir)) return done(dir, true);  // prepared by the process we waited for
  // Left by a killed preparation: nobody else writes them while we hold the lock.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(parent, ec))
    if (e.path().string().rfind(dir + ".tmp-", 0) == 0) fs::remove_all(e.path(), ec);
  check_free_space(parent, estimate_bytes(config, in_place));
  const std::string tmp = dir + ".tmp-" + std::to_string(::getpid());
  fs::create_directories(tmp, ec);
  if (ec) throw std::runtime_error(tmp + ": cannot create (" + ec.message() + ")");
  try {
    write_dataset(config, tmp, in_place, out_dir.empty() ? key : "");
    sync_directory(tmp);
    fs::rename(tmp, dir);
    sync_directory(parent);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  fs::remove(dir + ".lock", ec);
  return done(dir, false);
}

}  // namespace pf
