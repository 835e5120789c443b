// The performer-train command line (CLI11): every TrainConfig field is a flag, `--config FILE` reads
// the same keys from a TOML or INI file (command-line flags win), and a few flags only steer this
// invocation (--resume, --stop-at, --overwrite, --print-config).
//
// Precedence for a fresh run: built-in defaults < --preset < config file < command line.
// For a resumed run the checkpoint's config is the base; flags of kind Model or Data (train_config.h)
// must agree with it (merge_for_resume), Free flags replace its values.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "train/train_config.h"

namespace pf {

struct TrainCli {
  // Flag keys (as in visit_fields) with the value asked for, from the command line or the config
  // file; a --preset adds its keys (unless given explicitly).
  std::map<std::string, std::string> requested;
  bool resume = false;
  std::string resume_from;  // "" with --resume alone: the --out directory
  int64_t stop_at = 0;
  bool overwrite = false;
  bool print_config = false;

  // A fresh run's config: defaults, then the requested values; a default --heads that does not divide
  // the requested --dim becomes the largest count below it that does. Paths are made absolute; `out` is left
  // "" when not given (the caller picks runs/<time>).
  TrainConfig fresh_config() const;
};

// Result of parsing: either a TrainCli, or an exit code with everything already printed (--help,
// --version, a CLI11 error).
struct ParseOutcome {
  bool ok = false;
  int exit_code = 0;
  TrainCli cli;
};
ParseOutcome parse_train_cli(int argc, const char* const* argv);

// The checkpoint's config with the requested values applied. Throws std::invalid_argument listing
// every requested Model or Data value that differs from the checkpoint's (e.g. "--dim 256
// (the checkpoint has 128)"); `source` names the checkpoint in the message.
TrainConfig merge_for_resume(const TrainConfig& checkpoint_config, const TrainCli& cli, const std::string& source);

// Shell-quotes one argument when it needs it.
std::string shell_quote(const std::string& arg);

}  // namespace pf
