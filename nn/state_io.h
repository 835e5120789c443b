// State dicts and optimizer state on disk: cereal binary archives, fixed-width types, and the
// header of autograd/serialize.h (magic "PFCPPBIN", kind, version). Loading rejects a file of the
// wrong kind or version with an error naming the file, and never returns a half-read object.
// Files are written atomically (base/atomic_file.h: a temporary file in the same directory,
// fsync, rename, fsync of the directory), so a crash never leaves a truncated file at `path`, and
// a failed write (disk full ...) throws naming the path and the system error and leaves no temporary file.
#pragma once

#include <iosfwd>
#include <string>

#include "nn/module.h"
#include "nn/optimizer.h"

namespace pf {

constexpr const char* kStateDictKind = "state_dict";
constexpr uint32_t kStateDictVersion = 1;
constexpr const char* kOptimizerKind = "optimizer";
constexpr uint32_t kOptimizerFileVersion = 1;

// Layout (version 1): header, uint64 count, then count x (string name, Tensor), names sorted.
void save_state_dict(const StateDict& s, const std::string& path);
StateDict load_state_dict_file(const std::string& path);
void save_state_dict(const StateDict& s, std::ostream& out);
// `source` names the stream in error messages.
StateDict load_state_dict(std::istream& in, const std::string& source = "<stream>");

// Layout (version 1): header, then the optimizer's own archive (Optimizer::save).
void save_optimizer_state(const Optimizer& opt, const std::string& path);
void load_optimizer_state(Optimizer& opt, const std::string& path);
void save_optimizer_state(const Optimizer& opt, std::ostream& out);
void load_optimizer_state(Optimizer& opt, std::istream& in, const std::string& source = "<stream>");

}  // namespace pf
