// recompute(): the recomputed graph must give exactly the gradients of the plain graph (which the
// gradcheck tests hold against finite differences), while keeping only its inputs.
#include <gtest/gtest.h>

#include <vector>

#include "base/random.h"
#include "autograd/ops.h"
#include "autograd/recompute.h"
#include "test_util.h"

using namespace pf;

namespace {

// A small two-layer function with a parameter, some elementwise work and a reduction inside.
Var layer(const Var& x, const Var& w) { return gelu(matmul(x, w)) * x + tanh(x); }

struct Case {
  Var x, y, w;
};

Case make_case() {
  Generator g(3);
  return {Var(Tensor::randn({5, 4}, g), true), Var(Tensor::randn({5, 4}, g), false), Var(Tensor::randn({4, 4}, g), true)};
}

}  // namespace

TEST(Recompute, SameValueAndGradientsAsThePlainGraph) {
  Case plain = make_case(), rec = make_case();
  Var a = layer(layer(plain.x, plain.w) + plain.y, plain.w);
  Var loss_plain = sum(a * a);
  loss_plain.backward();

  auto fn = [w = rec.w](const std::vector<Var>& in) { return layer(in[0], w) + in[1]; };
  Var h = recompute({rec.x, rec.y}, fn);
  Var b = recompute({h}, [w = rec.w](const std::vector<Var>& in) { return layer(in[0], w); });
  Var loss_rec = sum(b * b);
  EXPECT_EQ(loss_rec.item(), loss_plain.item());
  loss_rec.backward();
  ASSERT_TRUE(rec.x.has_grad());
  ASSERT_TRUE(rec.w.has_grad());
  EXPECT_FALSE(rec.y.has_grad());  // an input that wants no gradient gets none
  EXPECT_EQ(max_abs_diff(rec.x.grad(), plain.x.grad()), 0.0f);
  EXPECT_EQ(max_abs_diff(rec.w.grad(), plain.w.grad()), 0.0f);
  EXPECT_EQ(Tape::current().size(), 0u);  // the outer tape was consumed, the private ones are gone
}

TEST(Recompute, RecordsOneNodeAndKeepsNoIntermediates) {
  Case c = make_case();
  const size_t before = Tape::current().size();
  Var out = recompute({c.x}, [w = c.w](const std::vector<Var>& in) { return layer(layer(in[0], w), w); });
  EXPECT_EQ(Tape::current().size(), before + 1);
  {
    Case p = make_case();
    Var plain = layer(layer(p.x, p.w), p.w);
    EXPECT_GT(Tape::current().size(), before + 4);  // the plain graph records every op
  }
  Tape::current().prune();
  sum(out).backward();
  EXPECT_TRUE(c.w.has_grad());
}

TEST(Recompute, ParametersInsideGetGradientsWhenNoInputWantsOne) {
  Generator g(5);
  Var x(Tensor::randn({3, 4}, g), false), w(Tensor::randn({4, 2}, g), true);
  Var out = recompute({x}, [w](const std::vector<Var>& in) { return matmul(in[0], w); });
  ASSERT_TRUE(out.requires_grad());
  sum(out).backward();
  ASSERT_TRUE(w.has_grad());
  Var w2(w.value(), true);
  sum(matmul(x, w2)).backward();
  EXPECT_EQ(max_abs_diff(w.grad(), w2.grad()), 0.0f);
}

TEST(Recompute, UnderNoGradItJustRunsTheFunction) {
  Case c = make_case();
  NoGradGuard no_grad;
  const size_t before = Tape::current().size();
  Var out = recompute({c.x}, [w = c.w](const std::vector<Var>& in) { return layer(in[0], w); });
  EXPECT_FALSE(out.requires_grad());
  EXPECT_EQ(Tape::current().size(), before);
}

// Issue 16: the recompute node checks its inputs' versions like every other node (it reruns fn
// from their current values, so an in-place change would silently give other gradients).
TEST(Recompute, InputModifiedInPlaceBeforeBackwardIsRefused) {
  Var x(Tensor::from_vector({0.5f, -1.0f, 2.0f}, {3}), true);
  Var h = mul_scalar(x, 2.0f);
  Var y = recompute({h}, [](const std::vector<Var>& in) { return tanh(in[0]); });
  Var loss = sum(y);
  h.mutable_value().fill(0.0f);
  try {
    loss.backward();
    FAIL() << "accepted";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("an input of 'recompute' was modified in place"), std::string::npos)
        << e.what();
  }
  Tape::current().clear();
}
