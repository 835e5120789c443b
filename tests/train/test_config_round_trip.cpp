// Every setting travels unchanged through every place a setting goes: the command line, the config
// file, the checkpoint, the resume merge and the safetensors metadata. The config below changes every
// field away from its default (a test checks that, so a new field must be added here to pass), and
// each path must give it back equal, field by field.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "train/checkpoint.h"
#include "train/cli.h"
#include "train/config_file.h"
#include "train/interop.h"
#include "train/train_config.h"

namespace pf {
namespace {

TrainConfig every_field_changed() {
  TrainConfig c;
  c.data = DataConfig{.train_files = {"/corpus/a.txt", "/corpus/b c.txt"},
                      .val_files = {"/corpus/v.txt"},
                      .format = Format::Text,
                      .val_fraction = 0.2,
                      .objective = Objective::Mlm,
                      .seq_len = 64,
                      .batch_size = 8,
                      .mask_prob = 0.3,
                      .pack = true,
                      .skip_bad_records = true,
                      .cache_dir = "/tmp/the cache",
                      .tokenizer = {.kind = TokenizerKind::SentencePiece,
                                    .model = "/models/m.model",
                                    .vocab_size = 300,
                                    .type = SentencePieceType::Unigram,
                                    .sample_bytes = int64_t{2} << 20,
                                    .sample_seed = 7}};
  c.model = ModelConfig{.dim = 96, .depth = 3, .heads = 3, .ff_hidden = 200, .features = 40,
                        .attention = AttentionKind::Favor, .positions = PositionKind::Sinusoidal,
                        .tie_embeddings = true, .dropout = 0.25f, .orthogonal_features = false, .redraw_every = 7,
                        .kernel_eps = 1e-3f, .chunk_size = 16, .shared_key_shift = true, .antithetic_features = true,
                        .local_window = 8, .feature_map = FeatureMapKind::FavorPlusPlus, .favorpp_z = 2.5f,
                        .short_conv = 3, .local_mix = true, .learned_features = true};
  c.optimizer = {OptimizerKind::Sgd, 0.8, 0.95, 0.5, 0.05, 2.0};
  c.schedule = {ScheduleKind::Linear, 1e-3f, 10, 300, 0.2f};
  c.run = RunConfig{.preset = "small", .init_from = "/weights/w.safetensors", .grad_accum = 2, .time_limit = 60.5,
                    .seed = 9, .threads = 2, .precision = Precision::fp32, .recompute_blocks = true,
                    .eval_every = 20, .eval_batches = 3, .save_every = 30, .keep = 4, .log_every = 5,
                    .sample_tokens = 10, .max_nonfinite = 2, .out = "/tmp/out dir"};
  c.distributed.world_size = 2;
  return c;
}

// Field by field, naming the first that differs.
void expect_same(const TrainConfig& got, const TrainConfig& want, const std::string& path) {
  visit_fields([&](const FieldInfo& f, auto get) {
    EXPECT_TRUE(get(got) == get(want)) << path << ": --" << f.key << " came back as " << field_text(get(got))
                                       << ", not " << field_text(get(want));
  });
  EXPECT_TRUE(got == want) << path;
}

// The command line that asks for c.
std::vector<std::string> command_line(const TrainConfig& c) {
  std::vector<std::string> args = {"performer-train"};
  visit_fields([&](const FieldInfo& f, auto get) {
    const auto& v = get(c);
    using T = std::remove_cvref_t<decltype(v)>;
    const std::string flag = std::string("--") + f.key;
    if constexpr (std::is_same_v<T, bool>) {
      args.push_back(v ? flag : "--no-" + std::string(f.key));
    } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
      args.push_back(flag);
      for (const std::string& item : v) args.push_back(item);
    } else {
      args.push_back(flag);
      args.push_back(flag_text(v));
    }
  });
  return args;
}

TrainConfig parse(const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  const ParseOutcome p = parse_train_cli(static_cast<int>(argv.size()), argv.data());
  EXPECT_TRUE(p.ok);
  return p.cli.fresh_config();
}

TEST(ConfigRoundTrip, TheTestConfigChangesEveryField) {
  const TrainConfig c = every_field_changed(), defaults;
  visit_fields([&](const FieldInfo& f, auto get) {
    EXPECT_FALSE(get(c) == get(defaults)) << "--" << f.key << " keeps its default: change it in every_field_changed()";
  });
}

TEST(ConfigRoundTrip, CommandLine) {
  const TrainConfig c = every_field_changed();
  expect_same(parse(command_line(c)), c, "command line");
}

TEST(ConfigRoundTrip, ConfigFile) {
  const TrainConfig c = every_field_changed();
  const std::string path =
      (std::filesystem::temp_directory_path() / ("pf-round-trip-" + std::to_string(::getpid()) + ".toml")).string();
  {
    std::ofstream out(path, std::ios::binary);
    out << to_config_file(c);
  }
  expect_same(parse({"performer-train", "--config", path}), c, "config file");
  std::filesystem::remove(path);
}

TEST(ConfigRoundTrip, CheckpointAndResume) {
  const TrainConfig c = every_field_changed();
  Checkpoint ck;
  ck.config = c;
  ck.vocab = Vocab::bytes();
  ck.model_config = c.model_config(ck.vocab.size());
  ck.model_config.local_mix = false;  // a valid model (the learned mix is favor-local's); the config keeps it
  ck.model_config.learned_features = false;  // likewise (a learned projection is never redrawn, redraw_every is 7)
  const Checkpoint back = parse_checkpoint(serialize_checkpoint(ck), "round-trip.ckpt");
  expect_same(back.config, c, "checkpoint");
  EXPECT_TRUE(back.model_config == ck.model_config);
  // Resuming with every flag given again, at the checkpoint's values: no conflict, nothing changes.
  TrainCli cli;
  visit_fields([&](const FieldInfo& f, auto get) { cli.requested[f.key] = field_text(get(c)); });
  expect_same(merge_for_resume(back.config, cli, "round-trip.ckpt"), c, "resume");
}

TEST(ConfigRoundTrip, SafetensorsMetadata) {
  ModelConfig m = every_field_changed().model_config(300);
  m.attention = AttentionKind::FavorLocal;  // valid with the learned mix (the attention field travels in the other tests)
  m.redraw_every = 0;  // valid with learned features (likewise)
  const ModelConfig back = model_config_from_metadata(model_metadata(m, "sentencepiece", 12), "w.safetensors");
  ModelConfig::visit_fields([&](const ModelField& f, auto member) {
    EXPECT_TRUE(back.*member == m.*member) << f.name << " came back as " << flag_text(back.*member);
  });
}

}  // namespace
}  // namespace pf
