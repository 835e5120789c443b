// The recurrent step of favor-local (math in performer/favor_local.h), the per-token form of the causal
// fused node of favor_local.cpp.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "performer/favor_local.h"
#include "performer/favor_local_detail.h"

namespace pf {

using favor_detail::Buffer;
using favor_detail::FeatureMap;
using favor_detail::kNegInf;

namespace {

// The key k (D) with value v (Dv) joins the far state (S (M, Dv), z (M) at shift R).
void absorb_far_key(const FeatureMap& fm, const float* k, const float* v, int64_t Dv, float* S, float* z, float& R) {
  const int64_t M = fm.M;
  Buffer pk(M);
  float hk, ak;
  fm.project(k, 1, pk.data(), &hk, &ak);
  const float r = std::max(R, ak);
  const float s = fm.key_shift == KeyShift::Shared ? r : ak;
  fm.features(pk.data(), &hk, &s, 1, pk.data(), nullptr);
  const float beta = std::exp(R - r), kw = std::exp(s - r);  // beta = 0 for the first far key
  for (int64_t f = 0; f < M; ++f) {
    const float wf = kw * pk[f];
    z[f] = beta * z[f] + wf;
    for (int64_t e = 0; e < Dv; ++e) S[f * Dv + e] = beta * S[f * Dv + e] + wf * v[e];
  }
  R = r;
}

}  // namespace

void FavorLocalState::reset(int64_t B, int64_t H, int64_t M, int64_t D, int64_t Dv, int64_t w) {
  if (w < 1) throw std::invalid_argument("FavorLocalState::reset: window must be >= 1, got " + std::to_string(w));
  if (D < 1) throw std::invalid_argument("FavorLocalState::reset: D must be >= 1, got " + std::to_string(D));
  far.reset(B, H, M, Dv);
  keys = Tensor({B, H, w, D});
  values = Tensor({B, H, w, Dv});
  window = w;
  position = 0;
}

Tensor favor_local_step(FavorLocalState& state, const Tensor& q_t, const Tensor& k_t, const Tensor& v_t,
                        const Tensor& projection, const FavorOptions& opt, const Tensor* far_log_gain) {
  opt.validate();
  favor_local_detail::check_local_options("favor_local_step", state.window, opt);
  if (q_t.dim() != 3) throw_shape_error("favor_local_step", "q_t must be (B, H, D)", q_t.shape(), k_t.shape());
  if (k_t.shape() != q_t.shape())
    throw_shape_error("favor_local_step", "k_t must have the shape of q_t", k_t.shape(), q_t.shape());
  const int64_t B = q_t.size(0), H = q_t.size(1), D = q_t.size(2);
  if (v_t.dim() != 3 || v_t.size(0) != B || v_t.size(1) != H)
    throw_shape_error("favor_local_step", "v_t must be (B, H, Dv) with the B, H of q_t", v_t.shape(), q_t.shape());
  const int64_t Dv = v_t.size(2);
  if (projection.dim() != 2 || projection.size(1) != D)
    throw_shape_error("favor_local_step", "projection must be (M, D) with the D of q_t", projection.shape(),
                      q_t.shape());
  const int64_t M = projection.size(0), w = state.window;
  if (!state.far.S.defined() || state.far.S.shape() != Shape{B, H, M, Dv} || state.keys.shape() != Shape{B, H, w, D})
    throw_shape_error("favor_local_step",
                      "state does not match the inputs; call state.reset(B, H, M, D, Dv, window)",
                      state.far.S.defined() ? state.far.S.shape() : Shape{}, Shape{B, H, M, Dv});
  if (far_log_gain && (far_log_gain->dim() != 1 || far_log_gain->size(0) != H))
    throw_shape_error("favor_local_step", "far_log_gain must be (H)", far_log_gain->shape(), Shape{H});
  const FeatureMap fm(opt, D, M, projection.data());
  const int64_t t = state.position, BH = B * H, E = Dv + 1;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  Tensor out({B, H, Dv});
#pragma omp parallel for schedule(static) if (BH * (M + w) * (D + Dv) > (1 << 16))
  for (int64_t bh = 0; bh < BH; ++bh) {
    float* S = state.far.S.data() + bh * M * Dv;
    float* z = state.far.z.data() + bh * M;
    float& R = state.far.shift.data()[bh];
    float* keys = state.keys.data() + bh * w * D;
    float* values = state.values.data() + bh * w * Dv;
    Buffer pq(M), num(E);
    float hq, aq;
    // 1. The key at t - w leaves the window and joins the far state (the same shifts as the batch kernel).
    if (t >= w) absorb_far_key(fm, keys + (t % w) * D, values + (t % w) * Dv, Dv, S, z, R);
    // 2. The new key enters the window, in the slot of the one that left.
    std::copy(k_t.data() + bh * D, k_t.data() + (bh + 1) * D, keys + (t % w) * D);
    std::copy(v_t.data() + bh * Dv, v_t.data() + (bh + 1) * Dv, values + (t % w) * Dv);
    // 3. The query: far part at (a, R), near logits, the shared scale.
    const float* q = q_t.data() + bh * D;
    fm.project(q, 1, pq.data(), &hq, &aq);
    fm.features(pq.data(), &hq, &aq, 1, pq.data(), nullptr);
    std::fill(num.begin(), num.end(), 0.0f);
    if (R > kNegInf) {
      for (int64_t f = 0; f < M; ++f) {
        for (int64_t e = 0; e < Dv; ++e) num[e] += pq[f] * S[f * Dv + e];
        num[Dv] += pq[f] * z[f];
      }
    }
    const int64_t first = std::max<int64_t>(0, t - w + 1);
    Buffer logit(t + 1 - first);
    float m = kNegInf;
    for (int64_t p = first; p <= t; ++p) {
      const float* kp = keys + (p % w) * D;
      float dot = 0.0f;
      for (int64_t e = 0; e < D; ++e) dot += q[e] * kp[e];
      logit[p - first] = dot * scale;
      m = std::max(m, logit[p - first]);
    }
    float c, gF;
    const float lam = far_log_gain ? far_log_gain->data()[bh % H] : 0.0f;
    favor_local_detail::shared_scale(m, num[Dv], aq + R + lam, R > kNegInf, c, gF);
    for (int64_t e = 0; e < E; ++e) num[e] *= gF;
    for (int64_t p = first; p <= t; ++p) {
      const float wgt = std::exp(logit[p - first] - c);
      const float* vp = values + (p % w) * Dv;
      for (int64_t e = 0; e < Dv; ++e) num[e] += wgt * vp[e];
      num[Dv] += wgt;
    }
    const float inv = 1.0f / std::max(num[Dv], kFavorDenominatorFloor);
    for (int64_t e = 0; e < Dv; ++e) out.data()[bh * Dv + e] = num[e] * inv;
  }
  ++state.position;
  return out;
}

}  // namespace pf
