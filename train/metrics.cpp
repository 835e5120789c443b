#include "train/metrics.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <stdexcept>

#include "base/atomic_file.h"
#include "base/format.h"

namespace pf {

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  return exact_str(v);
}

void JsonLine::key(const std::string& k) {
  if (!body_.empty()) body_ += ",";
  body_ += json_quote(k) + ":";
}

JsonLine& JsonLine::add(const std::string& k, double value) {
  key(k);
  body_ += json_number(value);
  return *this;
}

JsonLine& JsonLine::add(const std::string& k, int64_t value) {
  key(k);
  body_ += std::to_string(value);
  return *this;
}

JsonLine& JsonLine::add(const std::string& k, const std::string& value) {
  key(k);
  body_ += json_quote(value);
  return *this;
}

JsonLine& JsonLine::add(const std::string& k, bool value) {
  key(k);
  body_ += value ? "true" : "false";
  return *this;
}

JsonLine& JsonLine::add(const std::string& k, const std::vector<std::string>& values) {
  key(k);
  body_ += "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) body_ += ",";
    body_ += json_quote(values[i]);
  }
  body_ += "]";
  return *this;
}

MetricsLog::MetricsLog(const std::string& path) : path_(path) {
  file_ = std::fopen(path.c_str(), "a");
  if (!file_) throw std::runtime_error("cannot open " + path + " for appending: " + std::strerror(errno));
}

MetricsLog::~MetricsLog() {
  if (file_) std::fclose(file_);
}

void MetricsLog::write(const JsonLine& line) {
  if (!file_) return;
  const std::string s = line.str() + "\n";
  if (std::fwrite(s.data(), 1, s.size(), file_) != s.size() || std::fflush(file_) != 0)
    throw std::runtime_error("cannot write to " + path_ + ": " + std::strerror(errno));
}

void MetricsLog::truncate_after(const std::string& path, int64_t step) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return;
  std::istringstream in(read_file_bytes(path));
  std::string line, kept;
  bool dropped = false;
  while (std::getline(in, line)) {
    if (line.empty() || line.back() != '}') {  // a line cut short by a crash
      dropped = true;
      continue;
    }
    const size_t at = line.find("\"step\":");
    if (at != std::string::npos) {
      const long long s = std::strtoll(line.c_str() + at + 7, nullptr, 10);
      if (s > step) {
        dropped = true;
        continue;
      }
    }
    kept += line + "\n";
  }
  if (dropped) write_file_atomic(path, kept);
}

}  // namespace pf
