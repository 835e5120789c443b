// Bidirectional FAVOR+ as one fused autograd node (math in performer/favor.h). Per (batch, head), in
// chunks of C positions so that scratch stays O(C M):
//   keys:    R = max of the shifts s_j over the real keys; kw_j = exp(s_j - R) for real keys, SET to 0
//            for padded ones (whose k and v rows are also SET to 0 before use, so any value, even NaN,
//            changes nothing);  Saug = [S z] = (diag(kw) phi(K))^T [V 1]          (M, Dv + 1)
//   queries: NA = phi(Q) Saug; out_i = NA_i[:Dv] / max(NA_i[Dv], floor)
// Saves Saug and R per head (O(M Dv)), den (T) and the output; the backward recomputes the features.
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "autograd/gemm.h"
#include "performer/favor_kernels.h"

namespace pf::favor_detail {

namespace {

// Scratch of one (batch, head) for chunks of up to C rows; E = Dv + 1.
struct Buffers {
  Buffer X, P, Dr, h, a, s, kw, Vaug, NA, dNA, dP, tmp;
  Buffers(int64_t C, int64_t D, int64_t M, int64_t E)
      : X(C * D),
        P(C * M),
        Dr(C * M),
        h(C),
        a(C),
        s(C),
        kw(C),
        Vaug(C * E),
        NA(C * E),
        dNA(C * E),
        dP(C * M),
        tmp(C * M) {}
};

// Real keys: mask row (T) or null for all real.
bool is_real(const float* mask, int64_t j) {
  return !mask || mask[j] != 0.0f;
}

// Copies n rows of K (D wide) into b.X with padded rows SET to 0.
void masked_keys(const float* K, const float* mask, int64_t t0, int64_t n, int64_t D, Buffers& b) {
  for (int64_t j = 0; j < n; ++j) {
    float* dst = b.X.data() + j * D;
    if (is_real(mask, t0 + j)) {
      std::copy(K + (t0 + j) * D, K + (t0 + j + 1) * D, dst);
    } else {
      std::fill(dst, dst + D, 0.0f);
    }
  }
}

// R: the max of a_j over the real keys (-inf if none; 0 for Relu).
float key_max(const FeatureMap& fm, const float* K, const float* mask, int64_t T, int64_t C, Buffers& b) {
  if (!fm.shifted()) return 0.0f;
  float R = kNegInf;
  for (int64_t t0 = 0; t0 < T; t0 += C) {
    const int64_t n = std::min(C, T - t0);
    masked_keys(K, mask, t0, n, fm.D, b);
    fm.project(b.X.data(), n, b.P.data(), b.h.data(), b.a.data());
    for (int64_t j = 0; j < n; ++j)
      if (is_real(mask, t0 + j)) R = std::max(R, b.a[j]);
  }
  return R;
}

// Key chunk at [t0, t0 + n): b.X = masked keys, b.P = phi(K) (b.Dr its derivative if with_dr),
// b.kw = exp(s_j - R) or 0 for pads, b.tmp = diag(kw) phi(K) with padded rows SET to 0, b.Vaug.
void prepare_keys(const FeatureMap& fm, const float* K, const float* V, const float* mask, int64_t t0, int64_t n,
                  int64_t Dv, float R, bool with_dr, Buffers& b) {
  const int64_t M = fm.M, E = Dv + 1;
  masked_keys(K, mask, t0, n, fm.D, b);
  fm.project(b.X.data(), n, b.P.data(), b.h.data(), b.a.data());
  // Shared: every real key at R. Padded rows (zeroed) keep their own finite shift, so that even their
  // discarded features and derivatives stay finite.
  for (int64_t j = 0; j < n; ++j)
    b.s[j] = fm.shifted() && fm.key_shift == KeyShift::Shared && is_real(mask, t0 + j) ? R : b.a[j];
  fm.features(b.P.data(), b.h.data(), b.s.data(), n, b.P.data(), with_dr ? b.Dr.data() : nullptr);
  for (int64_t j = 0; j < n; ++j) {
    const bool real = is_real(mask, t0 + j);
    b.kw[j] = real ? (fm.shifted() ? std::exp(b.s[j] - R) : 1.0f) : 0.0f;
    float* row = b.tmp.data() + j * M;
    const float* p = b.P.data() + j * M;
    for (int64_t f = 0; f < M; ++f) row[f] = real ? b.kw[j] * p[f] : 0.0f;
    float* va = b.Vaug.data() + j * E;
    if (real) {
      if (Dv > 0) std::copy(V + (t0 + j) * Dv, V + (t0 + j + 1) * Dv, va);
      va[Dv] = 1.0f;
    } else {
      std::fill(va, va + E, 0.0f);
    }
  }
}

// Forward of one (batch, head): Saug (M, E) and R, then den (T) and O (T, Dv) (null when Dv = 0).
void forward_head(const FeatureMap& fm, int64_t T, int64_t C, int64_t Dv, const float* Q, const float* K,
                  const float* V, const float* mask, float* O, float* den, float* S, float* R_out) {
  const int64_t M = fm.M, D = fm.D, E = Dv + 1;
  Buffers b(C, D, M, E);
  const float R = key_max(fm, K, mask, T, C, b);
  std::fill(S, S + M * E, 0.0f);
  for (int64_t t0 = 0; t0 < T; t0 += C) {
    const int64_t n = std::min(C, T - t0);
    prepare_keys(fm, K, V, mask, t0, n, Dv, R, false, b);
    gemm(true, false, M, E, n, 1.0f, b.tmp.data(), M, b.Vaug.data(), E, 1.0f, S, E);
  }
  for (int64_t t0 = 0; t0 < T; t0 += C) {
    const int64_t n = std::min(C, T - t0);
    fm.project(Q + t0 * D, n, b.P.data(), b.h.data(), b.a.data());
    fm.features(b.P.data(), b.h.data(), b.a.data(), n, b.P.data(), nullptr);
    gemm(false, false, n, E, M, 1.0f, b.P.data(), M, S, E, 0.0f, b.NA.data(), E);
    finish_rows(b.NA.data(), n, Dv, O ? O + t0 * Dv : nullptr, den + t0);
  }
  *R_out = R;
}

// Backward of one (batch, head); dQ, dK (T, D), dV (T, Dv) and this head's part of the projection's
// gradient dW (M, D) accumulated into, null targets skipped.
void backward_head(const FeatureMap& fm, int64_t T, int64_t C, int64_t Dv, const float* Q, const float* K,
                   const float* V, const float* mask, const float* g, const float* O, const float* den, const float* S,
                   float R, float* dQ, float* dK, float* dV, float* dW) {
  const int64_t M = fm.M, D = fm.D, E = Dv + 1;
  Buffers b(C, D, M, E);
  Buffer dS(M * E, 0.0f);  // gradient of Saug
  for (int64_t t0 = 0; t0 < T; t0 += C) {
    const int64_t n = std::min(C, T - t0);
    fm.project(Q + t0 * D, n, b.P.data(), b.h.data(), b.a.data());
    fm.features(b.P.data(), b.h.data(), b.a.data(), n, b.P.data(), b.Dr.data());
    finish_rows_backward(g + t0 * Dv, O + t0 * Dv, den + t0, n, Dv, b.dNA.data());
    gemm(true, false, M, E, n, 1.0f, b.P.data(), M, b.dNA.data(), E, 1.0f, dS.data(), E);  // dS += PQ^T dNA
    if (!dQ && !dW) continue;
    gemm(false, true, n, M, E, 1.0f, b.dNA.data(), E, S, E, 0.0f, b.dP.data(), M);  // dPQ = dNA S^T
    fm.backward(Q + t0 * D, b.Dr.data(), b.dP.data(), n, dQ ? dQ + t0 * D : nullptr, true, dW);
  }
  if (!dK && !dV && !dW) return;
  for (int64_t t0 = 0; t0 < T; t0 += C) {
    const int64_t n = std::min(C, T - t0);
    prepare_keys(fm, K, V, mask, t0, n, Dv, R, true, b);
    if (dV) {
      // dVaug = (diag(kw) PK) dS; padded rows of diag(kw) PK are 0, so their gradient is 0.
      gemm(false, false, n, E, M, 1.0f, b.tmp.data(), M, dS.data(), E, 0.0f, b.NA.data(), E);
      for (int64_t j = 0; j < n; ++j)
        for (int64_t e = 0; e < Dv; ++e) dV[(t0 + j) * Dv + e] += b.NA[j * E + e];
    }
    if (dK || dW) {
      // dPK = diag(kw) Vaug dS^T; padded rows SET to 0 (so they add nothing to dW either).
      gemm(false, true, n, M, E, 1.0f, b.Vaug.data(), E, dS.data(), E, 0.0f, b.dP.data(), M);
      for (int64_t j = 0; j < n; ++j) {
        float* row = b.dP.data() + j * M;
        const bool real = is_real(mask, t0 + j);
        for (int64_t f = 0; f < M; ++f) row[f] = real ? row[f] * b.kw[j] : 0.0f;
      }
      fm.backward(b.X.data(), b.Dr.data(), b.dP.data(), n, dK ? dK + t0 * D : nullptr, true, dW);
    }
  }
}

}  // namespace

Var favor_bidirectional(const Var& q, const Var& k, const Var& v, const Var& projection, const FavorOptions& opt,
                        const FavorDims& d, const Tensor* key_mask) {
  const int64_t T = d.T, D = d.D, Dv = d.Dv, M = d.M, H = d.H, BH = d.BH(), E = Dv + 1;
  const int64_t C = opt.chunk_length(T);
  const Var trained = trained_projection(projection);
  const bool grad = needs_grad({&q, &k, &v, &trained});
  Tensor out = Tensor::empty({d.B, H, T, Dv});  // (B, H, T, Dv)
  Tensor den = Tensor::empty({BH, T});          // (B*H, T) before the guard
  Tensor states = Tensor::empty({BH, M, E});    // Saug per head
  Tensor shifts = Tensor::empty({BH});          // R per head
  Tensor mask = key_mask ? key_mask->clone() : Tensor();
  const FeatureMap fm(opt, D, M, projection.value().data());
  const float *pq = q.value().data(), *pk = k.value().data(), *pv = v.value().data();
  const float* pm = mask.defined() ? mask.data() : nullptr;
  float* po = out.data();
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < BH; ++bh)
    forward_head(fm, T, C, Dv, pq + bh * T * D, pk + bh * T * D, pv + bh * T * Dv, pm ? pm + (bh / H) * T : nullptr,
                 po + bh * T * Dv, den.data() + bh * T, states.data() + bh * M * E, shifts.data() + bh);
  if (!grad) return make_result(std::move(out), false, "favor_bidirectional", nullptr);
  // Saves: the input handles (W's when it is trained), copies of W (M, D) and of the mask (B, T), the
  // output, den (B*H, T), and per head Saug (M, Dv + 1) and R.
  Tensor w = projection.value().clone();
  Tensor saved_out = out;
  std::shared_ptr<GradSlot> ws = trained.defined() ? trained.slot_ptr() : nullptr;
  return make_result(std::move(out), true, "favor_bidirectional",
                     [q = q.slot_ptr(), k = k.slot_ptr(), v = v.slot_ptr(), ws, qv = q.value(), kv = k.value(),
                      vv = v.value(), w, mask, opt, d, C, saved_out, den, states, shifts](const Tensor& g) {
                       const int64_t T = d.T, D = d.D, Dv = d.Dv, M = d.M, H = d.H, BH = d.BH(), E = Dv + 1;
                       const FeatureMap fm(opt, D, M, w.data());
                       float* dq = q->requires_grad ? q->grad_buffer().data() : nullptr;
                       float* dk = k->requires_grad ? k->grad_buffer().data() : nullptr;
                       float* dv = v->requires_grad ? v->grad_buffer().data() : nullptr;
                       ProjectionGrad dw(ws, BH, M, D);
                       const float *pq = qv.data(), *pk = kv.data(), *pv = vv.data();
                       const float* pm = mask.defined() ? mask.data() : nullptr;
#pragma omp parallel for schedule(static)
                       for (int64_t bh = 0; bh < BH; ++bh)
                         backward_head(fm, T, C, Dv, pq + bh * T * D, pk + bh * T * D, pv + bh * T * Dv,
                                       pm ? pm + (bh / H) * T : nullptr, g.data() + bh * T * Dv,
                                       saved_out.data() + bh * T * Dv, den.data() + bh * T, states.data() + bh * M * E,
                                       shifts.data()[bh], dq ? dq + bh * T * D : nullptr,
                                       dk ? dk + bh * T * D : nullptr, dv ? dv + bh * T * Dv : nullptr, dw.part(bh));
                       dw.finish();
                     });
}

void favor_bidirectional_denominator(const Tensor& q, const Tensor& k, const Tensor& projection,
                                     const FavorOptions& opt, const FavorDims& d, const Tensor* key_mask, float* den) {
  const int64_t T = d.T, D = d.D, M = d.M, H = d.H, BH = d.BH(), C = opt.chunk_length(T);
  const FeatureMap fm(opt, D, M, projection.data());
  const float* pm = key_mask ? key_mask->data() : nullptr;
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < BH; ++bh) {
    Buffer S(M);
    float R = 0.0f;
    forward_head(fm, T, C, 0, q.data() + bh * T * D, k.data() + bh * T * D, nullptr, pm ? pm + (bh / H) * T : nullptr,
                 nullptr, den + bh * T, S.data(), &R);
  }
}

}  // namespace pf::favor_detail
