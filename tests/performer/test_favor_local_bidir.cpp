// Bidirectional favor-local and the learned far-field gain (performer/favor_local.h): the fused nodes
// against the composed O(T^2) reference (values and gradients, with padded keys and with the gain), finite
// differences, exact bidirectional softmax attention when the window covers the sequence, padded keys that
// change nothing, the chunk length, and the recurrent step with a gain against the causal batch node.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "performer/favor_local.h"
#include "test_favor_util.h"

using namespace pf;
using pf::test::rel_max_diff;

namespace {

using namespace pf::test::favor_shapes;

struct Inputs : test::FavorInputs {
  Tensor gain;  // (H): the far field's log-gain per head
};

Inputs make_inputs(int64_t T, uint64_t seed, float qk_scale = 0.7f) {
  Inputs in{test::make_favor_inputs(T, seed, qk_scale), Tensor({kH})};
  in.gain.data()[0] = 0.4f;
  in.gain.data()[1] = -0.9f;
  return in;
}

FavorOptions options(KeyShift shift, float a = 0.0f, int64_t chunk = kChunk) {
  return test::favor_options(shift, a, chunk);
}

// Batch 0 all real; batch 1 with pads at positions 2 and from T - 4 on (when T allows).
Tensor key_mask(int64_t T) {
  Tensor m = Tensor::ones({kB, T});
  for (int64_t t = 0; t < T; ++t)
    if ((t == 2 && T > 3) || (t >= T - 4 && T > 8)) m.data()[T + t] = 0.0f;
  return m;
}

struct Result {
  Tensor out, dq, dk, dv, dgain;
};

// Output and gradients for a fixed random output gradient; gain used when with_gain.
template <class Fn>
Result run(Fn fn, const Inputs& in, bool with_gain, uint64_t seed) {
  Var q(in.q.clone(), true), k(in.k.clone(), true), v(in.v.clone(), true);
  Var gain = with_gain ? Var(in.gain.clone(), true) : Var();
  Var out = fn(q, k, v, gain);
  Result r;
  r.out = out.value().clone();
  out.backward(test::randn(out.shape(), seed));
  r.dq = q.grad();
  r.dk = k.grad();
  r.dv = v.grad();
  if (with_gain) r.dgain = gain.grad();
  return r;
}

void expect_grad_close(const Tensor& fused, const Tensor& ref, const std::string& what) {
  ASSERT_EQ(fused.shape(), ref.shape()) << what;
  float scale = 0.0f;
  for (int64_t i = 0; i < ref.numel(); ++i) scale = std::max(scale, std::fabs(ref.data()[i]));
  EXPECT_LE(max_abs_diff(fused, ref), 1e-4f * scale + 1e-5f) << what << " (largest entry " << scale << ")";
}

void expect_same(const Result& fused, const Result& ref, bool with_gain, const std::string& what) {
  EXPECT_LT(rel_max_diff(fused.out, ref.out), 1e-5) << what;
  expect_grad_close(fused.dq, ref.dq, what + " dq");
  expect_grad_close(fused.dk, ref.dk, what + " dk");
  expect_grad_close(fused.dv, ref.dv, what + " dv");
  if (with_gain) expect_grad_close(fused.dgain, ref.dgain, what + " dgain");
}

}  // namespace

// Windows inside a chunk, equal to it, spanning chunks and longer than the sequence; T not a multiple of
// the chunk, T = 1; both key shifts, FAVOR+ and FAVOR++; without and with padded keys and the gain.
TEST(FavorLocalBidirectional, FusedEqualsComposedReference) {
  for (int64_t window : {1, 5, 16, 21, 40})
    for (KeyShift shift : {KeyShift::PerKey, KeyShift::Shared})
      for (float a : {0.0f, -0.1f})
        for (int64_t T : {37, 1})
          for (int variant = 0; variant < 3; ++variant) {  // plain, padded keys, padded keys + gain
            const Inputs in = make_inputs(T, 100 + T + window);
            const FavorOptions opt = options(shift, a);
            const Tensor mask = key_mask(T);
            const Tensor* km = variant > 0 ? &mask : nullptr;
            const bool gain = variant == 2;
            const std::string what = "window " + std::to_string(window) + " T " + std::to_string(T) + " shift " +
                                     std::to_string(static_cast<int>(shift)) + " a " + std::to_string(a) +
                                     " variant " + std::to_string(variant);
            const Result fused = run(
                [&](const Var& q, const Var& k, const Var& v, const Var& g) {
                  return favor_local_bidirectional(q, k, v, in.w, window, opt, km, g);
                },
                in, gain, 7);
            const Result ref = run(
                [&](const Var& q, const Var& k, const Var& v, const Var& g) {
                  return favor_local_attention_reference(q, k, v, in.w, window, opt, false, km, g);
                },
                in, gain, 7);
            expect_same(fused, ref, gain, what);
          }
}

// The causal node with a learned gain against the reference, including the gain's gradient.
TEST(FavorLocalGain, CausalFusedEqualsComposedReference) {
  for (int64_t window : {1, 5, 21})
    for (int64_t T : {37, 32}) {
      const Inputs in = make_inputs(T, 150 + T + window);
      const FavorOptions opt = options(KeyShift::PerKey);
      const std::string what = "causal window " + std::to_string(window) + " T " + std::to_string(T);
      const Result fused = run(
          [&](const Var& q, const Var& k, const Var& v, const Var& g) {
            return favor_local_attention(q, k, v, in.w, window, opt, g);
          },
          in, true, 9);
      const Result ref = run(
          [&](const Var& q, const Var& k, const Var& v, const Var& g) {
            return favor_local_attention_reference(q, k, v, in.w, window, opt, true, nullptr, g);
          },
          in, true, 9);
      expect_same(fused, ref, true, what);
    }
}

// A zero gain is the plain estimator, bit for bit.
TEST(FavorLocalGain, ZeroGainIsThePlainEstimator) {
  const Inputs in = make_inputs(37, 170);
  NoGradGuard no_grad;
  const Var zero(Tensor::zeros({kH}));
  const FavorOptions opt = options(KeyShift::PerKey);
  const Tensor a = favor_local_attention(Var(in.q), Var(in.k), Var(in.v), in.w, 5, opt).value();
  const Tensor b = favor_local_attention(Var(in.q), Var(in.k), Var(in.v), in.w, 5, opt, zero).value();
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), sizeof(float) * a.numel()));
  const Tensor c = favor_local_bidirectional(Var(in.q), Var(in.k), Var(in.v), in.w, 5, opt).value();
  const Tensor d = favor_local_bidirectional(Var(in.q), Var(in.k), Var(in.v), in.w, 5, opt, nullptr, zero).value();
  EXPECT_EQ(0, std::memcmp(c.data(), d.data(), sizeof(float) * c.numel()));
}

// Finite differences through the fused nodes (q, k, v and the gain), and a backward scaled by 1.05 fails.
TEST(FavorLocalBidirectional, FusedGradcheck) {
  const Tensor mask = key_mask(29);
  for (int64_t window : {1, 5, 21})
    for (bool causal : {false, true}) {
      const Inputs in = make_inputs(29, 200 + window);
      const FavorOptions opt = options(KeyShift::PerKey, window == 5 ? -0.1f : 0.0f);
      const GradcheckFn fn = [&](const std::vector<Var>& x) {
        return causal ? favor_local_attention(x[0], x[1], x[2], in.w, window, opt, x[3])
                      : favor_local_bidirectional(x[0], x[1], x[2], in.w, window, opt, &mask, x[3]);
      };
      const auto good = gradcheck(fn, {in.q, in.k, in.v, in.gain});
      EXPECT_TRUE(good.ok) << "window " << window << " causal " << causal << ": " << good.message;
      const auto bad = [&] {
        GradientHookGuard scaled([](const char*, Tensor& g) { g.vec() *= 1.05f; });
        return gradcheck(fn, {in.q, in.k, in.v, in.gain});
      }();
      EXPECT_FALSE(bad.ok) << "gradcheck missed a backward scaled by 1.05";
    }
}

TEST(FavorLocalBidirectional, ReferenceGradcheck) {
  const Inputs in = make_inputs(11, 300);
  const Tensor mask = key_mask(11);
  for (int64_t window : {1, 4}) {
    auto r = gradcheck(
        [&](const std::vector<Var>& x) {
          return favor_local_attention_reference(x[0], x[1], x[2], in.w, window, options(KeyShift::PerKey), false,
                                                 &mask, x[3]);
        },
        {in.q, in.k, in.v, in.gain});
    EXPECT_TRUE(r.ok) << r.message;
  }
}

// A window that reaches every key leaves no far field: exact bidirectional softmax attention (computed
// independently, in double), whatever the features; a shorter window differs from it.
TEST(FavorLocalBidirectional, FullWindowIsExactSoftmaxAttention) {
  const int64_t T = 37;
  const Inputs in = make_inputs(T, 350, 1.5f);
  const Tensor exact = test::exact_attention(in.q, in.k, in.v, false);
  NoGradGuard no_grad;
  for (int64_t window : {T, T + 5}) {
    const Tensor out =
        favor_local_bidirectional(Var(in.q), Var(in.k), Var(in.v), in.w, window, options(KeyShift::PerKey)).value();
    EXPECT_LT(rel_max_diff(out, exact), 1e-5) << "window " << window;
  }
  const Tensor part =
      favor_local_bidirectional(Var(in.q), Var(in.k), Var(in.v), in.w, 8, options(KeyShift::PerKey)).value();
  EXPECT_GT(rel_max_diff(part, exact), 1e-3);
}

// Padded keys are never read: NaN in their k and v rows changes no output; and the chunk length is an
// implementation detail.
TEST(FavorLocalBidirectional, PaddedKeysAndChunkLengthChangeNothing) {
  const int64_t T = 37;
  const Inputs in = make_inputs(T, 400);
  const Tensor mask = key_mask(T);
  NoGradGuard no_grad;
  const Tensor base =
      favor_local_bidirectional(Var(in.q), Var(in.k), Var(in.v), in.w, 5, options(KeyShift::PerKey), &mask).value();
  Tensor k = in.k.clone(), v = in.v.clone();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t h = 0; h < kH; ++h)
    for (int64_t t = 0; t < T; ++t)
      if (mask.data()[T + t] == 0.0f) {
        for (int64_t c = 0; c < kD; ++c) k.data()[((kH + h) * T + t) * kD + c] = nan;
        for (int64_t c = 0; c < kDv; ++c) v.data()[((kH + h) * T + t) * kDv + c] = nan;
      }
  const Tensor out =
      favor_local_bidirectional(Var(in.q), Var(k), Var(v), in.w, 5, options(KeyShift::PerKey), &mask).value();
  EXPECT_EQ(0, std::memcmp(out.data(), base.data(), sizeof(float) * out.numel()));
  for (int64_t window : {3, 16, 20})
    for (int64_t chunk : {1, 5, 64}) {
      const Tensor ref =
          favor_local_bidirectional(Var(in.q), Var(in.k), Var(in.v), in.w, window, options(KeyShift::PerKey, 0, 16))
              .value();
      const Tensor o =
          favor_local_bidirectional(Var(in.q), Var(in.k), Var(in.v), in.w, window,
                                    options(KeyShift::PerKey, 0, chunk))
              .value();
      EXPECT_LT(rel_max_diff(o, ref), 1e-5) << "window " << window << " chunk " << chunk;
    }
}

// The recurrent step with a gain reproduces the causal batch node with the same gain.
TEST(FavorLocalGain, RecurrentStepEqualsBatch) {
  const int64_t T = 37;
  const Inputs in = make_inputs(T, 800);
  for (int64_t window : {1, 5, 21}) {
    const FavorOptions opt = options(KeyShift::PerKey);
    NoGradGuard no_grad;
    const Tensor batch =
        favor_local_attention(Var(in.q), Var(in.k), Var(in.v), in.w, window, opt, Var(in.gain)).value();
    FavorLocalState state;
    state.reset(kB, kH, kM, kD, kDv, window);
    const Tensor rec = test::run_recurrent(in.q, in.k, in.v, [&](const Tensor& qt, const Tensor& kt, const Tensor& vt) {
      return favor_local_step(state, qt, kt, vt, in.w, opt, &in.gain);
    });
    EXPECT_LT(rel_max_diff(rec, batch), 1e-5) << "window " << window;
  }
}

TEST(FavorLocalBidirectional, RejectsBadArguments) {
  const Inputs in = make_inputs(9, 900);
  const Var q(in.q), k(in.k), v(in.v);
  EXPECT_THROW(favor_local_bidirectional(q, k, v, in.w, 0, FavorOptions()), std::invalid_argument);
  EXPECT_THROW(favor_local_bidirectional(q, k, v, in.w, 3, FavorOptions(), nullptr, Var(Tensor::zeros({3}))),
               std::invalid_argument);
  EXPECT_THROW(favor_local_attention(q, k, v, in.w, 3, FavorOptions(), Var(Tensor::zeros({kH, 1}))),
               std::invalid_argument);
}
