// The output directory of a run:
//   config.toml            the effective configuration (performer-train --config reads it back)
//   metrics.jsonl          one JSON object per line (train/metrics.h)
//   ckpt-00000200.ckpt     periodic checkpoints, the last --keep of them
//   best.ckpt              the checkpoint with the lowest validation loss so far
// "Latest" is the periodic checkpoint with the highest step; `--resume DIR` resolves to it.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "train/checkpoint.h"

namespace pf {

class RunDirectory {
 public:
  explicit RunDirectory(std::string dir);

  const std::string& path() const { return dir_; }
  std::string config_path() const { return file("config.toml"); }
  std::string metrics_path() const { return file("metrics.jsonl"); }
  std::string best_path() const { return file("best.ckpt"); }
  std::string checkpoint_path(int64_t step) const;

  // Periodic checkpoints as (step, path), by increasing step.
  std::vector<std::pair<int64_t, std::string>> checkpoints() const;
  std::string latest() const;  // "" if there is none
  // Whether the directory holds a run (a checkpoint or metrics).
  bool holds_run() const;

  // Creates the directory (and parents) if needed.
  void create() const;
  // Writes the periodic checkpoint of step c.progress.step, then deletes the oldest beyond `keep`.
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

}  // namespace pf
