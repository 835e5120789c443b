// Helpers shared by the FAVOR+ tests: seeded inputs, exact softmax attention in double, error measures.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "base/random.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "performer/favor.h"
#include "performer/features.h"

namespace pf::test {

inline Tensor randn(Shape s, uint64_t seed, float scale = 1.0f) {
  Generator g(seed);
  return Tensor::randn(std::move(s), g, 0.0f, scale);
}

// Largest |a - b| divided by the largest |b| (the scale of the reference).
inline double rel_max_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double diff = 0.0, scale = 0.0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(a.data()[i]) - b.data()[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(b.data()[i])));
  }
  return scale > 0.0 ? diff / scale : diff;
}

inline bool all_finite(const Tensor& t) {
  for (int64_t i = 0; i < t.numel(); ++i)
    if (!std::isfinite(t.data()[i])) return false;
  return true;
}

// Exact softmax attention softmax(q k^T / sqrt(D)) v in double, per (batch, head); q, k (B, H, T, D),
// v (B, H, T, Dv) -> (B, H, T, Dv). Causal: key j <= i only.
inline Tensor exact_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
  const int64_t BH = q.size(0) * q.size(1), T = q.size(2), D = q.size(3), Dv = v.size(3);
  Tensor out(v.shape());
  std::vector<double> logits(T), acc(Dv);
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  for (int64_t bh = 0; bh < BH; ++bh)
    for (int64_t i = 0; i < T; ++i) {
      const int64_t n = causal ? i + 1 : T;
      double mx = -1e300;
      for (int64_t j = 0; j < n; ++j) {
        double dot = 0.0;
        for (int64_t c = 0; c < D; ++c) dot += double(q.data()[(bh * T + i) * D + c]) * k.data()[(bh * T + j) * D + c];
        logits[j] = dot * scale;
        mx = std::max(mx, logits[j]);
      }
      double z = 0.0;
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t j = 0; j < n; ++j) {
        const double w = std::exp(logits[j] - mx);
        z += w;
        for (int64_t c = 0; c < Dv; ++c) acc[c] += w * v.data()[(bh * T + j) * Dv + c];
      }
      for (int64_t c = 0; c < Dv; ++c) out.data()[(bh * T + i) * Dv + c] = static_cast<float>(acc[c] / z);
    }
  return out;
}

// Mean over rows of |out_i - ref_i| / |ref_i| (Euclidean norms over the last axis).
inline double mean_row_rel_error(const Tensor& out, const Tensor& ref) {
  const int64_t Dv = ref.size(-1), rows = ref.numel() / Dv;
  double total = 0.0;
  for (int64_t i = 0; i < rows; ++i) {
    double e = 0.0, r = 0.0;
    for (int64_t c = 0; c < Dv; ++c) {
      const double d = double(out.data()[i * Dv + c]) - ref.data()[i * Dv + c];
      e += d * d;
      r += double(ref.data()[i * Dv + c]) * ref.data()[i * Dv + c];
    }
    total += std::sqrt(e / r);
  }
  return total / static_cast<double>(rows);
}

// Random attention inputs: q, k entries N(0, qk_scale^2) of shape (B, H, T, D), v entries N(0, 1)
// of shape (B, H, T, Dv), drawn in that order from `gen`.
struct QKV {
  Tensor q, k, v;
};
inline QKV random_qkv(int64_t B, int64_t H, int64_t T, int64_t D, int64_t Dv, float qk_scale, Generator& gen) {
  QKV d;
  d.q = Tensor::randn({B, H, T, D}, gen, 0.0f, qk_scale);
  d.k = Tensor::randn({B, H, T, D}, gen, 0.0f, qk_scale);
  d.v = Tensor::randn({B, H, T, Dv}, gen);
  return d;
}

// The shapes of the FAVOR+ and favor-local kernel tests, and their random inputs: q, k, v of
// (B, H, T, D) x2 and (B, H, T, Dv), entries N(0, qk_scale^2) for q and k, and (M, D) orthogonal features.
namespace favor_shapes {
inline constexpr int64_t kB = 2, kH = 2, kD = 8, kDv = 6, kM = 16, kChunk = 16;
}
struct FavorInputs {
  Tensor q, k, v, w;
};
inline FavorInputs make_favor_inputs(int64_t T, uint64_t seed, float qk_scale = 0.7f) {
  using namespace favor_shapes;
  Generator gen(seed);
  const QKV d = random_qkv(kB, kH, T, kD, kDv, qk_scale, gen);
  return FavorInputs{d.q, d.k, d.v, orthogonal_random_features(kM, kD, gen)};
}

// Position t of a (B, H, T, E) tensor: (B, H, E).
inline Tensor position(const Tensor& x, int64_t t) {
  const int64_t BH = x.size(0) * x.size(1), T = x.size(2), E = x.size(3);
  Tensor r({x.size(0), x.size(1), E});
  for (int64_t bh = 0; bh < BH; ++bh) std::memcpy(r.data() + bh * E, x.data() + (bh * T + t) * E, sizeof(float) * E);
  return r;
}

// A recurrent form run over positions 0..T-1: step(q_t, k_t, v_t) -> (B, H, Dv) for each position of
// the inputs, gathered into (B, H, T, Dv) to compare with the batch node.
template <class Step>
Tensor run_recurrent(const Tensor& q, const Tensor& k, const Tensor& v, Step step) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), Dv = v.size(3);
  Tensor rec({B, H, T, Dv});
  for (int64_t t = 0; t < T; ++t) {
    const Tensor o = step(position(q, t), position(k, t), position(v, t));
    EXPECT_EQ(o.shape(), (Shape{B, H, Dv}));
    for (int64_t bh = 0; bh < B * H; ++bh)
      std::memcpy(rec.data() + (bh * T + t) * Dv, o.data() + bh * Dv, sizeof(float) * Dv);
  }
  return rec;
}

// Causality, bit for bit: changing q, k, v or all three after position t (to outlier-scale values, which
// raise any running max) never changes a bit of attend(q, k, v)'s outputs at positions <= t, and does
// change the outputs after t. attend: (q, k, v) -> (B, H, T, Dv); label names the case in failures.
template <class Attend>
void expect_causal_under_future_changes(const FavorInputs& in, Attend attend, const std::string& label) {
  const int64_t B = in.q.size(0), H = in.q.size(1), T = in.q.size(2), D = in.q.size(3), Dv = in.v.size(3);
  const Tensor base = attend(in.q, in.k, in.v);
  for (int64_t t : {0, 7, 15, 16, 30, 35}) {
    if (t >= T) continue;
    for (int which = 0; which < 4; ++which) {  // q, k, v, all three
      Tensor q = in.q.clone(), k = in.k.clone(), v = in.v.clone();
      const Tensor noise_qk = randn({B, H, T, D}, 600 + t * 4 + which, 10.0f);
      const Tensor noise_v = randn({B, H, T, Dv}, 700 + t * 4 + which, 10.0f);
      for (int64_t bh = 0; bh < B * H; ++bh)
        for (int64_t p = t + 1; p < T; ++p) {
          for (int64_t c = 0; c < D; ++c) {
            const int64_t i = (bh * T + p) * D + c;
            if (which == 0 || which == 3) q.data()[i] = noise_qk.data()[i];
            if (which == 1 || which == 3) k.data()[i] = noise_qk.data()[i] * 1.5f;
          }
          for (int64_t c = 0; c < Dv; ++c)
            if (which >= 2) v.data()[(bh * T + p) * Dv + c] = noise_v.data()[(bh * T + p) * Dv + c];
        }
      const Tensor out = attend(q, k, v);
      for (int64_t bh = 0; bh < B * H; ++bh)
        EXPECT_EQ(0, std::memcmp(out.data() + bh * T * Dv, base.data() + bh * T * Dv, sizeof(float) * (t + 1) * Dv))
            << label << " t = " << t << " perturbed " << which << " head " << bh;
      if (t + 1 < T) {
        EXPECT_GT(rel_max_diff(out, base), 1e-3) << label << " t = " << t;  // the change matters
      }
    }
  }
}

// ReLU features are not differentiable at u = 0: a finite difference whose step carries some u across 0
// measures a kink, not the gradient. Redraws (deterministically) every row of x with some
// |u_f| = |W x'|_f below `margin`. A gradcheck step h = 1e-2 along a unit direction moves each u_f by at
// most h |w_f| D^(-1/4) (~0.02 for these shapes), below the margin 0.05, so no u crosses 0.
inline void away_from_relu_kinks(Tensor& x, const Tensor& w, uint64_t seed, float margin = 0.05f) {
  Generator gen(seed);
  const int64_t D = x.size(-1), rows = x.numel() / D, M = w.size(0);
  const float sigma = std::pow(float(D), -0.25f);
  for (int64_t i = 0; i < rows; ++i) {
    float* row = x.data() + i * D;
    for (;;) {
      float smallest = 1e30f;
      for (int64_t f = 0; f < M; ++f) {
        float u = 0.0f;
        for (int64_t c = 0; c < D; ++c) u += w.data()[f * D + c] * row[c];
        smallest = std::min(smallest, std::fabs(sigma * u));
      }
      if (smallest >= margin) break;
      for (int64_t c = 0; c < D; ++c) row[c] = 0.7f * gen.normal();
    }
  }
}

// Kernel options with the given key stabilizer, FAVOR++ parameter (0: FAVOR+) and chunk length.
inline FavorOptions favor_options(KeyShift shift, float a = 0.0f, int64_t chunk = favor_shapes::kChunk) {
  FavorOptions opt;
  opt.key_shift = shift;
  opt.chunk_size = chunk;
  opt.feature_a = a;
  return opt;
}

// The output of fn(q, k, v) and the gradients of q, k, v for a fixed random output gradient.
struct Grads {
  Tensor out, dq, dk, dv;
};
template <class Fn>
Grads run_with_grads(Fn fn, const Tensor& q0, const Tensor& k0, const Tensor& v0, uint64_t seed) {
  Var q(q0.clone(), true), k(k0.clone(), true), v(v0.clone(), true);
  Var out = fn(q, k, v);
  Grads r;
  r.out = out.value().clone();
  out.backward(randn(out.shape(), seed));
  r.dq = q.grad();
  r.dk = k.grad();
  r.dv = v.grad();
  return r;
}

}  // namespace pf::test
