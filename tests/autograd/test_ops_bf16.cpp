// The bf16 path of every op built on gemm(): matmul (2-D, batched, shared right operand, every
// transpose) and linear, values and gradients, against the same op in fp32. The tolerance is derived
// from bf16's 8-bit significand: each product a*b is computed from inputs within u = 2^-8 of
// themselves, so each output element is within (2u + u^2) * sum |a||b| (+ the fp32 accumulation),
// and sum |a||b| is the same op applied to |a| and |b|.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "autograd/gemm.h"
#include "autograd/ops.h"
#include "test_util.h"

using namespace pf;

namespace {

constexpr double kU = 1.0 / 256.0;
constexpr double kBound = 2 * kU + kU * kU;

Tensor abs_of(const Tensor& t) {
  Tensor r = t.clone();
  for (int64_t i = 0; i < r.numel(); ++i) r.data()[i] = std::abs(r.data()[i]);
  return r;
}

// Runs f on inputs (all requiring grad) with upstream gradient r: returns the output and the input gradients.
struct Result {
  Tensor out;
  std::vector<Tensor> grads;
};
Result run(const std::function<Var(const std::vector<Var>&)>& f, const std::vector<Tensor>& inputs, const Tensor& r,
           Precision p) {
  MatmulPrecisionGuard guard(p);
  std::vector<Var> vs;
  for (const Tensor& t : inputs) vs.emplace_back(t.clone(), true);
  Var out = f(vs);
  Var loss = sum(mul(out, Var(r)));
  loss.backward();
  Result res{out.value().clone(), {}};
  for (Var& v : vs) res.grads.push_back(v.grad().clone());
  return res;
}

// Every element of got within kBound * scale (+ fp32 slack) of want; and bf16 visibly differs somewhere.
void expect_within_bound(const Tensor& got, const Tensor& want, const Tensor& scale, const char* what,
                         bool through_gemm = true) {
  ASSERT_EQ(got.numel(), want.numel());
  double worst = 0.0, max_diff = 0.0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double d = std::abs(static_cast<double>(got.data()[i]) - want.data()[i]);
    const double s = scale.data()[i];
    max_diff = std::max(max_diff, d);
    worst = std::max(worst, d / (kBound * s + 1e-5 * s + 1e-30));
  }
  EXPECT_LE(worst, 1.0) << what << ": an element is outside the bf16 bound";
  if (through_gemm) {
    EXPECT_GT(max_diff, 0.0) << what << ": identical to fp32 (was the bf16 path taken?)";
  }
}

// Compares f in bf16 with f in fp32, values and gradients. For the gradients the scale of input i is
// the gradient of the same op on |inputs| with |r|: sum over the same terms of their magnitudes.
// fp32_grads: inputs whose gradient involves no product (a bias: a sum over rows), identical in both.
void check_op(const std::function<Var(const std::vector<Var>&)>& f, const std::vector<Tensor>& inputs,
              const Tensor& r, const char* name, std::vector<size_t> fp32_grads = {}) {
  const Result f32 = run(f, inputs, r, Precision::fp32);
  const Result b16 = run(f, inputs, r, Precision::bf16);
  std::vector<Tensor> abs_in;
  for (const Tensor& t : inputs) abs_in.push_back(abs_of(t));
  const Result scale = run(f, abs_in, abs_of(r), Precision::fp32);
  expect_within_bound(b16.out, f32.out, scale.out, name);
  for (size_t i = 0; i < inputs.size(); ++i)
    expect_within_bound(b16.grads[i], f32.grads[i], scale.grads[i], (std::string(name) + " grad").c_str(),
                        std::find(fp32_grads.begin(), fp32_grads.end(), i) == fp32_grads.end());
}

class Bf16Ops : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!bf16_supported()) GTEST_SKIP() << bf16_unsupported_reason();
  }
};

TEST_F(Bf16Ops, MatmulTwoDimensionalEveryTranspose) {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      Tensor a = ta ? test::randn({48, 40}, 1) : test::randn({40, 48}, 1);
      Tensor b = tb ? test::randn({36, 48}, 2) : test::randn({48, 36}, 2);
      check_op([&](const std::vector<Var>& v) { return matmul(v[0], v[1], ta, tb); }, {a, b},
               test::randn({40, 36}, 3), "matmul");
    }
}

TEST_F(Bf16Ops, MatmulBatchedAndSharedRightOperand) {
  Tensor a = test::randn({3, 4, 24, 32}, 4), b = test::randn({3, 4, 32, 20}, 5), w = test::randn({32, 20}, 6);
  check_op([](const std::vector<Var>& v) { return matmul(v[0], v[1]); }, {a, b}, test::randn({3, 4, 24, 20}, 7),
           "batched matmul");
  check_op([](const std::vector<Var>& v) { return matmul(v[0], v[1]); }, {a, w}, test::randn({3, 4, 24, 20}, 8),
           "shared matmul");
  check_op([](const std::vector<Var>& v) { return matmul(v[0], v[1], false, true); },
           {a, test::randn({3, 4, 20, 32}, 9)}, test::randn({3, 4, 24, 20}, 10), "batched matmul b^T");
}

TEST_F(Bf16Ops, Linear) {
  Tensor x = test::randn({4, 33, 64}, 11), w = test::randn({48, 64}, 12, 0.2f), b = test::randn({48}, 13);
  const Tensor r = test::randn({4, 33, 48}, 14);
  // The bias is added in fp32 after the product: the scale covers it through |b|.
  check_op([](const std::vector<Var>& v) { return linear(v[0], v[1], v[2]); }, {x, w, b}, r, "linear", {2});
}

// Three projections of one recorded value (q, k, v of an attention layer) in bf16: the input is
// converted to bf16 once, kept for the weight gradients instead of the fp32 value, and shared by the
// three. Values and gradients are bit-identical to the same projections of a leaf input, which go
// through the plain bf16 product (gemm rounds the fp32 input itself); what the graph holds of the
// input is one bf16 copy: half of what it holds in fp32.
TEST_F(Bf16Ops, ProjectionsOfOneRecordedInputShareOneSavedBf16Copy) {
  const int64_t rows = 256, C = 64, bytes = rows * C * 4;
  const Tensor x0 = test::randn({rows, C}, 21), r = test::randn({rows, C}, 28);
  struct Run {
    std::vector<Tensor> results;  // the three outputs, then the gradients of x and of the weights
    int64_t held = 0;             // bytes the graph holds of the projections' input
  };
  auto run_projections = [&](Precision p, bool recorded) {
    MatmulPrecisionGuard guard(p);
    Var x(x0.clone(), true);
    std::vector<Var> w, b;
    for (int i = 0; i < 3; ++i) {
      w.emplace_back(test::randn({C, C}, 22 + i, 0.2f), true);
      b.emplace_back(test::randn({C}, 25 + i), true);
    }
    Run run;
    Var loss;
    {
      const int64_t base = live_tensor_bytes();
      std::vector<Var> ys;
      {
        Var h = recorded ? mul_scalar(x, 1.0f) : x;  // h: an op's output, or the leaf itself
        for (int i = 0; i < 3; ++i) ys.push_back(linear(h, w[i], b[i]));
      }
      run.held = live_tensor_bytes() - base - 3 * bytes;  // beyond the three outputs
      for (const Var& y : ys) run.results.push_back(y.value().clone());
      loss = sum(mul(ys[0], Var(r))) + sum(mul(ys[1], Var(r))) + sum(mul(ys[2], Var(r)));
    }
    loss.backward();
    run.results.push_back(x.grad().clone());
    for (const Var& wi : w) run.results.push_back(wi.grad().clone());
    return run;
  };
  const Run shared = run_projections(Precision::bf16, true);
  const Run plain = run_projections(Precision::bf16, false);
  const Run fp32 = run_projections(Precision::fp32, true);
  ASSERT_EQ(shared.results.size(), plain.results.size());
  for (size_t i = 0; i < shared.results.size(); ++i)
    EXPECT_EQ(shared.results[i].to_vector(), plain.results[i].to_vector()) << "result " << i;
  EXPECT_EQ(fp32.held, bytes) << "fp32: the graph holds the input once";
  EXPECT_EQ(shared.held, bytes / 2) << "bf16: the graph holds one bf16 copy of the input";
}

}  // namespace
