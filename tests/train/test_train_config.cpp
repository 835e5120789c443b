// TrainConfig: validation messages name the flag; presets; the config file and the checkpoint map
// read back to the same config; parse_train_cli precedence (preset < config file < command line);
// merge_for_resume refuses Model/Data changes.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "train/cli.h"
#include "train/config_file.h"
#include "train/train_config.h"
#include "base/format.h"
#include "train/checkpoint.h"
#include "train/memory_estimate.h"
#include "performer/presets.h"
#include "train_test_util.h"

namespace pf {
namespace {

std::string validation_error(TrainConfig c) {
  try {
    c.validate();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(TrainConfig, DefaultsAreValid) {
  EXPECT_EQ(validation_error(TrainConfig{}), "");
}

// The default warm-up adapts to the run's length; only an explicit one longer than --steps is an error.
TEST(TrainConfig, DefaultWarmupFollowsTheSteps) {
  for (const auto& [steps, warmup] : std::vector<std::pair<int64_t, int64_t>>{
           {1, 0}, {2, 0}, {40, 4}, {499, 49}, {2500, 50}, {100000, 50}}) {
    TrainConfig c;
    c.steps = steps;
    EXPECT_EQ(validation_error(c), "") << "--steps " << steps;
    EXPECT_EQ(c.effective_warmup(), warmup) << "--steps " << steps;
    EXPECT_EQ(c.schedule_config().warmup, warmup) << "--steps " << steps;
  }
  TrainConfig c;
  c.steps = 40;
  c.warmup = 7;
  EXPECT_EQ(c.schedule_config().warmup, 7);
  c.warmup = 41;
  EXPECT_TRUE(test::contains(validation_error(c), "--warmup 41: must not exceed --steps 40")) << validation_error(c);
  c.warmup = -2;
  EXPECT_TRUE(test::contains(validation_error(c), "--warmup -2: must be >= 0")) << validation_error(c);
}

TEST(TrainConfig, ValidationNamesTheFlag) {
  struct Case {
    void (*edit)(TrainConfig&);
    const char* expected;
  };
  const Case cases[] = {
      {[](TrainConfig& c) { c.dim = 0; }, "--dim 0: must be > 0"},
      {[](TrainConfig& c) { c.heads = 3; }, "--heads 3: must divide --dim 128"},
      {[](TrainConfig& c) { c.seq_len = -4; }, "--seq-len -4: must be > 0"},
      {[](TrainConfig& c) { c.batch_size = 0; }, "--batch-size 0"},
      {[](TrainConfig& c) { c.attention = "linear"; },
       "--attention 'linear': unknown value (expected one of: favor, relu, softmax, favor-local)"},
      {[](TrainConfig& c) { c.optimizer = "lamb"; }, "--optimizer 'lamb'"},
      {[](TrainConfig& c) { c.schedule = "step"; }, "--schedule 'step'"},
      {[](TrainConfig& c) { c.format = "csv"; }, "--format 'csv'"},
      {[](TrainConfig& c) { c.objective = "seq2seq"; }, "--objective 'seq2seq'"},
      {[](TrainConfig& c) { c.val_fraction = 1.5; }, "--val-fraction 1.5: must be in [0, 1)"},
      {[](TrainConfig& c) { c.lr = -1; }, "--lr -1"},
      {[](TrainConfig& c) { c.dropout = 1.0; }, "--dropout 1"},
      {[](TrainConfig& c) { c.keep = 0; }, "--keep 0"},
      {[](TrainConfig& c) { c.warmup = 3000; }, "--warmup 3000: must not exceed --steps 2500"},
      {[](TrainConfig& c) { c.data.clear(); }, "--data (none)"},
      {[](TrainConfig& c) { c.preset = "huge"; }, "--preset 'huge'"},
  };
  for (const Case& k : cases) {
    TrainConfig c;
    k.edit(c);
    EXPECT_TRUE(test::contains(validation_error(c), k.expected)) << validation_error(c) << "\nexpected: " << k.expected;
  }
}

TEST(TrainConfig, MissingFilesAreNamed) {
  TrainConfig c;
  c.data = {"/nonexistent/corpus.txt"};
  try {
    c.check_files();
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_TRUE(test::contains(e.what(), "--data /nonexistent/corpus.txt: no such file")) << e.what();
  }
}

TEST(TrainConfig, PresetsFillShapeFields) {
  TrainConfig c;
  apply_preset(c, "b1");
  EXPECT_EQ(c.dim, 256);
  EXPECT_EQ(c.depth, 4);
  EXPECT_EQ(c.features, 128);
  EXPECT_EQ(c.seq_len, 1024);
  EXPECT_EQ(c.preset, "b1");
  EXPECT_THROW(apply_preset(c, "nope"), std::invalid_argument);
}

TEST(TrainConfig, MapRoundTripIsExact) {
  TrainConfig c;
  c.data = {"/a/b c.txt", "/d/e.fa"};
  c.val_data = {"/v.txt"};
  c.lr = 0.1 + 0.2;  // not exactly representable in short decimal
  c.dropout = 1.0 / 3.0;
  c.tie_embeddings = true;
  c.seed = 9223372036854775807ull;  // the largest seed (a TOML integer; kNumericRules)
  c.out = "/tmp/x";
  EXPECT_EQ(config_from_map(config_to_map(c)), c);
}

TEST(TrainConfig, ConfigFileReadsBackThroughTheCli) {
  test::TempDir dir;
  TrainConfig c;
  c.data = {dir.path("a.txt"), dir.path("b.txt")};
  c.attention = "relu";
  c.dim = 96;
  c.heads = 3;
  c.lr = 0.1 + 0.2;
  c.tie_embeddings = true;
  c.preset = "tiny";
  c.out = dir.path("out");
  const std::string file = dir.write("config.toml", to_config_file(c));
  const char* argv[] = {"performer-train", "--config", file.c_str()};
  const ParseOutcome p = parse_train_cli(3, argv);
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.cli.fresh_config(), c);
}

// The config file is TOML only (issue 30): an INI file's section line is refused, naming the line.
TEST(TrainConfig, IniFilesAreRefusedNamingTheLine) {
  test::TempDir dir;
  const std::string file = dir.write("c.ini", "[default]\ndim=64\n");
  const char* argv[] = {"performer-train", "--config", file.c_str()};
  const ParseOutcome p = parse_train_cli(3, argv);
  EXPECT_FALSE(p.ok);
  EXPECT_EQ(p.exit_code, 2);
}

// Every number field has its rule next to the field list, and a value outside it is refused as written.
TEST(TrainConfig, EveryNumberFieldHasARule) {
  const TrainConfig defaults;
  visit_fields([&](const FieldInfo& f, auto member) {
    using T = std::remove_cvref_t<decltype(defaults.*member)>;
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
      const NumericRule* r = numeric_rule(f.key);
      ASSERT_NE(r, nullptr) << f.key;
      TrainConfig c;
      EXPECT_TRUE(within(*r, static_cast<double>(c.*member))) << f.key << ": the default breaks its rule";
      std::string above = exact_str(r->hi * 2 + 1);
      if constexpr (std::is_integral_v<T>)
        above = r->hi >= 9e18 ? "9223372036854775808" : std::to_string(static_cast<long long>(r->hi) + 1);
      EXPECT_THROW(set_field(c, f.key, above), FieldValueError) << f.key << " " << above;
    }
  });
}

TEST(TrainConfig, CommandLineBeatsConfigFileBeatsPreset) {
  test::TempDir dir;
  const std::string file = dir.write("c.toml", "preset = \"small\"\ndim = 64\nheads = 2\n");
  const char* argv[] = {"performer-train", "--config", file.c_str(), "--heads", "8"};
  const ParseOutcome p = parse_train_cli(5, argv);
  ASSERT_TRUE(p.ok);
  const TrainConfig c = p.cli.fresh_config();
  EXPECT_EQ(c.dim, 64);               // config file over preset
  EXPECT_EQ(c.heads, 8);              // command line over config file
  EXPECT_EQ(c.depth, 4);              // from the preset
  EXPECT_EQ(c.seq_len, 256);          // from the preset
  EXPECT_EQ(c.lr, TrainConfig{}.lr);  // default
}

TEST(TrainConfig, ResumeRefusesModelChangesAndAcceptsFreeOnes) {
  TrainConfig ckpt;
  ckpt.data = {"/x.txt"};
  TrainCli cli;
  cli.requested = {{"steps", "900"}, {"lr", "0.0005"}};
  const TrainConfig merged = merge_for_resume(ckpt, cli, "c.ckpt");
  EXPECT_EQ(merged.steps, 900);
  EXPECT_EQ(merged.lr, 0.0005);
  cli.requested = {{"dim", "256"}, {"seed", "9"}, {"steps", "900"}};
  try {
    merge_for_resume(ckpt, cli, "c.ckpt");
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_TRUE(test::contains(e.what(), "--dim 256 (the checkpoint has 128)")) << e.what();
    EXPECT_TRUE(test::contains(e.what(), "--seed 9 (the checkpoint has 1)")) << e.what();
  }
  cli.requested = {{"dim", "128"}};  // equal values are fine
  EXPECT_NO_THROW(merge_for_resume(ckpt, cli, "c.ckpt"));
}

}  // namespace
}  // namespace pf

// train/USAGE.md (the flag reference the README links to) documents every flag performer-train has.
TEST(TrainConfig, UsageDocumentsEveryFlag) {
  std::ifstream in(PF_USAGE_MD);
  ASSERT_TRUE(in) << "cannot read " << PF_USAGE_MD;
  const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> missing;
  pf::visit_fields([&](const pf::FieldInfo& f, auto) {
    if (doc.find("`--" + std::string(f.key)) == std::string::npos) missing.push_back(f.key);
  });
  EXPECT_TRUE(missing.empty()) << "flags missing from train/USAGE.md: " << testing::PrintToString(missing);
}

namespace pf {
namespace {

// Every ModelConfig field that has a flag is a TrainConfig field of that name, and goes to the
// model and back unchanged (TrainConfig::model_config and config_from are driven by the one list).
TEST(TrainConfigModelFields, EveryFlaggedFieldRoundTrips) {
  TrainConfig c;
  c.dim = 96;
  c.heads = 3;
  c.depth = 5;
  c.ff_hidden = 200;
  c.features = 40;
  c.seq_len = 48;
  c.attention = "relu";
  c.positions = "sinusoidal";
  c.tie_embeddings = true;
  c.dropout = 0.25;
  c.orthogonal_features = false;
  c.redraw_every = 7;
  c.kernel_eps = 0.5;
  c.chunk_size = 16;
  c.seed = 99;
  c.shared_key_shift = true;
  c.antithetic_features = true;
  const ModelConfig m = c.model_config(300);
  EXPECT_EQ(m.vocab_size, 300);
  EXPECT_EQ(m.dim, 96);
  EXPECT_EQ(m.heads, 3);
  EXPECT_EQ(m.depth, 5);
  EXPECT_EQ(m.ff_hidden, 200);
  EXPECT_EQ(m.features, 40);
  EXPECT_EQ(m.max_seq_len, 48);
  EXPECT_EQ(m.attention, AttentionKind::Relu);
  EXPECT_EQ(m.positions, PositionKind::Sinusoidal);
  EXPECT_TRUE(m.tie_embeddings);
  EXPECT_EQ(m.dropout, 0.25f);
  EXPECT_FALSE(m.orthogonal_features);
  EXPECT_EQ(m.redraw_every, 7);
  EXPECT_EQ(m.kernel_eps, 0.5f);
  EXPECT_EQ(m.chunk_size, 16);
  EXPECT_EQ(m.seed, 99u);
  EXPECT_TRUE(m.shared_key_shift);
  EXPECT_TRUE(m.antithetic_features);
  EXPECT_TRUE(m.causal);

  DataConfig d = c.data_config();
  const TrainConfig back = config_from(m, d, nullptr);
  ModelConfig::visit_fields([&](const ModelField& f, auto) {
    if (!f.flag) return;
    EXPECT_EQ(field_text(back, f.flag), field_text(c, f.flag)) << f.flag;
  });
}

// Every DataConfig field set away from its default goes to a TrainConfig (config_from, what
// make_checkpoint records for a user loop) and back unchanged: a SentencePiece loop's checkpoint says
// sentencepiece, not bytes. Both directions walk visit_data_fields (train/train_config.h).
TEST(TrainConfigDataFields, EveryDataFieldRoundTripsThroughConfigFrom) {
  DataConfig d;
  d.train_files = {"a.txt", "b.txt"};
  d.val_files = {"v.txt"};
  d.format = Format::Text;
  d.val_fraction = 0.2;
  d.objective = "mlm";
  d.seq_len = 77;
  d.batch_size = 5;
  d.pack = true;
  d.skip_bad_records = true;
  d.mask_prob = 0.3;
  d.seed = 42;
  d.cache_dir = "/tmp/c";
  d.tokenizer = "sentencepiece";
  d.tokenizer_model = "m.model";
  d.vocab_size = 321;
  d.tokenizer_type = "unigram";
  d.tokenizer_sample_bytes = int64_t{3} << 20;
  d.tokenizer_sample_seed = 9;
  d.threads = 3;
  const TrainConfig t = config_from(TrainConfig{}.model_config(300), d, nullptr);
  EXPECT_EQ(t.tokenizer, "sentencepiece");
  EXPECT_EQ(t.vocab_size, 321);
  const DataConfig back = t.data_config();
  EXPECT_EQ(back.train_files, d.train_files);
  EXPECT_EQ(back.val_files, d.val_files);
  EXPECT_EQ(back.format, d.format);
  EXPECT_EQ(back.val_fraction, d.val_fraction);
  EXPECT_EQ(back.objective, d.objective);
  EXPECT_EQ(back.seq_len, d.seq_len);
  EXPECT_EQ(back.batch_size, d.batch_size);
  EXPECT_EQ(back.pack, d.pack);
  EXPECT_EQ(back.skip_bad_records, d.skip_bad_records);
  EXPECT_EQ(back.mask_prob, d.mask_prob);
  EXPECT_EQ(back.seed, d.seed);
  EXPECT_EQ(back.cache_dir, d.cache_dir);
  EXPECT_EQ(back.tokenizer, d.tokenizer);
  EXPECT_EQ(back.tokenizer_model, d.tokenizer_model);
  EXPECT_EQ(back.vocab_size, d.vocab_size);
  EXPECT_EQ(back.tokenizer_type, d.tokenizer_type);
  EXPECT_EQ(back.tokenizer_sample_bytes, d.tokenizer_sample_bytes);
  EXPECT_EQ(back.tokenizer_sample_seed, d.tokenizer_sample_seed);
  EXPECT_EQ(back.threads, d.threads);
}

// One set of defaults: a default DataConfig is what performer-train's defaults give.
TEST(TrainConfigDataFields, DefaultsAgreeWithTheCommandLine) {
  const DataConfig lib, cli = TrainConfig{}.data_config();
  EXPECT_EQ(lib.val_fraction, cli.val_fraction);
  EXPECT_EQ(lib.mask_prob, cli.mask_prob);
  EXPECT_EQ(lib.tokenizer, cli.tokenizer);
  EXPECT_EQ(lib.tokenizer_type, cli.tokenizer_type);
  EXPECT_EQ(lib.tokenizer_sample_bytes, cli.tokenizer_sample_bytes);
  EXPECT_EQ(lib.tokenizer_sample_seed, cli.tokenizer_sample_seed);
}

TEST(TrainConfigModelFields, LibraryOnlyFieldsAreFlagsNow) {
  for (const std::string key : {"chunk-size", "kernel-eps", "shared-key-shift", "orthogonal-features"})
    EXPECT_NO_THROW(field_text(TrainConfig{}, key)) << key;
  TrainConfig c;
  c.chunk_size = 0;
  EXPECT_EQ(validation_error(c), "--chunk-size 0: must be > 0");
  c = TrainConfig{};
  c.kernel_eps = -1;
  EXPECT_EQ(validation_error(c), "--kernel-eps -1: must be finite and >= 0");
}

TEST(TrainConfigModelFields, PresetsComeFromTheOneTable) {
  for (const ShapePreset& p : shape_presets()) {
    TrainConfig c;
    apply_preset(c, p.name);
    EXPECT_EQ(c.dim, p.dim) << p.name;
    EXPECT_EQ(c.depth, p.depth) << p.name;
    EXPECT_EQ(c.heads, p.heads) << p.name;
    EXPECT_EQ(c.ff_hidden, p.ff_hidden) << p.name;
    EXPECT_EQ(c.features, p.features) << p.name;
    EXPECT_EQ(c.seq_len, p.seq_len) << p.name;
    EXPECT_EQ(c.batch_size, p.batch_size) << p.name;
  }
  EXPECT_EQ(shape_preset("b1").dim, 256);
  EXPECT_EQ(shape_preset("b3").dim, 512);
  EXPECT_THROW(shape_preset("b9"), std::invalid_argument);
}

}  // namespace
}  // namespace pf

namespace pf {
namespace {

// The memory estimate counts the model's parameters exactly (bytes vocabulary: 258 tokens), and
// refuses a run against a given amount of available memory, naming the flags of its largest part.
TEST(MemoryEstimate, CountsTheParametersAndRefusesWhatCannotFit) {
  TrainConfig c = test::tiny_train_config("corpus.txt");
  for (const char* attention : {"favor", "favor-local", "softmax", "relu"})
    for (bool tied : {false, true})
      for (const char* positions : {"learned", "rotary"}) {
        c.attention = attention;
        c.tie_embeddings = tied;
        c.positions = positions;
        PerformerLM model(c.model_config(258));
        EXPECT_EQ(estimate_memory(c).parameters, static_cast<double>(model.num_parameters()))
            << attention << " tied " << tied << " " << positions;
      }
  EXPECT_NO_THROW(check_memory(c, 1, 1e12));
  c.batch_size = 10'000'000;
  try {
    check_memory(c, 1, 1e12);
    ADD_FAILURE() << "a batch of ten million rows fits in 1 TB?";
  } catch (const std::invalid_argument& e) {
    EXPECT_TRUE(test::contains(e.what(), "1.0 TB are available") && test::contains(e.what(), "activations") &&
                test::contains(e.what(), "lower --batch-size"))
        << e.what();
  }
}

}  // namespace
}  // namespace pf
