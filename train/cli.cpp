#include "train/cli.h"

#include "performer/presets.h"

#include <CLI/CLI.hpp>
#include <filesystem>
#include <stdexcept>
#include <type_traits>

#include "train/distributed_cli.h"

namespace pf {

namespace {

std::string absolute(const std::string& p) {
  if (p.empty()) return p;
  return std::filesystem::absolute(p).lexically_normal().string();
}

// Paths are stored absolute so a config file or checkpoint works from any directory.
void absolutize(TrainConfig& c) {
  for (std::string& f : c.data) f = absolute(f);
  for (std::string& f : c.val_data) f = absolute(f);
  c.cache_dir = absolute(c.cache_dir);
  c.tokenizer_model = absolute(c.tokenizer_model);
  c.init_from = absolute(c.init_from);
  c.out = absolute(c.out);
}

}  // namespace

std::string shell_quote(const std::string& arg) {
  if (!arg.empty() &&
      arg.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") ==
          std::string::npos)
    return arg;
  std::string out = "'";
  for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Defaults that depend on another flag adapt to it, so that a default never makes an explicit command
// fail: --heads (4 unless given) becomes the largest count <= 4 that divides --dim (and leaves an even
// head dim for rotary positions); --attention (favor-local unless given, which is causal only) becomes
// favor for --objective mlm. --warmup adapts by itself (TrainConfig::effective_warmup).
namespace {
void adapt_defaults(TrainConfig& c, const std::map<std::string, std::string>& requested) {
  if (!requested.count("attention") && c.objective == "mlm" && c.attention == "favor-local") c.attention = "favor";
  if (!requested.count("heads") && c.dim > 0 && c.heads > 0) {
    auto fits = [&](int64_t h) {
      return c.dim % h == 0 && (c.positions != "rotary" || (c.dim / h) % 2 == 0);
    };
    if (!fits(c.heads))
      for (int64_t h = c.heads; h >= 1; --h)
        if (fits(h)) {
          c.heads = h;
          break;
        }
  }
}
}  // namespace

TrainConfig TrainCli::fresh_config() const {
  TrainConfig c;
  for (const auto& [key, value] : requested) set_field(c, key, value);
  adapt_defaults(c, requested);
  absolutize(c);
  return c;
}

namespace {

using FlagOptions = std::vector<std::pair<std::string, CLI::Option*>>;

// One CLI11 option per TrainConfig field (train_config.h visit_fields), writing into `values`.
FlagOptions add_config_flags(CLI::App& app, TrainConfig& values) {
  FlagOptions options;
  visit_fields([&](const FieldInfo& f, auto member) {
    const char* key = f.key;
    const char* help = f.help;
    using T = std::remove_reference_t<decltype(values.*member)>;
    const std::string name = std::string("--") + key;
    CLI::Option* opt = nullptr;
    if constexpr (std::is_same_v<T, bool>) {
      opt = app.add_flag(name + ",!--no-" + key, values.*member, help);
    } else {
      opt = app.add_option(name, values.*member, help);
      if constexpr (std::is_same_v<T, std::vector<std::string>>)
        opt->expected(1, -1);
      else
        opt->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // a later flag overrides an earlier one
    }
    opt->group(f.group);
    options.emplace_back(key, opt);
  });
  return options;
}

// The flags that are not configuration fields: --resume, --stop-at, --overwrite, --print-config.
CLI::Option* add_run_flags(CLI::App& app, TrainCli& cli, std::string& resume_from) {
  CLI::Option* resume = app.add_option("--resume", resume_from,
                                       "continue a run: a checkpoint file, or a run directory (its latest "
                                       "checkpoint); alone, the --out directory")
                            ->expected(0, 1)
                            ->group("Run");
  app.add_option("--stop-at", cli.stop_at,
                 "stop with a checkpoint after this step (the schedule still spans --steps); resume later")
      ->group("Run");
  app.add_flag("--overwrite", cli.overwrite,
               "start a fresh run in an --out that already holds one (deletes its checkpoints)")
      ->group("Run");
  app.add_flag("--print-config", cli.print_config, "print the effective configuration file and exit")->group("Run");
  resume->configurable(false);
  return resume;
}

// cli.requested: the preset's keys first, then every flag given (command line or config file) on
// top. False (after printing the error) for an unknown preset.
bool collect_requested(const FlagOptions& options, const TrainConfig& values, TrainCli& cli) {
  const auto preset = std::find_if(options.begin(), options.end(), [](auto& o) { return o.first == "preset"; });
  if (preset->second->count() > 0 && !values.preset.empty()) {
    const auto it = presets().find(values.preset);
    if (it == presets().end()) {
      std::fprintf(stderr, "performer-train: error: --preset '%s': unknown value (expected one of: %s)\n",
                   values.preset.c_str(), shape_preset_names().c_str());
      return false;
    }
    for (const auto& [key, value] : it->second) cli.requested[key] = value;
  }
  for (const auto& [key, opt] : options)
    if (opt->count() > 0) cli.requested[key] = field_text(values, key);
  return true;
}

}  // namespace

ParseOutcome parse_train_cli(int argc, const char* const* argv) {
  ParseOutcome outcome;
  CLI::App app{
      "performer-train: train a Performer language model (FAVOR+ attention) on text or protein sequences.\n"
      "With no arguments it trains a small causal protein model on the UniProt sample of the Debian\n"
      "package mmseqs2-examples for a few minutes, evaluates it, prints a sample and saves a checkpoint.",
      "performer-train"};
  app.set_version_flag("--version", "performer-train 0.1.0");
  app.footer(parallel_help());
  app.set_config("--config", "", "read flags from a TOML or INI file (keys are the flag names without --)");
  app.get_formatter()->column_width(34);
  app.option_defaults()->always_capture_default();

  TrainConfig values;  // CLI11 writes here; only the flags it saw are used
  const FlagOptions options = add_config_flags(app, values);
  TrainCli& cli = outcome.cli;
  std::string resume_from;
  CLI::Option* resume = add_run_flags(app, cli, resume_from);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    outcome.exit_code = app.exit(e);
    return outcome;
  }
  cli.resume = resume->count() > 0;
  cli.resume_from = resume_from;
  if (!collect_requested(options, values, cli)) {
    outcome.exit_code = 2;
    return outcome;
  }
  outcome.ok = true;
  return outcome;
}

TrainConfig merge_for_resume(const TrainConfig& checkpoint_config, const TrainCli& cli, const std::string& source) {
  TrainConfig c = checkpoint_config;
  TrainConfig asked = checkpoint_config;
  for (const auto& [key, value] : cli.requested) set_field(asked, key, value);
  absolutize(asked);
  std::string conflicts;
  visit_fields([&](const FieldInfo& f, auto member) {
    const char* key = f.key;
    if (!cli.requested.count(key)) return;
    if (f.kind != FlagKind::Free && !(asked.*member == checkpoint_config.*member)) {
      conflicts += std::string(conflicts.empty() ? "" : ", ") + "--" + key + " " + field_text(asked, key) +
                   " (the checkpoint has " + field_text(checkpoint_config, key) + ")";
      return;
    }
    c.*member = asked.*member;
  });
  if (!conflicts.empty())
    throw std::invalid_argument(
        source + ": the checkpoint's model shape or data settings conflict with the flags given: " + conflicts +
        ". A resumed run keeps the model, data batching and seed of its checkpoint; drop "
        "these flags, or start a new run (another --out) to train a different model.");
  return c;
}

}  // namespace pf
