// metrics.jsonl: one JSON object per line, appended as training goes.
//
//   {"type":"train","step":10,"loss":3.01,"lr":0.0005,"grad_norm":1.2,"tokens":2048,"tokens_per_s":5100,"elapsed_s":0.4}
//   {"type":"eval","step":100,"val_loss":2.8,"val_bits_per_token":4.04,"val_perplexity":16.4,"val_accuracy":0.12,...}
//   {"type":"skip","step":17,"reason":"non-finite loss","loss":null,"grad_norm":null,"in_a_row":1}
// Strings are written by nlohmann-json (json_quote, base/format.h). Numbers are written with the
// fewest digits that read back to the same double (exact_str: equal values give equal text);
// non-finite numbers are written as null. (nlohmann-json's own number text would change the bytes
// of the file: 5100.0 for 5100, 1000000.0 for 1e+06.)
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace pf {

class JsonLine {
 public:
  JsonLine& add(const std::string& key, double value);
  JsonLine& add(const std::string& key, int64_t value);
  JsonLine& add(const std::string& key, int value) { return add(key, static_cast<int64_t>(value)); }
  JsonLine& add(const std::string& key, const std::string& value);
  JsonLine& add(const std::string& key, const char* value) { return add(key, std::string(value)); }
  JsonLine& add(const std::string& key, bool value);
  JsonLine& add(const std::string& key, const std::vector<std::string>& values);  // an array of strings
  std::string str() const { return "{" + body_ + "}"; }

 private:
  void key(const std::string& k);
  std::string body_;
};

// The shortest decimal text that reads back to exactly `v` ("null" if not finite).
std::string json_number(double v);

class MetricsLog {
 public:
  MetricsLog() = default;
  // Opens `path` for appending (creating it).
  explicit MetricsLog(const std::string& path);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  bool is_open() const { return file_ != nullptr; }
  const std::string& path() const { return path_; }
  // Appends one line and flushes it to the operating system.
  void write(const JsonLine& line);

  // Resuming: drops the lines of steps after `step` (written after the checkpoint being resumed was
  // saved) and any line cut short by a crash, atomically. Lines without a "step" are kept. A missing
  // file is left missing.
  static void truncate_after(const std::string& path, int64_t step);

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace pf
