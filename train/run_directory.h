// The output directory of a run:
//   config.toml            the effective configuration (performer-train --config reads it back)
//   metrics.jsonl          one JSON object per line (train/metrics.h)
//   ckpt-00000200.ckpt     periodic checkpoints, the last --keep of them
//   best.ckpt              the checkpoint with the lowest validation loss so far
//   .lock                  held (flock) by the performer-train writing into the directory
// "Latest" is the periodic checkpoint with the highest step; `--resume DIR` resolves to it.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "train/checkpoint.h"

namespace pf {

// An exclusive flock() on <dir>/.lock, held for as long as this object lives. The kernel drops it
// when the process ends in any way (exit, crash, kill -9), so a stale lock never outlives its
// process; the (empty) file itself stays. Readers (performer-eval, performer-generate) take no lock.
class RunLock {
 public:
  RunLock() = default;
  ~RunLock();
  RunLock(RunLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  RunLock& operator=(RunLock&& other) noexcept;
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;
  bool held() const { return fd_ >= 0; }

 private:
  friend class RunDirectory;
  explicit RunLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// Another process holds the run directory's lock.
class RunInUseError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class RunDirectory {
 public:
  explicit RunDirectory(std::string dir);

  const std::string& path() const { return dir_; }
  std::string config_path() const { return file("config.toml"); }
  std::string metrics_path() const { return file("metrics.jsonl"); }
  std::string best_path() const { return file("best.ckpt"); }
  std::string lock_path() const { return file(".lock"); }
  std::string checkpoint_path(int64_t step) const;

  // Periodic checkpoints as (step, path), by increasing step.
  std::vector<std::pair<int64_t, std::string>> checkpoints() const;
  std::string latest() const;  // "" if there is none
  // Whether the directory holds a run (a checkpoint or metrics).
  bool holds_run() const;

  // Creates the directory (and parents) if needed.
  void create() const;
  // Takes the directory's lock (it must exist). Throws RunInUseError when another process holds it,
  // std::runtime_error naming the lock file when it cannot be created (a directory that is not
  // writable, ...).
  RunLock lock() const;
  // Writes the periodic checkpoint of step c.progress.step, then deletes the oldest beyond `keep`.
  // A failed write (disk full, directory no longer writable or removed) throws std::runtime_error
  // naming the step, the file and the cause; the previous checkpoints stay as they were.
  std::string save(const Checkpoint& c, int64_t keep) const;
  std::string save_best(const Checkpoint& c) const;
  // Removes checkpoints, metrics and config (a fresh run over an old one, --overwrite).
  void clear() const;
  // Removes temporary files left by a crash during an atomic write.
  void remove_stale_temp_files() const;

 private:
  std::string file(const std::string& name) const;
  std::string dir_;
};

// What --resume X (or --checkpoint X) means: a file is itself; a directory is its latest checkpoint
// (else its best.ckpt). Throws std::invalid_argument naming `flag` when there is nothing there.
std::string resolve_resume_path(const std::string& dir_or_file, const std::string& flag = "--resume");

// What performer-eval, performer-generate and performer-export open: `given` is a checkpoint file or
// a run directory (its latest checkpoint); `flag` names it in messages.
struct OpenedCheckpoint {
  std::string path;  // the file read
  Checkpoint checkpoint;
};
// Throws (CheckpointError or std::invalid_argument) with a message naming the flag and the file.
OpenedCheckpoint open_checkpoint(const std::string& given, const std::string& flag = "--checkpoint");

}  // namespace pf
