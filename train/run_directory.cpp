#include "train/run_directory.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <stdexcept>

#include "base/atomic_file.h"

namespace fs = std::filesystem;

namespace pf {

namespace {

// "ckpt-00000200.ckpt" -> 200; -1 for any other name.
int64_t step_of(const std::string& name) {
  static const std::regex pattern(R"(ckpt-(\d{1,18})\.ckpt)");
  std::smatch m;
  if (!std::regex_match(name, m, pattern)) return -1;
  return std::stoll(m[1].str());
}

}  // namespace

RunDirectory::RunDirectory(std::string dir) : dir_(std::move(dir)) {}

std::string RunDirectory::file(const std::string& name) const {
  return (fs::path(dir_) / name).string();
}

std::string RunDirectory::checkpoint_path(int64_t step) const {
  char name[48];
  std::snprintf(name, sizeof name, "ckpt-%08lld.ckpt", static_cast<long long>(step));
  return file(name);
}

std::vector<std::pair<int64_t, std::string>> RunDirectory::checkpoints() const {
  std::vector<std::pair<int64_t, std::string>> out;
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) return out;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const int64_t s = step_of(entry.path().filename().string());
    if (s >= 0 && entry.is_regular_file(ec)) out.emplace_back(s, entry.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string RunDirectory::latest() const {
  const auto all = checkpoints();
  return all.empty() ? std::string() : all.back().second;
}

bool RunDirectory::holds_run() const {
  std::error_code ec;
  return !checkpoints().empty() || fs::exists(best_path(), ec) || fs::exists(metrics_path(), ec);
}

void RunDirectory::create() const {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (!fs::is_directory(dir_))
    throw std::runtime_error("cannot create the output directory " + dir_ + ": " + ec.message());
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

RunLock& RunLock::operator=(RunLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

RunLock RunDirectory::lock() const {
  const std::string path = lock_path();
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    throw std::runtime_error("the output directory " + dir_ + " is not usable: cannot create its lock file " + path +
                             ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK)
      throw RunInUseError("the output directory " + dir_ +
                          " is in use: another performer-train is writing into it (it holds the lock " + path +
                          "). Two runs must not write into one directory; wait for that one to end or stop it "
                          "(Ctrl-C or SIGTERM writes a checkpoint), then resume. performer-eval and "
                          "performer-generate may read its checkpoints meanwhile.");
    throw std::runtime_error("cannot lock " + path + ": " + std::strerror(err));
  }
  RunLock lock(fd);
  // The lock file may be writable in a directory that is not (a read-only directory or file system):
  // checkpoints could not be written there, say so now rather than at the first save.
  if (::access(dir_.c_str(), W_OK) != 0)
    throw std::runtime_error("the output directory " + dir_ + " is not usable: cannot write in it: " +
                             std::strerror(errno));
  return lock;
}

namespace {

// Runs a write into the directory; on failure names what was being saved and why, and says when the
// directory itself has gone.
template <class F>
void saving(const std::string& dir, const std::string& what, F&& write) {
  try {
    write();
  } catch (const std::exception& e) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
      throw std::runtime_error("cannot save " + what + ": the output directory " + dir +
                               " no longer exists (removed during the run?): " + e.what());
    throw std::runtime_error("cannot save " + what + ": " + e.what());
  }
}

}  // namespace

std::string RunDirectory::save(const Checkpoint& c, int64_t keep) const {
  const std::string path = checkpoint_path(c.progress.step);
  saving(dir_, "the checkpoint of step " + std::to_string(c.progress.step), [&] { save_checkpoint(path, c); });
  auto all = checkpoints();
  const int64_t excess = static_cast<int64_t>(all.size()) - std::max<int64_t>(keep, 1);
  for (int64_t i = 0; i < excess; ++i) {
    std::error_code ec;
    fs::remove(all[static_cast<size_t>(i)].second, ec);
  }
  if (excess > 0) sync_directory(dir_);
  return path;
}

std::string RunDirectory::save_best(const Checkpoint& c) const {
  saving(dir_, "best.ckpt (step " + std::to_string(c.progress.step) + ")", [&] { save_checkpoint(best_path(), c); });
  return best_path();
}

void RunDirectory::clear() const {
  std::error_code ec;
  for (const auto& [step, path] : checkpoints()) fs::remove(path, ec);
  fs::remove(best_path(), ec);
  fs::remove(metrics_path(), ec);
  fs::remove(config_path(), ec);
  sync_directory(dir_);
}

void RunDirectory::remove_stale_temp_files() const {
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) return;
  std::vector<fs::path> stale;
  for (const auto& entry : fs::directory_iterator(dir_, ec))
    if (is_atomic_temp_name(entry.path().filename().string())) stale.push_back(entry.path());
  for (const auto& p : stale) fs::remove(p, ec);
}

std::string resolve_resume_path(const std::string& dir_or_file, const std::string& flag) {
  std::error_code ec;
  if (fs::is_regular_file(dir_or_file, ec)) return dir_or_file;
  if (fs::is_directory(dir_or_file, ec)) {
    const RunDirectory run(dir_or_file);
    const std::string latest = run.latest();
    if (!latest.empty()) return latest;
    if (fs::exists(run.best_path(), ec)) return run.best_path();
    throw std::invalid_argument(flag + " " + dir_or_file + ": the directory holds no checkpoint (ckpt-*.ckpt)");
  }
  throw std::invalid_argument(flag + " " + dir_or_file + ": no such file or directory");
}

OpenedCheckpoint open_checkpoint(const std::string& given, const std::string& flag) {
  OpenedCheckpoint opened;
  opened.path = resolve_resume_path(given, flag);
  opened.checkpoint = load_checkpoint(opened.path);
  return opened;
}

}  // namespace pf
