#include "nn/state_io.h"

#include <cereal/archives/binary.hpp>
#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>

#include "base/atomic_file.h"
#include "autograd/serialize.h"
#include "base/file_header.h"

namespace pf {

namespace {

// Serializes through `write` into memory, then writes the bytes atomically (base/atomic_file.h:
// temporary file in the same directory, fsync, rename, fsync of the directory).
void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write) {
  std::ostringstream out(std::ios::binary);
  write(out);
  if (!out) throw std::runtime_error(path + ": cannot serialize");
  write_file_atomic(path, std::move(out).str());
}

std::ifstream open_for_reading(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open for reading (does the file exist?)");
  return in;
}

}  // namespace

void save_state_dict(const StateDict& s, std::ostream& out) {
  cereal::BinaryOutputArchive ar(out);
  write_file_header(ar, kStateDictKind, kStateDictVersion);
  ar(static_cast<uint64_t>(s.size()));
  for (const auto& [name, t] : s) ar(name, t);
}

StateDict load_state_dict(std::istream& in, const std::string& source) {
  cereal::BinaryInputArchive ar(in);
  read_file_header(ar, kStateDictKind, kStateDictVersion, source);
  StateDict s;
  try {
    uint64_t n = 0;
    ar(n);
    for (uint64_t i = 0; i < n; ++i) {
      std::string name;
      Tensor t;
      ar(name, t);
      if (!s.emplace(std::move(name), std::move(t)).second) throw std::runtime_error("duplicate key");
    }
  } catch (const std::exception& e) {
    throw std::runtime_error(source + ": corrupt or truncated state dict (" + e.what() + ")");
  }
  return s;
}

void save_state_dict(const StateDict& s, const std::string& path) {
  write_file_atomically(path, [&](std::ostream& out) { save_state_dict(s, out); });
}

StateDict load_state_dict_file(const std::string& path) {
  std::ifstream in = open_for_reading(path);
  return load_state_dict(in, path);
}

void save_optimizer_state(const Optimizer& opt, std::ostream& out) {
  cereal::BinaryOutputArchive ar(out);
  write_file_header(ar, kOptimizerKind, kOptimizerFileVersion);
  ar(opt);
}

void load_optimizer_state(Optimizer& opt, std::istream& in, const std::string& source) {
  cereal::BinaryInputArchive ar(in);
  read_file_header(ar, kOptimizerKind, kOptimizerFileVersion, source);
  try {
    ar(opt);
  } catch (const cereal::Exception& e) {
    throw std::runtime_error(source + ": corrupt or truncated optimizer state (" + e.what() + ")");
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(source + ": " + e.what());
  }
}

void save_optimizer_state(const Optimizer& opt, const std::string& path) {
  write_file_atomically(path, [&](std::ostream& out) { save_optimizer_state(opt, out); });
}

void load_optimizer_state(Optimizer& opt, const std::string& path) {
  std::ifstream in = open_for_reading(path);
  load_optimizer_state(opt, in, path);
}

}  // namespace pf
