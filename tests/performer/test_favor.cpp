// The fused FAVOR+ kernels against their composed reference: values, gradients (finite differences
// and the reference's own), exact causality, the recurrent form, key padding, the denominator guard
// and the memory the causal node keeps.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "test_favor_util.h"

using namespace pf;
using pf::test::randn;
using pf::test::rel_max_diff;

namespace {

using namespace pf::test::favor_shapes;
using Inputs = test::FavorInputs;
Inputs make_inputs(int64_t T, uint64_t seed, float qk_scale = 0.7f) { return test::make_favor_inputs(T, seed, qk_scale); }

FavorOptions options(FeatureKind kind, KeyShift shift, int64_t chunk = kChunk) {
  FavorOptions opt;
  opt.kind = kind;
  opt.key_shift = shift;
  opt.chunk_size = chunk;
  return opt;
}

std::string name(FeatureKind kind, KeyShift shift, bool causal, int64_t T) {
  return std::string(kind == FeatureKind::Softmax ? "softmax" : "relu") +
         (shift == KeyShift::PerKey ? "/per-key" : "/shared") + (causal ? "/causal" : "/bidirectional") +
         "/T=" + std::to_string(T);
}

using test::Grads;

template <class Fn>
Grads run_with_grads(Fn fn, const Inputs& in, uint64_t seed) {
  return test::run_with_grads(fn, in.q, in.k, in.v, seed);
}

// gradcheck of `fn` on (q, k, v), and the same check fails when every backward is scaled by 1.05.
void expect_gradcheck(const GradcheckFn& fn, const Inputs& in, const std::string& what) {
  GradcheckOptions opt;  // step 1e-2, rtol 1e-2 (a 5% error is 5x the tolerance)
  // With T = 1 the output is v itself: the exact gradients for q and k are 0 (up to eps terms of
  // ~1e-7), below the finite-difference noise floor, so only v is checked (the reference comparison
  // covers q and k there).
  if (in.q.size(2) == 1) opt.check = {false, false, true};
  auto good = gradcheck(fn, {in.q, in.k, in.v}, opt);
  EXPECT_TRUE(good.ok) << what << ": " << good.message;
  auto bad = [&] {
    GradientHookGuard scaled([](const char*, Tensor& g) { g.vec() *= 1.05f; });  // a planted 5% bug everywhere
    return gradcheck(fn, {in.q, in.k, in.v}, opt);
  }();
  EXPECT_FALSE(bad.ok) << what << ": gradcheck missed a backward scaled by 1.05";
}

// Gradients agree to 1e-4 of the largest reference entry, plus 1e-5 absolute: with T = 1 the output is
// v itself and the exact gradients for q and k are 0: both sides then hold only float rounding of
// outputs of size 1 (g has unit entries), ~1e-6.
void expect_grad_close(const Tensor& fused, const Tensor& ref, const std::string& what) {
  ASSERT_EQ(fused.shape(), ref.shape()) << what;
  float scale = 0.0f;
  for (int64_t i = 0; i < ref.numel(); ++i) scale = std::max(scale, std::fabs(ref.data()[i]));
  EXPECT_LE(max_abs_diff(fused, ref), 1e-4f * scale + 1e-5f) << what << " (largest entry " << scale << ")";
}

const FeatureKind kKinds[] = {FeatureKind::Softmax, FeatureKind::Relu};
const KeyShift kShifts[] = {KeyShift::PerKey, KeyShift::Shared};

}  // namespace

// Forward within 1e-5 of the composed reference, gradients within 1e-4 of the reference's gradients,
// for T not a multiple of the chunk (37 = 16 + 16 + 5), T = 1 and an exact multiple (32).
TEST(Favor, FusedEqualsComposedReference) {
  for (FeatureKind kind : kKinds)
    for (KeyShift shift : kShifts)
      for (bool causal : {true, false})
        for (int64_t T : {37, 1, 32}) {
          const Inputs in = make_inputs(T, 100 + T);
          const FavorOptions opt = options(kind, shift);
          const std::string what = name(kind, shift, causal, T);
          auto fused = run_with_grads(
              [&](const Var& q, const Var& k, const Var& v) { return favor_attention(q, k, v, in.w, causal, opt); }, in,
              7);
          auto ref = run_with_grads([&](const Var& q, const Var& k,
                                        const Var& v) { return favor_attention_reference(q, k, v, in.w, causal, opt); },
                                    in, 7);
          ASSERT_EQ(fused.out.shape(), (Shape{kB, kH, T, kDv})) << what;
          EXPECT_LT(rel_max_diff(fused.out, ref.out), 1e-5) << what;
          expect_grad_close(fused.dq, ref.dq, what + " dq");
          expect_grad_close(fused.dk, ref.dk, what + " dk");
          expect_grad_close(fused.dv, ref.dv, what + " dv");
        }
}

// Finite differences through the fused nodes (the shifts are held constant by the backward; they only
// move eps terms, far below the 1e-2 tolerance).
TEST(Favor, FusedGradcheck) {
  for (FeatureKind kind : kKinds)
    for (bool causal : {true, false})
      for (int64_t T : {37, 1, 32}) {
        Inputs in = make_inputs(T, 200 + T);
        if (kind == FeatureKind::Relu) {
          test::away_from_relu_kinks(in.q, in.w, 1);
          test::away_from_relu_kinks(in.k, in.w, 2);
        }
        const FavorOptions opt = options(kind, KeyShift::PerKey);
        expect_gradcheck(
            [&](const std::vector<Var>& x) { return favor_attention(x[0], x[1], x[2], in.w, causal, opt); }, in,
            name(kind, KeyShift::PerKey, causal, T));
      }
  // The shared shift once per direction.
  const Inputs in = make_inputs(37, 237);
  for (bool causal : {true, false}) {
    const FavorOptions opt = options(FeatureKind::Softmax, KeyShift::Shared);
    expect_gradcheck([&](const std::vector<Var>& x) { return favor_attention(x[0], x[1], x[2], in.w, causal, opt); },
                     in, name(FeatureKind::Softmax, KeyShift::Shared, causal, 37));
  }
}

TEST(Favor, ReferenceGradcheck) {
  const Inputs in = make_inputs(13, 300);
  for (bool causal : {true, false}) {
    const FavorOptions opt = options(FeatureKind::Softmax, KeyShift::PerKey);
    auto r = gradcheck(
        [&](const std::vector<Var>& x) { return favor_attention_reference(x[0], x[1], x[2], in.w, causal, opt); },
        {in.q, in.k, in.v});
    EXPECT_TRUE(r.ok) << r.message;
  }
}

// The chunk length is an implementation detail: 1, 5, 16 and one chunk for everything agree.
TEST(Favor, ChunkLengthDoesNotChangeTheResult) {
  const Inputs in = make_inputs(37, 400);
  for (FeatureKind kind : kKinds) {
    NoGradGuard no_grad;
    const Tensor ref =
        favor_attention(Var(in.q), Var(in.k), Var(in.v), in.w, true, options(kind, KeyShift::PerKey, 64)).value();
    for (int64_t chunk : {1, 5, 16}) {
      const Tensor out =
          favor_attention(Var(in.q), Var(in.k), Var(in.v), in.w, true, options(kind, KeyShift::PerKey, chunk)).value();
      EXPECT_LT(rel_max_diff(out, ref), 1e-5) << "chunk " << chunk;
    }
  }
}

// Changing q, k or v after position t never changes a bit of the outputs at positions <= t, including
// outlier keys that raise the running max and positions inside t's own chunk.
TEST(Favor, CausalOutputsAreBitIdenticalUnderFutureChanges) {
  const Inputs in = make_inputs(37, 500);
  NoGradGuard no_grad;
  for (FeatureKind kind : kKinds)
    for (KeyShift shift : kShifts) {
      const FavorOptions opt = options(kind, shift);
      test::expect_causal_under_future_changes(
          in,
          [&](const Tensor& q, const Tensor& k, const Tensor& v) {
            return favor_attention(Var(q), Var(k), Var(v), in.w, true, opt).value();
          },
          name(kind, shift, true, 37));
    }
}

// The recurrent form over positions 0..T-1 reproduces the batch causal output.
TEST(Favor, RecurrentStepEqualsBatchCausal) {
  const int64_t T = 37;
  const Inputs in = make_inputs(T, 800);
  for (FeatureKind kind : kKinds)
    for (KeyShift shift : kShifts) {
      const FavorOptions opt = options(kind, shift);
      NoGradGuard no_grad;
      const Tensor batch = favor_attention(Var(in.q), Var(in.k), Var(in.v), in.w, true, opt).value();
      FavorState state;
      state.reset(kB, kH, kM, kDv);
      const Tensor rec = test::run_recurrent(in.q, in.k, in.v, [&](const Tensor& qt, const Tensor& kt, const Tensor& vt) {
        return favor_step(state, qt, kt, vt, in.w, opt);
      });
      EXPECT_EQ(state.position, T);
      EXPECT_LT(rel_max_diff(rec, batch), 1e-5) << name(kind, shift, true, T);
    }
}

TEST(Favor, RecurrentStepChecksItsState) {
  const Inputs in = make_inputs(1, 801);
  FavorState state;
  const Tensor x({kB, kH, kD}), v({kB, kH, kDv});
  EXPECT_THROW(favor_step(state, x, x, v, in.w, FavorOptions()), std::invalid_argument);  // never reset
  state.reset(kB, kH, kM + 1, kDv);
  EXPECT_THROW(favor_step(state, x, x, v, in.w, FavorOptions()), std::invalid_argument);  // wrong M
}

namespace {

// key_mask (B, T): batch 0 has its last 7 positions and position 3 padded, batch 1 is all real.
Tensor make_mask(int64_t T) {
  Tensor m = Tensor::ones({kB, T});
  for (int64_t t = T - 7; t < T; ++t) m.data()[t] = 0.0f;
  m.data()[3] = 0.0f;
  return m;
}

// Overwrites k and v of the padded positions with `value` (or fresh noise if value is 0).
void scribble_pads(Tensor& k, Tensor& v, const Tensor& mask, float value, uint64_t seed) {
  const int64_t T = mask.size(1);
  const Tensor nk = randn(k.shape(), seed, 50.0f), nv = randn(v.shape(), seed + 1, 50.0f);
  for (int64_t b = 0; b < kB; ++b)
    for (int64_t h = 0; h < kH; ++h)
      for (int64_t t = 0; t < T; ++t) {
        if (mask.data()[b * T + t] != 0.0f) continue;
        const int64_t row = (b * kH + h) * T + t;
        for (int64_t c = 0; c < kD; ++c) k.data()[row * kD + c] = value != 0.0f ? value : nk.data()[row * kD + c];
        for (int64_t c = 0; c < kDv; ++c) v.data()[row * kDv + c] = value != 0.0f ? value : nv.data()[row * kDv + c];
      }
}

}  // namespace

TEST(Favor, BidirectionalPaddedKeysChangeNothing) {
  const int64_t T = 21;
  const Inputs in = make_inputs(T, 900);
  const Tensor mask = make_mask(T);
  for (FeatureKind kind : kKinds)
    for (KeyShift shift : kShifts) {
      const FavorOptions opt = options(kind, shift, 8);
      const std::string what = name(kind, shift, false, T);
      Var q0(in.q.clone(), true), k0(in.k.clone(), true), v0(in.v.clone(), true);
      Var out0 = favor_attention(q0, k0, v0, in.w, false, opt, &mask);
      const Tensor g = randn(out0.shape(), 901);
      out0.backward(g);
      const float nan = std::numeric_limits<float>::quiet_NaN();
      for (float value : {0.0f, 1e30f, nan, std::numeric_limits<float>::infinity()}) {
        Tensor k = in.k.clone(), v = in.v.clone();
        scribble_pads(k, v, mask, value, 902);
        Var q1(in.q.clone(), true), k1(k, true), v1(v, true);
        Var out1 = favor_attention(q1, k1, v1, in.w, false, opt, &mask);
        EXPECT_EQ(0, std::memcmp(out1.value().data(), out0.value().data(), sizeof(float) * out0.numel()))
            << what << " pad value " << value;
        out1.backward(g);
        EXPECT_EQ(0, std::memcmp(q1.grad().data(), q0.grad().data(), sizeof(float) * q0.numel())) << what;
        // Padded keys and values receive exactly 0; real ones the same gradient as before.
        EXPECT_EQ(0, std::memcmp(k1.grad().data(), k0.grad().data(), sizeof(float) * k0.numel())) << what;
        EXPECT_EQ(0, std::memcmp(v1.grad().data(), v0.grad().data(), sizeof(float) * v0.numel())) << what;
      }
      for (int64_t h = 0; h < kH; ++h)
        for (int64_t c = 0; c < kD; ++c) EXPECT_EQ(k0.grad().data()[(h * T + T - 1) * kD + c], 0.0f);
      // Batch 0 at its real positions equals unmasked attention over the real positions only.
      std::vector<int64_t> real;
      for (int64_t t = 0; t < T; ++t)
        if (mask.data()[t] != 0.0f) real.push_back(t);
      const int64_t R = static_cast<int64_t>(real.size());
      Tensor qs({1, kH, R, kD}), ks({1, kH, R, kD}), vs({1, kH, R, kDv}), picked({1, kH, R, kDv});
      for (int64_t h = 0; h < kH; ++h)
        for (int64_t i = 0; i < R; ++i) {
          const int64_t src = h * T + real[i], dst = h * R + i;
          std::memcpy(qs.data() + dst * kD, in.q.data() + src * kD, sizeof(float) * kD);
          std::memcpy(ks.data() + dst * kD, in.k.data() + src * kD, sizeof(float) * kD);
          std::memcpy(vs.data() + dst * kDv, in.v.data() + src * kDv, sizeof(float) * kDv);
          std::memcpy(picked.data() + dst * kDv, out0.value().data() + src * kDv, sizeof(float) * kDv);
        }
      NoGradGuard no_grad;
      const Tensor sub = favor_attention(Var(qs), Var(ks), Var(vs), in.w, false, opt).value();
      EXPECT_LT(rel_max_diff(picked, sub), 1e-5) << what;
    }
}

TEST(Favor, BidirectionalMaskedMatchesReferenceAndGradcheck) {
  const int64_t T = 21;
  const Tensor mask = make_mask(T);
  for (FeatureKind kind : kKinds) {
    Inputs in = make_inputs(T, 950);
    if (kind == FeatureKind::Relu) {
      test::away_from_relu_kinks(in.q, in.w, 3);
      test::away_from_relu_kinks(in.k, in.w, 4);
    }
    const FavorOptions opt = options(kind, KeyShift::PerKey, 8);
    auto fused = run_with_grads(
        [&](const Var& q, const Var& k, const Var& v) { return favor_attention(q, k, v, in.w, false, opt, &mask); }, in,
        951);
    auto ref = run_with_grads([&](const Var& q, const Var& k,
                                  const Var& v) { return favor_attention_reference(q, k, v, in.w, false, opt, &mask); },
                              in, 951);
    EXPECT_LT(rel_max_diff(fused.out, ref.out), 1e-5);
    expect_grad_close(fused.dq, ref.dq, "masked dq");
    expect_grad_close(fused.dk, ref.dk, "masked dk");
    expect_grad_close(fused.dv, ref.dv, "masked dv");
    expect_gradcheck(
        [&](const std::vector<Var>& x) { return favor_attention(x[0], x[1], x[2], in.w, false, opt, &mask); }, in,
        name(kind, KeyShift::PerKey, false, T) + "/masked");
  }
}

// Denominators driven to exactly 0 (features that underflow with eps = 0; ReLU features all zero with
// relu_floor = 0): the guard gives finite outputs bounded by max |v|, and finite gradients.
TEST(Favor, DenominatorGuardKeepsOutputsFinite) {
  const int64_t T = 5, D = 8, M = 8;
  Generator gen(1000);
  const Tensor w = orthogonal_random_features(M, D, gen);  // one block: orthogonal rows
  const float root = std::pow(float(D), 0.25f);
  auto unit_row = [&](int64_t f) {
    std::vector<float> r(D);
    double n = 0.0;
    for (int64_t c = 0; c < D; ++c) n += double(w.data()[f * D + c]) * w.data()[f * D + c];
    for (int64_t c = 0; c < D; ++c) r[c] = static_cast<float>(w.data()[f * D + c] / std::sqrt(n));
    return r;
  };
  for (FeatureKind kind : kKinds) {
    Tensor q({1, 1, T, D}), k({1, 1, T, D});
    const Tensor v = randn({1, 1, T, 4}, 1001);
    FavorOptions opt;
    opt.kind = kind;
    opt.chunk_size = 2;
    if (kind == FeatureKind::Softmax) {
      // q' = 40 w_0/|w_0|: u_q = (40 |w_0|, 0, ..., 0), so every other query feature is exp(-40 |w_0|),
      // ~exp(-110): 0 in float32. Keys along w_1 likewise. With eps = 0, phi(q) . phi(k) = 0 exactly.
      opt.eps = 0.0f;
      const auto a = unit_row(0), b = unit_row(1);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t c = 0; c < D; ++c) {
          q.data()[t * D + c] = 40.0f * root * a[c];
          k.data()[t * D + c] = 40.0f * root * b[c];
        }
    } else {
      // q = -sum_f w_f: u_f = -|w_f|^2 D^(-1/4) < 0 for every f, relu(u) = 0; with relu_floor = 0, phi(q) = 0.
      opt.relu_floor = 0.0f;
      const Tensor kk = randn({1, 1, T, D}, 1002);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t c = 0; c < D; ++c) {
          float s = 0.0f;
          for (int64_t f = 0; f < M; ++f) s -= w.data()[f * D + c];
          q.data()[t * D + c] = s;
          k.data()[t * D + c] = kk.data()[t * D + c];
        }
    }
    float vmax = 0.0f;
    for (int64_t i = 0; i < v.numel(); ++i) vmax = std::max(vmax, std::fabs(v.data()[i]));
    for (bool causal : {true, false}) {
      const Tensor den = favor_denominator(q, k, w, causal, opt);
      for (int64_t i = 0; i < den.numel(); ++i) EXPECT_LT(den.data()[i], kFavorDenominatorFloor);
      Var vq(q.clone(), true), vk(k.clone(), true), vv(v.clone(), true);
      Var out = favor_attention(vq, vk, vv, w, causal, opt);
      EXPECT_TRUE(test::all_finite(out.value()));
      for (int64_t i = 0; i < out.numel(); ++i) EXPECT_LE(std::fabs(out.value().data()[i]), vmax);
      out.backward(randn(out.shape(), 1003));
      EXPECT_TRUE(test::all_finite(vq.grad()) && test::all_finite(vk.grad()) && test::all_finite(vv.grad()));
      // The reference applies the same guard.
      NoGradGuard no_grad;
      const Tensor ref = favor_attention_reference(Var(q), Var(k), Var(v), w, causal, opt).value();
      EXPECT_TRUE(test::all_finite(ref));
      EXPECT_LT(max_abs_diff(out.value(), ref), 1e-6f);
    }
  }
}

// The causal node keeps O(T) per head plus one (M, Dv + 1) state per chunk, not the T x M x Dv prefix
// states: measured on the live tensor bytes after the forward.
TEST(Favor, CausalNodeMemoryIsLinearInTWithoutPrefixStates) {
  const int64_t B = 1, H = 2, T = 1024, D = 16, Dv = 16, M = 64, C = 64;
  Generator gen(1100);
  const Tensor w = orthogonal_random_features(M, D, gen);
  Var q(Tensor::randn({B, H, T, D}, gen), true), k(Tensor::randn({B, H, T, D}, gen), true);
  Var v(Tensor::randn({B, H, T, Dv}, gen), true);
  FavorOptions opt;
  opt.chunk_size = C;
  Tape::current().clear();
  const int64_t before = live_tensor_bytes();
  Var out = favor_attention(q, k, v, w, true, opt);
  const int64_t used = live_tensor_bytes() - before;
  const int64_t f = sizeof(float);
  const int64_t output = B * H * T * Dv * f;
  const int64_t saved = B * H * (T + (T / C) * (M * (Dv + 1) + 1)) * f + M * D * f;  // den, states, shifts, W
  const int64_t prefix_states = B * H * T * M * Dv * f;                              // what is never kept
  EXPECT_LE(used, output + saved + 4096) << "used " << used;
  EXPECT_LT(used * 20, prefix_states);
  out.backward(randn(out.shape(), 1101));
  EXPECT_TRUE(q.has_grad() && k.has_grad() && v.has_grad());
}

TEST(Favor, NoTapeNodeWithoutGradients) {
  const Inputs in = make_inputs(9, 1200);
  Tape::current().clear();
  Var out = favor_attention(Var(in.q), Var(in.k), Var(in.v), in.w, true, FavorOptions());
  EXPECT_FALSE(out.requires_grad());
  EXPECT_EQ(Tape::current().size(), 0u);
  Var q(in.q, true);
  {
    NoGradGuard no_grad;
    EXPECT_FALSE(favor_attention(q, Var(in.k), Var(in.v), in.w, false, FavorOptions()).requires_grad());
  }
  EXPECT_EQ(Tape::current().size(), 0u);
}

TEST(Favor, ShapeAndOptionErrorsNameTheProblem) {
  const Inputs in = make_inputs(9, 1300);
  auto expect_error = [](auto fn, const std::string& needle) {
    try {
      fn();
      ADD_FAILURE() << "no exception, expected: " << needle;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  const Var q(in.q), k(in.k), v(in.v);
  expect_error(
      [&] {
        favor_attention(q, Var(randn({kB, kH, 8, kD}, 1)), v, in.w, true, FavorOptions());
      },
      "(2, 2, 8, 8)");
  expect_error(
      [&] {
        favor_attention(q, k, Var(randn({kB, kH, 8, kDv}, 1)), in.w, true, FavorOptions());
      },
      "v must be");
  expect_error([&] { favor_attention(q, k, v, randn({kM, kD + 1}, 1), true, FavorOptions()); }, "(16, 9)");
  const Tensor mask = Tensor::ones({kB, 9}), bad_mask = Tensor::ones({kB, 8});
  expect_error([&] { favor_attention(q, k, v, in.w, true, FavorOptions(), &mask); }, "bidirectional");
  expect_error([&] { favor_attention(q, k, v, in.w, false, FavorOptions(), &bad_mask); }, "key_mask");
  FavorOptions opt;
  opt.chunk_size = 0;
  expect_error([&] { favor_attention(q, k, v, in.w, true, opt); }, "chunk_size");
  opt = FavorOptions();
  opt.eps = -1.0f;
  expect_error([&] { opt.validate(); }, "eps");
}
