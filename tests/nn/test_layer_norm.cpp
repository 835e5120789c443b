// LayerNorm module: state-dict names, forward and gradients against PyTorch, finite differences.
#include <gtest/gtest.h>

#include "nn/layer_norm.h"
#include "nn_test_util.h"
#include "tests/golden/golden_values.h"

using namespace pf;
namespace g = pf::golden;

// Float32 ops with different summation orders from PyTorch's: each value differs by a few ulp.
// 1e-5 relative plus an absolute floor for values near zero, whose error is set by the rounding
// of the O(1) operands they were computed from: 1e-6 for the ops in general (see
// test_attention.cpp, test_golden_ops.cpp). LayerNorm's backward subtracts two row means from
// terms of magnitude ~3 (dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat))), which costs a
// few ulp at that magnitude (measured 5.4e-7), so its floor is 2e-6. A formula mistake is orders
// of magnitude larger than either.
constexpr float kRtol = 1e-5f, kAtol = 2e-6f;

TEST(LayerNorm, ParametersAreNamedWeightAndBias) {
  LayerNorm ln(8);
  auto named = ln.named_parameters();
  ASSERT_EQ(named.size(), 2u);
  EXPECT_EQ(named[0].first, "weight");
  EXPECT_EQ(named[1].first, "bias");
  EXPECT_EQ(ln.gain.value().to_vector(), std::vector<float>(8, 1.f));
  EXPECT_EQ(ln.bias.value().to_vector(), std::vector<float>(8, 0.f));
}

TEST(LayerNorm, MatchesPyTorch) {
  LayerNorm ln(8, 1e-5f);
  ln.gain.value().copy_from(test::from_golden(g::ln_gain, g::ln_gain_shape));
  ln.bias.value().copy_from(test::from_golden(g::ln_bias, g::ln_bias_shape));
  Var x(test::from_golden(g::ln_x, g::ln_x_shape), true);
  Var y = ln.forward(x);
  test::expect_close(y.value(), g::ln_out, kRtol, kAtol, "out");
  y.backward(test::from_golden(g::ln_upstream, g::ln_upstream_shape));
  test::expect_close(x.grad(), g::ln_dx, kRtol, kAtol, "dx");
  test::expect_close(ln.gain.grad(), g::ln_dgain, kRtol, kAtol, "dgain");
  test::expect_close(ln.bias.grad(), g::ln_dbias, kRtol, kAtol, "dbias");
}

TEST(LayerNorm, GradientsMatchFiniteDifferences) {
  LayerNorm ln(6);
  auto f = [&ln](const std::vector<Var>& v) {
    ln.gain = v[1];
    ln.bias = v[2];
    return ln.forward(v[0]);
  };
  test::check_gradients(f, {test::randn({3, 4, 6}, 1, 2.f), test::randn({6}, 2), test::randn({6}, 3)});
}

TEST(LayerNorm, ShapeErrorNamesBothShapes) {
  LayerNorm ln(8);
  try {
    ln.forward(Var(Tensor({2, 7})));
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("(2, 7)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(8,)"), std::string::npos) << e.what();
  }
}
