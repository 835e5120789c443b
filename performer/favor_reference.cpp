// The composed reference of FAVOR+ (performer/favor.h): the same features, shifts and guard written
// with plain autograd ops and explicit T x T weight matrices, so that the fused kernels can be checked
// value by value and gradient by gradient. The shifts are read off the forward values and enter as
// constants, exactly as in the fused nodes.
#include <algorithm>
#include <cmath>
#include <functional>
#include <stdexcept>

#include "autograd/ops.h"
#include "performer/favor.h"
#include "performer/favor_kernels.h"
#include "performer/favor_local.h"

namespace pf {

namespace {

using favor_detail::FavorDims;
using favor_detail::kNegInf;

struct Projected {
  Var u;     // (B, H, T, M) = x' W^T
  Var h;     // (B, H, T, 1) = |x'|^2 / 2 (Softmax only)
  Tensor a;  // (B, H, T) = max_f u_f - h, a constant (Softmax only)
};

// bias: the FAVOR++ log-weights (M) added to u, or undefined (FAVOR+, Relu).
Projected project(const Var& x, const Var& w, float sigma, bool shifted, const Var& bias) {
  Projected p;
  Var xs = x * sigma;  // x' (B, H, T, D)
  p.u = matmul(xs, w, false, true);
  if (bias.defined()) p.u = p.u + bias;
  if (!shifted) return p;
  p.h = sum(xs * xs, -1, true) * 0.5f;
  const int64_t rows = p.u.numel() / p.u.size(-1), M = p.u.size(-1);
  Shape rs(p.u.shape().begin(), p.u.shape().end() - 1);
  p.a = Tensor(rs);
  for (int64_t i = 0; i < rows; ++i)
    p.a.data()[i] =
        *std::max_element(p.u.value().data() + i * M, p.u.value().data() + (i + 1) * M) - p.h.value().data()[i];
  return p;
}

// phi at the given per-row shifts s (B, H, T): Softmax scale (exp(u - h - s) + eps); Relu relu(u) + floor.
Var features(const Projected& p, const Tensor& s, const FavorOptions& opt, int64_t M) {
  if (opt.kind == FeatureKind::Relu) return relu(p.u) + opt.relu_floor;
  Shape col = s.shape();
  col.push_back(1);
  Var e = exp(p.u - p.h - constant(s.reshape(col)));
  return (e + opt.eps) * static_cast<float>(1.0 / std::sqrt(static_cast<double>(M)));
}

// FAVOR++ (favor.h): u_f = sqrt(1 - 4A) w_f.x' + A |w_f|^2 + (D/4) log(1 - 4A): w_used = sqrt(1 - 4A) W
// and bias (M) the log-weights; for FAVOR+ and Relu w_used = W, bias undefined. For a fixed projection
// they are computed in double and enter as constants; for a trained one (requires grad) they are
// differentiable ops on it (in float).
void favorpp_weights(const Var& projection, const FavorOptions& opt, Var& w_used, Var& bias) {
  w_used = projection;
  bias = Var();
  if (opt.kind != FeatureKind::Softmax || opt.feature_a == 0.0f) return;
  const Tensor& w = projection.value();
  const int64_t M = w.size(0), D = w.size(1);
  const double A = opt.feature_a, Bs = std::sqrt(1.0 - 4.0 * A);
  const double c = 0.25 * static_cast<double>(D) * std::log(1.0 - 4.0 * A);
  if (projection.requires_grad()) {
    w_used = projection * static_cast<float>(Bs);
    bias = add_scalar(sum(projection * projection, -1) * static_cast<float>(A), static_cast<float>(c));
    return;
  }
  Tensor ws(w.shape()), b({M});
  for (int64_t f = 0; f < M; ++f) {
    double sq = 0.0;
    for (int64_t e = 0; e < D; ++e) {
      const double x = w.data()[f * D + e];
      sq += x * x;
      ws.data()[f * D + e] = static_cast<float>(Bs * x);
    }
    b.data()[f] = static_cast<float>(A * sq + c);
  }
  w_used = constant(ws);
  bias = constant(b);
}

}  // namespace

Var favor_attention_reference(const Var& q, const Var& k, const Var& v, const Var& projection, bool causal,
                              const FavorOptions& opt, const Tensor* key_mask) {
  const FavorDims d = favor_detail::check_favor_args("favor_attention_reference", q.value(), k.value(), &v.value(),
                                                     favor_detail::projection_value(projection), opt, key_mask, causal);
  const int64_t B = d.B, H = d.H, T = d.T, M = d.M, BH = d.BH();
  const bool shifted = opt.kind == FeatureKind::Softmax;
  const float sigma = static_cast<float>(std::pow(static_cast<double>(d.D), -0.25));
  Var w, bias;
  favorpp_weights(projection, opt, w, bias);

  // Padded keys and values are SET to 0 before use (pad = 1 in this mask, broadcast over heads and features).
  Tensor pad;
  Var km = k, vm = v;
  if (key_mask) {
    pad = Tensor({B, 1, T, 1});
    for (int64_t i = 0; i < B * T; ++i) pad.data()[i] = key_mask->data()[i] == 0.0f ? 1.0f : 0.0f;
    km = masked_fill(k, pad, 0.0f);
    vm = masked_fill(v, pad, 0.0f);
  }
  auto real = [&](int64_t bh, int64_t j) { return !key_mask || key_mask->data()[(bh / H) * T + j] != 0.0f; };

  const Projected pq = project(q, w, sigma, shifted, bias);
  const Var phi_q = features(pq, shifted ? pq.a : Tensor({B, H, T}), opt, M);  // (B, H, T, M)
  const Projected pk = project(km, w, sigma, shifted, bias);

  // Key shifts s_j and the common shifts r: per query (causal) or per head (bidirectional).
  Tensor s({B, H, T}), r({B, H, T});
  for (int64_t bh = 0; bh < BH && shifted; ++bh) {
    const float* a = pk.a.data() + bh * T;
    float* sj = s.data() + bh * T;
    float* ri = r.data() + bh * T;
    if (causal) {
      float run = kNegInf;
      for (int64_t j = 0; j < T; ++j) {
        run = std::max(run, a[j]);
        sj[j] = opt.key_shift == KeyShift::Shared ? run : a[j];
        ri[j] = run;
      }
    } else {
      float R = kNegInf;
      for (int64_t j = 0; j < T; ++j)
        if (real(bh, j)) R = std::max(R, a[j]);
      for (int64_t j = 0; j < T; ++j) {
        sj[j] = opt.key_shift == KeyShift::Shared && real(bh, j) ? R : a[j];
        ri[j] = R;
      }
    }
  }
  const Var phi_k = features(pk, s, opt, M);  // (B, H, T, M)

  Var num, den;
  if (causal) {
    // Wgt_ij = exp(s_j - r_i) for j <= i, SET to 0 above; (B, H, T, T).
    Tensor wgt({B, H, T, T}), upper({T, T});
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = i + 1; j < T; ++j) upper.data()[i * T + j] = 1.0f;
    for (int64_t bh = 0; bh < BH; ++bh)
      for (int64_t i = 0; i < T; ++i)
        for (int64_t j = 0; j <= i; ++j)
          wgt.data()[(bh * T + i) * T + j] = std::exp(s.data()[bh * T + j] - r.data()[bh * T + i]);
    const Var l = masked_fill(matmul(phi_q, phi_k, false, true) * constant(wgt), upper, 0.0f);  // (B, H, T, T)
    num = matmul(l, v);                                                                         // (B, H, T, Dv)
    den = sum(l, -1, true);                                                                     // (B, H, T, 1)
  } else {
    Tensor kw({B, H, T, 1});  // exp(s_j - R) for real keys, SET to 0 for pads
    for (int64_t bh = 0; bh < BH; ++bh)
      for (int64_t j = 0; j < T; ++j)
        kw.data()[bh * T + j] = real(bh, j) ? std::exp(s.data()[bh * T + j] - r.data()[bh * T + j]) : 0.0f;
    Var phi_kw = phi_k * constant(kw);
    if (key_mask) phi_kw = masked_fill(phi_kw, pad, 0.0f);
    const Var S = matmul(phi_kw, vm, true, false);  // (B, H, M, Dv)
    const Var z = sum(phi_kw, 2, true);             // (B, H, 1, M)
    num = matmul(phi_q, S);                         // (B, H, T, Dv)
    den = matmul(phi_q, z, false, true);            // (B, H, T, 1)
  }
  // The guard max(den, floor), written as den + relu(floor - den) (gradient 0 below the floor).
  const Var den_guarded = den + relu(add_scalar(neg(den), kFavorDenominatorFloor));
  return num / den_guarded;
}

Var favor_attention_reference(const Var& q, const Var& k, const Var& v, const Tensor& projection, bool causal,
                              const FavorOptions& opt, const Tensor* key_mask) {
  return favor_attention_reference(q, k, v, Var(projection), causal, opt, key_mask);
}

namespace {

// favor-local's key shifts s (B, H, T) and far shifts rF (B, H, T) (favor_local.h): causal, rF_i = max of s
// over the keys j <= i - w (-inf when there is none); bidirectional, one R per (batch, head), the max
// over the real keys, for every query. With Shared key shifts s_j is the running max (causal) or R.
void local_shifts(const Tensor& a, int64_t BH, int64_t T, int64_t w, bool causal, bool shared,
                  const std::function<bool(int64_t, int64_t)>& real, Tensor& s, Tensor& rF) {
  for (int64_t bh = 0; bh < BH; ++bh) {
    const float* ab = a.data() + bh * T;
    float* sb = s.data() + bh * T;
    float* rb = rF.data() + bh * T;
    float run = kNegInf;
    if (!causal) {
      for (int64_t j = 0; j < T; ++j)
        if (real(bh, j)) run = std::max(run, ab[j]);
      for (int64_t j = 0; j < T; ++j) {
        sb[j] = shared && real(bh, j) ? run : ab[j];
        rb[j] = run;
      }
      continue;
    }
    for (int64_t j = 0; j < T; ++j) {
      run = std::max(run, ab[j]);
      sb[j] = shared ? run : ab[j];
    }
    run = kNegInf;
    for (int64_t i = 0; i < T; ++i) {
      if (i - w >= 0) run = std::max(run, ab[i - w]);
      rb[i] = run;
    }
  }
}

}  // namespace

Var favor_local_attention_reference(const Var& q, const Var& k, const Var& v, const Var& projection,
                                    int64_t window, const FavorOptions& opt, bool causal, const Tensor* key_mask,
                                    const Var& far_log_gain) {
  const FavorDims d = favor_detail::check_favor_args("favor_local_attention_reference", q.value(), k.value(),
                                                     &v.value(), favor_detail::projection_value(projection), opt,
                                                     causal ? nullptr : key_mask, causal);
  if (window < 1 || opt.kind != FeatureKind::Softmax)
    throw std::invalid_argument("favor_local_attention_reference: needs window >= 1 and softmax features");
  const int64_t B = d.B, H = d.H, T = d.T, M = d.M, BH = d.BH(), w = window;
  if (causal) key_mask = nullptr;
  const float sigma = static_cast<float>(std::pow(static_cast<double>(d.D), -0.25));
  Var wv, bias;
  favorpp_weights(projection, opt, wv, bias);
  auto real = [&](int64_t bh, int64_t j) { return !key_mask || key_mask->data()[(bh / H) * T + j] != 0.0f; };
  Var km = k, vm = v;  // padded keys and values SET to 0
  if (key_mask) {
    Tensor pad({B, 1, T, 1});
    for (int64_t i = 0; i < B * T; ++i) pad.data()[i] = key_mask->data()[i] == 0.0f ? 1.0f : 0.0f;
    km = masked_fill(k, pad, 0.0f);
    vm = masked_fill(v, pad, 0.0f);
  }
  const Projected pq = project(q, wv, sigma, true, bias);
  const Var phi_q = features(pq, pq.a, opt, M);  // (B, H, T, M), at the query shifts a_i
  const Projected pk = project(km, wv, sigma, true, bias);
  Tensor s({B, H, T}), rF({B, H, T});
  local_shifts(pk.a, BH, T, w, causal, opt.key_shift == KeyShift::Shared, real, s, rF);
  const Var phi_k = features(pk, s, opt, M);
  // Near: causal i - w < j <= i, bidirectional |i - j| < w; far: every other earlier (causal) or any key;
  // padded keys are neither. Far weights exp(s_j - rF_i).
  auto near = [&](int64_t i, int64_t j) { return causal ? (j > i - w && j <= i) : (j > i - w && j < i + w); };
  Tensor wgt({B, H, T, T}), not_far({B, 1, T, T}), not_near({B, 1, T, T});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < T; ++j) {
        const bool r = real(b * H, j), nr = near(i, j), fr = r && !nr && (!causal || j <= i - w);
        not_far.data()[(b * T + i) * T + j] = fr ? 0.0f : 1.0f;
        not_near.data()[(b * T + i) * T + j] = r && nr ? 0.0f : 1.0f;
        for (int64_t h = 0; h < H; ++h) {
          const int64_t bh = b * H + h;
          wgt.data()[(bh * T + i) * T + j] = fr ? std::exp(s.data()[bh * T + j] - rF.data()[bh * T + i]) : 0.0f;
        }
      }
  const Var lf = masked_fill(matmul(phi_q, phi_k, false, true) * constant(wgt), not_far, 0.0f);  // (B, H, T, T)
  const Var num_f = matmul(lf, vm);
  const Var den_f = sum(lf, -1, true);  // (B, H, T, 1)
  // Near logits and the shared scale c_i = max(m_i, lF_i), g_i = exp(a_i + rF_i + lambda_h - c_i), as constants.
  const Var logits = matmul(q, km, false, true) * static_cast<float>(1.0 / std::sqrt(static_cast<double>(d.D)));
  Tensor c({B, H, T, 1}), g({B, H, T, 1});
  for (int64_t bh = 0; bh < BH; ++bh)
    for (int64_t i = 0; i < T; ++i) {
      float m = kNegInf;
      for (int64_t j = 0; j < T; ++j)
        if (not_near.data()[((bh / H) * T + i) * T + j] == 0.0f)
          m = std::max(m, logits.value().data()[(bh * T + i) * T + j]);
      const float lam = far_log_gain.defined() ? far_log_gain.value().data()[bh % H] : 0.0f;
      const float dF = den_f.value().data()[bh * T + i], r = rF.data()[bh * T + i], a = pq.a.data()[bh * T + i];
      const bool far = r > kNegInf && dF >= kFavorDenominatorFloor;
      const float lF = far ? a + r + lam + std::log(dF) : kNegInf;
      c.data()[bh * T + i] = std::max(m, lF);
      g.data()[bh * T + i] = far ? std::exp(a + r - c.data()[bh * T + i]) : 0.0f;  // times e^lambda below
    }
  // Logits outside the window are SET to -1e30 before exp (weight 0, gradient 0).
  const Var pn = exp(masked_fill(logits - constant(c), not_near, -1e30f));
  Var gain = constant(g);
  if (far_log_gain.defined()) gain = gain * exp(reshape(far_log_gain, {1, H, 1, 1}));
  const Var num = matmul(pn, vm) + num_f * gain;
  const Var den = sum(pn, -1, true) + den_f * gain;
  const Var den_guarded = den + relu(add_scalar(neg(den), kFavorDenominatorFloor));
  return num / den_guarded;
}

Var favor_local_attention_reference(const Var& q, const Var& k, const Var& v, const Tensor& projection,
                                    int64_t window, const FavorOptions& opt, bool causal, const Tensor* key_mask,
                                    const Var& far_log_gain) {
  return favor_local_attention_reference(q, k, v, Var(projection), window, opt, causal, key_mask, far_log_gain);
}

}  // namespace pf
