// Two spirals: a small MLP learns to tell apart two interleaved spirals, a classic task that no
// linear model can solve. Written through the library exactly as a user would: a Module
// subclass, Linear layers, AdamW, and the zero_grad / forward / loss / backward / step loop.
//
//   example_mlp [--steps 1500] [--points 200] [--hidden 32] [--lr 0.02] [--seed 1] [--min-accuracy 0]
//
// Exits with status 1 if the final training accuracy is below --min-accuracy (used as a test).
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <memory>
#include <numbers>
#include <vector>

#include "pf.h"

namespace {

// 2 -> hidden -> hidden -> 2 class logits, tanh activations.
class Mlp : public pf::Module {
 public:
  Mlp(int64_t hidden, pf::Generator& gen) {
    fc1 = register_module("fc1", std::make_shared<pf::Linear>(2, hidden, true, gen));
    fc2 = register_module("fc2", std::make_shared<pf::Linear>(hidden, hidden, true, gen));
    out = register_module("out", std::make_shared<pf::Linear>(hidden, 2, true, gen));
  }
  pf::Var forward(const pf::Var& x) const {  // (N, 2) -> (N, 2)
    pf::Var h = pf::tanh(fc1->forward(x));
    h = pf::tanh(fc2->forward(h));
    return out->forward(h);
  }
  std::shared_ptr<pf::Linear> fc1, fc2, out;
};

// n points per spiral; spiral 1 is spiral 0 rotated by 180 degrees. Small Gaussian noise.
void make_spirals(int64_t n, pf::Generator& gen, pf::Tensor& x, std::vector<int32_t>& labels) {
  x = pf::Tensor({2 * n, 2});
  labels.assign(2 * n, 0);
  for (int64_t i = 0; i < n; ++i) {
    const double t = 0.25 + 2.75 * static_cast<double>(i) / static_cast<double>(n);  // radius grows with angle
    const double angle = 1.75 * std::numbers::pi * t;
    for (int cls = 0; cls < 2; ++cls) {
      const double sign = cls == 0 ? 1.0 : -1.0;
      const int64_t row = 2 * i + cls;
      x.at({row, 0}) = static_cast<float>(sign * t * std::cos(angle) / 3.0 + 0.02 * gen.normal());
      x.at({row, 1}) = static_cast<float>(sign * t * std::sin(angle) / 3.0 + 0.02 * gen.normal());
      labels[row] = cls;
    }
  }
}

double accuracy(const pf::Tensor& logits, const std::vector<int32_t>& labels) {
  int64_t correct = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const int32_t pred = logits.at({static_cast<int64_t>(i), 1}) > logits.at({static_cast<int64_t>(i), 0}) ? 1 : 0;
    correct += pred == labels[i];
  }
  return static_cast<double>(correct) / static_cast<double>(labels.size());
}

}  // namespace

int main(int argc, char** argv) {
  int64_t steps = 1500, points = 200, hidden = 32;
  float lr = 0.02f;
  uint64_t seed = 1;
  double min_accuracy = 0.0;
  CLI::App app{"Train a small MLP to separate two spirals"};
  app.add_option("--steps", steps, "training steps (full batch)")->check(CLI::PositiveNumber);
  app.add_option("--points", points, "points per spiral")->check(CLI::PositiveNumber);
  app.add_option("--hidden", hidden, "hidden width")->check(CLI::PositiveNumber);
  app.add_option("--lr", lr, "AdamW learning rate")->check(CLI::PositiveNumber);
  app.add_option("--seed", seed, "seed for the data and the initialization");
  app.add_option("--min-accuracy", min_accuracy, "exit with status 1 if the final accuracy is lower");
  CLI11_PARSE(app, argc, argv);

  pf::Generator gen(seed);
  pf::Tensor x_data;
  std::vector<int32_t> labels;
  make_spirals(points, gen, x_data, labels);
  const pf::Var x(x_data);  // (N, 2), no gradient

  Mlp model(hidden, gen);
  pf::AdamW opt(model.named_parameters(), {.lr = lr, .weight_decay = 1e-4f});
  std::printf("two spirals: %lld points, MLP 2-%lld-%lld-2 (%lld parameters), AdamW lr %g\n",
              static_cast<long long>(2 * points), static_cast<long long>(hidden), static_cast<long long>(hidden),
              static_cast<long long>(model.num_parameters()), lr);

  double acc = 0.0;
  for (int64_t step = 1; step <= steps; ++step) {
    opt.zero_grad();
    pf::Var logits = model.forward(x);
    pf::Var loss = pf::cross_entropy(logits, labels);
    loss.backward();
    opt.step();
    if (step % 100 == 0 || step == steps) {
      acc = accuracy(logits.value(), labels);  // of the logits this step was computed from
      std::printf("step %5lld  loss %.4f  accuracy %.1f%%\n", static_cast<long long>(step), loss.item(), 100 * acc);
    }
  }
  {
    pf::NoGradGuard no_grad;
    model.eval();
    acc = accuracy(model.forward(x).value(), labels);
  }
  std::printf("final training accuracy %.1f%%\n", 100 * acc);
  if (acc < min_accuracy) {
    std::fprintf(stderr, "accuracy %.3f is below --min-accuracy %.3f\n", acc, min_accuracy);
    return 1;
  }
  return 0;
}
