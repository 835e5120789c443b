// favor-local (performer/favor_local.h): the fused node against its composed reference (values and
// gradients), finite differences, exact softmax attention when the window covers the sequence, exact
// causality, independence of the chunk length, and the recurrent step against the batch node.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "performer/favor_local.h"
#include "test_favor_util.h"

using namespace pf;
using pf::test::randn;
using pf::test::rel_max_diff;

namespace {

using namespace pf::test::favor_shapes;
using Inputs = test::FavorInputs;
Inputs make_inputs(int64_t T, uint64_t seed, float qk_scale = 0.7f) { return test::make_favor_inputs(T, seed, qk_scale); }

// FAVOR+ (a = 0) or FAVOR++ (a = -0.1: sqrt(1 - 4A) = 1.18, log-weights A |w|^2 ~ -0.8).
FavorOptions options(KeyShift shift, float a = 0.0f, int64_t chunk = kChunk) {
  return test::favor_options(shift, a, chunk);
}

std::string name(int64_t window, KeyShift shift, float a, int64_t T) {
  return "window " + std::to_string(window) + (shift == KeyShift::PerKey ? " per-key" : " shared") +
         (a == 0.0f ? " favor+" : " favor++") + " T " + std::to_string(T);
}

using test::Grads;

template <class Fn>
Grads run_with_grads(Fn fn, const Inputs& in, uint64_t seed) {
  return test::run_with_grads(fn, in.q, in.k, in.v, seed);
}

// Gradients agree to 1e-4 of the largest reference entry plus 1e-5 absolute (as in test_favor.cpp).
void expect_grad_close(const Tensor& fused, const Tensor& ref, const std::string& what) {
  ASSERT_EQ(fused.shape(), ref.shape()) << what;
  float scale = 0.0f;
  for (int64_t i = 0; i < ref.numel(); ++i) scale = std::max(scale, std::fabs(ref.data()[i]));
  EXPECT_LE(max_abs_diff(fused, ref), 1e-4f * scale + 1e-5f) << what << " (largest entry " << scale << ")";
}


}  // namespace

// Values within 1e-5 and gradients within 1e-4 of the composed reference, for windows inside one chunk
// (1, 5), equal to it (16), spanning chunks (21) and longer than the sequence (40), T not a multiple of
// the chunk (37), T = 1 and T = 32, both key shifts, FAVOR+ and FAVOR++.
TEST(FavorLocal, FusedEqualsComposedReference) {
  for (int64_t window : {1, 5, 16, 21, 40})
    for (KeyShift shift : {KeyShift::PerKey, KeyShift::Shared})
      for (float a : {0.0f, -0.1f})
        for (int64_t T : {37, 1, 32}) {
          const Inputs in = make_inputs(T, 100 + T + window);
          const FavorOptions opt = options(shift, a);
          const std::string what = name(window, shift, a, T);
          auto fused = run_with_grads(
              [&](const Var& q, const Var& k, const Var& v) {
                return favor_local_attention(q, k, v, in.w, window, opt);
              },
              in, 7);
          auto ref = run_with_grads(
              [&](const Var& q, const Var& k, const Var& v) {
                return favor_local_attention_reference(q, k, v, in.w, window, opt);
              },
              in, 7);
          ASSERT_EQ(fused.out.shape(), (Shape{kB, kH, T, kDv})) << what;
          EXPECT_LT(rel_max_diff(fused.out, ref.out), 1e-5) << what;
          expect_grad_close(fused.dq, ref.dq, what + " dq");
          expect_grad_close(fused.dk, ref.dk, what + " dk");
          expect_grad_close(fused.dv, ref.dv, what + " dv");
        }
}

// Finite differences through the fused node, and the same check fails when every backward is scaled
// by 1.05 (a planted 5% bug).
TEST(FavorLocal, FusedGradcheck) {
  for (int64_t window : {1, 5, 21})
    for (float a : {0.0f, -0.1f}) {
      const Inputs in = make_inputs(37, 200 + window);
      const FavorOptions opt = options(KeyShift::PerKey, a);
      const GradcheckFn fn = [&](const std::vector<Var>& x) {
        return favor_local_attention(x[0], x[1], x[2], in.w, window, opt);
      };
      GradcheckOptions gopt;
      const auto good = gradcheck(fn, {in.q, in.k, in.v}, gopt);
      EXPECT_TRUE(good.ok) << name(window, KeyShift::PerKey, a, 37) << ": " << good.message;
      const auto bad = [&] {
        GradientHookGuard scaled([](const char*, Tensor& g) { g.vec() *= 1.05f; });
        return gradcheck(fn, {in.q, in.k, in.v}, gopt);
      }();
      EXPECT_FALSE(bad.ok) << "gradcheck missed a backward scaled by 1.05";
    }
}

TEST(FavorLocal, ReferenceGradcheck) {
  const Inputs in = make_inputs(13, 300);
  for (int64_t window : {1, 4}) {
    auto r = gradcheck(
        [&](const std::vector<Var>& x) {
          return favor_local_attention_reference(x[0], x[1], x[2], in.w, window, options(KeyShift::PerKey));
        },
        {in.q, in.k, in.v});
    EXPECT_TRUE(r.ok) << r.message;
  }
}

// A window that covers every earlier key leaves no far field: the output is exact softmax attention
// (computed independently, in double), whatever the features. Queries and keys of a scale where
// FAVOR+ alone is far off (entries N(0, 1.5^2)).
TEST(FavorLocal, FullWindowIsExactSoftmaxAttention) {
  const int64_t T = 37;
  const Inputs in = make_inputs(T, 350, 1.5f);
  const Tensor exact = test::exact_attention(in.q, in.k, in.v, true);
  NoGradGuard no_grad;
  for (int64_t window : {T, T + 5}) {
    const Tensor out = favor_local_attention(Var(in.q), Var(in.k), Var(in.v), in.w, window, options(KeyShift::PerKey))
                           .value();
    EXPECT_LT(rel_max_diff(out, exact), 1e-5) << "window " << window;
  }
  // With a shorter window the far field is used and the output differs from exact attention.
  const Tensor part =
      favor_local_attention(Var(in.q), Var(in.k), Var(in.v), in.w, 8, options(KeyShift::PerKey)).value();
  EXPECT_GT(rel_max_diff(part, exact), 1e-3);
}

// The chunk length is an implementation detail.
TEST(FavorLocal, ChunkLengthDoesNotChangeTheResult) {
  const Inputs in = make_inputs(37, 400);
  NoGradGuard no_grad;
  for (int64_t window : {3, 16, 20}) {
    const Tensor ref =
        favor_local_attention(Var(in.q), Var(in.k), Var(in.v), in.w, window, options(KeyShift::PerKey, 0.0f, 64))
            .value();
    for (int64_t chunk : {1, 5, 16}) {
      const Tensor out =
          favor_local_attention(Var(in.q), Var(in.k), Var(in.v), in.w, window, options(KeyShift::PerKey, 0.0f, chunk))
              .value();
      EXPECT_LT(rel_max_diff(out, ref), 1e-5) << "window " << window << " chunk " << chunk;
    }
  }
}

// Changing q, k or v after position t never changes a bit of the outputs at positions <= t (outlier
// scale changes that raise the running max, positions inside t's chunk and window).
TEST(FavorLocal, CausalOutputsAreBitIdenticalUnderFutureChanges) {
  const Inputs in = make_inputs(37, 500);
  NoGradGuard no_grad;
  for (int64_t window : {1, 5, 20})
    for (KeyShift shift : {KeyShift::PerKey, KeyShift::Shared})
      for (float a : {0.0f, -0.1f}) {
        const FavorOptions opt = options(shift, a);
        test::expect_causal_under_future_changes(
            in,
            [&](const Tensor& q, const Tensor& k, const Tensor& v) {
              return favor_local_attention(Var(q), Var(k), Var(v), in.w, window, opt).value();
            },
            name(window, shift, a, 37));
      }
}

// The recurrent form (far state + ring buffer of w keys) over positions 0..T-1 reproduces the batch node.
TEST(FavorLocal, RecurrentStepEqualsBatch) {
  const int64_t T = 37;
  const Inputs in = make_inputs(T, 800);
  for (int64_t window : {1, 5, 16, 21, 40})
    for (KeyShift shift : {KeyShift::PerKey, KeyShift::Shared})
      for (float a : {0.0f, -0.1f}) {
        const FavorOptions opt = options(shift, a);
        NoGradGuard no_grad;
        const Tensor batch = favor_local_attention(Var(in.q), Var(in.k), Var(in.v), in.w, window, opt).value();
        FavorLocalState state;
        state.reset(kB, kH, kM, kD, kDv, window);
        const Tensor rec = test::run_recurrent(in.q, in.k, in.v, [&](const Tensor& qt, const Tensor& kt, const Tensor& vt) {
          return favor_local_step(state, qt, kt, vt, in.w, opt);
        });
        EXPECT_EQ(state.position, T);
        EXPECT_LT(rel_max_diff(rec, batch), 1e-5) << name(window, shift, a, T);
      }
}

TEST(FavorLocal, RejectsBadArguments) {
  const Inputs in = make_inputs(9, 900);
  const Var q(in.q), k(in.k), v(in.v);
  EXPECT_THROW(favor_local_attention(q, k, v, in.w, 0, FavorOptions()), std::invalid_argument);
  FavorOptions relu;
  relu.kind = FeatureKind::Relu;
  EXPECT_THROW(favor_local_attention(q, k, v, in.w, 4, relu), std::invalid_argument);
  FavorLocalState state;
  EXPECT_THROW(state.reset(kB, kH, kM, kD, kDv, 0), std::invalid_argument);
  const Tensor q0 = test::position(in.q, 0), k0 = test::position(in.k, 0), v0 = test::position(in.v, 0);
  EXPECT_THROW(favor_local_step(state, q0, k0, v0, in.w, FavorOptions()), std::invalid_argument);  // never reset
}
