// Bidirectional favor-local as one fused autograd node (math in performer/favor_local.h). Per (batch, head):
//   keys:   Kc, VE = K, [V 1] with padded rows SET to 0; PKw_j = e^(s_j - R) phi(k_j) (0 for pads), R the
//           max key shift over the real keys; Stot = PKw^T VE                               (M, Dv + 1)
//   chunk of queries [t0, t0 + n), span of keys [kb, ke) = [t0 - w + 1, t0 + n + w - 1) clipped to [0, T):
//           every key outside the span is far for every query of the chunk; inside it, key j is near
//           query i when |i - j| < w (and j is real), far otherwise.
//           G  = (PQ PKw_span^T) o near                     (n, nk)   the near keys' far-field terms
//           NF = PQ Stot - G VE_span                        (n, Dv + 1) the far sums
//           Ln = Q Kc_span^T / sqrt(D); c_i, g_i from m_i = max near Ln and NF's denominators;
//           Pn = exp(Ln - c_i) o near; NA = Pn VE_span + diag(g) NF; out = NA[:Dv] / NA[Dv].
// Backward (shifts, c and g constants): dNA from the normalization; near as in the causal node;
//   dNF = diag(g) dNA; A = (dNF VE_span^T) o near; dPQ = dNF Stot^T - A PKw_span;
//   dPKw_span -= A^T PQ; dVE_span -= G^T dNF; dStot += PQ^T dNF; at the end dPKw += VE dStot^T,
//   dVE += PKw dStot, and the key features' backward with dP_j = e^(s_j - R) dPKw_j.
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "autograd/gemm.h"
#include "performer/favor_local.h"
#include "performer/favor_local_detail.h"

namespace pf {

using favor_detail::Buffer;
using favor_detail::FavorDims;
using favor_detail::FeatureMap;
using favor_detail::kNegInf;

namespace {

// One (batch, head): its inputs and scratch. C is the chunk length, S = C + 2w - 2 the widest key span.
struct Head {
  int64_t T, C, w, D, Dv, E, M;
  const float *Q, *K, *V, *mask;  // mask (T) or null: all keys real
  float lam = 0.0f, R = kNegInf;
  int64_t real = 0;  // number of real keys
  Buffer Kc, VE, PKw, DrK, kw, hk, ak, s, Stot;
  Buffer PQ, DrQ, hq, aq, G, Pn, NF, NA;
  Head(const FeatureMap& fm, int64_t T_, int64_t C_, int64_t w_, int64_t Dv_, bool backward)
      : T(T_), C(C_), w(w_), D(fm.D), Dv(Dv_), E(Dv_ + 1), M(fm.M), Kc(T * D), VE(T * E), PKw(T * M),
        DrK(backward ? T * M : 0), kw(T), hk(T), ak(T), s(T), Stot(M * E), PQ(C * M), DrQ(backward ? C * M : 0),
        hq(C), aq(C), G(C * (C + 2 * w - 2)), Pn(C * (C + 2 * w - 2)), NF(C * E), NA(C * E) {}
  bool is_real(int64_t j) const { return !mask || mask[j] != 0.0f; }
};

// Masked key copies, the key features PKw at the shifts s_j, R and Stot.
void prepare_keys(const FeatureMap& fm, Head& h, bool with_dr) {
  const int64_t T = h.T, D = h.D, Dv = h.Dv, E = h.E, M = h.M;
  h.real = 0;
  for (int64_t j = 0; j < T; ++j) {
    const bool real = h.is_real(j);
    h.real += real ? 1 : 0;
    float* kr = h.Kc.data() + j * D;
    float* vr = h.VE.data() + j * E;
    if (real) {
      std::copy(h.K + j * D, h.K + (j + 1) * D, kr);
      std::copy(h.V + j * Dv, h.V + (j + 1) * Dv, vr);
      vr[Dv] = 1.0f;
    } else {
      std::fill(kr, kr + D, 0.0f);
      std::fill(vr, vr + E, 0.0f);
    }
  }
  fm.project(h.Kc.data(), T, h.PKw.data(), h.hk.data(), h.ak.data());
  h.R = kNegInf;
  for (int64_t j = 0; j < T; ++j)
    if (h.is_real(j)) h.R = std::max(h.R, h.ak[j]);
  for (int64_t j = 0; j < T; ++j) h.s[j] = fm.key_shift == KeyShift::Shared && h.is_real(j) ? h.R : h.ak[j];
  fm.features(h.PKw.data(), h.hk.data(), h.s.data(), T, h.PKw.data(), with_dr ? h.DrK.data() : nullptr);
  for (int64_t j = 0; j < T; ++j) {
    h.kw[j] = h.is_real(j) && h.R > kNegInf ? std::exp(h.s[j] - h.R) : 0.0f;
    for (int64_t f = 0; f < M; ++f) h.PKw[j * M + f] *= h.kw[j];
  }
  gemm(true, false, M, E, T, 1.0f, h.PKw.data(), M, h.VE.data(), E, 0.0f, h.Stot.data(), E);
}

struct Span {
  int64_t t0, n, kb, nk;
  Span(int64_t t0_, int64_t n_, int64_t w, int64_t T) : t0(t0_), n(n_) {
    kb = std::max<int64_t>(0, t0 - w + 1);
    nk = std::min<int64_t>(T, t0 + n + w - 1) - kb;
  }
  bool near(const Head& h, int64_t i, int64_t j) const {  // query t0 + i, key kb + j
    const int64_t d = t0 + i - (kb + j);
    return d < h.w && -d < h.w && h.is_real(kb + j);
  }
};

// The chunk's far sums NF, near logits and weights Pn, c and g; with gNF the far parts g_i NF_i.
// G is left holding the near keys' far-field terms (masked), Pn the near weights.
void chunk_forward(const FeatureMap& fm, Head& h, const Span& sp, bool with_dr, float* c, float* g) {
  const int64_t n = sp.n, nk = sp.nk, D = h.D, E = h.E, M = h.M;
  fm.project(h.Q + sp.t0 * D, n, h.PQ.data(), h.hq.data(), h.aq.data());
  fm.features(h.PQ.data(), h.hq.data(), h.aq.data(), n, h.PQ.data(), with_dr ? h.DrQ.data() : nullptr);
  gemm(false, false, n, E, M, 1.0f, h.PQ.data(), M, h.Stot.data(), E, 0.0f, h.NF.data(), E);
  gemm(false, true, n, nk, M, 1.0f, h.PQ.data(), M, h.PKw.data() + sp.kb * M, M, 0.0f, h.G.data(), nk);
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  gemm(false, true, n, nk, D, scale, h.Q + sp.t0 * D, D, h.Kc.data() + sp.kb * D, D, 0.0f, h.Pn.data(), nk);
  Buffer m(n, kNegInf);
  std::vector<int64_t> near_count(n, 0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < nk; ++j) {
      if (sp.near(h, i, j)) {
        m[i] = std::max(m[i], h.Pn[i * nk + j]);
        ++near_count[i];
      } else {
        h.G[i * nk + j] = 0.0f;
      }
    }
  gemm(false, false, n, E, nk, -1.0f, h.G.data(), nk, h.VE.data() + sp.kb * E, E, 1.0f, h.NF.data(), E);
  for (int64_t i = 0; i < n; ++i)
    favor_local_detail::shared_scale(m[i], h.NF[i * E + h.Dv], h.aq[i] + h.R + h.lam, h.real > near_count[i],
                                     c[i], g[i]);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < nk; ++j) {
      float& p = h.Pn[i * nk + j];
      p = sp.near(h, i, j) ? std::exp(p - c[i]) : 0.0f;
    }
}

// Forward of one head: O (T, Dv), den, c, g (T each), gNF (T, E) when not null.
void forward_head(const FeatureMap& fm, Head& h, float* O, float* den, float* c, float* g, float* gNF) {
  const int64_t E = h.E, Dv = h.Dv;
  prepare_keys(fm, h, false);
  for (int64_t t0 = 0; t0 < h.T; t0 += h.C) {
    const Span sp(t0, std::min(h.C, h.T - t0), h.w, h.T);
    chunk_forward(fm, h, sp, false, c + t0, g + t0);
    gemm(false, false, sp.n, E, sp.nk, 1.0f, h.Pn.data(), sp.nk, h.VE.data() + sp.kb * E, E, 0.0f, h.NA.data(), E);
    for (int64_t i = 0; i < sp.n; ++i)
      for (int64_t e = 0; e < E; ++e) {
        const float far = g[t0 + i] * h.NF[i * E + e];
        h.NA[i * E + e] += far;
        if (gNF) gNF[(t0 + i) * E + e] = far;
      }
    favor_detail::finish_rows(h.NA.data(), sp.n, Dv, O + t0 * Dv, den + t0);
  }
}

struct Grads {
  float *dQ, *dK, *dV;  // (+=), null: skipped
  float* dW;            // this head's part of the projection's gradient (M, D) (+=), null: skipped
  float dlam = 0.0f;
};

// Backward of one chunk (after chunk_forward recomputed its pieces); dNA (n, E) from the normalization.
void chunk_backward(const FeatureMap& fm, Head& h, const Span& sp, const float* g, const float* gNF, Buffer& dNA,
                    Buffer& dPKw, Buffer& dVE, Buffer& dStot, Grads& gr) {
  const int64_t n = sp.n, nk = sp.nk, D = h.D, E = h.E, M = h.M, kb = sp.kb, t0 = sp.t0;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  Buffer dPn(n * nk), dNF(n * E), dPQ(n * M);
  if (gNF)
    for (int64_t i = 0; i < n * E; ++i) gr.dlam += dNA[i] * gNF[t0 * E + i];
  // Near field.
  gemm(false, true, n, nk, E, 1.0f, dNA.data(), E, h.VE.data() + kb * E, E, 0.0f, dPn.data(), nk);
  for (int64_t i = 0; i < n * nk; ++i) dPn[i] *= h.Pn[i];
  if (gr.dQ) gemm(false, false, n, D, nk, scale, dPn.data(), nk, h.Kc.data() + kb * D, D, 1.0f, gr.dQ + t0 * D, D);
  if (gr.dK) gemm(true, false, nk, D, n, scale, dPn.data(), nk, h.Q + t0 * D, D, 1.0f, gr.dK + kb * D, D);
  gemm(true, false, nk, E, n, 1.0f, h.Pn.data(), nk, dNA.data(), E, 1.0f, dVE.data() + kb * E, E);
  // Far field: NF = PQ Stot - G VE_span.
  for (int64_t i = 0; i < n; ++i)
    for (int64_t e = 0; e < E; ++e) dNF[i * E + e] = g[i] * dNA[i * E + e];
  gemm(false, true, n, M, E, 1.0f, dNF.data(), E, h.Stot.data(), E, 0.0f, dPQ.data(), M);
  gemm(false, true, n, nk, E, 1.0f, dNF.data(), E, h.VE.data() + kb * E, E, 0.0f, dPn.data(), nk);  // A
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < nk; ++j)
      if (!sp.near(h, i, j)) dPn[i * nk + j] = 0.0f;
  gemm(false, false, n, M, nk, -1.0f, dPn.data(), nk, h.PKw.data() + kb * M, M, 1.0f, dPQ.data(), M);
  gemm(true, false, nk, M, n, -1.0f, dPn.data(), nk, h.PQ.data(), M, 1.0f, dPKw.data() + kb * M, M);
  gemm(true, false, nk, E, n, -1.0f, h.G.data(), nk, dNF.data(), E, 1.0f, dVE.data() + kb * E, E);
  gemm(true, false, M, E, n, 1.0f, h.PQ.data(), M, dNF.data(), E, 1.0f, dStot.data(), E);
  if (gr.dQ || gr.dW)
    fm.backward(h.Q + t0 * D, h.DrQ.data(), dPQ.data(), n, gr.dQ ? gr.dQ + t0 * D : nullptr, true, gr.dW);
}

void backward_head(const FeatureMap& fm, Head& h, const float* gout, const float* O, const float* den,
                   const float* g, const float* gNF, Grads& gr) {
  const int64_t T = h.T, E = h.E, M = h.M, Dv = h.Dv;
  prepare_keys(fm, h, true);
  Buffer dPKw(T * M, 0.0f), dVE(T * E, 0.0f), dStot(M * E, 0.0f), dNA(h.C * E);
  Buffer c_chunk(h.C), g_chunk(h.C);
  for (int64_t t0 = 0; t0 < T; t0 += h.C) {
    const Span sp(t0, std::min(h.C, T - t0), h.w, T);
    chunk_forward(fm, h, sp, true, c_chunk.data(), g_chunk.data());  // recomputes the same c and g
    favor_detail::finish_rows_backward(gout + t0 * Dv, O + t0 * Dv, den + t0, sp.n, Dv, dNA.data());
    chunk_backward(fm, h, sp, g + t0, gNF, dNA, dPKw, dVE, dStot, gr);
  }
  gemm(false, true, T, M, E, 1.0f, h.VE.data(), E, dStot.data(), E, 1.0f, dPKw.data(), M);
  gemm(false, false, T, E, M, 1.0f, h.PKw.data(), M, dStot.data(), E, 1.0f, dVE.data(), E);
  if (gr.dV)
    for (int64_t j = 0; j < T; ++j)
      if (h.is_real(j))
        for (int64_t e = 0; e < Dv; ++e) gr.dV[j * Dv + e] += dVE[j * E + e];
  if (gr.dK || gr.dW) {  // padded keys have kw = 0: nothing reaches their rows, nor dW through them
    for (int64_t j = 0; j < T; ++j)
      for (int64_t f = 0; f < M; ++f) dPKw[j * M + f] *= h.kw[j];
    fm.backward(h.Kc.data(), h.DrK.data(), dPKw.data(), T, gr.dK, true, gr.dW);
  }
}

// The inputs of one call, kept by the backward: values, the key mask, the gain's values per head.
struct Call {
  FavorDims d;
  int64_t C = 1, w = 1;
  Tensor q, k, v, mask;    // mask undefined: all keys real
  std::vector<float> lam;  // (H), zeros without a gain
  Head head(const FeatureMap& fm, int64_t bh, bool backward) const {
    Head h(fm, d.T, C, w, d.Dv, backward);
    h.Q = q.data() + bh * d.T * d.D;
    h.K = k.data() + bh * d.T * d.D;
    h.V = v.data() + bh * d.T * d.Dv;
    h.mask = mask.defined() ? mask.data() + (bh / d.H) * d.T : nullptr;
    h.lam = lam[bh % d.H];
    return h;
  }
};

}  // namespace

Var favor_local_bidirectional(const Var& q, const Var& k, const Var& v, const Var& projection, int64_t window,
                              const FavorOptions& opt, const Tensor* key_mask, const Var& far_log_gain) {
  favor_local_detail::check_local_options("favor_local_bidirectional", window, opt);
  Call call;
  call.d = favor_detail::check_favor_args("favor_local_bidirectional", q.value(), k.value(), &v.value(),
                                          favor_detail::projection_value(projection), opt, key_mask, false);
  const FavorDims& d = call.d;
  favor_local_detail::check_gain("favor_local_bidirectional", far_log_gain, d.H);
  const int64_t T = d.T, D = d.D, Dv = d.Dv, M = d.M, BH = d.BH(), E = Dv + 1;
  call.C = opt.chunk_length(T);
  call.w = window;
  call.q = q.value();
  call.k = k.value();
  call.v = v.value();
  if (key_mask) call.mask = key_mask->clone();
  call.lam.assign(d.H, 0.0f);
  for (int64_t h = 0; h < d.H; ++h) call.lam[h] = favor_local_detail::head_log_gain(far_log_gain, h, d.H);
  const Var trained = favor_detail::trained_projection(projection);
  const bool grad = needs_grad({&q, &k, &v, &far_log_gain, &trained});  // an undefined gain or W is no input
  const bool gain_grad = grad && far_log_gain.defined();
  Tensor out = Tensor::empty({d.B, d.H, T, Dv});
  Tensor den = Tensor::empty({BH, T}), c = Tensor::empty({BH, T}), g = Tensor::empty({BH, T});
  Tensor gNF = gain_grad ? Tensor::empty({BH, T, E}) : Tensor();
  const FeatureMap fm(opt, D, M, projection.value().data());
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < BH; ++bh) {
    Head h = call.head(fm, bh, false);
    forward_head(fm, h, out.data() + bh * T * Dv, den.data() + bh * T, c.data() + bh * T, g.data() + bh * T,
                 gain_grad ? gNF.data() + bh * T * E : nullptr);
  }
  if (!grad) return make_result(std::move(out), false, "favor_local_bidirectional", nullptr);
  // Saves: the input handles (W's when it is trained) and values, the mask, a copy of W, the output, den
  // and g (B*H, T each), and with a learned gain the far parts g NF; the backward recomputes the rest.
  Tensor wc = projection.value().clone(), saved_out = out;
  std::shared_ptr<GradSlot> lam = far_log_gain.defined() ? far_log_gain.slot_ptr() : nullptr;
  std::shared_ptr<GradSlot> ws = trained.defined() ? trained.slot_ptr() : nullptr;
  return make_result(
      std::move(out), true, "favor_local_bidirectional",
      [qs = q.slot_ptr(), ks = k.slot_ptr(), vs = v.slot_ptr(), lam, ws, call, wc, opt, saved_out, den, g,
       gNF](const Tensor& grad_out) {
        const FavorDims& d = call.d;
        const int64_t T = d.T, D = d.D, Dv = d.Dv, BH = d.BH(), E = Dv + 1;
        const FeatureMap fm(opt, D, d.M, wc.data());
        float* dq = qs->requires_grad ? qs->grad_buffer().data() : nullptr;
        float* dk = ks->requires_grad ? ks->grad_buffer().data() : nullptr;
        float* dv = vs->requires_grad ? vs->grad_buffer().data() : nullptr;
        const bool dgain = lam && lam->requires_grad;
        Buffer dl(BH, 0.0f);
        favor_detail::ProjectionGrad dw(ws, BH, d.M, D);
#pragma omp parallel for schedule(static)
        for (int64_t bh = 0; bh < BH; ++bh) {
          Head h = call.head(fm, bh, true);
          Grads gr{dq ? dq + bh * T * D : nullptr, dk ? dk + bh * T * D : nullptr, dv ? dv + bh * T * Dv : nullptr,
                   dw.part(bh)};
          backward_head(fm, h, grad_out.data() + bh * T * Dv, saved_out.data() + bh * T * Dv, den.data() + bh * T,
                        g.data() + bh * T, dgain ? gNF.data() + bh * T * E : nullptr, gr);
          dl[bh] = gr.dlam;
        }
        if (dgain) favor_local_detail::add_gain_grad(dl.data(), BH, d.H, lam->grad_buffer().data());
        dw.finish();
      });
}

Var favor_local_bidirectional(const Var& q, const Var& k, const Var& v, const Tensor& projection, int64_t window,
                              const FavorOptions& opt, const Tensor* key_mask, const Var& far_log_gain) {
  return favor_local_bidirectional(q, k, v, Var(projection), window, opt, key_mask, far_log_gain);
}

}  // namespace pf
