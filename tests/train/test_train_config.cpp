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
    c.schedule.total_steps = steps;
    EXPECT_EQ(validation_error(c), "") << "--steps " << steps;
    EXPECT_EQ(c.effective_warmup(), warmup) << "--steps " << steps;
    EXPECT_EQ(c.schedule_config().effective_warmup(), warmup) << "--steps " << steps;
  }
  TrainConfig c;
  c.schedule.total_steps = 40;
  c.schedule.warmup = 7;
  EXPECT_EQ(c.schedule_config().warmup, 7);
  c.schedule.warmup = 41;
  EXPECT_TRUE(test::contains(validation_error(c), "--warmup 41: must not exceed --steps 40")) << validation_error(c);
  c.schedule.warmup = -2;
  EXPECT_TRUE(test::contains(validation_error(c), "--warmup -2: must be >= 0")) << validation_error(c);
}

TEST(TrainConfig, ValidationNamesTheFlag) {
  struct Case {
    void (*edit)(TrainConfig&);
    const char* expected;
  };
  const Case cases[] = {
      {[](TrainConfig& c) { c.model.dim = 0; }, "--dim 0: must be > 0"},
      {[](TrainConfig& c) { c.model.heads = 3; }, "--heads 3: must divide --dim 128"},
      {[](TrainConfig& c) { c.data.seq_len = -4; }, "--seq-len -4: must be > 0"},
      {[](TrainConfig& c) { c.data.batch_size = 0; }, "--batch-size 0"},
      {[](TrainConfig& c) { set_field(c, "attention", "linear"); },
       "--attention 'linear': unknown value (expected one of: favor, relu, softmax, favor-local)"},
      {[](TrainConfig& c) { set_field(c, "optimizer", "lamb"); }, "--optimizer 'lamb': unknown value"},
      {[](TrainConfig& c) { set_field(c, "schedule", "step"); }, "--schedule 'step': unknown value"},
      {[](TrainConfig& c) { set_field(c, "format", "csv"); }, "--format 'csv': unknown value"},
      {[](TrainConfig& c) { set_field(c, "objective", "seq2seq"); }, "--objective 'seq2seq': unknown value"},
      {[](TrainConfig& c) { c.data.val_fraction = 1.5; }, "--val-fraction 1.5: must be in [0, 1)"},
      {[](TrainConfig& c) { c.schedule.lr = -1; }, "--lr -1"},
      {[](TrainConfig& c) { c.model.dropout = 1.0; }, "--dropout 1"},
      {[](TrainConfig& c) { c.run.keep = 0; }, "--keep 0"},
      {[](TrainConfig& c) { c.schedule.warmup = 3000; }, "--warmup 3000: must not exceed --steps 2500"},
      {[](TrainConfig& c) { c.data.train_files.clear(); }, "--data (none)"},
      {[](TrainConfig& c) { c.run.preset = "huge"; }, "--preset 'huge'"},
  };
  for (const Case& k : cases) {
    TrainConfig c;
    std::string error;
    try {
      k.edit(c);  // a name is refused as it is read
      error = validation_error(c);
    } catch (const FieldValueError& e) {
      error = e.what();
    }
    EXPECT_TRUE(test::contains(error, k.expected)) << error << "\nexpected: " << k.expected;
  }
}

TEST(TrainConfig, MissingFilesAreNamed) {
  TrainConfig c;
  c.data.train_files = {"/nonexistent/corpus.txt"};
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
  EXPECT_EQ(c.model.dim, 256);
  EXPECT_EQ(c.model.depth, 4);
  EXPECT_EQ(c.model.features, 128);
  EXPECT_EQ(c.data.seq_len, 1024);
  EXPECT_EQ(c.run.preset, "b1");
  EXPECT_THROW(apply_preset(c, "nope"), std::invalid_argument);
}

TEST(TrainConfig, MapRoundTripIsExact) {
  TrainConfig c;
  c.data.train_files = {"/a/b c.txt", "/d/e.fa"};
  c.data.val_files = {"/v.txt"};
  c.schedule.lr = 0.1 + 0.2;  // not exactly representable in short decimal
  c.model.dropout = 1.0 / 3.0;
  c.model.tie_embeddings = true;
  c.run.seed = 9223372036854775807ull;  // the largest seed (a TOML integer; kSeed)
  c.run.out = "/tmp/x";
  EXPECT_EQ(config_from_map(config_to_map(c)), c);
}

TEST(TrainConfig, ConfigFileReadsBackThroughTheCli) {
  test::TempDir dir;
  TrainConfig c;
  c.data.train_files = {dir.path("a.txt"), dir.path("b.txt")};
  c.model.attention = AttentionKind::Relu;
  c.model.dim = 96;
  c.model.heads = 3;
  c.schedule.lr = 0.1 + 0.2;
  c.model.tie_embeddings = true;
  c.run.preset = "tiny";
  c.run.out = dir.path("out");
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
  visit_fields([&](const FieldInfo& f, auto get) {
    using T = std::remove_cvref_t<decltype(get(defaults))>;
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
      ASSERT_NE(f.range.rule, nullptr) << f.key << " has no range";
      const Range* r = &f.range;
      TrainConfig c;
      EXPECT_TRUE(r->contains(static_cast<double>(get(c)))) << f.key << ": the default breaks its rule";
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
  EXPECT_EQ(c.model.dim, 64);               // config file over preset
  EXPECT_EQ(c.model.heads, 8);              // command line over config file
  EXPECT_EQ(c.model.depth, 4);              // from the preset
  EXPECT_EQ(c.data.seq_len, 256);          // from the preset
  EXPECT_EQ(c.schedule.lr, TrainConfig{}.schedule.lr);  // default
}

TEST(TrainConfig, ResumeRefusesModelChangesAndAcceptsFreeOnes) {
  TrainConfig ckpt;
  ckpt.data.train_files = {"/x.txt"};
  TrainCli cli;
  cli.requested = {{"steps", "900"}, {"lr", "0.0005"}};
  const TrainConfig merged = merge_for_resume(ckpt, cli, "c.ckpt");
  EXPECT_EQ(merged.schedule.total_steps, 900);
  EXPECT_EQ(merged.schedule.lr, 0.0005f);
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

// train/USAGE.md (the flag reference the README links to) documents every flag performer-train has,
// and the default column of its tables agrees with the field lists (numbers and names: the default's
// text; switches: on or off).
TEST(TrainConfig, UsageDocumentsEveryFlag) {
  std::ifstream in(PF_USAGE_MD);
  ASSERT_TRUE(in) << "cannot read " << PF_USAGE_MD;
  const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> missing;
  const pf::TrainConfig defaults;
  pf::visit_fields([&](const pf::FieldInfo& f, auto get) {
    const std::string flag = "`--" + std::string(f.key);
    const size_t row = doc.find("\n| " + flag);
    if (row == std::string::npos) {
      missing.push_back(f.key);
      return;
    }
    using T = std::remove_cvref_t<decltype(get(defaults))>;
    if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::vector<std::string>>) {
      return;  // paths: described in words
    } else {
      const size_t cell = doc.find("| ", doc.find(" | ", row + 1) + 1);  // the second column
      const std::string text = doc.substr(cell + 2, doc.find(" |", cell + 2) - cell - 2);
      std::string want = pf::flag_text(get(defaults));
      if constexpr (std::is_same_v<T, bool>) want = get(defaults) ? "on" : "off";
      EXPECT_EQ(text.rfind(want, 0), 0u) << "train/USAGE.md gives --" << f.key << " the default '" << text
                                         << "', the field list " << want;
    }
  });
  EXPECT_TRUE(missing.empty()) << "flags missing from train/USAGE.md tables: " << testing::PrintToString(missing);
}

namespace pf {
namespace {

// Every ModelConfig field that has a flag is a TrainConfig field of that name, and goes to the
// model and back unchanged (TrainConfig::model_config and config_from are driven by the one list).
TEST(TrainConfigModelFields, EveryFlaggedFieldRoundTrips) {
  TrainConfig c;
  c.model = ModelConfig{.dim = 96, .depth = 5, .heads = 3, .ff_hidden = 200, .features = 40,
                        .attention = AttentionKind::Relu, .positions = PositionKind::Sinusoidal,
                        .tie_embeddings = true, .dropout = 0.25f, .orthogonal_features = false, .redraw_every = 7,
                        .kernel_eps = 0.5f, .chunk_size = 16, .shared_key_shift = true, .antithetic_features = true};
  c.data.seq_len = 48;
  c.data.objective = Objective::Mlm;
  c.run.seed = 99;
  // The model part itself, with the fields that follow other settings filled in.
  const ModelConfig m = c.model_config(300);
  ModelConfig expected = c.model;
  expected.vocab_size = 300;
  expected.max_seq_len = 48;
  expected.causal = false;
  expected.seed = 99;
  EXPECT_TRUE(m == expected) << m.describe() << "\n" << expected.describe();

  DataConfig d = c.data_config();
  const TrainConfig back = config_from(m, d, nullptr);
  ModelConfig::visit_fields([&](const ModelField& f, auto) {
    if (!f.spec.key) return;
    EXPECT_EQ(field_text(back, f.spec.key), field_text(c, f.spec.key)) << f.spec.key;
  });
}

// Every DataConfig field set away from its default goes to a TrainConfig (config_from, what
// make_checkpoint records for a user loop) and back unchanged: a SentencePiece loop's checkpoint says
// sentencepiece, not bytes. TrainConfig holds the DataConfig itself, so no field can be dropped.
TEST(TrainConfigDataFields, EveryDataFieldRoundTripsThroughConfigFrom) {
  const DataConfig d{.train_files = {"a.txt", "b.txt"},
                     .val_files = {"v.txt"},
                     .format = Format::Text,
                     .val_fraction = 0.2,
                     .objective = Objective::Mlm,
                     .seq_len = 77,
                     .batch_size = 5,
                     .mask_prob = 0.3,
                     .pack = true,
                     .skip_bad_records = true,
                     .cache_dir = "/tmp/c",
                     .tokenizer = {.kind = TokenizerKind::SentencePiece,
                                   .model = "m.model",
                                   .vocab_size = 321,
                                   .type = SentencePieceType::Unigram,
                                   .sample_bytes = int64_t{3} << 20,
                                   .sample_seed = 9},
                     .seed = 42,
                     .threads = 3};
  const TrainConfig t = config_from(TrainConfig{}.model_config(300), d, nullptr);
  EXPECT_EQ(field_text(t, "tokenizer"), "\"sentencepiece\"");
  EXPECT_EQ(field_text(t, "vocab-size"), "321");
  // Through the checkpoint's text form and back.
  const DataConfig back = config_from_map(config_to_map(t)).data_config();
  EXPECT_TRUE(back == d);
  DataConfig::visit_fields([&](const FieldSpec& f, auto member) { EXPECT_TRUE(back.*member == d.*member) << f.key; });
  TokenizerConfig::visit_fields(
      [&](const FieldSpec& f, auto member) { EXPECT_TRUE(back.tokenizer.*member == d.tokenizer.*member) << f.key; });
}

// One set of defaults: a default-constructed library config is what performer-train's defaults give.
TEST(TrainConfigDefaults, LibraryDefaultsAreTheCommandLines) {
  const TrainConfig cli = [] {
    const char* argv[] = {"performer-train"};
    const ParseOutcome p = parse_train_cli(1, argv);
    EXPECT_TRUE(p.ok);
    return p.cli.fresh_config();
  }();
  DataConfig data = cli.data_config();
  data.train_files.clear();  // the default corpus is performer-train's alone
  EXPECT_TRUE(DataConfig{} == data);
  EXPECT_TRUE(ModelConfig{} == cli.model_config(256)) << ModelConfig{}.describe() << "\n" << cli.model_config(256).describe();
  const ScheduleConfig s;
  EXPECT_TRUE(s.kind == cli.schedule.kind && s.lr == cli.schedule.lr && s.warmup == cli.schedule.warmup &&
              s.total_steps == cli.schedule.total_steps && s.min_lr_ratio == cli.schedule.min_lr_ratio);
  const OptimizerConfig o;
  EXPECT_TRUE(o.kind == cli.optimizer.kind && o.beta1 == cli.optimizer.beta1 && o.beta2 == cli.optimizer.beta2 &&
              o.weight_decay == cli.optimizer.weight_decay && o.clip == cli.optimizer.clip);
}

TEST(TrainConfigModelFields, LibraryOnlyFieldsAreFlagsNow) {
  for (const std::string key : {"chunk-size", "kernel-eps", "shared-key-shift", "orthogonal-features"})
    EXPECT_NO_THROW(field_text(TrainConfig{}, key)) << key;
  TrainConfig c;
  c.model.chunk_size = 0;
  EXPECT_EQ(validation_error(c), "--chunk-size 0: must be > 0");
  c = TrainConfig{};
  c.model.kernel_eps = -1;
  EXPECT_EQ(validation_error(c), "--kernel-eps -1: must be finite and >= 0");
}

TEST(TrainConfigModelFields, PresetsComeFromTheOneTable) {
  for (const ShapePreset& p : shape_presets()) {
    TrainConfig c;
    apply_preset(c, p.name);
    EXPECT_EQ(c.model.dim, p.dim) << p.name;
    EXPECT_EQ(c.model.depth, p.depth) << p.name;
    EXPECT_EQ(c.model.heads, p.heads) << p.name;
    EXPECT_EQ(c.model.ff_hidden, p.ff_hidden) << p.name;
    EXPECT_EQ(c.model.features, p.features) << p.name;
    EXPECT_EQ(c.data.seq_len, p.seq_len) << p.name;
    EXPECT_EQ(c.data.batch_size, p.batch_size) << p.name;
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
      for (const char* positions : {"learned", "rotary"})
        for (bool learned : {false, true}) {  // learned feature projections are parameters (favor, favor-local)
          c.model.attention = parse_attention(attention);
          c.model.tie_embeddings = tied;
          c.model.positions = parse_positions(positions);
          c.model.learned_features = learned;
          c.model.redraw_every = learned ? 0 : 3;
          if (learned && (c.model.attention == AttentionKind::Softmax || c.model.attention == AttentionKind::Relu))
            continue;
          PerformerLM model(c.model_config(258));
          EXPECT_EQ(estimate_memory(c).parameters, static_cast<double>(model.num_parameters()))
              << attention << " tied " << tied << " " << positions << " learned features " << learned;
        }
  EXPECT_NO_THROW(check_memory(c, 1, 1e12));
  c.data.batch_size = 10'000'000;
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
