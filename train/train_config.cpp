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

void one_of(const char* flag, const std::string& v, std::initializer_list<const char*> allowed) {
  std::string list;
  for (const char* a : allowed) {
    if (v == a) return;
    list += (list.empty() ? "" : ", ") + std::string(a);
  }
  bad(flag, "'" + v + "'", "unknown value (expected one of: " + list + ")");
}

std::string quote(const std::string& s) {
  const char q = s.find('"') == std::string::npos ? '"' : '\'';
  return q + s + q;
}

std::string unquote(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t b = 0;
  while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  s = s.substr(b);
  if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front())
    return s.substr(1, s.size() - 2);
  return s;
}

// ["a", "b"] or a single (quoted or bare) value.
std::vector<std::string> parse_list(const std::string& text) {
  std::string t = unquote(text);
  std::vector<std::string> out;
  if (t.size() >= 2 && t.front() == '[' && t.back() == ']') {
    t = t.substr(1, t.size() - 2);
    std::string item;
    char in_quote = 0;
    for (char ch : t) {
      if (in_quote) {
        if (ch == in_quote) in_quote = 0;
        item += ch;
      } else if (ch == '"' || ch == '\'') {
        in_quote = ch;
        item += ch;
      } else if (ch == ',') {
        out.push_back(unquote(item));
        item.clear();
      } else {
        item += ch;
      }
    }
    if (!unquote(item).empty()) out.push_back(unquote(item));
    return out;
  }
  if (!t.empty()) out.push_back(t);
  return out;
}

template <class T>
std::string text_of(const T& v) {
  if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + quote(v[i]);
    return s + "]";
  } else if constexpr (std::is_same_v<T, std::string>) {
    return quote(v);
  } else if constexpr (std::is_same_v<T, bool>) {
    return v ? "true" : "false";
  } else if constexpr (std::is_same_v<T, double>) {
    return exact_str(v);
  } else {
    return std::to_string(v);
  }
}

// Whether v keeps its field's rule; integers also fit a TOML integer (signed 64 bits), which a double
// bound cannot say exactly at 2^63.
template <class T>
bool keeps_rule(const NumericRule& r, T v) {
  if constexpr (std::is_unsigned_v<T>)
    if (v > static_cast<T>(INT64_MAX)) return false;
  return within(r, static_cast<double>(v));
}

// The field's rule for a value read from `text` (reported as written).
template <class T>
void check_rule(const std::string& key, const std::string& text, T v) {
  const NumericRule* r = numeric_rule(key);
  if (r && !keeps_rule(*r, v)) bad(key, text, r->rule);
}

template <class T>
void parse_into(const std::string& key, const std::string& text, T& out) {
  const std::string t = unquote(text);
  if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    out = parse_list(text);
  } else if constexpr (std::is_same_v<T, std::string>) {
    out = t;
  } else if constexpr (std::is_same_v<T, bool>) {
    if (t == "true" || t == "1" || t == "on" || t == "yes")
      out = true;
    else if (t == "false" || t == "0" || t == "off" || t == "no")
      out = false;
    else
      bad(key, t, "expected true or false");
  } else if constexpr (std::is_same_v<T, double>) {
    char* end = nullptr;
    const double v = std::strtod(t.c_str(), &end);
    if (t.empty() || end != t.c_str() + t.size()) bad(key, t, "expected a number");
    check_rule(key, t, v);
    out = v;
  } else {
    T v{};
    const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    const NumericRule* r = numeric_rule(key);
    if (r && (ec == std::errc::result_out_of_range || (std::is_unsigned_v<T> && !t.empty() && t[0] == '-')))
      bad(key, t, r->rule);
    if (t.empty() || ec != std::errc() || ptr != t.data() + t.size()) bad(key, t, "expected an integer");
    check_rule(key, t, v);
    out = v;
  }
}

bool readable_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  std::ifstream in(path, std::ios::binary);
  return static_cast<bool>(in);
}

}  // namespace

const NumericRule* numeric_rule(const std::string& key) {
  for (const NumericRule& r : kNumericRules)
    if (key == r.key) return &r;
  return nullptr;
}

bool within(const NumericRule& r, double v) {
  return (r.lo_open ? v > r.lo : v >= r.lo) && (r.hi_open ? v < r.hi : v <= r.hi);
}

int64_t max_threads() {
  return 4 * static_cast<int64_t>(std::max(1u, std::thread::hardware_concurrency()));
}

namespace {

// Every numeric field against its rule (the command line and config file were checked as read; this
// is for configs built in C++ and read from checkpoints).
void check_numeric_rules(const TrainConfig& c) {
  visit_fields([&](const FieldInfo& f, auto member) {
    using T = std::remove_cvref_t<decltype(c.*member)>;
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
      const NumericRule* r = numeric_rule(f.key);
      if (!r) throw std::logic_error(std::string("no NumericRule for --") + f.key + " (train_config.h)");
      if (!keeps_rule(*r, c.*member)) bad(f.key, text_of(c.*member), r->rule);
    }
  });
  if (c.threads > max_threads())
    bad("threads", std::to_string(c.threads),
        "must be at most " + std::to_string(max_threads()) + " (4 x the " + std::to_string(max_threads() / 4) +
            " cores of this machine; 0 = all cores)");
}

void validate_tokenizer(const TrainConfig& c) {
  one_of("tokenizer", c.tokenizer, {"bytes", "sentencepiece"});
  one_of("tokenizer-type", c.tokenizer_type, {"bpe", "unigram"});
  if (c.tokenizer == "bytes") {
    if (!c.tokenizer_model.empty())
      bad("tokenizer-model", c.tokenizer_model, "applies to --tokenizer sentencepiece only (the tokenizer is bytes)");
    if (c.vocab_size != 0)
      bad("vocab-size", std::to_string(c.vocab_size),
          "applies to --tokenizer sentencepiece only (the byte tokenizer has 256 tokens)");
    if (c.tokenizer_type != "bpe")
      bad("tokenizer-type", c.tokenizer_type, "applies to --tokenizer sentencepiece only (the tokenizer is bytes)");
    return;
  }
  if (c.tokenizer_model.empty() && c.vocab_size == 0)
    bad("tokenizer", c.tokenizer,
        "needs --tokenizer-model FILE (an existing SentencePiece model) or --vocab-size N (train one on the "
        "training split)");
  if (c.format == "fasta")
    bad("tokenizer", c.tokenizer,
        "applies to text corpora; --format fasta is read with the protein vocabulary (give --format text to read "
        "the file as text)");
  if (c.vocab_size != 0 && c.vocab_size < kMinSentencePieceVocab)
    bad("vocab-size", std::to_string(c.vocab_size),
        "must be at least " + std::to_string(kMinSentencePieceVocab) +
            " (or 0 with --tokenizer-model): a SentencePiece model here holds the 256 byte pieces (byte fallback) "
            "and <unk>, <s>, </s>");
}

}  // namespace

void TrainConfig::validate() const {
  check_numeric_rules(*this);
  if (data.empty()) bad("data", "(none)", "give at least one corpus file");
  one_of("format", format, {"auto", "text", "fasta"});
  one_of("objective", objective, {"causal", "mlm"});
  validate_tokenizer(*this);
  if (!preset.empty() && !presets().count(preset))
    bad("preset", "'" + preset + "'", "unknown value (expected one of: " + shape_preset_names() + ")");
  one_of("attention", attention, {"favor", "relu", "softmax", "favor-local"});
  one_of("feature-map", feature_map, {"favor+", "favor++"});
  one_of("positions", positions, {"learned", "sinusoidal", "rotary"});
  model_config(1).validate_flags();  // the model's own rules (performer/config.h), named by flag
  one_of("optimizer", optimizer, {"sgd", "adam", "adamw"});
  one_of("schedule", schedule, {"constant", "cosine", "linear"});
  if (schedule != "constant" && warmup > steps)
    bad("warmup", std::to_string(warmup), "must not exceed --steps " + std::to_string(steps));
  one_of("precision", precision, {"fp32", "bf16", "auto"});
  if (precision == "bf16" && !bf16_supported()) bad("precision", precision, bf16_unsupported_reason());
  if (batch_size < world_size)
    bad("batch-size", std::to_string(batch_size),
        "must be at least the number of ranks, " + std::to_string(world_size) +
            " (--batch-size is the global batch, split over the ranks)");
}

Precision TrainConfig::matmul_precision() const {
  if (precision == "auto") return bf16_supported() ? Precision::bf16 : Precision::fp32;
  return parse_precision(precision);
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
  check("data", data);
  check("val-data", val_data);
  if (!tokenizer_model.empty()) check("tokenizer-model", {tokenizer_model});
  if (!init_from.empty()) check("init-from", {init_from});
}

namespace {

// A field's value as a command line would give it (strings unquoted, unlike field_text).
std::string flag_value(const TrainConfig& c, const std::string& key) {
  std::string out;
  visit_fields([&](const FieldInfo& f, auto member) {
    if (key != f.key) return;
    if constexpr (std::is_same_v<std::decay_t<decltype(c.*member)>, std::string>)
      out = c.*member;
    else
      out = text_of(c.*member);
  });
  return out;
}

}  // namespace

ModelConfig TrainConfig::model_config(int64_t vocab_size) const {
  ModelConfig m;
  m.vocab_size = vocab_size;
  m.causal = objective == "causal";
  ModelConfig::visit_fields([&](const ModelField& f, auto member) {
    if (f.flag) parse_model_field("--" + std::string(f.flag), flag_value(*this, f.flag), m.*member);
  });
  return m;
}

DataConfig TrainConfig::data_config() const {
  return to_data_config(*this);
}

DataConfig to_data_config(const TrainConfig& t) {
  DataConfig d;
  visit_data_fields([&](auto tm, auto dm) { d.*dm = t.*tm; });
  d.format = parse_format(t.format);
  d.threads = static_cast<int>(std::clamp<int64_t>(t.threads, 0, int64_t{1} << 16));
  return d;
}

void from_data_config(const DataConfig& d, TrainConfig& t) {
  visit_data_fields([&](auto tm, auto dm) { t.*tm = d.*dm; });
  t.format = format_name(d.format);
  t.threads = d.threads;
}


ScheduleConfig TrainConfig::schedule_config() const {
  ScheduleConfig s;
  s.kind = schedule;
  s.lr = static_cast<float>(lr);
  s.warmup = effective_warmup();
  s.total_steps = steps;
  s.min_lr_ratio = static_cast<float>(min_lr_ratio);
  return s;
}

int64_t TrainConfig::effective_warmup() const {
  return warmup >= 0 ? warmup : std::min<int64_t>(50, steps / 10);
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
  c.preset = preset;
}

void set_field(TrainConfig& c, const std::string& key, const std::string& value) {
  bool found = false;
  visit_fields([&](const FieldInfo& f, auto member) {
    if (key != f.key) return;
    parse_into(key, value, c.*member);
    found = true;
  });
  if (!found) throw std::invalid_argument("unknown configuration key '" + key + "'");
}

std::string field_text(const TrainConfig& c, const std::string& key) {
  std::string out;
  bool found = false;
  visit_fields([&](const FieldInfo& f, auto member) {
    if (key != f.key) return;
    out = text_of(c.*member);
    found = true;
  });
  if (!found) throw std::invalid_argument("unknown configuration key '" + key + "'");
  return out;
}

std::map<std::string, std::string> config_to_map(const TrainConfig& c) {
  std::map<std::string, std::string> m;
  visit_fields([&](const FieldInfo& f, auto member) { m[f.key] = text_of(c.*member); });
  return m;
}

TrainConfig config_from_map(const std::map<std::string, std::string>& m) {
  TrainConfig c;
  for (const auto& [key, value] : m) set_field(c, key, value);
  return c;
}

}  // namespace pf
