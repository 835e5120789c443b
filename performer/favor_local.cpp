// favor-local as one fused autograd node, chunk by chunk, and its recurrent step (math in
// performer/favor_local.h).
//
// Per (batch, head), for the chunk of queries [t0, t0 + n):
//   far:  the delayed keys of the chunk are positions p_j = t0 - w + j, j < n (absent when p_j < 0).
//         With R the running max of the key shifts in the carried state Saug = [S z] (M, Dv + 1):
//           r_i   = max(R, s_j for present j <= i)
//           Wgt   = exp(s_j - r_i) for present j <= i, SET to 0 elsewhere          (n, n)
//           LF    = (phi(Q) phi(Kd)^T) o Wgt
//           NF    = LF [Vd 1] + diag(exp(R - r_i)) phi(Q) Saug   (the state term when R > -inf)
//           Saug <- exp(R - R') Saug + (diag(exp(s_j - R')) phi(Kd))^T [Vd 1],  R' = r_{n-1}
//         i.e. causal FAVOR+ (favor_causal.cpp) over the keys delayed by w.
//   near: the keys [kb, t0 + n), kb = max(0, t0 - w + 1); logits Ln = Q K^T / sqrt(D) (n, nk);
//         query i reads the keys i - w < j <= i; c_i, g_i as in favor_local.h;
//         Pn = exp(Ln - c_i) on those keys, SET to 0 elsewhere;  NA = Pn [V 1] + diag(g) NF.
// Backward, chunks in reverse: dNA from the normalization; near: dLn = Pn o (dNA [V 1]^T); far: the
// FAVOR+ chunk backward of favor_causal.cpp with dNF = diag(g) dNA, carrying the gradient of the state.
#include "performer/favor_local.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "base/format.h"
#include "autograd/gemm.h"
#include "performer/favor_chunk.h"
#include "performer/favor_kernels.h"
#include "performer/favor_local_detail.h"

namespace pf {

using favor_detail::Buffer;
using favor_detail::ChunkBuffers;
using favor_detail::ChunkGrads;
using favor_detail::FavorDims;
using favor_detail::FeatureMap;
using favor_detail::kNegInf;
using favor_local_detail::check_local_options;
using favor_local_detail::shared_scale;

namespace {

using ArrayXfMap = Eigen::Map<Eigen::ArrayXf>;
using ConstArrayXfMap = Eigen::Map<const Eigen::ArrayXf>;

// Positions of one chunk of queries [t0, t0 + n).
struct Chunk {
  int64_t t0 = 0, n = 0;
  int64_t j0 = 0;          // first present delayed key: block key j is position t0 - w + j
  int64_t kb = 0, nk = 0;  // near keys [kb, kb + nk)
  Chunk(int64_t t0_, int64_t n_, int64_t w) : t0(t0_), n(n_) {
    j0 = std::clamp<int64_t>(w - t0, 0, n);
    kb = std::max<int64_t>(0, t0 - w + 1);
    nk = t0 + n - kb;
  }
  int64_t present() const { return n - j0; }
};

// Scratch of one (batch, head): the far field's chunk step (favor_chunk.h; its N is the far NF) and the
// near field. C is the chunk length, E = Dv + 1.
struct Buffers : ChunkBuffers {
  Buffer Pn, VN, NA;
  Buffers(int64_t C, int64_t w, int64_t M, int64_t E, bool backward)
      : ChunkBuffers(C, M, E, backward), Pn(C * (C + w - 1)), VN((C + w - 1) * E), NA(C * E) {}
};

// The far-field pieces of a chunk (favor_chunk.h): query features (shift a_i in b.aq), the delayed keys'
// features, shifts, Wgt, L = (PQ PK^T) o Wgt and Vaug = [Vd 1] (absent rows 0).
void prepare_far(const FeatureMap& fm, const float* Q, const float* K, const float* V, const Chunk& ch, int64_t w,
                 int64_t Dv, float R, bool with_dr, Buffers& b) {
  const int64_t D = fm.D, p0 = ch.t0 - w + ch.j0;  // position of the first present delayed key
  const bool any = ch.present() > 0;
  chunk_query_features(fm, Q + ch.t0 * D, ch.n, with_dr, b);
  chunk_key_features(fm, any ? K + p0 * D : nullptr, ch.n, ch.j0, R, with_dr, b);
  chunk_weights(fm, ch.n, ch.j0, b);
  chunk_values(any ? V + p0 * Dv : nullptr, ch.n, ch.j0, Dv, b);
}

// Near-field keys of query i of the chunk: [lo, hi] in the chunk's near span.
inline int64_t near_lo(const Chunk& ch, int64_t i, int64_t w) {
  return std::max(ch.kb, ch.t0 + i - w + 1) - ch.kb;
}
inline int64_t near_hi(const Chunk& ch, int64_t i) { return ch.t0 + i - ch.kb; }

// Ln = Q K_near^T / sqrt(D) into b.Pn (n, nk) and VN = [V 1] of the near keys.
void near_logits(const float* Q, const float* K, const float* V, const Chunk& ch, int64_t D, int64_t Dv, Buffers& b) {
  const int64_t E = Dv + 1;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  gemm(false, true, ch.n, ch.nk, D, scale, Q + ch.t0 * D, D, K + ch.kb * D, D, 0.0f, b.Pn.data(), ch.nk);
  for (int64_t j = 0; j < ch.nk; ++j) {
    std::copy(V + (ch.kb + j) * Dv, V + (ch.kb + j + 1) * Dv, b.VN.data() + j * E);
    b.VN[j * E + Dv] = 1.0f;
  }
}

// Pn row i <- exp(Ln - c_i) on the near keys of query i, SET to 0 elsewhere.
void near_weights(const Chunk& ch, int64_t w, const float* c, Buffers& b) {
  for (int64_t i = 0; i < ch.n; ++i) {
    float* row = b.Pn.data() + i * ch.nk;
    const int64_t lo = near_lo(ch, i, w), hi = near_hi(ch, i);
    std::fill(row, row + lo, 0.0f);
    ArrayXfMap(row + lo, hi + 1 - lo) = (ArrayXfMap(row + lo, hi + 1 - lo) - c[i]).exp();
    std::fill(row + hi + 1, row + ch.nk, 0.0f);
  }
}

// Forward of one (batch, head), the far field weighted by exp(lam). Writes O (T, Dv), den (T), c (T), g (T);
// with `states` not null also the state Saug (M, Dv + 1) and its shift R entering every chunk, with gNF not
// null the far part g_i NF_i of every row (T, Dv + 1).
void forward_head(const FeatureMap& fm, int64_t T, int64_t C, int64_t w, int64_t Dv, float lam, const float* Q,
                  const float* K, const float* V, float* O, float* den, float* c, float* g, float* states,
                  float* shifts, float* gNF) {
  const int64_t M = fm.M, D = fm.D, E = Dv + 1;
  Buffers b(C, w, M, E, false);
  Buffer S(M * E, 0.0f);  // Saug at shift R
  float R = kNegInf;
  for (int64_t ci = 0, t0 = 0; t0 < T; ++ci, t0 += C) {
    const Chunk ch(t0, std::min(C, T - t0), w);
    const int64_t n = ch.n;
    if (states) {
      std::copy(S.begin(), S.end(), states + ci * M * E);
      shifts[ci] = R;
    }
    // Far field, at each query's shifts (a_i, r_i).
    prepare_far(fm, Q, K, V, ch, w, Dv, R, false, b);
    chunk_numerators(n, M, E, S.data(), R, R > kNegInf, b);
    // Near field and the shared scale c_i = max(m_i, lF_i).
    near_logits(Q, K, V, ch, D, Dv, b);
    for (int64_t i = 0; i < n; ++i) {
      const float* row = b.Pn.data() + i * ch.nk;
      const int64_t lo = near_lo(ch, i, w), hi = near_hi(ch, i);
      const float m = ConstArrayXfMap(row + lo, hi + 1 - lo).maxCoeff();
      shared_scale(m, b.N[i * E + Dv], b.aq[i] + b.r[i] + lam, b.r[i] > kNegInf, c[t0 + i], g[t0 + i]);
    }
    near_weights(ch, w, c + t0, b);
    gemm(false, false, n, E, ch.nk, 1.0f, b.Pn.data(), ch.nk, b.VN.data(), E, 0.0f, b.NA.data(), E);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t e = 0; e < E; ++e) b.NA[i * E + e] += g[t0 + i] * b.N[i * E + e];
    if (gNF)
      for (int64_t i = 0; i < n; ++i)
        for (int64_t e = 0; e < E; ++e) gNF[(t0 + i) * E + e] = g[t0 + i] * b.N[i * E + e];
    favor_detail::finish_rows(b.NA.data(), n, Dv, O + t0 * Dv, den + t0);
    if (t0 + n >= T) break;  // no later chunk reads the state
    // The delayed keys of this chunk join the state.
    const float R_new = b.r[n - 1];
    if (R_new == kNegInf) continue;  // no far key yet
    add_keys_to_state(n, M, E, ch.j0, R, R_new, R > kNegInf, S.data(), b);
    R = R_new;
  }
}

// Backward of one (batch, head); dQ, dK, dV and this head's part of the projection's gradient dW (M, D)
// (+=), null targets skipped; with gNF (the forward's far parts) not null, *dlam receives the gradient
// of the log-gain, sum_i dNA_i . g_i NF_i.
void backward_head(const FeatureMap& fm, int64_t T, int64_t C, int64_t w, int64_t Dv, const float* Q, const float* K,
                   const float* V, const float* gout, const float* O, const float* den, const float* c,
                   const float* g, const float* states, const float* shifts, const float* gNF, float* dQ, float* dK,
                   float* dV, float* dW, float* dlam) {
  const int64_t M = fm.M, D = fm.D, E = Dv + 1;
  const int64_t nc = (T + C - 1) / C;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  Buffers b(C, w, M, E, true);
  ChunkGrads gr(C, M, E);
  Buffer dNA(C * E), dNF(C * E), dPn(C * (C + w - 1)), dVN((C + w - 1) * E);
  for (int64_t ci = nc - 1; ci >= 0; --ci) {
    const Chunk ch(ci * C, std::min(C, T - ci * C), w);
    const int64_t t0 = ch.t0, n = ch.n, nk = ch.nk, j0 = ch.j0;
    const float R = shifts[ci];
    prepare_far(fm, Q, K, V, ch, w, Dv, R, true, b);
    near_logits(Q, K, V, ch, D, Dv, b);
    near_weights(ch, w, c + t0, b);
    favor_detail::finish_rows_backward(gout + t0 * Dv, O + t0 * Dv, den + t0, n, Dv, dNA.data());
    if (gNF)
      for (int64_t i = 0; i < n * E; ++i) *dlam += dNA[i] * gNF[t0 * E + i];
    // Near field: dLn = Pn o (dNA VN^T); Ln = scale Q K^T.
    gemm(false, true, n, nk, E, 1.0f, dNA.data(), E, b.VN.data(), E, 0.0f, dPn.data(), nk);
    for (int64_t i = 0; i < n * nk; ++i) dPn[i] *= b.Pn[i];
    if (dQ) gemm(false, false, n, D, nk, scale, dPn.data(), nk, K + ch.kb * D, D, 1.0f, dQ + t0 * D, D);
    if (dK) gemm(true, false, nk, D, n, scale, dPn.data(), nk, Q + t0 * D, D, 1.0f, dK + ch.kb * D, D);
    if (dV) {
      gemm(true, false, nk, E, n, 1.0f, b.Pn.data(), nk, dNA.data(), E, 0.0f, dVN.data(), E);
      for (int64_t j = 0; j < nk; ++j)
        for (int64_t e = 0; e < Dv; ++e) dV[(ch.kb + j) * Dv + e] += dVN[j * E + e];
    }
    // Far field: the FAVOR+ chunk backward with dNF = diag(g) dNA.
    for (int64_t i = 0; i < n; ++i)
      for (int64_t e = 0; e < E; ++e) dNF[i * E + e] = g[t0 + i] * dNA[i * E + e];
    chunk_backward(n, M, E, j0, dNF.data(), states + ci * M * E, R, R > kNegInf, ci < nc - 1 && b.r[n - 1] > kNegInf,
                   b, gr);
    const int64_t p0 = t0 - w + j0, np = ch.present();
    if (dV)
      for (int64_t j = j0; j < n; ++j)
        for (int64_t e = 0; e < Dv; ++e) dV[(t0 - w + j) * Dv + e] += gr.dVaug[j * E + e];
    if (dQ || dW) fm.backward(Q + t0 * D, b.DrQ.data(), gr.dPQ.data(), n, dQ ? dQ + t0 * D : nullptr, true, dW);
    if ((dK || dW) && np > 0)
      fm.backward(K + p0 * D, b.DrK.data() + j0 * M, gr.dPK.data() + j0 * M, np, dK ? dK + p0 * D : nullptr, true,
                  dW);
  }
}

}  // namespace

Var favor_local_attention(const Var& q, const Var& k, const Var& v, const Var& projection, int64_t window,
                          const FavorOptions& opt, const Var& far_log_gain) {
  check_local_options("favor_local_attention", window, opt);
  const FavorDims d = favor_detail::check_favor_args("favor_local_attention", q.value(), k.value(), &v.value(),
                                                     favor_detail::projection_value(projection), opt, nullptr, true);
  favor_local_detail::check_gain("favor_local_attention", far_log_gain, d.H);
  const int64_t T = d.T, D = d.D, Dv = d.Dv, M = d.M, BH = d.BH(), E = Dv + 1, w = window;
  const int64_t C = opt.chunk_length(T), nc = (T + C - 1) / C;
  const Var trained = favor_detail::trained_projection(projection);
  const bool grad = needs_grad({&q, &k, &v, &far_log_gain, &trained});  // an undefined gain or W is no input
  const bool gain_grad = grad && far_log_gain.defined();
  Tensor out = Tensor::empty({d.B, d.H, T, Dv});
  Tensor den = Tensor::empty({BH, T}), c = Tensor::empty({BH, T}), g = Tensor::empty({BH, T});
  Tensor states, shifts, gNF;
  if (grad) {
    states = Tensor::empty({BH, nc, M, E});
    shifts = Tensor::empty({BH, nc});
  }
  if (gain_grad) gNF = Tensor::empty({BH, T, E});
  const FeatureMap fm(opt, D, M, projection.value().data());
  const float *pq = q.value().data(), *pk = k.value().data(), *pv = v.value().data();
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < BH; ++bh)
    forward_head(fm, T, C, w, Dv, favor_local_detail::head_log_gain(far_log_gain, bh, d.H), pq + bh * T * D,
                 pk + bh * T * D, pv + bh * T * Dv, out.data() + bh * T * Dv, den.data() + bh * T,
                 c.data() + bh * T, g.data() + bh * T, grad ? states.data() + bh * nc * M * E : nullptr,
                 grad ? shifts.data() + bh * nc : nullptr, gain_grad ? gNF.data() + bh * T * E : nullptr);
  if (!grad) return make_result(std::move(out), false, "favor_local", nullptr);
  // Saves: the input handles (W's when it is trained), a copy of W, the output, den, c, g (B*H, T each),
  // the chunk-boundary states (B*H, ceil(T/C), M, Dv + 1) with their shifts, and with a learned gain the
  // far parts g NF.
  Tensor wc = projection.value().clone();
  Tensor saved_out = out;
  std::shared_ptr<GradSlot> lam = far_log_gain.defined() ? far_log_gain.slot_ptr() : nullptr;
  std::shared_ptr<GradSlot> ws = trained.defined() ? trained.slot_ptr() : nullptr;
  return make_result(
      std::move(out), true, "favor_local",
      [q = q.slot_ptr(), k = k.slot_ptr(), v = v.slot_ptr(), lam, ws, qv = q.value(), kv = k.value(), vv = v.value(),
       wc, opt, d, C, w, saved_out, den, c, g, states, shifts, gNF](const Tensor& grad_out) {
        const int64_t T = d.T, D = d.D, Dv = d.Dv, M = d.M, BH = d.BH(), E = Dv + 1, nc = (T + C - 1) / C;
        const FeatureMap fm(opt, D, M, wc.data());
        float* dq = q->requires_grad ? q->grad_buffer().data() : nullptr;
        float* dk = k->requires_grad ? k->grad_buffer().data() : nullptr;
        float* dv = v->requires_grad ? v->grad_buffer().data() : nullptr;
        const bool dgain = lam && lam->requires_grad;
        Buffer dl(BH, 0.0f);
        favor_detail::ProjectionGrad dw(ws, BH, M, D);
        const float *pq = qv.data(), *pk = kv.data(), *pv = vv.data();
#pragma omp parallel for schedule(static)
        for (int64_t bh = 0; bh < BH; ++bh)
          backward_head(fm, T, C, w, Dv, pq + bh * T * D, pk + bh * T * D, pv + bh * T * Dv,
                        grad_out.data() + bh * T * Dv, saved_out.data() + bh * T * Dv, den.data() + bh * T,
                        c.data() + bh * T, g.data() + bh * T, states.data() + bh * nc * M * E,
                        shifts.data() + bh * nc, dgain ? gNF.data() + bh * T * E : nullptr,
                        dq ? dq + bh * T * D : nullptr, dk ? dk + bh * T * D : nullptr,
                        dv ? dv + bh * T * Dv : nullptr, dw.part(bh), dl.data() + bh);
        if (dgain) favor_local_detail::add_gain_grad(dl.data(), BH, d.H, lam->grad_buffer().data());
        dw.finish();
      });
}

Var favor_local_attention(const Var& q, const Var& k, const Var& v, const Tensor& projection, int64_t window,
                          const FavorOptions& opt, const Var& far_log_gain) {
  return favor_local_attention(q, k, v, Var(projection), window, opt, far_log_gain);
}

}  // namespace pf
