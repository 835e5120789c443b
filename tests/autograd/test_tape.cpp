#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <thread>

#include "autograd/ops.h"
#include "test_util.h"

using namespace pf;

TEST(Tape, BackwardAccumulatesIntoLeaves) {
  Var x(Tensor::from_vector({1, 2, 3}, {3}), true);
  Var y = sum(x * x);  // dy/dx = 2x
  y.backward();
  test::expect_values(x.grad(), {2, 4, 6});
  // Leaves keep their gradient until zeroed: a second backward adds.
  Var y2 = sum(x * x);
  y2.backward();
  test::expect_values(x.grad(), {4, 8, 12});
  x.zero_grad();
  EXPECT_FALSE(x.has_grad());
}

TEST(Tape, ValueUsedTwiceGetsBothContributions) {
  Var x(Tensor::from_vector({3}, {1}), true);
  Var a = x * 2.0f;
  Var y = sum(a * a + a);  // y = 4x^2 + 2x, dy/dx = 8x + 2 = 26
  y.backward();
  EXPECT_FLOAT_EQ(x.grad().item(), 26.0f);
}

// An intermediate value's first gradient shares its storage with the gradient it came from (copy on
// write, autograd/var.cpp): y = a + b hands the same buffer to a and b. When a then receives a second
// contribution (here from c = f(a), recorded after b, so c's backward runs before b's), the addition
// must not write into the buffer b still holds: b's gradient, and so q's, must stay r * 3. Both ways
// of adding in place are covered: accumulate_grad (mul_scalar) and a GEMM with beta = 1 (linear).
TEST(Tape, SharedFirstGradientIsCopiedBeforeAnotherIsAddedInPlace) {
  for (bool gemm : {false, true}) {
    SCOPED_TRACE(gemm ? "linear" : "mul_scalar");
    Var p(test::randn({3, 4}, 1), true), q(test::randn({3, 4}, 2), true);
    const Tensor w = test::randn({4, 4}, 3), r = test::randn({3, 4}, 4);
    Var a = mul_scalar(p, 2.0f), b = mul_scalar(q, 3.0f);
    Var c = gemm ? linear(a, Var(w), Var()) : mul_scalar(a, 5.0f);
    Var z = add(add(a, b), c);
    sum(mul(z, Var(r))).backward();
    for (int64_t i = 0; i < 12; ++i) EXPECT_FLOAT_EQ(q.grad().data()[i], 3.0f * r.data()[i]) << i;
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 4; ++j) {
        float da = r.data()[i * 4 + j];  // dz/da = r + (r W or 5 r)
        if (gemm) {
          for (int64_t o = 0; o < 4; ++o) da += r.data()[i * 4 + o] * w.data()[o * 4 + j];
        } else {
          da += 5.0f * r.data()[i * 4 + j];
        }
        EXPECT_NEAR(p.grad().data()[i * 4 + j], 2.0f * da, 1e-5f) << i << "," << j;
      }
  }
}

TEST(Tape, NonScalarNeedsSeed) {
  Var x(Tensor::ones({2, 2}), true);
  Var y = x * 3.0f;
  try {
    y.backward();
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("(2, 2)"), std::string::npos);
  }
  y.backward(Tensor::full({2, 2}, 2.0f));
  test::expect_values(x.grad(), {6, 6, 6, 6});
}

TEST(Tape, BackwardWithoutGradientIsAnError) {
  Var x(Tensor::ones({1}), false);
  Var y = x * 2.0f;
  EXPECT_THROW(y.backward(), std::invalid_argument);
}

TEST(Tape, NoGradGuardRecordsNothing) {
  Tape::current().clear();
  Var x(Tensor::ones({4}), true);
  {
    NoGradGuard guard;
    Var y = exp(x * 2.0f) + x;
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(Tape::current().size(), 0u);
    {
      NoGradGuard nested;
    }
    EXPECT_FALSE(grad_enabled());  // nesting restores the outer state, not "on"
  }
  EXPECT_TRUE(grad_enabled());
  Var z = x * 2.0f;
  EXPECT_EQ(Tape::current().size(), 1u);
  Tape::current().clear();
}

TEST(Tape, ReleasedAfterBackwardUnlessKept) {
  Tape::current().clear();
  Var x(Tensor::ones({3}), true);
  Var y = sum(x * x);
  EXPECT_EQ(Tape::current().size(), 2u);
  y.backward(/*keep_tape=*/true);
  EXPECT_EQ(Tape::current().size(), 2u);
  test::expect_values(x.grad(), {2, 2, 2});
  x.zero_grad();
  y.backward();
  EXPECT_EQ(Tape::current().size(), 0u);
  test::expect_values(x.grad(), {2, 2, 2});
}

TEST(Tape, IntermediateGradientsAreFreed) {
  Var x(Tensor::ones({3}), true);
  Var h = x * 2.0f;
  Var y = sum(h);
  y.backward();
  EXPECT_FALSE(h.has_grad());  // only leaves keep gradients
  EXPECT_TRUE(x.has_grad());
}

// Thousands of training-like steps: the tape is empty after each backward and the memory held
// by tensors returns to the same level (a leak of even one small tensor per step would show).
TEST(Tape, MemoryDoesNotGrowOverManySteps) {
  Generator gen(1);
  Var w(Tensor::randn({16, 16}, gen, 0.0f, 0.1f), true);
  Var b(Tensor::zeros({16}), true);
  Tensor xin = Tensor::randn({8, 16}, gen);
  int64_t baseline = -1;
  for (int step = 0; step < 3000; ++step) {
    Var h = tanh(matmul(Var(xin), w) + b);
    Var loss = mean(h * h);
    loss.backward();
    EXPECT_EQ(Tape::current().size(), 0u);
    {
      NoGradGuard ng;
      w.value().vec() -= 0.01f * w.grad().vec();
      b.value().vec() -= 0.01f * b.grad().vec();
    }
    w.zero_grad();
    b.zero_grad();
    if (step == 10) baseline = live_tensor_bytes();
    if (step > 10) {
      ASSERT_EQ(live_tensor_bytes(), baseline) << "at step " << step;
    }
  }
}

TEST(Tape, IndependentGraphsBackwardSeparately) {
  Var a(Tensor::from_vector({2}, {1}), true), b(Tensor::from_vector({3}, {1}), true);
  Var ya = a * a;  // graph 1
  Var yb = b * b * b;  // graph 2, still alive while graph 1 runs backward
  ya.backward();
  EXPECT_FLOAT_EQ(a.grad().item(), 4.0f);
  EXPECT_FALSE(b.has_grad());
  yb.backward();
  EXPECT_FLOAT_EQ(b.grad().item(), 27.0f);
  EXPECT_EQ(Tape::current().size(), 0u);
}

TEST(Tape, DroppedBranchesArePruned) {
  Tape::current().clear();
  Var x(Tensor::ones({4}), true);
  for (int i = 0; i < 5000; ++i) {
    Var unused = sum(x * 2.0f);  // computed for logging, never backpropagated, then dropped
  }
  Tape::current().prune();
  EXPECT_EQ(Tape::current().size(), 0u);
}

// accumulate_grad(Tensor&&) takes over a gradient only when nothing else shares its storage: a view of
// another tensor is copied, so later in-place accumulation cannot write through to that tensor.
TEST(Tape, FirstGradientIsTakenOverOnlyWhenUnshared) {
  GradSlot a;
  a.shape = {4};
  Tensor fresh = Tensor::from_vector({1, 1, 1, 1}, {4});
  const float* p = fresh.data();
  a.accumulate_grad(std::move(fresh));
  EXPECT_EQ(a.grad.data(), p);  // taken over, no copy
  a.accumulate_grad(Tensor::from_vector({1, 1, 1, 1}, {4}));
  EXPECT_EQ(a.grad.to_vector(), std::vector<float>({2, 2, 2, 2}));

  GradSlot b;
  b.shape = {4};
  Tensor upstream = Tensor::from_vector({5, 6, 7, 8}, {2, 2});
  b.accumulate_grad(upstream.reshape({4}));  // shares upstream's storage: must be copied
  EXPECT_NE(b.grad.data(), upstream.data());
  b.accumulate_grad(Tensor::from_vector({1, 1, 1, 1}, {4}));
  EXPECT_EQ(upstream.to_vector(), std::vector<float>({5, 6, 7, 8}));
  EXPECT_EQ(b.grad.to_vector(), std::vector<float>({6, 7, 8, 9}));
}

// ---- issue 16: traps that used to give silent wrong or missing gradients

// The tape is per thread: a backward on another thread used to find an empty tape and leave every
// gradient undefined without a word.
TEST(Tape, BackwardOnAnotherThreadIsAnErrorThatSaysWhy) {
  Var x(Tensor::from_vector({1.0f, 2.0f}, {2}), true);
  Var loss = sum(x * x);
  std::string error;
  std::thread other([&] {
    try {
      loss.backward();
    } catch (const std::logic_error& e) {
      error = e.what();
    }
  });
  other.join();
  EXPECT_NE(error.find("computed on another thread"), std::string::npos) << "no error: '" << error << "'";
  EXPECT_NE(error.find("Call backward() on the thread that ran the forward pass"), std::string::npos) << error;
  EXPECT_FALSE(x.has_grad());
  loss.backward();  // the graph is intact: on the recording thread it works
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{2.0f, 4.0f}));
}

// A value saved by an op and modified in place before the backward: the backward is refused, naming
// the op, instead of producing a gradient computed from the new value.
TEST(Tape, InPlaceModificationOfASavedInputIsRefusedNamingTheOp) {
  Var w(Tensor::from_vector({1.0f, 2.0f, 3.0f}, {3}), true);
  Var x(Tensor::from_vector({4.0f, 5.0f, 6.0f}, {3}), true);
  Var loss = sum(mul(w, x));  // d loss / d x = w: mul's backward reads w
  const uint64_t v0 = w.version();
  w.mutable_value().fill(0.0f);  // in-place edit after the forward
  EXPECT_EQ(w.version(), v0 + 1);
  try {
    loss.backward();
    FAIL() << "backward after an in-place modification was accepted";
  } catch (const std::logic_error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("an input of 'mul' was modified in place"), std::string::npos) << m;
  }
  Tape::current().clear();
}

TEST(Tape, UnmodifiedInputsPassTheVersionCheck) {
  Var w(Tensor::from_vector({1.0f, 2.0f, 3.0f}, {3}), true);
  Var x(Tensor::from_vector({4.0f, 5.0f, 6.0f}, {3}), true);
  for (int round = 0; round < 2; ++round) {
    Var loss = sum(mul(w, x));
    loss.backward();
    w.mutable_value().fill(0.5f);  // modified between backward and the next forward: fine
  }
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{1.5f, 2.5f, 3.5f}));  // 1,2,3 then 0.5 each
}

// GradientHookGuard (the general replacement of the old backward-scale test hook): it sees every
// node's op and incoming gradient, e.g. to find where a gradient first stops being finite, and the
// node receives what the hook leaves in the gradient.
TEST(Tape, GradientHookSeesEveryNodeAndFindsTheFirstNonFiniteGradient) {
  Var x(Tensor::from_vector({0.0f, 1.0f}, {2}), true);
  Var loss = sum(sqrt(mul_scalar(x, 2.0f)));  // d sqrt(h)/dh is infinite at h = 0
  std::vector<std::string> ops;
  std::string first_non_finite;
  {
    GradientHookGuard hook([&](const char* op, Tensor& g) {
      ops.push_back(op);
      for (float v : g.to_vector())
        if (!std::isfinite(v) && first_non_finite.empty()) first_non_finite = op;
    });
    loss.backward();
  }
  EXPECT_EQ(ops, (std::vector<std::string>{"sum", "sqrt", "mul_scalar"}));
  // The first node that receives a non-finite gradient comes right after the op that made it (sqrt).
  EXPECT_EQ(first_non_finite, "mul_scalar");
  EXPECT_FALSE(std::isfinite(x.grad().to_vector()[0]));

  Var y(Tensor::from_vector({1.0f, 2.0f}, {2}), true);
  {
    GradientHookGuard doubled([](const char*, Tensor& g) { g.vec() *= 2.0f; });
    sum(y).backward();
  }
  EXPECT_EQ(y.grad().to_vector(), (std::vector<float>{2.0f, 2.0f}));
  y.zero_grad();
  sum(y).backward();  // the guard is gone
  EXPECT_EQ(y.grad().to_vector(), (std::vector<float>{1.0f, 1.0f}));
}

// ---- what the tape keeps alive

// A recorded op holds its inputs' gradient slots, not their values: a value that no backward reads
// (the input of add, reshape, a scalar multiply, a sum) is freed once the user drops it, although
// later ops took it as an input and their nodes are still on the tape.
TEST(Tape, ValuesNoBackwardReadsAreFreedWhenDropped) {
  constexpr int64_t n = 1 << 16;  // 256 KiB per tensor
  Var x(Tensor::full({n}, 0.5f), true);
  const int64_t before = live_tensor_bytes();
  Var loss;
  {
    Var a = mul_scalar(x, 2.0f);              // saves nothing
    Var b = add_scalar(a, 1.0f);              // saves nothing
    Var c = reshape(b + a, {n / 4, 4});        // add and reshape save nothing
    loss = sum(c);                           // saves nothing
  }
  // Only the loss is alive beyond x: a, b, b + a and c have gone although their consumers'
  // nodes are on the tape (before the gradient slots were split from the values, all four stayed).
  EXPECT_LT(live_tensor_bytes() - before, n * 4) << "an intermediate value is still held by the tape";
  EXPECT_GT(Tape::current().size(), 0u);
  loss.backward();
  for (int64_t i = 0; i < n; i += 4097) ASSERT_EQ(x.grad().data()[i], 4.0f);  // d(2x + 1 + 2x)/dx
}

// backward() frees each node's saved tensors as soon as the node has run, not at the end of the pass:
// in a chain of ops that each save their input, the memory held while the first op's node runs is
// far below what was held when the pass started. The gradients are those of the plain chain.
TEST(Tape, BackwardReleasesSavedTensorsAsItGoes) {
  constexpr int64_t n = 1 << 16;
  constexpr int kDepth = 12;
  Var x(Tensor::full({n}, 0.1f), true);
  std::vector<int64_t> live_at;
  Var loss;
  {
    Var h = x;
    for (int i = 0; i < kDepth; ++i) h = gelu(h);  // each gelu saves its input (n floats)
    loss = sum(h);
  }
  {
    GradientHookGuard hook([&](const char*, Tensor&) { live_at.push_back(live_tensor_bytes()); });
    loss.backward();
  }
  ASSERT_EQ(live_at.size(), static_cast<size_t>(kDepth + 1));  // sum, then the gelus from the last
  // At the start kDepth saved inputs (x is one of them) are alive; at the last node only x's.
  EXPECT_GT(live_at.front() - live_at.back(), (kDepth - 3) * n * 4)
      << "saved tensors stayed alive until the end of the pass";
  // Gradient: the product of gelu'(h_i) along the chain, checked against a second, uninstrumented run
  // that keeps the tape (and so every closure) until the end.
  Var x2(Tensor::full({n}, 0.1f), true);
  Var h2 = x2;
  for (int i = 0; i < kDepth; ++i) h2 = gelu(h2);
  sum(h2).backward(/*keep_tape=*/true);
  EXPECT_EQ(x.grad().to_vector(), x2.grad().to_vector());
  Tape::current().clear();
}
