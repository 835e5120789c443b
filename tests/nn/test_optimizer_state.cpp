// Optimizer state save/restore: N steps, save, restore into a fresh optimizer over a fresh copy
// of the parameters, continue; the result must equal an uninterrupted run bit for bit. Loading
// validates kind, names and shapes and leaves the optimizer unchanged when it throws.
#include <gtest/gtest.h>

#include <cereal/archives/binary.hpp>
#include <cereal/archives/json.hpp>
#include <cstdio>
#include <functional>
#include <sstream>

#include "nn/optimizer.h"
#include "nn/state_io.h"
#include "nn_test_util.h"

using namespace pf;

namespace {

using MakeOpt = std::function<std::unique_ptr<Optimizer>(const NamedParameters&)>;

const std::vector<std::pair<std::string, MakeOpt>> kOptimizers = {
    {"sgd_nesterov",
     [](const NamedParameters& p) {
       return std::make_unique<SGD>(p,
                                    SGDOptions{.lr = 0.05f, .momentum = 0.9f, .weight_decay = 0.01f, .nesterov = true});
     }},
    {"adam",
     [](const NamedParameters& p) {
       return std::make_unique<Adam>(p, AdamOptions{.lr = 0.01f, .weight_decay = 0.1f});
     }},
    {"adamw",
     [](const NamedParameters& p) {
       return std::make_unique<AdamW>(p, AdamOptions{.lr = 0.01f, .weight_decay = 0.1f});
     }},
};

// A small model's parameters: a weight, a bias, and one ("late") that only gets a gradient from
// step 2 on, so per-parameter step counts differ.
struct Params {
  Var w, b, late;
  explicit Params(uint64_t seed)
      : w(test::randn({4, 3}, seed), true),
        b(test::randn({4}, seed + 1), true),
        late(test::randn({3}, seed + 2), true) {}
  Params(const Params& other)  // a fresh copy, as a resumed run would load from its checkpoint
      : w(other.w.value().clone(), true), b(other.b.value().clone(), true), late(other.late.value().clone(), true) {}
  NamedParameters named() const { return {{"layer.weight", w}, {"layer.bias", b}, {"late.weight", late}}; }
};

// One training step whose gradients depend on the current parameters (a non-linear loss).
void train_step(Params& p, Optimizer& opt) {
  opt.zero_grad();
  Var x(Tensor::from_vector({0.5f, -1.f, 2.f, 0.25f, 1.f, -0.5f}, {2, 3}));
  Var h = tanh(matmul(x, p.w, false, true) + p.b);  // (2, 4)
  Var loss = mean(h * h);
  if (opt.step_count() >= 2) loss = loss + sum(p.late * p.late * p.late);
  loss.backward();
  opt.step();
}

}  // namespace

TEST(OptimizerState, RestoreContinuesBitIdentically) {
  for (const auto& [name, make] : kOptimizers) {
    // Uninterrupted: 7 steps.
    Params ref(1);
    auto ref_opt = make(ref.named());
    for (int i = 0; i < 7; ++i) train_step(ref, *ref_opt);

    // Interrupted after 4 steps, resumed from a stream in a fresh optimizer over fresh params.
    Params first(1);
    auto opt = make(first.named());
    for (int i = 0; i < 4; ++i) train_step(first, *opt);
    std::stringstream ss;
    save_optimizer_state(*opt, ss);
    Params resumed(first);
    auto opt2 = make(resumed.named());
    load_optimizer_state(*opt2, ss);
    EXPECT_EQ(opt2->step_count(), 4) << name;
    for (int i = 0; i < 3; ++i) train_step(resumed, *opt2);

    EXPECT_TRUE(test::bitwise_equal(resumed.w.value(), ref.w.value())) << name;
    EXPECT_TRUE(test::bitwise_equal(resumed.b.value(), ref.b.value())) << name;
    EXPECT_TRUE(test::bitwise_equal(resumed.late.value(), ref.late.value())) << name;
    EXPECT_EQ(opt2->state("late.weight")->step, ref_opt->state("late.weight")->step) << name;
    EXPECT_EQ(opt2->state("layer.weight")->step, 7) << name;
    for (const auto& [pname, st] : ref_opt->states())
      for (const auto& [slot, t] : st.buffers)
        EXPECT_TRUE(test::bitwise_equal(opt2->state(pname)->buffers.at(slot), t))
            << name << " " << pname << "." << slot;
  }
}

TEST(OptimizerState, FileRoundTripAndEmbeddingInAnyCerealArchive) {
  Params p(3);
  AdamW opt(p.named(), {.lr = 0.02f});
  for (int i = 0; i < 3; ++i) train_step(p, opt);
  const std::string path = ::testing::TempDir() + "/pf_optimizer_state.bin";
  save_optimizer_state(opt, path);
  Params q(p);
  AdamW opt2(q.named(), {.lr = 0.02f});
  load_optimizer_state(opt2, path);
  EXPECT_EQ(opt2.step_count(), 3);
  EXPECT_TRUE(test::bitwise_equal(opt2.state("layer.weight")->buffers.at("exp_avg_sq"),
                                  opt.state("layer.weight")->buffers.at("exp_avg_sq")));
  std::remove(path.c_str());

  // The template save/load works inside other archives (e.g. a checkpoint), text ones included.
  std::stringstream js;
  {
    cereal::JSONOutputArchive ar(js);
    ar(cereal::make_nvp("optimizer", opt));
  }
  AdamW opt3(Params(p).named(), {.lr = 0.02f});
  {
    cereal::JSONInputArchive ar(js);
    ar(cereal::make_nvp("optimizer", opt3));
  }
  EXPECT_TRUE(test::bitwise_equal(opt3.state("layer.bias")->buffers.at("exp_avg"),
                                  opt.state("layer.bias")->buffers.at("exp_avg")));
}

TEST(OptimizerState, LoadRejectsWrongKindNamesAndShapesWithoutChangingAnything) {
  Params p(5);
  Adam adam(p.named(), {.lr = 0.01f});
  for (int i = 0; i < 3; ++i) train_step(p, adam);
  std::stringstream ss;
  save_optimizer_state(adam, ss);
  const std::string bytes = ss.str();

  // Wrong optimizer kind.
  Params q(p);
  SGD sgd(q.named(), {.lr = 0.1f, .momentum = 0.9f});
  train_step(q, sgd);
  std::stringstream s1(bytes);
  try {
    load_optimizer_state(sgd, s1, "opt.bin");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("'adam'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("opt.bin"), std::string::npos) << e.what();
  }
  EXPECT_EQ(sgd.step_count(), 1);

  // Same kind, but parameters renamed and reshaped: every problem listed, nothing changed.
  Var other(Tensor({5, 3}), true);
  Adam adam2({{"layer.weight", other}, {"other.bias", Var(Tensor({4}), true)}}, {.lr = 0.01f});
  std::stringstream s2(bytes);
  try {
    load_optimizer_state(adam2, s2);
    FAIL();
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("layer.weight.exp_avg: shape (4, 3), parameter (5, 3)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("unexpected parameter 'layer.bias'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("unexpected parameter 'late.weight'"), std::string::npos) << msg;
  }
  EXPECT_EQ(adam2.step_count(), 0);
  EXPECT_TRUE(adam2.states().empty());

  // Truncated stream.
  std::stringstream s3(bytes.substr(0, bytes.size() / 2));
  Adam adam3(Params(p).named(), {.lr = 0.01f});
  EXPECT_THROW(load_optimizer_state(adam3, s3), std::runtime_error);
  EXPECT_EQ(adam3.step_count(), 0);
}
