// A fuzz test of performer-train's input checks (issue 30), with a fixed seed: a few hundred generated
// bad config files, bad flag values and damaged safetensors files for --init-from. Every one must be
// refused with exit code 2 (no signal, no other code), a message naming the key, flag or file, and
// nothing written to the output directory.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "base/format.h"
#include "base/random.h"
#include "train_test_util.h"

namespace pf {
namespace {

using test::contains;
namespace fs = std::filesystem;

struct Field {
  std::string key;
  enum Kind { List, Text, Bool, Int, Real } kind;
  const Range* rule = nullptr;  // numeric fields
};

std::vector<Field> fields() {
  std::vector<Field> out;
  const TrainConfig c;
  visit_fields([&](const FieldInfo& f, auto get) {
    using T = std::remove_cvref_t<decltype(get(c))>;
    Field x{f.key, Field::Text, f.range.rule ? &find_field(f.key)->range : nullptr};
    if constexpr (std::is_same_v<T, std::vector<std::string>>) x.kind = Field::List;
    if constexpr (std::is_same_v<T, bool>) x.kind = Field::Bool;
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) x.kind = Field::Int;
    if constexpr (std::is_floating_point_v<T>) x.kind = Field::Real;
    out.push_back(x);
  });
  return out;
}

// The enumerated string fields (any other text is refused); free text (paths) is not fuzzed.
bool enumerated(const std::string& key) {
  for (const char* k : {"format", "objective", "tokenizer", "tokenizer-type", "preset", "attention", "positions",
                        "feature-map", "optimizer", "schedule", "precision"})
    if (key == k) return true;
  return false;
}

std::string letters(Generator& g, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += static_cast<char>('a' + g.below(26));
  return s;
}

// A value outside the field's rule, or not of its type, as text.
std::string bad_number(Generator& g, const Field& f) {
  const Range& r = *f.rule;
  switch (g.below(6)) {
    case 0:
      return f.kind == Field::Int ? std::to_string(static_cast<long long>(r.lo) - 1 - static_cast<long long>(g.below(5)))
                                  : exact_str(r.lo - 0.5 - static_cast<double>(g.below(5)));
    case 1:
      return f.kind == Field::Int ? "99999999999999999999" + std::to_string(g.below(10)) : "1e" + std::to_string(400 + g.below(100));
    case 2:
      return f.kind == Field::Int ? std::to_string(g.below(9) + 1) + "." + std::to_string(g.below(10) + 1) : "nan";
    case 3:
      return std::to_string(g.below(100)) + letters(g, 2);
    case 4:
      return f.kind == Field::Int ? std::to_string(g.below(9) + 1) + "e3" : "--" + letters(g, 3);
    default:
      return f.kind == Field::Int ? "0x" + std::to_string(g.below(100) + 10) : letters(g, 4);
  }
}

// A damaged copy of a safetensors file that breaks it for sure: its structure, a dtype, a shape, a
// tensor or metadata name, its length field, its size, or a non-finite value.
std::string damage(Generator& g, const std::string& file, std::string& what) {
  uint64_t n = 0;
  std::memcpy(&n, file.data(), 8);
  std::string out = file;
  const std::string header = file.substr(8, n);
  auto at = [&](const std::string& needle) {
    std::vector<size_t> hits;
    for (size_t p = header.find(needle); p != std::string::npos; p = header.find(needle, p + 1)) hits.push_back(p);
    return hits.empty() ? std::string::npos : 8 + hits[g.below(hits.size())];
  };
  switch (g.below(7)) {
    case 0: {
      what = "structure";
      const char* structural = "{}[]:,\"";
      size_t p = std::string::npos;
      while (p == std::string::npos) p = at(std::string(1, structural[g.below(7)]));
      out[p] = "#x;|@"[g.below(5)];
      return out;
    }
    case 1:
      what = "dtype";
      out.replace(at("\"F32\""), 5, g.below(2) ? "\"I64\"" : "\"F3X\"");
      return out;
    case 2: {
      what = "shape";
      const size_t p = at("\"shape\":[") + 9;
      out[p] = out[p] == '9' ? '1' : static_cast<char>(out[p] + 1);
      return out;
    }
    case 3: {
      what = "name";
      const size_t p = at(g.below(2) ? "\"format\"" : ".weight\"") + 2;
      out[p] = static_cast<char>(out[p] ^ 1);
      return out;
    }
    case 4: {
      what = "length field";
      const uint64_t m = g.below(2) ? n + 8 * (1 + g.below(4)) : n - 8 * (1 + g.below(4));
      std::memcpy(out.data(), &m, 8);
      return out;
    }
    case 5:
      what = "truncated";
      return out.substr(0, g.below(out.size()));
    default: {
      what = "non-finite value";
      const float v = g.below(2) ? NAN : INFINITY;
      const size_t p = 8 + n + 4 * g.below((out.size() - 8 - n) / 4);
      std::memcpy(out.data() + p, &v, 4);
      return out;
    }
  }
}

class FuzzTest : public ::testing::Test {
 protected:
  void SetUp() override { corpus_ = dir_.write("corpus.txt", test::word_text(2000, 5)); }
  std::vector<std::string> base() const {
    std::vector<std::string> args = {PF_TRAIN_BIN};
    for (const std::string& f : test::tiny_flags()) args.push_back(f);
    args.insert(args.end(), {"--attention", "favor", "--data", corpus_, "--out", out(), "--steps", "2"});
    return args;
  }
  std::string out() const { return dir_.path("out"); }
  // Refused (2), the message names `name`, nothing written; `what` describes the case.
  void expect_refused(std::vector<std::string> extra, const std::string& name, const std::string& what) {
    std::vector<std::string> args = base();
    args.insert(args.end(), extra.begin(), extra.end());
    const test::CommandResult r = test::run_command(args);
    EXPECT_EQ(r.exit_code, 2) << what << "\n" << r.err;
    EXPECT_TRUE(contains(r.err, name)) << what << ": the message does not name " << name << ":\n" << r.err;
    EXPECT_FALSE(fs::exists(out())) << what << ": the output directory was written";
    fs::remove_all(out());
    ++cases_;
  }
  // Damaged copies of an exported model given to --init-from.
  void fuzz_safetensors(Generator& g, int count) {
    std::vector<std::string> args = base();
    for (std::string& a : args)
      if (a == out()) a = dir_.path("source");
    const test::CommandResult t = test::run_command(args);
    ASSERT_EQ(t.exit_code, 0) << t.err;
    const std::string exported = dir_.path("model.safetensors");
    const test::CommandResult e = test::run_command({PF_EXPORT_BIN, "--checkpoint", dir_.path("source"), "--out", exported});
    ASSERT_EQ(e.exit_code, 0) << e.err;
    const std::string file = test::read_file(exported);
    const std::string path = dir_.path("fuzz.safetensors");
    for (int i = 0; i < count; ++i) {
      std::string what;
      dir_.write("fuzz.safetensors", damage(g, file, what));
      expect_refused({"--init-from", path}, path, "safetensors " + std::to_string(i) + ": " + what);
    }
  }
  test::TempDir dir_;
  std::string corpus_;
  int cases_ = 0;
};

// A config file line `key = value` that breaks one rule; returns the file's text.
std::string bad_config(Generator& g, const std::vector<Field>& all, std::string& what) {
  const Field& f = all[g.below(all.size())];
  const std::string ok = f.kind == Field::List ? "[\"a\"]" : f.kind == Field::Bool ? "true"
                         : f.kind == Field::Text ? "\"x\"" : "1";
  switch (g.below(8)) {
    case 0:
      what = "unknown key";
      return "zz" + letters(g, 5) + " = 1\n";
    case 1:
      what = "duplicate key " + f.key;
      return f.key + " = " + ok + "\n" + f.key + " = " + ok + "\n";
    case 2:
      what = "section";
      return "[" + letters(g, 6) + "]\n" + f.key + " = " + ok + "\n";
    case 3: {
      what = "wrong type for " + f.key;
      const char* values[] = {"\"5\"", "[5]", "true", "2.5", "{ a = 1 }", "1979-05-27"};
      std::string v = values[g.below(6)];
      if (v == ok || (f.kind == Field::Real && v == "2.5") || (f.kind == Field::Bool && v == "true") ||
          (f.kind == Field::Text && v == "\"5\"") || (f.kind == Field::List && v == "\"5\""))
        v = "{ b = 2 }";
      return f.key + " = " + v + "\n";
    }
    case 4:
      if (f.rule != nullptr) {
        what = "out of range " + f.key;
        const std::string v = bad_number(g, f);
        if (v.rfind("0x", 0) == 0) return f.key + " = 0xZZ\n";  // hex is TOML; a bad hex digit is not
        if (f.kind == Field::Int || v.find_first_not_of("0123456789-.e+") == std::string::npos || v == "nan")
          return f.key + " = " + v + "\n";
      }
      [[fallthrough]];
    case 5:
      what = "trailing garbage after " + f.key;
      return f.key + " = " + ok + " " + letters(g, 3) + "\n";
    case 6: {
      what = "random bytes";
      std::string s = f.key + " = ";
      for (int i = 0; i < 40; ++i) s += static_cast<char>(g.below(256));
      return s + std::string(1, '\0') + "\n";
    }
    default:
      what = "missing value for " + f.key;
      return f.key + " =\n";
  }
}

TEST_F(FuzzTest, BadConfigFilesFlagValuesAndSafetensorsAreRefused) {
  Generator g(30);
  const std::vector<Field> all = fields();
  for (int i = 0; i < 120; ++i) {
    std::string what;
    const std::string file = dir_.write("fuzz.toml", bad_config(g, all, what));
    expect_refused({"--config", file}, "fuzz.toml", "config " + std::to_string(i) + ": " + what);
  }
  for (int i = 0; i < 120; ++i) {
    const Field& f = all[g.below(all.size())];
    std::vector<std::string> extra;
    if (f.rule != nullptr) {
      extra = {"--" + f.key, bad_number(g, f)};
    } else if (f.kind == Field::Text && enumerated(f.key)) {
      extra = {"--" + f.key, "zz" + letters(g, 4)};
    } else if (f.kind == Field::Bool) {
      extra = {"--" + f.key + "=" + letters(g, 3)};
    } else {
      extra = {"--zz" + letters(g, 5), "1"};
    }
    expect_refused(extra, extra[0].substr(0, extra[0].find('=')), "flag " + std::to_string(i) + ": " + extra[0] + " " +
                                                                    (extra.size() > 1 ? extra[1] : ""));
  }
  fuzz_safetensors(g, 60);
  EXPECT_GE(cases_, 300);
}

}  // namespace
}  // namespace pf
