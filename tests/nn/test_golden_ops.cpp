// The autograd ops the nn layers are built from, against PyTorch: GELU (tanh approximation)
// and cross-entropy with an ignored target (values and gradients). LayerNorm and attention are
// compared in their own test files.
#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "nn_test_util.h"
#include "tests/golden/golden_values.h"

using namespace pf;
namespace g = pf::golden;

// Against PyTorch: 1e-5 relative plus 1e-6 absolute, a few ulp of the O(1) operands (see
// test_layer_norm.cpp; measured worst case 1.5e-8).
constexpr float kRtol = 1e-5f, kAtol = 1e-6f;

TEST(GoldenOps, GeluTanhApproximationMatchesPyTorch) {
  Var x(test::from_golden(g::gelu_x, g::gelu_x_shape), true);
  Var y = gelu(x);
  test::expect_close(y.value(), g::gelu_out, kRtol, kAtol, "gelu");
  sum(y).backward();
  test::expect_close(x.grad(), g::gelu_dx, kRtol, kAtol, "dgelu");
}

TEST(GoldenOps, CrossEntropyWithIgnoredTargetMatchesPyTorch) {
  Var logits(test::from_golden(g::ce_logits, g::ce_logits_shape), true);
  ASSERT_EQ(g::ce_targets[1], kIgnoreIndex);
  Var loss = cross_entropy(logits, g::ce_targets);
  EXPECT_NEAR(loss.item(), g::ce_loss, kRtol * g::ce_loss + kAtol);
  loss.backward();
  test::expect_close(logits.grad(), g::ce_dlogits, kRtol, kAtol, "dlogits");
  // The ignored row gets no gradient at all.
  for (int64_t c = 0; c < 5; ++c) EXPECT_EQ(logits.grad().at({1, c}), 0.f);
}
