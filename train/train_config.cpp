#include "train/train_config.h"

#include "data/prepared.h"
#include "base/format.h"
#include "performer/presets.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <type_traits>

namespace pf {

namespace {

[[noreturn]] void bad(const std::string& flag, const std::string& value, const std::string& rule) {
  throw FieldValueError(flag, value, rule);
}

bool readable_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  std::ifstream in(path, std::ios::binary);
  return static_cast<bool>(in);
}

}  // namespace

const FieldInfo* find_field(const std::string& key) {
  static const std::vector<FieldInfo> fields = [] {
    std::vector<FieldInfo> out;
    visit_fields([&](const FieldInfo& f, auto) { out.push_back(f); });
    return out;
  }();
  for (const FieldInfo& f : fields)
    if (key == f.key) return &f;
  return nullptr;
}

int64_t max_threads() {
  return 4 * static_cast<int64_t>(std::max(1u, std::thread::hardware_concurrency()));
}

bool TrainConfig::operator==(const TrainConfig& o) const {
  bool same = true;
  visit_fields([&](const FieldInfo&, auto get) { same = same && get(*this) == get(o); });
  return same;
}

void TrainConfig::validate() const {
  // Every field's own range (the command line and config file were checked as read; this is for
  // configs built in C++ and read from checkpoints).
  visit_fields([&](const FieldInfo& f, auto get) {
    if (!field_within(f.spec(), get(*this))) bad(f.key, flag_text(get(*this)), f.range.rule);
  });
  if (run.threads > max_threads())
    bad("threads", std::to_string(run.threads),
        "must be at most " + std::to_string(max_threads()) + " (4 x the " + std::to_string(max_threads() / 4) +
            " cores of this machine; 0 = all cores)");
  data_config().validate();
  if (!run.preset.empty() && !presets().count(run.preset))
    bad("preset", "'" + run.preset + "'", "unknown value (expected one of: " + shape_preset_names() + ")");
  model_config(1).validate_flags();  // the model's own rules (performer/config.h), named by flag
  schedule.validate();
  if (run.precision == Precision::bf16 && !bf16_supported())
    bad("precision", enum_name(Precision::bf16), bf16_unsupported_reason());
  if (data.batch_size < distributed.world_size)
    bad("batch-size", std::to_string(data.batch_size),
        "must be at least the number of ranks, " + std::to_string(distributed.world_size) +
            " (--batch-size is the global batch, split over the ranks)");
}

Precision TrainConfig::matmul_precision() const {
  return run.precision.value_or(bf16_supported() ? Precision::bf16 : Precision::fp32);
}

void TrainConfig::check_files() const {
  auto check = [](const char* flag, const std::vector<std::string>& files) {
    for (const std::string& f : files) {
      if (readable_file(f) || (std::string(flag) == "data" && files.size() == 1 && is_prepared_dir(f))) continue;
      if (is_prepared_dir(f))
        throw std::invalid_argument(std::string("--") + flag + " " + f +
                                    " is a prepared dataset: give it alone as --data (it holds its own validation part)");
      if (f == kDefaultCorpus)
        throw std::invalid_argument(std::string("--") + flag + ": the default corpus " + f +
                                    " is not installed; install it with `apt-get install " + kDefaultCorpusPackage +
                                    "` (Debian package " + kDefaultCorpusPackage +
                                    "), or give your own corpus with --data FILE");
      std::error_code ec;
      if (!std::filesystem::exists(f, ec))
        throw std::invalid_argument(std::string("--") + flag + " " + f + ": no such file");
      throw std::invalid_argument(std::string("--") + flag + " " + f + ": not a readable regular file");
    }
  };
  check("data", data.train_files);
  check("val-data", data.val_files);
  if (!data.tokenizer.model.empty()) check("tokenizer-model", {data.tokenizer.model});
  if (!run.init_from.empty()) check("init-from", {run.init_from});
}

ModelConfig TrainConfig::model_config(int64_t vocab_size) const {
  ModelConfig m = model;
  m.vocab_size = vocab_size;
  m.max_seq_len = data.seq_len;
  m.causal = data.objective == Objective::Causal;
  m.seed = run.seed;
  return m;
}

DataConfig TrainConfig::data_config() const {
  DataConfig d = data;
  d.seed = run.seed;
  d.threads = static_cast<int>(std::clamp<int64_t>(run.threads, 0, int64_t{1} << 16));
  return d;
}

const std::map<std::string, std::map<std::string, std::string>>& presets() {
  static const std::map<std::string, std::map<std::string, std::string>> table = [] {
    std::map<std::string, std::map<std::string, std::string>> t;
    for (const ShapePreset& p : shape_presets())
      t[p.name] = {{"dim", std::to_string(p.dim)},
                   {"depth", std::to_string(p.depth)},
                   {"heads", std::to_string(p.heads)},
                   {"ff-hidden", std::to_string(p.ff_hidden)},
                   {"features", std::to_string(p.features)},
                   {"seq-len", std::to_string(p.seq_len)},
                   {"batch-size", std::to_string(p.batch_size)}};
    return t;
  }();
  return table;
}

void apply_preset(TrainConfig& c, const std::string& preset) {
  if (preset.empty()) return;
  const auto it = presets().find(preset);
  if (it == presets().end()) bad("preset", "'" + preset + "'", "unknown value (expected one of: " + shape_preset_names() + ")");
  for (const auto& [key, value] : it->second) set_field(c, key, value);
  c.run.preset = preset;
}

void set_field(TrainConfig& c, const std::string& key, const std::string& value) {
  bool found = false;
  visit_fields([&](const FieldInfo& f, auto get) {
    if (key != f.key) return;
    parse_field(f.spec(), value, get(c));
    found = true;
  });
  if (!found) throw std::invalid_argument("unknown configuration key '" + key + "'");
}

std::string field_text(const TrainConfig& c, const std::string& key) {
  std::string out;
  bool found = false;
  visit_fields([&](const FieldInfo& f, auto get) {
    if (key != f.key) return;
    out = field_text(get(c));
    found = true;
  });
  if (!found) throw std::invalid_argument("unknown configuration key '" + key + "'");
  return out;
}

std::map<std::string, std::string> config_to_map(const TrainConfig& c) {
  std::map<std::string, std::string> m;
  visit_fields([&](const FieldInfo& f, auto get) { m[f.key] = field_text(get(c)); });
  return m;
}

TrainConfig config_from_map(const std::map<std::string, std::string>& m) {
  TrainConfig c;
  for (const auto& [key, value] : m) set_field(c, key, value);
  return c;
}

}  // namespace pf
