#include "train/cli.h"

#include "performer/presets.h"

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <type_traits>

#include "train/config_file.h"
#include "train/distributed_cli.h"

namespace pf {

namespace {

// Only its members' types are used (decltype(kFieldTypes.*member)).
const TrainConfig kFieldTypes{};

std::string absolute(const std::string& p) {
  if (p.empty()) return p;
  return std::filesystem::absolute(p).lexically_normal().string();
}

// Paths are stored absolute so a config file or checkpoint works from any directory.
void absolutize(TrainConfig& c) {
  for (std::string& f : c.data.train_files) f = absolute(f);
  for (std::string& f : c.data.val_files) f = absolute(f);
  c.data.cache_dir = absolute(c.data.cache_dir);
  c.data.tokenizer.model = absolute(c.data.tokenizer.model);
  c.run.init_from = absolute(c.run.init_from);
  c.run.out = absolute(c.run.out);
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
// head dim for rotary positions); --attention (favor-local unless given) becomes favor for --objective
// mlm (bidirectional favor-local measured level with favor on proteins, at twice its attention cost:
// QUALITY.md). --warmup adapts by itself (TrainConfig::effective_warmup).
namespace {
void adapt_defaults(TrainConfig& c, const std::map<std::string, std::string>& requested) {
  ModelConfig& m = c.model;
  if (!requested.count("attention") && c.data.objective == Objective::Mlm && m.attention == AttentionKind::FavorLocal)
    m.attention = AttentionKind::Favor;
  if (!requested.count("heads") && m.dim > 0 && m.heads > 0) {
    auto fits = [&](int64_t h) {
      return m.dim % h == 0 && (m.positions != PositionKind::Rotary || (m.dim / h) % 2 == 0);
    };
    if (!fits(m.heads))
      for (int64_t h = m.heads; h >= 1; --h)
        if (fits(h)) {
          m.heads = h;
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

// The raw text of every config flag as given (values are read by set_field, which checks them whole
// and names them as written), and the options that hold them.
struct FlagTexts {
  std::map<std::string, std::string> scalar;
  std::map<std::string, std::vector<std::string>> lists;
  std::map<std::string, bool> flags;
  std::map<std::string, CLI::Option*> options;
};

// The default as --help shows it (strings without quotes).
std::string default_text(const std::string& key) {
  std::string t = field_text(TrainConfig{}, key);
  if (t.size() >= 2 && (t.front() == '"' || t.front() == '\'') && t.back() == t.front()) t = t.substr(1, t.size() - 2);
  return t;
}

// One CLI11 option per TrainConfig field (train_config.h visit_fields), writing into `texts`.
void add_config_flags(CLI::App& app, FlagTexts& texts) {
  visit_fields([&](const FieldInfo& f, auto get) {
    const char* key = f.key;
    using T = std::remove_cvref_t<decltype(get(kFieldTypes))>;
    const std::string name = std::string("--") + key;
    CLI::Option* opt = nullptr;
    if constexpr (std::is_same_v<T, bool>) {
      opt = app.add_flag(name + ",!--no-" + key, texts.flags[key], f.help);
    } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
      opt = app.add_option(name, texts.lists[key], f.help)->expected(1, -1);
    } else {
      opt = app.add_option(name, texts.scalar[key], f.help);
      opt->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // a later flag overrides an earlier one
      opt->type_name(std::is_floating_point_v<T> ? "FLOAT"
                     : std::is_unsigned_v<T>     ? "UINT"
                     : std::is_integral_v<T>     ? "INT"
                     : !kNamedField<T>           ? "TEXT"
                                                 : "{" + field_choices<T>() + "}");
    }
    opt->default_str(default_text(key));
    opt->group(f.group);
    texts.options[key] = opt;
  });
}

// The flags that are not configuration fields: --config, --resume, --stop-at, --overwrite, --print-config.
struct RunFlags {
  std::string config, resume_from, stop_at;
  CLI::Option *config_opt = nullptr, *resume = nullptr, *stop_at_opt = nullptr;
};
void add_run_flags(CLI::App& app, TrainCli& cli, RunFlags& run) {
  run.config_opt = app.add_option("--config", run.config,
                                  "read flags from a TOML file (keys are the flag names without --; a file "
                                  "performer-train wrote, e.g. RUN/config.toml, is one); flags given win")
                       ->group("Run");
  run.resume = app.add_option("--resume", run.resume_from,
                              "continue a run: a checkpoint file, or a run directory (its latest "
                              "checkpoint); alone, the --out directory")
                   ->expected(0, 1)
                   ->group("Run");
  run.stop_at_opt =
      app.add_option("--stop-at", run.stop_at,
                     "stop with a checkpoint after this step (the schedule still spans --steps); resume later")
          ->type_name("INT")
          ->group("Run");
  app.add_flag("--overwrite", cli.overwrite,
               "start a fresh run in an --out that already holds one (deletes its checkpoints)")
      ->group("Run");
  app.add_flag("--print-config", cli.print_config, "print the effective configuration file and exit")->group("Run");
}

// The config flags given on the command line, key -> text form; each value is read (and refused with
// FieldValueError, as written) here.
std::map<std::string, std::string> given_flags(FlagTexts& texts) {
  std::map<std::string, std::string> out;
  visit_fields([&](const FieldInfo& f, auto get) {
    const std::string key = f.key;
    if (texts.options.at(key)->count() == 0) return;
    using T = std::remove_cvref_t<decltype(get(kFieldTypes))>;
    TrainConfig scratch;
    if constexpr (std::is_same_v<T, bool>) {
      get(scratch) = texts.flags[key];
    } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
      get(scratch) = texts.lists[key];
    } else if constexpr (std::is_same_v<T, std::string>) {
      get(scratch) = texts.scalar[key];
    } else {
      set_field(scratch, key, texts.scalar[key]);  // numbers and names: read whole, within the field's rule
      out[key] = texts.scalar[key];
      return;
    }
    out[key] = field_text(scratch, key);
  });
  return out;
}

// cli.requested: the preset's keys first, then the config file's, then the command line's on top.
void collect_requested(const std::map<std::string, std::string>& file, const std::map<std::string, std::string>& given,
                       TrainCli& cli) {
  std::map<std::string, std::string> merged = file;
  for (const auto& [key, value] : given) merged[key] = value;
  if (const auto p = merged.find("preset"); p != merged.end()) {
    TrainConfig scratch;
    set_field(scratch, "preset", p->second);
    if (!scratch.run.preset.empty()) {
      const auto it = presets().find(scratch.run.preset);
      if (it == presets().end())
        throw std::invalid_argument("--preset '" + scratch.run.preset +
                                    "': unknown value (expected one of: " + shape_preset_names() + ")");
      for (const auto& [key, value] : it->second) cli.requested[key] = value;
    }
  }
  for (const auto& [key, value] : merged) cli.requested[key] = value;
}

}  // namespace

int64_t int_flag(const std::string& flag, const std::string& text, int64_t lo, int64_t hi, const std::string& rule) {
  int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec == std::errc::result_out_of_range) throw std::invalid_argument(flag + " " + text + ": " + rule);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size())
    throw std::invalid_argument(flag + " " + text + ": expected an integer");
  if (v < lo || v > hi) throw std::invalid_argument(flag + " " + text + ": " + rule);
  return v;
}

double real_flag(const std::string& flag, const std::string& text, const Range& rule) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size())
    throw std::invalid_argument(flag + " " + text + ": expected a number");
  if (!rule.contains(v)) throw std::invalid_argument(flag + " " + text + ": " + rule.rule);
  return v;
}

int64_t threads_flag(const std::string& text) {
  return int_flag("--threads", text, 0, max_threads(),
                  "must be in [0, " + std::to_string(max_threads()) + "] (0 = all cores; at most 4 x the " +
                      std::to_string(max_threads() / 4) + " cores of this machine)");
}

int usage_exit_code(int cli11_code) { return cli11_code == 0 ? 0 : 2; }

ParseOutcome parse_train_cli(int argc, const char* const* argv) {
  ParseOutcome outcome;
  CLI::App app{
      "performer-train: train a Performer language model (FAVOR+ attention) on text or protein sequences.\n"
      "With no arguments it trains a small causal protein model on the UniProt sample of the Debian\n"
      "package mmseqs2-examples for a few minutes, evaluates it, prints a sample and saves a checkpoint.",
      "performer-train"};
  app.set_version_flag("--version", "performer-train 0.1.0");
  app.footer(parallel_help());
  app.get_formatter()->column_width(34);

  FlagTexts texts;  // CLI11 writes here; only the flags it saw are used
  add_config_flags(app, texts);
  TrainCli& cli = outcome.cli;
  RunFlags run;
  add_run_flags(app, cli, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    outcome.exit_code = usage_exit_code(app.exit(e));
    return outcome;
  }
  try {
    cli.resume = run.resume->count() > 0;
    cli.resume_from = run.resume_from;
    if (run.stop_at_opt->count() > 0)
      cli.stop_at = int_flag("--stop-at", run.stop_at, 0, static_cast<int64_t>(kMaxCount),
                             "must be a step >= 1 (0 = no stop)");
    const std::map<std::string, std::string> given = given_flags(texts);
    const std::map<std::string, std::string> file =
        run.config_opt->count() > 0 ? read_config_file(run.config) : std::map<std::string, std::string>{};
    collect_requested(file, given, cli);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "performer-train: error: %s\n", e.what());
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
  visit_fields([&](const FieldInfo& f, auto get) {
    const char* key = f.key;
    if (!cli.requested.count(key)) return;
    if (f.kind != OnResume::Free && !(get(asked) == get(checkpoint_config))) {
      conflicts += std::string(conflicts.empty() ? "" : ", ") + "--" + key + " " + field_text(asked, key) +
                   " (the checkpoint has " + field_text(checkpoint_config, key) + ")";
      return;
    }
    get(c) = get(asked);
  });
  if (!conflicts.empty())
    throw std::invalid_argument(
        source + ": the checkpoint's model shape or data settings conflict with the flags given: " + conflicts +
        ". A resumed run keeps the model, data batching and seed of its checkpoint; drop "
        "these flags, or start a new run (another --out) to train a different model.");
  return c;
}

}  // namespace pf
