// safetensors interop end to end: performer-export on a trained run, import into a model
// (train/interop.h) and performer-train --init-from, and the PyTorch round trip: the exported file
// read by NumPy into the PyTorch twin (bench/torch_twin.py) gives our logits within 1e-4, and a file
// written by the twin gives the twin's logits here within 1e-4 (tests/train/torch_interop.py).
//
// The twin implements the causal model with learned positions, an untied head and per-key FAVOR+
// shifts, with attention favor, relu, softmax or favor-local (FAVOR+ features; torch_twin.config_from_metadata
// refuses anything else), so the runs here use exactly that configuration (the performer-train
// defaults). The main run uses favor attention (given: the default is favor-local); relu, softmax and
// favor-local (window 8, the twin's O(T^2) reference form of it) get their own short runs, favor-local
// checked both ways like favor.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <regex>

#include "autograd/var.h"
#include "train/checkpoint.h"
#include "train/cli.h"
#include "train/interop.h"
#include "train/run_directory.h"
#include "train/trainer.h"
#include "train_test_util.h"

namespace pf {
namespace {

using test::contains;

constexpr int64_t kBatch = 2, kSeq = 96;  // 96 > the FAVOR+ chunk of 64: the carried state is exercised

std::vector<std::string> model_flags() {
  return {"--attention", "favor", "--dim",      "32",   "--depth",   "2",     "--heads",         "2",  "--ff-hidden",  "64",
          "--features", "16",   "--seq-len", "96",    "--batch-size",    "4",  "--warmup",     "2",
          "--lr",       "0.005", "--threads", "1",    "--sample-tokens", "0",  "--eval-batches", "2", "--log-every", "1"};
}

// The step-1 training loss in a run's metrics.jsonl.
double first_train_loss(const std::string& metrics) {
  const std::regex re(R"re("type":"train","step":1,"loss":([-0-9.eE+]+))re");
  std::smatch m;
  const std::string text = test::read_file(metrics);
  if (!std::regex_search(text, m, re)) return NAN;
  return std::stod(m[1].str());
}

std::vector<float> logits_of(PerformerLM& model, const std::vector<int32_t>& ids) {
  NoGradGuard no_grad;
  model.eval();
  return model.forward(ids, kBatch, kSeq).value().to_vector();
}

std::vector<float> read_floats(const std::string& path) {
  const std::string bytes = test::read_file(path);
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  return v;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float m = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

class InteropTest : public ::testing::Test {
 protected:
  // The twin writes a model like the safetensors file `like` into `weights` (seed 7) and the logits it
  // computes for ids_ into `logits_out`; returns those logits (empty after a failure, which is reported).
  std::vector<float> torch_write(const std::string& like, const std::string& weights, const std::string& logits_out) {
    const test::CommandResult r = test::run_command({PF_TEST_PYTHON, PF_INTEROP_SCRIPT, "write", "--like", like, "--out",
                                                     weights, "--ids", ids_file_, "--logits-out", logits_out, "--seed", "7"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? read_floats(logits_out) : std::vector<float>{};
  }
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    train_ = dir_->write("train.txt", test::word_text(3000, 21));
    val_ = dir_->write("val.txt", test::word_text(400, 22));
    // 12 steps with a redraw every 5: the exported projections are not the seed's first draw.
    ASSERT_EQ(train({"--steps", "12", "--redraw-every", "5", "--eval-every", "6", "--out", dir_->path("run")}).exit_code,
              0);
    exported_ = dir_->path("model.safetensors");
    const test::CommandResult r = test::run_command({PF_EXPORT_BIN, "--checkpoint", dir_->path("run"), "--out", exported_});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    export_out_ = r.out;
    Generator g(5);
    for (int64_t i = 0; i < kBatch * kSeq; ++i) ids_.push_back(static_cast<int32_t>(g.below(258)));
    std::string text;
    for (int64_t b = 0; b < kBatch; ++b) {
      for (int64_t t = 0; t < kSeq; ++t) text += std::to_string(ids_[static_cast<size_t>(b * kSeq + t)]) + " ";
      text += "\n";
    }
    ids_file_ = dir_->write("ids.txt", text);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  // performer-train with the model flags, the corpus and `extra`.
  static test::CommandResult train(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {PF_TRAIN_BIN};
    for (const std::string& f : model_flags()) args.push_back(f);
    args.insert(args.end(), {"--data", train_, "--val-data", val_});
    args.insert(args.end(), extra.begin(), extra.end());
    test::CommandResult r = test::run_command(args);
    return r;
  }
  // The TrainConfig performer-train builds from the same flags.
  static TrainConfig config_for(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"performer-train"};
    for (const std::string& f : model_flags()) args.push_back(f);
    args.insert(args.end(), {"--data", train_, "--val-data", val_});
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<const char*> argv;
    for (const std::string& a : args) argv.push_back(a.c_str());
    const ParseOutcome p = parse_train_cli(static_cast<int>(argv.size()), argv.data());
    EXPECT_TRUE(p.ok);
    return p.cli.fresh_config();
  }
  static Checkpoint run_checkpoint() { return load_checkpoint(RunDirectory(dir_->path("run")).latest()); }

  static test::TempDir* dir_;
  static std::string train_, val_, exported_, export_out_, ids_file_;
  static std::vector<int32_t> ids_;
};
test::TempDir* InteropTest::dir_ = nullptr;
std::string InteropTest::train_, InteropTest::val_, InteropTest::exported_, InteropTest::export_out_,
    InteropTest::ids_file_;
std::vector<int32_t> InteropTest::ids_;

TEST_F(InteropTest, ExportHoldsEveryTensorAndTheModelConfig) {
  const Checkpoint ckpt = run_checkpoint();
  EXPECT_TRUE(contains(export_out_, "wrote " + exported_)) << export_out_;
  const Safetensors file = load_safetensors(exported_);
  ASSERT_EQ(file.tensors.size(), ckpt.model_state.size());
  for (const auto& [name, t] : ckpt.model_state) {
    ASSERT_TRUE(file.tensors.count(name)) << name;
    EXPECT_EQ(file.tensors.at(name).shape(), t.shape()) << name;
    EXPECT_EQ(file.tensors.at(name).to_vector(), t.to_vector()) << name;
  }
  EXPECT_TRUE(file.tensors.count("blocks.1.attn.projection")) << "random projections are exported";
  const ModelConfig mc = model_config_from_metadata(file.metadata, exported_);
  EXPECT_EQ(model_config_mismatch(ckpt.model_config, mc, "in the file"), "");
  EXPECT_EQ(mc.seed, ckpt.model_config.seed);
  EXPECT_EQ(mc.redraw_every, 5);
  EXPECT_EQ(file.metadata.at("vocab"), "bytes");
  EXPECT_EQ(file.metadata.at("step"), "12");
  EXPECT_EQ(file.metadata.at("kernel_eps"), "1e-06");
}

TEST_F(InteropTest, ImportedModelComputesTheSameLogits) {
  const Checkpoint ckpt = run_checkpoint();
  std::unique_ptr<PerformerLM> ours = make_model(ckpt);
  const Safetensors file = load_safetensors(exported_);
  ModelConfig mc = model_config_from_metadata(file.metadata, exported_);
  mc.seed = 99;  // another initialization and projection draw: everything must come from the file
  PerformerLM imported(mc);
  load_safetensors_into(imported, file, exported_);
  EXPECT_EQ(logits_of(imported, ids_), logits_of(*ours, ids_));
}

TEST_F(InteropTest, ImportRefusesAnotherModelAndLeavesItUnchanged) {
  const Safetensors file = load_safetensors(exported_);
  ModelConfig mc = model_config_from_metadata(file.metadata, exported_);
  auto message = [&](PerformerLM& m, const Safetensors& f) -> std::string {
    const StateDict before = [&] {
      StateDict s;
      for (const auto& [n, t] : m.state_dict()) s.emplace(n, t.clone());
      return s;
    }();
    try {
      load_safetensors_into(m, f, exported_, "from the flags");
    } catch (const SafetensorsError& e) {
      for (const auto& [n, t] : m.state_dict()) EXPECT_EQ(t.to_vector(), before.at(n).to_vector()) << n;
      return e.what();
    }
    return "";
  };
  ModelConfig eps = mc;
  eps.kernel_eps = 1e-3f;
  PerformerLM other_eps(eps);
  const std::string e1 = message(other_eps, file);
  EXPECT_TRUE(contains(e1, exported_) && contains(e1, "kernel_eps 1e-06 in the file, 0.001 from the flags")) << e1;

  ModelConfig wide = mc;
  wide.dim = 64;
  PerformerLM wider(wide);
  Safetensors no_meta = file;
  no_meta.metadata.clear();  // a foreign file without our metadata: the tensors still decide
  const std::string e2 = message(wider, no_meta);
  EXPECT_TRUE(contains(e2, exported_) && contains(e2, "shape mismatches") && contains(e2, "tok_emb.weight")) << e2;

  Safetensors missing = no_meta;
  missing.tensors.erase("head.bias");
  missing.tensors["extra.weight"] = Tensor::zeros({1});
  PerformerLM same(mc);
  const std::string e3 = message(same, missing);
  EXPECT_TRUE(contains(e3, "missing keys (1): head.bias") && contains(e3, "unexpected keys (1): extra.weight")) << e3;
}

TEST_F(InteropTest, ExportRefusesBadArguments) {
  const test::CommandResult missing =
      test::run_command({PF_EXPORT_BIN, "--checkpoint", dir_->path("nothing.ckpt"), "--out", dir_->path("x.safetensors")});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_TRUE(contains(missing.err, "nothing.ckpt")) << missing.err;
  const test::CommandResult to_dir =
      test::run_command({PF_EXPORT_BIN, "--checkpoint", dir_->path("run"), "--out", dir_->path("run")});
  EXPECT_EQ(to_dir.exit_code, 2);
  EXPECT_TRUE(contains(to_dir.err, "--out") && contains(to_dir.err, "is a directory")) << to_dir.err;
  const test::CommandResult no_out = test::run_command({PF_EXPORT_BIN, "--checkpoint", dir_->path("run")});
  EXPECT_NE(no_out.exit_code, 0);
  EXPECT_TRUE(contains(no_out.err, "--out")) << no_out.err;
}

TEST_F(InteropTest, InitFromStartsAFreshRunFromTheFileWeights) {
  // The library: a Trainer built with init_from holds exactly the file's tensors.
  const std::vector<std::string> extra = {"--steps", "2", "--init-from", exported_};
  apply_process_settings(config_for(extra));  // the precision and threads performer-train uses
  Trainer trainer(config_for(extra));
  const Safetensors file = load_safetensors(exported_);
  for (const auto& [name, t] : trainer.model().state_dict())
    EXPECT_EQ(t.to_vector(), file.tensors.at(name).to_vector()) << name;
  EXPECT_EQ(trainer.progress().step, 0);
  const double library_loss = trainer.step().loss;

  // The command line: a new run whose first step is computed with those weights.
  std::vector<std::string> cli = extra;
  cli.insert(cli.end(), {"--out", dir_->path("init")});
  const test::CommandResult r = train(cli);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "starting a new run from the weights of " + exported_)) << r.err;
  const double cli_loss = first_train_loss(dir_->path("init") + "/metrics.jsonl");
  EXPECT_EQ(cli_loss, library_loss);
  // The same run without --init-from starts from a random model: a higher loss than the trained weights.
  ASSERT_EQ(train({"--steps", "2", "--out", dir_->path("fresh")}).exit_code, 0);
  const double fresh_loss = first_train_loss(dir_->path("fresh") + "/metrics.jsonl");
  EXPECT_LT(cli_loss, fresh_loss - 0.3) << "trained weights " << cli_loss << ", random " << fresh_loss;
  // The run records where its weights came from, and resumes from its own checkpoint as usual.
  EXPECT_TRUE(contains(test::read_file(dir_->path("init") + "/config.toml"), "init-from = \"" + exported_ + "\""));
}

TEST_F(InteropTest, InitFromRefusesAMismatchOrABadFile) {
  const test::CommandResult dim = train({"--steps", "2", "--dim", "64", "--init-from", exported_, "--out", dir_->path("m1")});
  EXPECT_EQ(dim.exit_code, 2);
  EXPECT_TRUE(contains(dim.err, "--init-from " + exported_) && contains(dim.err, "dim 32 in the file, 64 from the flags"))
      << dim.err;
  const test::CommandResult kind =
      train({"--steps", "2", "--attention", "softmax", "--init-from", exported_, "--out", dir_->path("m2")});
  EXPECT_EQ(kind.exit_code, 2);
  EXPECT_TRUE(contains(kind.err, "attention favor in the file, softmax from the flags")) << kind.err;

  const std::string whole = test::read_file(exported_);
  const std::string truncated = dir_->write("truncated.safetensors", whole.substr(0, whole.size() - 100));
  const test::CommandResult cut = train({"--steps", "2", "--init-from", truncated, "--out", dir_->path("m3")});
  EXPECT_EQ(cut.exit_code, 2);
  EXPECT_TRUE(contains(cut.err, truncated) && contains(cut.err, "out of range")) << cut.err;

  const test::CommandResult none =
      train({"--steps", "2", "--init-from", dir_->path("none.safetensors"), "--out", dir_->path("m4")});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_TRUE(contains(none.err, "--init-from") && contains(none.err, "none.safetensors: no such file")) << none.err;

  const test::CommandResult resume = train({"--resume", dir_->path("run"), "--init-from", exported_});
  EXPECT_EQ(resume.exit_code, 2);
  EXPECT_TRUE(contains(resume.err, "cannot be combined with --resume")) << resume.err;
  for (const char* d : {"m1", "m2", "m3", "m4"})
    EXPECT_FALSE(std::filesystem::exists(dir_->path(d))) << d << ": nothing written for a refused run";
}

// The name of a 2-D tensor of the file with more rows than columns (its transpose has the same size).
std::string non_square_weight(const StateDict& tensors) {
  for (const auto& [name, t] : tensors)
    if (t.dim() == 2 && t.size(0) != t.size(1)) return name;
  return "";
}

// The transpose of a 2-D tensor: the same values, rows and columns swapped.
Tensor transposed(const Tensor& w) {
  const int64_t rows = w.size(0), cols = w.size(1);
  Tensor t = Tensor::zeros({cols, rows});
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) t.data()[c * rows + r] = w.data()[r * cols + c];
  return t;
}

// What load_safetensors_into says about `file` for the model the exported file describes ("" if it loads).
std::string import_error(const Safetensors& file, const std::string& source) {
  PerformerLM model(model_config_from_metadata(load_safetensors(source).metadata, source));
  try {
    load_safetensors_into(model, file, source, "from the flags");
  } catch (const SafetensorsError& e) {
    return e.what();
  }
  return "";
}

// Issue 30, item 10: strict import. Non-finite weights, an unknown (misspelled) metadata key, tokenizer
// metadata that does not decode and a same-size transposed tensor are each refused, naming the tensor
// or key.
TEST_F(InteropTest, ImportRefusesNonFiniteWeightsNamingTheTensor) {
  const Safetensors file = load_safetensors(exported_);
  ASSERT_EQ(import_error(file, exported_), "");
  Safetensors nan = file;  // tensors share storage: the changed ones are copies
  nan.tensors["tok_emb.weight"] = file.tensors.at("tok_emb.weight").clone();
  nan.tensors.at("tok_emb.weight").data()[5] = NAN;
  const std::string e1 = import_error(nan, exported_);
  EXPECT_TRUE(contains(e1, "\"tok_emb.weight\"") && contains(e1, "NaN")) << e1;
  Safetensors inf = file;
  inf.tensors["head.bias"] = file.tensors.at("head.bias").clone();
  inf.tensors.at("head.bias").data()[0] = -INFINITY;
  const std::string e2 = import_error(inf, exported_);
  EXPECT_TRUE(contains(e2, "\"head.bias\"") && contains(e2, "infinity")) << e2;

  // End to end: exit 2, the tensor named, nothing written.
  const std::string bad = dir_->path("nan.safetensors");
  save_safetensors(bad, nan.tensors, nan.metadata);
  const test::CommandResult r = train({"--steps", "2", "--init-from", bad, "--out", dir_->path("nan_run")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "--init-from " + bad) && contains(r.err, "tok_emb.weight")) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_->path("nan_run")));
}

TEST_F(InteropTest, ImportRefusesUnknownMetadataKeys) {
  Safetensors file = load_safetensors(exported_);
  const std::string format = file.metadata.at("format");
  file.metadata.erase("format");
  file.metadata["formct"] = format;  // one flipped bit in a key name
  const std::string e1 = import_error(file, exported_);
  EXPECT_TRUE(contains(e1, exported_) && contains(e1, "unknown metadata key \"formct\"")) << e1;
  Safetensors dim = load_safetensors(exported_);
  dim.metadata["dimm"] = dim.metadata.at("dim");
  const std::string e2 = import_error(dim, exported_);
  EXPECT_TRUE(contains(e2, "\"dimm\"")) << e2;
}

TEST_F(InteropTest, ImportRefusesTokenizerMetadataThatDoesNotDecode) {
  const Safetensors base = load_safetensors(exported_);
  struct Case {
    std::map<std::string, std::string> metadata;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {{{"tokenizer", "sentencepiece"}, {"tokenizer_model", "not base64!"}, {"tokenizer_fnv1a64", "0"}},
       "tokenizer_model does not decode"},
      {{{"tokenizer", "sentencepiece"}, {"tokenizer_model", "AAAA"}, {"tokenizer_fnv1a64", "0"}},
       "tokenizer_model does not decode"},
      {{{"tokenizer", "sentencepiece"}}, "incomplete tokenizer metadata"},
      {{{"tokenizer", "wordpiece"}, {"tokenizer_model", "AAAA"}, {"tokenizer_fnv1a64", "0"}},
       "incomplete tokenizer metadata"},
  };
  for (const Case& c : cases) {
    Safetensors file = base;
    for (const auto& [k, v] : c.metadata) file.metadata[k] = v;
    const std::string e = import_error(file, exported_);
    EXPECT_TRUE(contains(e, exported_) && contains(e, c.expect)) << c.expect << ": " << e;
  }
  // End to end: a bytes run refuses a file whose tokenizer metadata is invalid.
  Safetensors file = base;
  for (const auto& [k, v] : cases[0].metadata) file.metadata[k] = v;
  const std::string bad = dir_->path("bad_tokenizer.safetensors");
  save_safetensors(bad, file.tensors, file.metadata);
  const test::CommandResult r = train({"--steps", "2", "--init-from", bad, "--out", dir_->path("tok_run")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "tokenizer_model")) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_->path("tok_run")));
}

// A tensor stored transposed (same number of values, rows and columns swapped) is refused by name, in a
// safetensors file and in a checkpoint.
TEST_F(InteropTest, SameSizeTransposedTensorIsRefusedInBothFormats) {
  Safetensors file = load_safetensors(exported_);
  const std::string name = non_square_weight(file.tensors);
  ASSERT_FALSE(name.empty());
  file.tensors[name] = transposed(file.tensors.at(name));
  const std::string e1 = import_error(file, exported_);
  EXPECT_TRUE(contains(e1, exported_) && contains(e1, name)) << e1;

  Checkpoint ckpt = run_checkpoint();
  ckpt.model_state[name] = transposed(ckpt.model_state.at(name));
  const std::string path = dir_->path("transposed.ckpt");
  save_checkpoint(path, ckpt);
  std::string e2;
  try {
    const Checkpoint back = load_checkpoint(path);
    make_model(back);
  } catch (const std::exception& e) {
    e2 = e.what();
  }
  EXPECT_TRUE(contains(e2, name)) << "a transposed " << name << " in a checkpoint: " << e2;
  const test::CommandResult r = test::run_command({PF_EXPORT_BIN, "--checkpoint", path, "--out", dir_->path("t.st")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, name)) << r.err;
}

// ---- the PyTorch round trip

// "" when /usr/bin/python3 (PF_TEST_PYTHON) can import torch and numpy, else why not.
std::string torch_unavailable() {
  const test::CommandResult r = test::run_command({PF_TEST_PYTHON, "-c", "import torch, numpy"});
  if (r.exit_code == 0) return "";
  std::string last = r.err;  // the last line of the traceback says what is missing
  while (!last.empty() && last.back() == '\n') last.pop_back();
  last = last.substr(last.find_last_of('\n') == std::string::npos ? 0 : last.find_last_of('\n') + 1);
  return std::string(PF_TEST_PYTHON) + " cannot import torch and numpy (" + last +
         "; Debian: apt-get install python3-torch python3-numpy)";
}

TEST_F(InteropTest, TorchTwinComputesOurLogitsFromTheExportedFile) {
  if (const std::string why = torch_unavailable(); !why.empty()) GTEST_SKIP() << why;
  const Checkpoint ckpt = run_checkpoint();
  std::unique_ptr<PerformerLM> ours = make_model(ckpt);
  const std::vector<float> expected = logits_of(*ours, ids_);
  const std::string out = dir_->path("torch_logits.f32");
  const test::CommandResult r = test::run_command(
      {PF_TEST_PYTHON, PF_INTEROP_SCRIPT, "logits", "--weights", exported_, "--ids", ids_file_, "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<float> torch_logits = read_floats(out);
  ASSERT_EQ(torch_logits.size(), expected.size()) << r.out;
  const float diff = max_abs_diff(torch_logits, expected);
  std::printf("C++ -> PyTorch: max |logit difference| %.3g over %zu logits\n", diff, expected.size());
  EXPECT_LT(diff, 1e-4f);
}

// The other two attention kinds the twin implements, on 3-step runs: export, twin logits within 1e-4.
TEST_F(InteropTest, TorchTwinComputesOurLogitsForReluAndSoftmaxAttention) {
  if (const std::string why = torch_unavailable(); !why.empty()) GTEST_SKIP() << why;
  for (const std::string kind : {"relu", "softmax"}) {
    const std::string run = dir_->path("run-" + kind), file = dir_->path(kind + ".safetensors");
    const test::CommandResult t = train({"--steps", "3", "--attention", kind, "--out", run});
    ASSERT_EQ(t.exit_code, 0) << t.err;
    const test::CommandResult e = test::run_command({PF_EXPORT_BIN, "--checkpoint", run, "--out", file});
    ASSERT_EQ(e.exit_code, 0) << e.err;
    std::unique_ptr<PerformerLM> ours = make_model(load_checkpoint(RunDirectory(run).latest()));
    const std::vector<float> expected = logits_of(*ours, ids_);
    const std::string out = dir_->path(kind + "_logits.f32");
    const test::CommandResult r = test::run_command(
        {PF_TEST_PYTHON, PF_INTEROP_SCRIPT, "logits", "--weights", file, "--ids", ids_file_, "--out", out});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "\"attention\": \"" + kind + "\"")) << r.out;
    const std::vector<float> torch_logits = read_floats(out);
    ASSERT_EQ(torch_logits.size(), expected.size());
    const float diff = max_abs_diff(torch_logits, expected);
    std::printf("C++ -> PyTorch (%s attention): max |logit difference| %.3g\n", kind.c_str(), diff);
    EXPECT_LT(diff, 1e-4f) << kind;
  }
}

// favor-local (the performer-train default; window 8, so that with seq 96 most keys are far and the
// FAVOR+ chunk of 64 is crossed) both ways: our export -> the twin's logits within 1e-4 of ours, and a
// file written by the twin (its own random weights and projections) -> our logits within 1e-4 of the
// twin's. The twin's favor-local is its O(T^2) reference form (torch_twin.favor_local).
TEST_F(InteropTest, TorchTwinRoundTripsAFavorLocalModel) {
  if (const std::string why = torch_unavailable(); !why.empty()) GTEST_SKIP() << why;
  const std::string run = dir_->path("run-favor-local"), file = dir_->path("favor-local.safetensors");
  const test::CommandResult t =
      train({"--steps", "3", "--attention", "favor-local", "--local-window", "8", "--out", run});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  const test::CommandResult e = test::run_command({PF_EXPORT_BIN, "--checkpoint", run, "--out", file});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  const Safetensors exported = load_safetensors(file);
  EXPECT_EQ(exported.metadata.at("attention"), "favor-local");
  EXPECT_EQ(exported.metadata.at("local_window"), "8");

  // C++ -> PyTorch.
  std::unique_ptr<PerformerLM> ours = make_model(load_checkpoint(RunDirectory(run).latest()));
  const std::vector<float> expected = logits_of(*ours, ids_);
  const std::string out = dir_->path("favor_local_logits.f32");
  const test::CommandResult r = test::run_command(
      {PF_TEST_PYTHON, PF_INTEROP_SCRIPT, "logits", "--weights", file, "--ids", ids_file_, "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "\"attention\": \"favor-local\"")) << r.out;
  const std::vector<float> torch_logits = read_floats(out);
  ASSERT_EQ(torch_logits.size(), expected.size()) << r.out;
  const float diff = max_abs_diff(torch_logits, expected);
  std::printf("C++ -> PyTorch (favor-local attention, window 8): max |logit difference| %.3g\n", diff);
  EXPECT_LT(diff, 1e-4f);

  // PyTorch -> C++: a twin model of the same config, written by the twin, loaded into a model built
  // from our export's config (so the twin's metadata must agree with it, local_window included).
  const std::string weights = dir_->path("favor_local_from_torch.safetensors");
  const std::string written = dir_->path("favor_local_torch_written.f32");
  const std::vector<float> twin_logits = torch_write(file, weights, written);
  ASSERT_FALSE(twin_logits.empty());
  const Safetensors from_torch = load_safetensors(weights);
  EXPECT_EQ(from_torch.metadata.at("producer"), "torch_twin");
  EXPECT_EQ(from_torch.metadata.at("attention"), "favor-local");
  EXPECT_EQ(from_torch.metadata.at("local_window"), "8");
  EXPECT_NE(from_torch.tensors.at("blocks.0.attn.projection").to_vector(),
            exported.tensors.at("blocks.0.attn.projection").to_vector());
  const ModelConfig mc = model_config_from_metadata(exported.metadata, file);
  EXPECT_EQ(mc.attention, AttentionKind::FavorLocal);
  EXPECT_EQ(mc.local_window, 8);
  PerformerLM model(mc);
  load_safetensors_into(model, from_torch, weights);
  const std::vector<float> here = logits_of(model, ids_);
  ASSERT_EQ(here.size(), twin_logits.size());
  const float back = max_abs_diff(here, twin_logits);
  std::printf("PyTorch -> C++ (favor-local attention, window 8): max |logit difference| %.3g\n", back);
  EXPECT_LT(back, 1e-4f);
}

// A configuration the twin does not implement is refused there, not computed differently.
TEST_F(InteropTest, TorchTwinRefusesAConfigurationItDoesNotImplement) {
  if (const std::string why = torch_unavailable(); !why.empty()) GTEST_SKIP() << why;
  const std::string run = dir_->path("run-tied"), file = dir_->path("tied.safetensors");
  ASSERT_EQ(train({"--steps", "2", "--tie-embeddings", "--out", run}).exit_code, 0);
  ASSERT_EQ(test::run_command({PF_EXPORT_BIN, "--checkpoint", run, "--out", file}).exit_code, 0);
  const test::CommandResult r = test::run_command({PF_TEST_PYTHON, PF_INTEROP_SCRIPT, "logits", "--weights", file,
                                                   "--ids", ids_file_, "--out", dir_->path("tied.f32")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.err, "tie_embeddings = false only")) << r.err;
}

TEST_F(InteropTest, FileWrittenByTorchGivesTheTwinsLogitsHere) {
  if (const std::string why = torch_unavailable(); !why.empty()) GTEST_SKIP() << why;
  const std::string weights = dir_->path("from_torch.safetensors");
  const std::string out = dir_->path("torch_written_logits.f32");
  const std::vector<float> torch_logits = torch_write(exported_, weights, out);
  ASSERT_FALSE(torch_logits.empty());

  const Safetensors file = load_safetensors(weights);
  EXPECT_EQ(file.metadata.at("producer"), "torch_twin");
  const ModelConfig mc = model_config_from_metadata(file.metadata, weights);
  PerformerLM model(mc);
  load_safetensors_into(model, file, weights);
  const std::vector<float> ours = logits_of(model, ids_);
  ASSERT_EQ(ours.size(), torch_logits.size());
  const float diff = max_abs_diff(ours, torch_logits);
  std::printf("PyTorch -> C++: max |logit difference| %.3g over %zu logits\n", diff, ours.size());
  EXPECT_LT(diff, 1e-4f);
  // The file is not our own model in disguise: its weights and projections differ from the export.
  const Safetensors exported = load_safetensors(exported_);
  EXPECT_NE(file.tensors.at("blocks.0.attn.projection").to_vector(),
            exported.tensors.at("blocks.0.attn.projection").to_vector());

  // performer-train --init-from takes it too (same model flags), and the run starts from its weights.
  const std::vector<std::string> extra = {"--steps", "2", "--init-from", weights};
  apply_process_settings(config_for(extra));  // the precision and threads performer-train uses
  Trainer trainer(config_for(extra));
  for (const auto& [name, t] : trainer.model().state_dict())
    EXPECT_EQ(t.to_vector(), file.tensors.at(name).to_vector()) << name;
  std::vector<std::string> cli = extra;
  cli.insert(cli.end(), {"--out", dir_->path("from_torch_run")});
  const test::CommandResult run = train(cli);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(first_train_loss(dir_->path("from_torch_run") + "/metrics.jsonl"), trainer.step().loss);
}

}  // namespace
}  // namespace pf
