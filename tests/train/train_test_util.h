// Helpers for the train tests: a private temp directory, tiny generated corpora, running the
// command-line tools, reading metrics.jsonl without its wall-clock fields, hashing a directory.
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/random.h"
#include "tests/temp_dir.h"
#include "train/checkpoint.h"
#include "train/run_directory.h"
#include "train/train_config.h"

namespace pf::test {

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Words drawn from a small vocabulary: a byte-level model learns it within a few dozen steps.
inline std::string word_text(int64_t words, uint64_t seed) {
  static const char* vocab[] = {"the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "big", "red"};
  Generator g(seed);
  std::string s;
  for (int64_t i = 0; i < words; ++i) {
    s += vocab[g.below(12)];
    s += (i % 11 == 10) ? "\n" : " ";
  }
  return s;
}

// Random protein records of 8..40 residues.
inline std::string random_fasta(int64_t records, uint64_t seed) {
  static const char* aa = "ACDEFGHIKLMNPQRSTVWY";
  Generator g(seed);
  std::string s;
  for (int64_t r = 0; r < records; ++r) {
    s += ">seq" + std::to_string(r) + " test record\n";
    const int64_t n = 8 + static_cast<int64_t>(g.below(33));
    for (int64_t i = 0; i < n; ++i) s += aa[g.below(20)];
    s += "\n";
  }
  return s;
}

struct CommandResult {
  int exit_code = -1;
  std::string out, err;
};

inline std::string shell_arg(const std::string& a) {
  std::string q = "'";
  for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs a program with arguments; captures stdout and stderr.
inline CommandResult run_command(const std::vector<std::string>& args) {
  static int counter = 0;
  const std::string base = std::filesystem::temp_directory_path().string() + "/pf_cmd_" + std::to_string(::getpid()) +
                           "_" + std::to_string(counter++);
  std::string cmd;
  for (const std::string& a : args) cmd += shell_arg(a) + " ";
  cmd += "> " + shell_arg(base + ".out") + " 2> " + shell_arg(base + ".err") + " < /dev/null";
  const int status = std::system(cmd.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  r.out = read_file(base + ".out");
  r.err = read_file(base + ".err");
  std::filesystem::remove(base + ".out");
  std::filesystem::remove(base + ".err");
  return r;
}

// Starts `args` with stderr in `err_path` (stdout and stdin on /dev/null). `in_child` runs in the
// child between fork and exec (async-signal-safe calls only: setrlimit, signal, setuid ...).
inline pid_t spawn(const std::vector<std::string>& args, const std::string& err_path,
            const std::function<void()>& in_child = {}) {
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (std::string& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0666);
    const int null = ::open("/dev/null", O_RDWR);
    if (err < 0 || null < 0) ::_exit(126);
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(err, 2);
    if (in_child) in_child();
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

// Exit code, or 1000 + signal.
inline int wait_for(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

// metrics.jsonl lines with the wall-clock fields (tokens_per_s, elapsed_s) removed.
inline std::vector<std::string> metrics_lines(const std::string& path) {
  static const std::regex wall(R"re(,"(tokens_per_s|elapsed_s)":[^,}]*)re");
  std::vector<std::string> out;
  std::istringstream in(read_file(path));
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(std::regex_replace(line, wall, ""));
  return out;
}

// A resumed run in `resumed` ended exactly as the uninterrupted run in `straight`: the same metrics
// lines and the same final checkpoint, but for the wall time and the output directory it records.
inline void expect_same_run(const std::string& straight, const std::string& resumed) {
  const RunDirectory a_dir(straight), b_dir(resumed);
  EXPECT_EQ(metrics_lines(b_dir.metrics_path()), metrics_lines(a_dir.metrics_path()));
  Checkpoint a = load_checkpoint(a_dir.latest());
  Checkpoint b = load_checkpoint(b_dir.latest());
  a.progress.elapsed_s = b.progress.elapsed_s = 0;
  a.config.run.out = b.config.run.out = "";
  EXPECT_EQ(serialize_checkpoint(a), serialize_checkpoint(b));
}

// Names, sizes and contents of every file under dir, as one string (for "nothing changed" checks).
inline std::string directory_fingerprint(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files[e.path().string()] = read_file(e.path().string());
  std::string s;
  for (const auto& [name, content] : files) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (unsigned char c : content) h = (h ^ c) * 0x100000001B3ull;
    s += name + " " + std::to_string(content.size()) + " " + std::to_string(h) + "\n";
  }
  return s;
}

// A model and run small enough for dozens of steps per second on one thread.
inline TrainConfig tiny_train_config(const std::string& data_file) {
  TrainConfig c;
  c.data.train_files = {data_file};
  c.data.val_fraction = 0.1;
  c.model.attention = AttentionKind::Favor;  // the tests of the Trainer exercise FAVOR+ (its redraws, its buffers); mlm needs it
  c.model.dim = 32;
  c.model.depth = 1;
  c.model.heads = 2;
  c.model.ff_hidden = 64;
  c.model.features = 16;
  c.data.seq_len = 32;
  c.data.batch_size = 4;
  c.schedule.total_steps = 20;
  c.schedule.warmup = 2;
  c.schedule.lr = 3e-3;
  c.run.eval_every = 5;
  c.run.eval_batches = 2;
  c.run.save_every = 5;
  c.run.log_every = 1;
  c.run.sample_tokens = 0;
  c.run.threads = 1;
  c.model.redraw_every = 3;
  return c;
}

// The same run as command-line flags (data file excluded).
inline std::vector<std::string> tiny_flags() {
  return {"--dim",       "32",    "--depth",         "1",  "--heads",        "2", "--ff-hidden",    "64",
          "--features",  "16",    "--seq-len",       "32", "--batch-size",   "4", "--warmup",       "2",
          "--lr",        "0.003", "--eval-every",    "5",  "--eval-batches", "2", "--save-every",   "5",
          "--log-every", "1",     "--sample-tokens", "0",  "--threads",      "1", "--redraw-every", "3"};
}

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace pf::test

// A command that must have succeeded; its stderr explains a failure.
#define EXPECT_OK(r) EXPECT_EQ((r).exit_code, 0) << (r).err
