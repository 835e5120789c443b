// The gradcheck utility itself: it accepts correct gradients and rejects a planted wrong one.
#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "test_util.h"

using namespace pf;

namespace {

// x^3 with a backward that is off by `factor` (1 = correct).
Var cube_with_factor(const Var& x, float factor) {
  Tensor out = Tensor::empty(x.shape());
  for (int64_t i = 0; i < out.numel(); ++i) out.data()[i] = std::pow(x.value().data()[i], 3.0f);
  return make_result(std::move(out), needs_grad({&x}), "cube", [x = x.slot_ptr(), xv = x.value(), factor](const Tensor& g) {
    Tensor d = Tensor::empty(g.shape());
    for (int64_t i = 0; i < d.numel(); ++i) d.data()[i] = factor * g.data()[i] * 3.0f * xv.data()[i] * xv.data()[i];
    x->accumulate_grad(d);
  });
}

}  // namespace

TEST(Gradcheck, AcceptsCorrectBackward) {
  auto r = gradcheck([](const std::vector<Var>& v) { return cube_with_factor(v[0], 1.0f); }, {test::randn({5, 4}, 1)});
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_LT(r.worst_rel_error, 2e-3);
}

TEST(Gradcheck, RejectsBackwardOffByFivePercent) {
  for (float factor : {1.05f, 0.95f}) {
    auto r = gradcheck([factor](const std::vector<Var>& v) { return cube_with_factor(v[0], factor); },
                       {test::randn({5, 4}, 1)});
    EXPECT_FALSE(r.ok) << "factor " << factor;
    EXPECT_NE(r.message.find("analytic"), std::string::npos);
  }
}

TEST(Gradcheck, RejectsWrongGradientOnOneInputOnly) {
  // Correct for a, 5% wrong for b: the check must name input 1.
  auto f = [](const std::vector<Var>& v) { return v[0] * 2.0f + cube_with_factor(v[1], 1.05f); };
  auto r = gradcheck(f, {test::randn({3}, 2), test::randn({3}, 3)});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("input 1"), std::string::npos) << r.message;
}

TEST(Gradcheck, PlantedGlobalScaleIsDetected) {
  // The hook used by every op test (test::check_gradients) really perturbs the backward.
  auto f = [](const std::vector<Var>& v) { return tanh(v[0]); };
  test::check_gradients(f, {test::randn({6}, 4)});
}

// Issue 16: gradcheck records on its own tape; a graph the caller recorded before it is still there
// for the caller's backward.
TEST(Gradcheck, LeavesTheCallersTapeAlone) {
  Var x(Tensor::from_vector({1.0f, 2.0f, 3.0f}, {3}), true);
  Var loss = sum(x * x);  // recorded on the caller's tape
  const size_t recorded = Tape::current().size();
  ASSERT_GT(recorded, 0u);
  auto r = gradcheck([](const std::vector<Var>& v) { return tanh(v[0]); }, {test::randn({4}, 5)});
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ(Tape::current().size(), recorded);
  loss.backward();
  ASSERT_TRUE(x.has_grad()) << "gradcheck cleared the caller's tape: no gradient arrived";
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{2.0f, 4.0f, 6.0f}));
}
