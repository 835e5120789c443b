// Public FAVOR+ entry points: option checks, dispatch to the fused kernels, and the recurrent step.
#include "performer/favor.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/format.h"
#include "performer/favor_kernels.h"

namespace pf {

using favor_detail::FavorDims;
using favor_detail::FeatureMap;
using favor_detail::kNegInf;
using favor_detail::Buffer;

float favorpp_optimal_a(double z, int64_t d) {
  if (!(z >= 0.0) || !std::isfinite(z) || d < 1)
    throw std::invalid_argument("favorpp_optimal_a: need z >= 0 and d >= 1, got z = " + float_str(float(z)) +
                                ", d = " + std::to_string(d));
  const double D = static_cast<double>(d), b = D + 2.0 * z;
  const double t = (b + std::sqrt(b * b + 8.0 * D * z)) / (2.0 * D);  // t = 1 - 8A >= 1
  return static_cast<float>((1.0 - t) / 8.0);
}

Var favor_attention(const Var& q, const Var& k, const Var& v, const Var& projection, bool causal,
                    const FavorOptions& opt, const Tensor* key_mask) {
  const FavorDims d = favor_detail::check_favor_args("favor_attention", q.value(), k.value(), &v.value(),
                                                     favor_detail::projection_value(projection), opt, key_mask, causal);
  return causal ? favor_detail::favor_causal(q, k, v, projection, opt, d)
                : favor_detail::favor_bidirectional(q, k, v, projection, opt, d, key_mask);
}

Var favor_attention(const Var& q, const Var& k, const Var& v, const Tensor& projection, bool causal,
                    const FavorOptions& opt, const Tensor* key_mask) {
  return favor_attention(q, k, v, Var(projection), causal, opt, key_mask);
}

Tensor favor_denominator(const Tensor& q, const Tensor& k, const Tensor& projection, bool causal,
                         const FavorOptions& opt, const Tensor* key_mask) {
  const FavorDims d =
      favor_detail::check_favor_args("favor_denominator", q, k, nullptr, projection, opt, key_mask, causal);
  Tensor den({d.B, d.H, d.T});  // (B, H, T)
  if (causal) {
    favor_detail::favor_causal_denominator(q, k, projection, opt, d, den.data());
  } else {
    favor_detail::favor_bidirectional_denominator(q, k, projection, opt, d, key_mask, den.data());
  }
  return den;
}

void FavorState::reset(int64_t B, int64_t H, int64_t M, int64_t Dv) {
  if (B < 1 || H < 1 || M < 1 || Dv < 1)
    throw std::invalid_argument("FavorState::reset: B, H, M, Dv must be >= 1, got " + shape_str({B, H, M, Dv}));
  S = Tensor({B, H, M, Dv});
  z = Tensor({B, H, M});
  shift = Tensor::full({B, H}, kNegInf);
  position = 0;
}

Tensor favor_step(FavorState& state, const Tensor& q_t, const Tensor& k_t, const Tensor& v_t, const Tensor& projection,
                  const FavorOptions& opt) {
  opt.validate();
  if (q_t.dim() != 3) throw_shape_error("favor_step", "q_t must be (B, H, D)", q_t.shape(), k_t.shape());
  if (k_t.shape() != q_t.shape())
    throw_shape_error("favor_step", "k_t must have the shape of q_t", k_t.shape(), q_t.shape());
  const int64_t B = q_t.size(0), H = q_t.size(1), D = q_t.size(2);
  if (v_t.dim() != 3 || v_t.size(0) != B || v_t.size(1) != H)
    throw_shape_error("favor_step", "v_t must be (B, H, Dv) with the B, H of q_t", v_t.shape(), q_t.shape());
  const int64_t Dv = v_t.size(2);
  if (projection.dim() != 2 || projection.size(1) != D)
    throw_shape_error("favor_step", "projection must be (M, D) with the D of q_t", projection.shape(), q_t.shape());
  const int64_t M = projection.size(0);
  if (!state.S.defined() || state.S.shape() != Shape{B, H, M, Dv})
    throw_shape_error("favor_step", "state (B, H, M, Dv) does not match the inputs; call state.reset(B, H, M, Dv)",
                      state.S.defined() ? state.S.shape() : Shape{}, Shape{B, H, M, Dv});
  const FeatureMap fm(opt, D, M, projection.data());
  Tensor out({B, H, Dv});  // (B, H, Dv)
  const int64_t BH = B * H;
#pragma omp parallel for schedule(static) if (BH * M * (D + Dv) > (1 << 16))
  for (int64_t bh = 0; bh < BH; ++bh) {
    Buffer pq(M), pk(M);
    float hq, aq, hk, ak;
    fm.project(q_t.data() + bh * D, 1, pq.data(), &hq, &aq);
    fm.features(pq.data(), &hq, &aq, 1, pq.data(), nullptr);
    fm.project(k_t.data() + bh * D, 1, pk.data(), &hk, &ak);
    // The same shifts as the batch kernel (favor_causal.cpp, chunk_key_shifts) at this position.
    float& R = state.shift.data()[bh];
    float s = 0.0f, r = 0.0f;
    if (fm.shifted()) {
      r = std::max(R, ak);
      s = opt.key_shift == KeyShift::Shared ? r : ak;
    }
    fm.features(pk.data(), &hk, &s, 1, pk.data(), nullptr);
    float* S = state.S.data() + bh * M * Dv;  // (M, Dv)
    float* z = state.z.data() + bh * M;       // (M)
    const float* v = v_t.data() + bh * Dv;
    const float beta = std::exp(R - r);  // 0 before the first token (R = -inf), 1 for Relu
    const float kw = std::exp(s - r);
    for (int64_t f = 0; f < M; ++f) {
      const float w = kw * pk[f];
      z[f] = beta * z[f] + w;
      for (int64_t e = 0; e < Dv; ++e) S[f * Dv + e] = beta * S[f * Dv + e] + w * v[e];
    }
    R = r;
    // out = phi(q)^T S / max(phi(q) . z, floor), the query at the state's shift r.
    float den = 0.0f;
    float* o = out.data() + bh * Dv;
    for (int64_t f = 0; f < M; ++f) {
      den += pq[f] * z[f];
      for (int64_t e = 0; e < Dv; ++e) o[e] += pq[f] * S[f * Dv + e];
    }
    const float inv = 1.0f / std::max(den, kFavorDenominatorFloor);
    for (int64_t e = 0; e < Dv; ++e) o[e] *= inv;
  }
  ++state.position;
  return out;
}

}  // namespace pf
