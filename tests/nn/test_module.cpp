// Module: registration, dotted names through nested modules and ModuleList, train/eval
// propagation, zero_grad, and state dicts (round trip; strict loading that reports every problem
// at once and leaves the module unchanged when it throws).
#include <gtest/gtest.h>

#include <memory>

#include "nn/feed_forward.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/module.h"
#include "nn_test_util.h"

using namespace pf;

namespace {

class Block : public Module {
 public:
  Block(int64_t dim, Generator& gen, std::shared_ptr<Generator> drop_gen) {
    ln = register_module("ln", std::make_shared<LayerNorm>(dim));
    ff = register_module("ff", std::make_shared<FeedForward>(dim, 2 * dim, 0.1f, gen, drop_gen));
  }
  Var forward(const Var& x) const { return x + ff->forward(ln->forward(x)); }
  std::shared_ptr<LayerNorm> ln;
  std::shared_ptr<FeedForward> ff;
};

class Net : public Module {
 public:
  Net(int64_t dim, int nblocks, uint64_t seed) : drop_gen(std::make_shared<Generator>(seed + 1)) {
    Generator gen(seed);
    inp = register_module("inp", std::make_shared<Linear>(3, dim, true, gen));
    blocks = register_module("blocks", std::make_shared<ModuleList<Block>>());
    for (int i = 0; i < nblocks; ++i) blocks->push_back(std::make_shared<Block>(dim, gen, drop_gen));
    scale = register_buffer("scale", Tensor::full({dim}, 0.5f));
  }
  Var forward(const Var& x) const {
    Var h = inp->forward(x);
    for (const auto& b : *blocks) h = b->forward(h);
    return h * scale;
  }
  std::shared_ptr<Generator> drop_gen;
  std::shared_ptr<Linear> inp;
  std::shared_ptr<ModuleList<Block>> blocks;
  Var scale;
};

class Raw : public Module {
 public:
  Raw() { w = register_parameter("w", Tensor::zeros({2})); }
  void reg(const std::string& name) { register_parameter(name, Tensor::zeros({1})); }
  Var w;
};

std::vector<std::string> names_of(const std::vector<std::pair<std::string, Var>>& named) {
  std::vector<std::string> out;
  for (auto& [n, v] : named) out.push_back(n);
  return out;
}

}  // namespace

TEST(Module, DottedNamesThroughNestedModulesAndModuleList) {
  Net net(4, 3, 1);
  const std::vector<std::string> names = names_of(net.named_parameters());
  const std::vector<std::string> block2 = {"blocks.2.ln.weight",   "blocks.2.ln.bias",       "blocks.2.ff.fc1.weight",
                                           "blocks.2.ff.fc1.bias", "blocks.2.ff.fc2.weight", "blocks.2.ff.fc2.bias"};
  ASSERT_EQ(names.size(), 2u + 3u * 6u);
  EXPECT_EQ(names[0], "inp.weight");
  EXPECT_EQ(names[1], "inp.bias");
  for (size_t i = 0; i < block2.size(); ++i) EXPECT_EQ(names[2 + 12 + i], block2[i]);
  // Buffers are named the same way but are not parameters, and do not require gradients.
  auto buffers = net.named_buffers();
  ASSERT_EQ(buffers.size(), 1u);
  EXPECT_EQ(buffers[0].first, "scale");
  EXPECT_FALSE(buffers[0].second.requires_grad());
  for (auto& [n, v] : net.named_parameters()) EXPECT_TRUE(v.requires_grad()) << n;
  // The registry holds the module's own handles.
  EXPECT_EQ(net.named_parameters()[0].second.slot(), net.inp->weight.slot());
  EXPECT_EQ(net.num_parameters(), (3 * 4 + 4) + 3 * (4 + 4 + 4 * 8 + 8 + 8 * 4 + 4));
  EXPECT_EQ(net.state_dict().count("blocks.2.ff.fc1.weight"), 1u);
  EXPECT_EQ(net.state_dict().count("scale"), 1u);
}

TEST(Module, RejectsDuplicateAndDottedNames) {
  Raw r;
  EXPECT_THROW(r.reg("w"), std::invalid_argument);
  EXPECT_THROW(r.reg("a.b"), std::invalid_argument);
  EXPECT_THROW(r.reg(""), std::invalid_argument);
  r.reg("v");
  EXPECT_EQ(names_of(r.named_parameters()), (std::vector<std::string>{"w", "v"}));
}

TEST(Module, TrainEvalPropagatesToEveryDescendant) {
  Net net(4, 2, 1);
  EXPECT_TRUE(net.is_training());
  net.eval();
  EXPECT_FALSE(net.is_training());
  EXPECT_FALSE(net.blocks->is_training());
  EXPECT_FALSE((*net.blocks)[1].ff->drop->is_training());
  net.train();
  EXPECT_TRUE((*net.blocks)[1].ff->drop->is_training());
  EXPECT_TRUE((*net.blocks)[0].ln->is_training());
}

TEST(Module, ZeroGradClearsEveryParameter) {
  Net net(4, 2, 1);
  Var x(test::randn({2, 5, 3}, 9));
  sum(net.forward(x)).backward();
  for (auto& [n, v] : net.named_parameters()) EXPECT_TRUE(v.has_grad()) << n;
  net.zero_grad();
  for (auto& [n, v] : net.named_parameters()) EXPECT_FALSE(v.has_grad()) << n;
}

TEST(Module, StateDictRoundTripsIntoAnotherModel) {
  Net a(4, 2, 1), b(4, 2, 2);
  ASSERT_FALSE(test::bitwise_equal(a.inp->weight.value(), b.inp->weight.value()));
  b.scale.value().fill(3.f);
  StateDict sd = a.state_dict();
  b.load_state_dict(sd);
  for (auto& [name, t] : b.state_dict()) EXPECT_TRUE(test::bitwise_equal(t, sd.at(name))) << name;
  // Loading copies into the existing storage: the modules' handles see the values, and the
  // two models do not share storage afterwards.
  EXPECT_TRUE(test::bitwise_equal(b.inp->weight.value(), a.inp->weight.value()));
  EXPECT_FALSE(b.inp->weight.value().shares_storage_with(a.inp->weight.value()));
  a.eval();
  b.eval();
  Var x(test::randn({2, 5, 3}, 9));
  EXPECT_TRUE(test::bitwise_equal(a.forward(x).value(), b.forward(x).value()));
}

TEST(Module, StrictLoadReportsEveryProblemAndLeavesModuleUnchanged) {
  Net net(4, 2, 1);
  StateDict before;
  for (auto& [n, t] : net.state_dict()) before[n] = t.clone();

  StateDict bad;
  for (auto& [n, t] : net.state_dict()) bad[n] = Tensor::full(t.shape(), 7.f);
  bad.erase("blocks.1.ff.fc2.bias");                      // missing
  bad.erase("scale");                                     // missing buffer
  bad["blocks.7.ff.fc1.weight"] = Tensor::zeros({2, 2});  // unexpected
  bad["blocks.0.ln.weight"] = Tensor::zeros({5});         // mis-shaped
  bad["inp.weight"] = Tensor::zeros({3, 4});              // mis-shaped (transposed)
  try {
    net.load_state_dict(bad);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    for (const char* key : {"blocks.1.ff.fc2.bias", "scale", "blocks.7.ff.fc1.weight", "blocks.0.ln.weight",
                            "inp.weight", "(5,)", "(4,)", "(3, 4)", "(4, 3)"})
      EXPECT_NE(msg.find(key), std::string::npos) << "message lacks " << key << ":\n" << msg;
  }
  for (auto& [n, t] : net.state_dict()) EXPECT_TRUE(test::bitwise_equal(t, before.at(n))) << n << " changed";
}

TEST(Module, NonStrictLoadIgnoresMissingAndUnexpectedButNotShapes) {
  Net net(4, 1, 1);
  StateDict part;
  part["inp.bias"] = Tensor::full({4}, 2.f);
  part["extra"] = Tensor::zeros({1});
  net.load_state_dict(part, /*strict=*/false);
  EXPECT_EQ(net.inp->bias.value().to_vector(), std::vector<float>(4, 2.f));
  EXPECT_THROW(net.load_state_dict(part, true), std::invalid_argument);
  part["inp.weight"] = Tensor::zeros({1, 1});
  EXPECT_THROW(net.load_state_dict(part, false), std::invalid_argument);
}
