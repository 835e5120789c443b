// The performer-train command line (CLI11): every TrainConfig field is a flag, `--config FILE` reads
// the same keys from a TOML file (train/config_file.h; command-line flags win), and a few flags only
// steer this invocation (--resume, --stop-at, --overwrite, --print-config). Every value is read whole
// and checked against its field's rule as it is parsed (set_field), so a refusal names it as written.
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

// Result of parsing: either a TrainCli, or an exit code with everything already printed (0 after --help
// or --version, 2 for a bad flag, value or config file).
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

// Number flags of the programs, read whole and reported as written: throw std::invalid_argument
// "--flag text: rule" (or "expected an integer" / "a number").
int64_t int_flag(const std::string& flag, const std::string& text, int64_t lo, int64_t hi, const std::string& rule);
double real_flag(const std::string& flag, const std::string& text, const Range& rule);
// --threads: 0 (all cores) to max_threads().
int64_t threads_flag(const std::string& text);
// The exit code of a command-line error CLI11 reported (app.exit(e)): 0 for --help and --version, else 2
// (bad flags, as USAGE.md documents; CLI11's own codes are 100 and above).
int usage_exit_code(int cli11_code);

// Shell-quotes one argument when it needs it.
std::string shell_quote(const std::string& arg);

}  // namespace pf
