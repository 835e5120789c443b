// Checkpoints: every piece of state survives the round trip and continues bit for bit; every kind of
// damage is refused with a message that says which; writes are atomic even under kill -9.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <thread>

#include "nn/state_io.h"
#include "base/atomic_file.h"
#include "train/checkpoint.h"
#include "train/run_directory.h"
#include "train/trainer.h"
#include "train_test_util.h"

namespace pf {
namespace {

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override { corpus_ = dir_.write("corpus.txt", test::word_text(3000, 5)); }
  TrainConfig config() const { return test::tiny_train_config(corpus_); }
  std::string checkpoint_error(const std::string& bytes) {
    const std::string path = dir_.write("bad.ckpt", bytes);
    try {
      load_checkpoint(path);
    } catch (const CheckpointError& e) {
      return e.what();
    }
    return "";
  }

  test::TempDir dir_;
  std::string corpus_;
};

void expect_same_state(const StateDict& a, const StateDict& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_EQ(t.shape(), b.at(name).shape()) << name;
    EXPECT_EQ(max_abs_diff(t, b.at(name)), 0.0f) << name;
  }
}

TEST_F(CheckpointTest, EveryFieldRoundTrips) {
  TrainConfig cfg = config();
  cfg.model.dropout = 0.1;
  Trainer t(cfg);
  for (int i = 0; i < 4; ++i) t.step();  // includes a redraw at step 3
  t.evaluate();
  t.sample(5);  // advances the trainer generator
  const Checkpoint c = t.checkpoint();
  const std::string path = dir_.path("c.ckpt");
  save_checkpoint(path, c);
  const Checkpoint d = load_checkpoint(path);

  EXPECT_EQ(d.config, cfg);
  EXPECT_EQ(d.model_config.dim, 32);
  EXPECT_EQ(d.model_config.vocab_size, t.data().vocab().size());
  EXPECT_EQ(d.model_config.attention, AttentionKind::Favor);
  EXPECT_TRUE(d.vocab == t.data().vocab());
  expect_same_state(d.model_state, t.model().state_dict());
  EXPECT_TRUE(d.model_state.count("blocks.0.attn.projection")) << "the random projection buffer is saved";
  EXPECT_EQ(d.model_rng, t.model().rng_state());
  EXPECT_EQ(t.model().draw_count(), 2);  // the initial draw and the redraw before step 4
  EXPECT_EQ(d.optimizer_state, optimizer_state_bytes(t.optimizer()));
  EXPECT_EQ(d.progress, t.progress());
  EXPECT_EQ(d.progress.step, 4);
  EXPECT_EQ(d.trainer_rng, t.generator().state());
  EXPECT_EQ(d.data_cursor, t.data().cursor());
  EXPECT_EQ(serialize_checkpoint(d), serialize_checkpoint(c));
}

TEST_F(CheckpointTest, RestoredTrainerContinuesBitForBit) {
  TrainConfig cfg = config();
  cfg.model.dropout = 0.1;
  cfg.run.grad_accum = 2;
  Trainer a(cfg);
  for (int i = 0; i < 5; ++i) a.step();
  const Checkpoint c = parse_checkpoint(serialize_checkpoint(a.checkpoint()), "memory");
  Trainer b(cfg, c);
  for (int i = 0; i < 6; ++i) {  // crosses the redraw at step 6 and 9
    const StepResult ra = a.step(), rb = b.step();
    EXPECT_EQ(ra.loss, rb.loss) << "step " << ra.step;
    EXPECT_EQ(ra.grad_norm, rb.grad_norm) << "step " << ra.step;
  }
  expect_same_state(a.model().state_dict(), b.model().state_dict());
  EXPECT_EQ(a.evaluate().loss, b.evaluate().loss);
}

// A learned projection (learned_features) is a trained parameter: the checkpoint keeps its trained value
// (under the buffer's key) and its optimizer state, and the resumed run continues bit for bit.
TEST_F(CheckpointTest, LearnedProjectionSurvivesSaveAndResume) {
  for (AttentionKind kind : {AttentionKind::Favor, AttentionKind::FavorLocal}) {
    TrainConfig cfg = config();
    cfg.model.attention = kind;
    cfg.model.learned_features = true;
    cfg.model.redraw_every = 0;
    Trainer a(cfg);
    const Tensor drawn = a.model().state_dict().at("blocks.0.attn.projection").clone();
    for (int i = 0; i < 4; ++i) a.step();
    const Tensor trained = a.model().state_dict().at("blocks.0.attn.projection").clone();
    EXPECT_GT(max_abs_diff(trained, drawn), 0.0f) << to_string(kind);
    const std::string path = dir_.path("learned.ckpt");
    save_checkpoint(path, a.checkpoint());
    const Checkpoint c = load_checkpoint(path);
    EXPECT_TRUE(c.model_config.learned_features);
    EXPECT_EQ(max_abs_diff(c.model_state.at("blocks.0.attn.projection"), trained), 0.0f) << to_string(kind);
    Trainer b(cfg, c);
    EXPECT_EQ(max_abs_diff(b.model().state_dict().at("blocks.0.attn.projection"), trained), 0.0f);
    ASSERT_NE(b.optimizer().state("blocks.0.attn.projection"), nullptr) << "the projection's Adam moments";
    for (int i = 0; i < 3; ++i) {
      const StepResult ra = a.step(), rb = b.step();
      EXPECT_EQ(ra.loss, rb.loss) << to_string(kind) << " step " << ra.step;
      EXPECT_EQ(ra.grad_norm, rb.grad_norm) << to_string(kind) << " step " << ra.step;
    }
    expect_same_state(a.model().state_dict(), b.model().state_dict());
    // A model without the option refuses the checkpoint (the field is compared on restore).
    ModelConfig fixed = c.model_config;
    fixed.learned_features = false;
    PerformerLM other(fixed);
    try {
      restore_model(c, other);
      ADD_FAILURE() << "a fixed-projection model accepted a learned-features checkpoint";
    } catch (const CheckpointError& e) {
      EXPECT_TRUE(test::contains(e.what(), "learned_features true in the checkpoint, false in this model")) << e.what();
    }
  }
}

TEST_F(CheckpointTest, DamagedFilesAreRefusedWithTheReason) {
  Trainer t(config());
  t.step();
  const std::string good = serialize_checkpoint(t.checkpoint());
  ASSERT_EQ(checkpoint_error(good), "");

  EXPECT_TRUE(test::contains(checkpoint_error(good.substr(0, good.size() / 2)), "truncated checkpoint"));
  EXPECT_TRUE(test::contains(checkpoint_error(good.substr(0, good.size() - 1)), "truncated checkpoint"));
  std::string flipped = good;
  flipped[good.size() * 2 / 3] ^= 0x10;
  EXPECT_TRUE(test::contains(checkpoint_error(flipped), "corrupt checkpoint: CRC-32 checksum mismatch"));
  std::string newer = good;
  const size_t version_at = 8 + 8 + std::strlen(kCheckpointKind);
  newer[version_at] = 2;  // little-endian uint32 version
  EXPECT_TRUE(test::contains(checkpoint_error(newer), "checkpoint file version 2, this build reads versions 1 to 1"));
  EXPECT_TRUE(test::contains(checkpoint_error("step,loss\n1,2.5\n"), "not a performer-cpp checkpoint file"));
  EXPECT_TRUE(test::contains(checkpoint_error(""), "not a performer-cpp checkpoint file"));
  EXPECT_TRUE(test::contains(checkpoint_error(good + "x"), "unexpected bytes after the payload"));

  const std::string state_dict = dir_.path("weights.bin");
  save_state_dict(t.model().state_dict(), state_dict);
  try {
    load_checkpoint(state_dict);
    FAIL() << "a state dict loaded as a checkpoint";
  } catch (const CheckpointError& e) {
    EXPECT_TRUE(test::contains(e.what(), "is a 'state_dict' file, expected a 'checkpoint' file")) << e.what();
  }
}

TEST_F(CheckpointTest, MismatchedModelIsRefusedAndLeftUnchanged) {
  Trainer t(config());
  const Checkpoint c = t.checkpoint();
  ModelConfig other = c.model_config;
  other.dim = 64;
  PerformerLM model(other);
  StateDict before;
  for (const auto& [n, v] : model.state_dict()) before.emplace(n, v.clone());
  try {
    restore_model(c, model);
    FAIL() << "no error";
  } catch (const CheckpointError& e) {
    EXPECT_TRUE(test::contains(e.what(), "dim 32")) << e.what();
  }
  expect_same_state(before, model.state_dict());
}

// Issue 16: every ModelConfig field is compared, not only those that decide the parameter shapes
// (kernel_eps, the key shift and the like change what the same weights compute).
TEST_F(CheckpointTest, EveryModelFieldIsComparedOnRestore) {
  Trainer t(config());
  const Checkpoint c = t.checkpoint();
  struct Case {
    std::function<void(ModelConfig&)> change;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](ModelConfig& m) { m.kernel_eps = 1e-3f; }, "kernel_eps 1e-06 in the checkpoint, 0.001 in this model"},
      {[](ModelConfig& m) { m.shared_key_shift = true; },
       "shared_key_shift false in the checkpoint, true in this model"},
      {[](ModelConfig& m) { m.chunk_size = 16; }, "chunk_size 64 in the checkpoint, 16 in this model"},
      {[](ModelConfig& m) { m.orthogonal_features = false; },
       "orthogonal_features true in the checkpoint, false in this model"},
  };
  for (const Case& k : cases) {
    ModelConfig other = c.model_config;
    k.change(other);
    PerformerLM model(other);
    StateDict before;
    for (const auto& [n, v] : model.state_dict()) before.emplace(n, v.clone());
    try {
      restore_model(c, model);
      ADD_FAILURE() << "accepted: " << k.message;
    } catch (const CheckpointError& e) {
      EXPECT_TRUE(test::contains(e.what(), k.message)) << e.what();
    }
    expect_same_state(before, model.state_dict());
  }
}

// ... and resuming refuses a checkpoint whose model differs from the one the flags describe in any
// field (here kernel_eps, which no flag sets: the flags mean the default).
TEST_F(CheckpointTest, ResumeRefusesACheckpointWhoseModelDiffersFromTheFlags) {
  Trainer t(config());
  t.step();
  Checkpoint c = t.checkpoint();
  c.model_config.kernel_eps = 1e-3f;
  try {
    Trainer resumed(config(), c);
    FAIL() << "a checkpoint with kernel_eps 0.001 was resumed with flags that mean 1e-06";
  } catch (const CheckpointError& e) {
    EXPECT_TRUE(test::contains(e.what(), "kernel_eps 0.001 in the checkpoint, 1e-06 from the flags")) << e.what();
  }
}

TEST_F(CheckpointTest, KillNineDuringWritesLeavesALoadableCheckpoint) {
  Trainer t(config());
  const std::string path = dir_.path("run/ckpt-00000001.ckpt");
  std::filesystem::create_directories(dir_.path("run"));
  const Checkpoint first = t.checkpoint();
  save_checkpoint(path, first);
  t.step();
  const std::string second = serialize_checkpoint(t.checkpoint());

  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    for (;;) write_file_atomic(path, second);  // until killed
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  const Checkpoint loaded = load_checkpoint(path);  // old or new, never broken
  EXPECT_TRUE(loaded.progress.step == 0 || loaded.progress.step == 1);

  // A temporary file a crash left behind is not a checkpoint of the run and is cleaned up.
  const std::string stale = dir_.path("run/.ckpt-00000002.ckpt.tmp-12345");
  test::write_bytes(stale, second.substr(0, 100));
  const RunDirectory run(dir_.path("run"));
  EXPECT_EQ(run.latest(), path);
  run.remove_stale_temp_files();
  EXPECT_FALSE(std::filesystem::exists(stale));
  EXPECT_TRUE(std::filesystem::exists(path));
}

TEST_F(CheckpointTest, RunDirectoryKeepsTheLastK) {
  Trainer t(config());
  const RunDirectory run(dir_.path("keep"));
  run.create();
  for (int i = 0; i < 5; ++i) {
    t.step();
    run.save(t.checkpoint(), 2);
  }
  const auto all = run.checkpoints();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].first, 4);
  EXPECT_EQ(all[1].first, 5);
  EXPECT_EQ(resolve_resume_path(run.path()), run.checkpoint_path(5));
  EXPECT_THROW(resolve_resume_path(dir_.path("nothing-here")), std::invalid_argument);
}

}  // namespace
}  // namespace pf
