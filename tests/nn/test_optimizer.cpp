// Optimizers against torch.optim (five steps each on a least-squares problem; see
// tests/golden/make_golden.py), option validation, weight-decay exclusion, lazy state.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/ops.h"
#include "nn/optimizer.h"
#include "nn_test_util.h"
#include "tests/golden/golden_values.h"

using namespace pf;
namespace g = pf::golden;

namespace {

// 1e-6 relative, as asked of the optimizers, plus an absolute floor of 1e-7 (one float ulp at
// magnitude 1) for values that pass near zero: every parameter here is O(0.1 - 1) and is updated by
// O(1)-magnitude float arithmetic, so an ulp-level difference in an intermediate (PyTorch's
// kernels may fuse a multiply-add where we round twice, or sum the gradient GEMM in another
// order) survives as an absolute, not a relative, error. Measured worst case: 6e-8.
constexpr float kRtol = 1e-6f, kAtol = 1e-7f;

struct Problem {
  Var w{test::from_golden(g::opt_w0, g::opt_w0_shape), true};
  Var b{test::from_golden(g::opt_b0, g::opt_b0_shape), true};
  Var x{test::from_golden(g::opt_x, g::opt_x_shape)};
  Var y{test::from_golden(g::opt_y, g::opt_y_shape)};
  // Names as a Linear inside a model would have them: decay_by_default excludes the bias.
  NamedParameters named() const { return {{"fc.weight", w}, {"fc.bias", b}}; }
  Var loss() const {
    Var d = matmul(x, w, false, true) + b - y;  // (5, 3)
    return mean(d * d);
  }
};

void run_against_golden(Problem& p, Optimizer& opt, const std::vector<float>& ws, const std::vector<float>& bs,
                        const std::vector<float>& losses) {
  const int64_t nw = p.w.numel(), nb = p.b.numel();
  for (int s = 0; s < g::kOptimizerSteps; ++s) {
    opt.zero_grad();
    Var loss = p.loss();
    loss.backward();
    opt.step();
    EXPECT_NEAR(loss.item(), losses[s], kRtol * std::fabs(losses[s]) + kAtol) << "loss at step " << s;
    std::vector<float> ew(ws.begin() + s * nw, ws.begin() + (s + 1) * nw);
    std::vector<float> eb(bs.begin() + s * nb, bs.begin() + (s + 1) * nb);
    test::expect_close(p.w.value(), ew, kRtol, kAtol, ("weight after step " + std::to_string(s + 1)).c_str());
    test::expect_close(p.b.value(), eb, kRtol, kAtol, ("bias after step " + std::to_string(s + 1)).c_str());
  }
  EXPECT_EQ(opt.step_count(), g::kOptimizerSteps);
}

template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no exception)";
}

}  // namespace

TEST(OptimizerGolden, SgdMomentumDampeningWeightDecay) {
  Problem p;
  SGD opt(p.named(), {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f, .dampening = 0.1f});
  run_against_golden(p, opt, g::sgd_momentum_w, g::sgd_momentum_b, g::sgd_momentum_loss);
}

TEST(OptimizerGolden, SgdNesterov) {
  Problem p;
  SGD opt(p.named(), {.lr = 0.05f, .momentum = 0.9f, .nesterov = true});
  run_against_golden(p, opt, g::sgd_nesterov_w, g::sgd_nesterov_b, g::sgd_nesterov_loss);
}

TEST(OptimizerGolden, AdamWithL2OnEveryParameter) {
  Problem p;
  Adam opt(p.named(), {.lr = 0.05f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-3f, .weight_decay = 0.1f}, decay_all);
  run_against_golden(p, opt, g::adam_w, g::adam_b, g::adam_loss);
}

TEST(OptimizerGolden, AdamWDecoupledDecayExcludingBias) {
  Problem p;
  AdamW opt(p.named(), {.lr = 0.05f, .beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-8f, .weight_decay = 0.1f});
  EXPECT_TRUE(opt.decays("fc.weight"));
  EXPECT_FALSE(opt.decays("fc.bias"));
  run_against_golden(p, opt, g::adamw_w, g::adamw_b, g::adamw_loss);
}

TEST(OptimizerOptions, ValidationNamesTheOptionAndValue) {
  auto sgd = [](SGDOptions o) { return error_of([&] { o.validate(); }); };
  EXPECT_NE(sgd({.lr = -0.5f}).find("lr = -0.5"), std::string::npos) << sgd({.lr = -0.5f});
  EXPECT_NE(sgd({.momentum = -1.f}).find("momentum = -1"), std::string::npos);
  EXPECT_NE(sgd({.weight_decay = -2.f}).find("weight_decay = -2"), std::string::npos);
  EXPECT_NE(sgd({.dampening = 1.5f}).find("dampening = 1.5"), std::string::npos);
  EXPECT_NE(sgd({.nesterov = true}).find("nesterov"), std::string::npos);
  EXPECT_NE(sgd({.momentum = 0.9f, .dampening = 0.1f, .nesterov = true}).find("dampening"), std::string::npos);
  auto adam = [](AdamOptions o) { return error_of([&] { o.validate(); }); };
  EXPECT_NE(adam({.lr = -1.f}).find("lr = -1"), std::string::npos);
  EXPECT_NE(adam({.beta1 = 1.f}).find("beta1 = 1"), std::string::npos);
  EXPECT_NE(adam({.beta1 = -0.1f}).find("beta1 = -0.1"), std::string::npos);
  EXPECT_NE(adam({.beta2 = 1.5f}).find("beta2 = 1.5"), std::string::npos);
  EXPECT_NE(adam({.eps = -1e-3f}).find("eps = -0.001"), std::string::npos);
  EXPECT_NE(adam({.weight_decay = -0.5f}).find("weight_decay = -0.5"), std::string::npos);
  EXPECT_EQ(adam({}), "(no exception)");
  // Constructors validate too.
  Problem p;
  EXPECT_THROW(SGD(p.named(), {.lr = -1.f}), std::invalid_argument);
  EXPECT_THROW(AdamW(p.named(), {.beta2 = 1.f}), std::invalid_argument);
  EXPECT_THROW(Adam({{"a", p.w}, {"a", p.b}}, {}), std::invalid_argument);  // duplicate name
  Adam ok(p.named(), {});
  EXPECT_THROW(ok.set_lr(-1.f), std::invalid_argument);
}

TEST(WeightDecay, DefaultFilterExcludesBiasesNormsEmbeddingsProjectionsAnd1D) {
  Var w2(Tensor({4, 4}), true), w1(Tensor({4}), true);
  EXPECT_TRUE(decay_by_default("blocks.3.attn.q_proj.weight", w2));
  EXPECT_TRUE(decay_by_default("blocks.3.ff.fc1.weight", w2));
  EXPECT_FALSE(decay_by_default("blocks.3.ff.fc1.bias", w1));
  EXPECT_FALSE(decay_by_default("blocks.3.ln1.weight", w1));
  EXPECT_FALSE(decay_by_default("final_norm.weight", w2));  // a 2-D norm parameter, by name
  EXPECT_FALSE(decay_by_default("tok_emb.weight", w2));
  EXPECT_FALSE(decay_by_default("embedding.weight", w2));
  EXPECT_FALSE(decay_by_default("scale", w1));  // any 1-D parameter
  EXPECT_FALSE(decay_by_default("blocks.0.attn.projection", w2));  // a learned feature projection
  EXPECT_TRUE(decay_by_default("blocks.0.attn.out_proj.weight", w2));
  EXPECT_TRUE(decay_all("fc.bias", w1));
}

TEST(WeightDecay, ExcludedParametersAreNotDecayed) {
  // With zero gradients only weight decay moves a parameter.
  for (int kind = 0; kind < 3; ++kind) {
    Var w(Tensor::full({2, 2}, 1.f), true), emb(Tensor::full({3, 2}, 1.f), true), bias(Tensor::full({2}, 1.f), true);
    NamedParameters named = {{"fc.weight", w}, {"tok_emb.weight", emb}, {"fc.bias", bias}};
    std::unique_ptr<Optimizer> opt;
    if (kind == 0) opt = std::make_unique<SGD>(named, SGDOptions{.lr = 0.1f, .weight_decay = 0.5f});
    if (kind == 1) opt = std::make_unique<AdamW>(named, AdamOptions{.lr = 0.1f, .weight_decay = 0.5f});
    if (kind == 2) opt = std::make_unique<Adam>(named, AdamOptions{.lr = 0.1f, .weight_decay = 0.5f});
    for (auto& [n, v] : named) v.grad() = Tensor::zeros(v.shape());
    opt->step();
    EXPECT_LT(w.value().data()[0], 1.f) << opt->kind();
    EXPECT_EQ(emb.value().to_vector(), std::vector<float>(6, 1.f)) << opt->kind();
    EXPECT_EQ(bias.value().to_vector(), std::vector<float>(2, 1.f)) << opt->kind();
  }
  // AdamW's decoupled decay is exactly p * (1 - lr * wd) when the gradient is zero.
  Var w(Tensor::full({2}, 2.f), true);
  AdamW opt({{"w", w}}, {.lr = 0.1f, .weight_decay = 0.5f}, decay_all);
  w.grad() = Tensor::zeros({2});
  opt.step();
  EXPECT_FLOAT_EQ(w.value().data()[0], 2.f * 0.95f);
}

TEST(Optimizer, StateIsLazyAndParametersWithoutGradientsAreSkipped) {
  Var a(Tensor::full({3}, 1.f), true), b(Tensor::full({2}, 1.f), true);
  Adam opt({{"a", a}, {"b", b}}, {.lr = 0.1f});
  EXPECT_EQ(opt.state("a"), nullptr);
  a.grad() = Tensor::full({3}, 1.f);
  opt.step();
  ASSERT_NE(opt.state("a"), nullptr);
  EXPECT_EQ(opt.state("a")->step, 1);
  EXPECT_EQ(opt.state("a")->buffers.size(), 2u);
  EXPECT_EQ(opt.state("b"), nullptr);
  EXPECT_EQ(b.value().to_vector(), std::vector<float>(2, 1.f));
  // Adam's first step moves every coordinate by lr (m / sqrt(v) = 1 after bias correction).
  EXPECT_NEAR(a.value().data()[0], 0.9f, 1e-6f);
  opt.zero_grad();
  EXPECT_FALSE(a.has_grad());
  opt.set_lr(0.5f);
  EXPECT_EQ(opt.lr(), 0.5f);
  EXPECT_EQ(opt.step_count(), 1);
}

TEST(Optimizer, SgdWithoutMomentumIsPlainGradientDescent) {
  Var w(Tensor::from_vector({1.f, -2.f}, {2}), true);
  SGD opt({{"w", w}}, {.lr = 0.5f});
  w.grad() = Tensor::from_vector({0.5f, 1.f}, {2});
  opt.step();
  EXPECT_EQ(w.value().to_vector(), (std::vector<float>{0.75f, -2.5f}));
  EXPECT_TRUE(opt.state("w")->buffers.empty());
}

// Issue 16: an optimizer step between a forward pass and its backward changes values the backward
// reads; the optimizers bump their parameters' versions, and the backward is refused naming the op.
TEST(Optimizer, StepBetweenForwardAndBackwardIsRefused) {
  for (int kind = 0; kind < 2; ++kind) {
    Var w(Tensor::from_vector({1.f, -2.f, 0.5f}, {3}), true);
    std::unique_ptr<Optimizer> opt;
    if (kind == 0)
      opt = std::make_unique<SGD>(NamedParameters{{"w", w}}, SGDOptions{.lr = 0.1f});
    else
      opt = std::make_unique<Adam>(NamedParameters{{"w", w}}, AdamOptions{.lr = 0.1f});
    sum(mul(w, w)).backward();  // a first step's gradient
    Var loss = sum(mul(w, w));  // the next forward
    const uint64_t before = w.version();
    opt->step();                // ... and an optimizer step before its backward
    EXPECT_EQ(w.version(), before + 1) << opt->kind();
    try {
      loss.backward();
      ADD_FAILURE() << opt->kind() << ": backward after an optimizer step was accepted";
    } catch (const std::logic_error& e) {
      EXPECT_NE(std::string(e.what()).find("an input of 'mul' was modified in place"), std::string::npos) << e.what();
    }
    Tape::current().clear();
  }
}
