// Global-norm clipping: returns the pre-clip norm, clips to max_norm, leaves small gradients
// alone, and reports a non-finite norm without touching any gradient.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "nn/clip.h"
#include "nn_test_util.h"

using namespace pf;

namespace {
std::vector<Var> params_with_grads(const std::vector<std::vector<float>>& grads) {
  std::vector<Var> ps;
  for (const auto& g : grads) {
    Var p(Tensor({static_cast<int64_t>(g.size())}), true);
    p.grad() = Tensor::from_vector(g, {static_cast<int64_t>(g.size())});
    ps.push_back(p);
  }
  return ps;
}
}  // namespace

TEST(ClipGradNorm, ReturnsPreClipNormAndClipsToMaxNorm) {
  auto ps = params_with_grads({{3.f, 0.f}, {4.f, 12.f}});  // norm sqrt(9 + 16 + 144) = 13
  ps.push_back(Var(Tensor({3}), true));                    // no gradient: skipped
  EXPECT_FLOAT_EQ(clip_grad_norm(ps, 6.5f), 13.f);
  EXPECT_NEAR(grad_norm(ps), 6.5, 6.5 * 1e-6);
  EXPECT_FLOAT_EQ(ps[0].grad().data()[0], 1.5f);
  EXPECT_FLOAT_EQ(ps[1].grad().data()[1], 6.f);
  EXPECT_FALSE(ps[2].has_grad());
}

TEST(ClipGradNorm, LeavesSmallGradientsUntouched) {
  auto ps = params_with_grads({{0.3f, -0.4f}});
  EXPECT_FLOAT_EQ(clip_grad_norm(ps, 1.f), 0.5f);
  EXPECT_EQ(ps[0].grad().to_vector(), (std::vector<float>{0.3f, -0.4f}));
}

TEST(ClipGradNorm, AccumulatesInDouble) {
  // 1e6 values of 1e-3 (sum of squares 1): float accumulation drifts visibly, double does not.
  auto ps = params_with_grads({std::vector<float>(1000000, 1e-3f)});
  EXPECT_NEAR(clip_grad_norm(ps, 10.f), 1.0, 1e-6);
}

TEST(ClipGradNorm, NonFiniteNormIsReportedAndGradientsUntouched) {
  for (float bad : {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
    auto ps = params_with_grads({{1.f, 2.f}, {bad, 3.f}});
    EXPECT_FALSE(std::isfinite(clip_grad_norm(ps, 1.f)));
    EXPECT_EQ(ps[0].grad().to_vector(), (std::vector<float>{1.f, 2.f}));
    EXPECT_EQ(ps[1].grad().data()[1], 3.f);
  }
  auto ps = params_with_grads({{1.f}});
  EXPECT_THROW(clip_grad_norm(ps, 0.f), std::invalid_argument);
}
