// Causal FAVOR+ as one fused autograd node, chunk by chunk (math in performer/favor.h).
//
// Per (batch, head), for a chunk of n <= C positions starting at t0, with R the running max of the key
// shifts before the chunk and (S, z) the carried state at shift R, stored together as
// Saug = [S z] (M, Dv + 1) so that one GEMM gives numerator and denominator (V is augmented with a
// column of ones: Vaug = [V 1]):
//   r_i   = max(R, s_t0 .. s_i)                           running max, never looks ahead
//   Wgt   = exp(s_j - r_i) for j <= i, SET to 0 above     (n, n)
//   L     = (phi(Q) phi(K)^T) o Wgt                        (n, n)
//   NA    = L Vaug + diag(alpha) phi(Q) Saug,  alpha_i = exp(R - r_i)           (n, Dv + 1)
//   out_i = NA_i[:Dv] / max(NA_i[Dv], floor)
//   Saug <- exp(R - R') Saug + (diag(exp(s_j - R')) phi(K))^T Vaug,  R' = r_{n-1}
// All factors are exp of a non-positive number. The backward walks the chunks in reverse carrying
// dSaug, the gradient of the state leaving the chunk: the suffix sum of phi(q_i) dNA_i^T, rescaled
// like the state (dSaug <- exp(R - R') dSaug + (diag(alpha) phi(Q))^T dNA).
#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/gemm.h"
#include "performer/favor_kernels.h"

namespace pf::favor_detail {

namespace {

using ArrayXfMap = Eigen::Map<Eigen::ArrayXf>;
using ConstArrayXfMap = Eigen::Map<const Eigen::ArrayXf>;

// Key shifts s_j and running maxima r_j = max(R, s_0 .. s_j) for the n keys of a chunk, given their
// a_j = max_f u_jf - |k'_j|^2/2 and the running max R before the chunk. Relu: all zero.
void chunk_key_shifts(const FeatureMap& fm, const float* a, int64_t n, float R, float* s, float* r) {
  if (!fm.shifted()) {
    std::fill(s, s + n, 0.0f);
    std::fill(r, r + n, 0.0f);
    return;
  }
  float run = R;
  for (int64_t j = 0; j < n; ++j) {
    run = std::max(run, a[j]);
    s[j] = fm.key_shift == KeyShift::Shared ? run : a[j];
    r[j] = run;
  }
}

// Scratch of one (batch, head); C is the chunk length, E = Dv + 1.
struct ChunkBuffers {
  Buffer PQ, PK, DrQ, DrK, Wgt, G, L, Vaug, NA, tmp;
  Buffer hq, aq, hk, ak, s, r, alpha, kw;
  ChunkBuffers(int64_t C, int64_t M, int64_t E, bool backward)
      : PQ(C * M),
        PK(C * M),
        DrQ(backward ? C * M : 0),
        DrK(backward ? C * M : 0),
        Wgt(C * C),
        G(C * C),
        L(C * C),
        Vaug(C * E),
        NA(C * E),
        tmp(C * M),
        hq(C),
        aq(C),
        hk(C),
        ak(C),
        s(C),
        r(C),
        alpha(C),
        kw(C) {}
};

// Everything a chunk needs from its inputs, forward or backward: features (and their derivatives when
// with_dr), shifts, the weights Wgt, L = (PQ PK^T) o Wgt, and Vaug.
void prepare_chunk(const FeatureMap& fm, const float* Q, const float* K, const float* V, int64_t n, int64_t Dv, float R,
                   bool with_dr, ChunkBuffers& b) {
  const int64_t M = fm.M, E = Dv + 1;
  fm.project(Q, n, b.PQ.data(), b.hq.data(), b.aq.data());
  fm.features(b.PQ.data(), b.hq.data(), b.aq.data(), n, b.PQ.data(), with_dr ? b.DrQ.data() : nullptr);
  fm.project(K, n, b.PK.data(), b.hk.data(), b.ak.data());
  chunk_key_shifts(fm, b.ak.data(), n, R, b.s.data(), b.r.data());
  fm.features(b.PK.data(), b.hk.data(), b.s.data(), n, b.PK.data(), with_dr ? b.DrK.data() : nullptr);
  // Wgt_ij = exp(s_j - r_i) on and below the diagonal; SET to 0 above (never a multiplied mask).
  for (int64_t i = 0; i < n; ++i) {
    float* w = b.Wgt.data() + i * n;
    if (fm.shifted()) {
      ArrayXfMap(w, i + 1) = (ConstArrayXfMap(b.s.data(), i + 1) - b.r[i]).exp();
    } else {
      std::fill(w, w + i + 1, 1.0f);
    }
    std::fill(w + i + 1, w + n, 0.0f);
  }
  gemm(false, true, n, n, M, 1.0f, b.PQ.data(), M, b.PK.data(), M, 0.0f, b.G.data(), n);  // (n, n)
  for (int64_t i = 0; i < n; ++i) {
    const float* g = b.G.data() + i * n;
    const float* w = b.Wgt.data() + i * n;
    float* l = b.L.data() + i * n;
    for (int64_t j = 0; j <= i; ++j) l[j] = g[j] * w[j];
    std::fill(l + i + 1, l + n, 0.0f);  // G above the diagonal holds later keys: overwritten, never read
  }
  for (int64_t i = 0; i < n; ++i) {
    if (Dv > 0) std::copy(V + i * Dv, V + (i + 1) * Dv, b.Vaug.data() + i * E);
    b.Vaug[i * E + Dv] = 1.0f;
  }
}

// Forward of one (batch, head): Q, K (T, D), V (T, Dv) -> O (T, Dv) and den (T). With Dv = 0, V and O
// may be null (denominators only). If `states` is not null it receives Saug (M, Dv + 1) entering every
// chunk and `shifts` the running max R entering it, for the backward.
void forward_head(const FeatureMap& fm, int64_t T, int64_t C, int64_t Dv, const float* Q, const float* K,
                  const float* V, float* O, float* den, float* states, float* shifts) {
  const int64_t M = fm.M, D = fm.D, E = Dv + 1;
  ChunkBuffers b(C, M, E, false);
  Buffer S(M * E, 0.0f);  // Saug (M, Dv + 1) at shift R
  float R = kNegInf;
  for (int64_t c = 0, t0 = 0; t0 < T; ++c, t0 += C) {
    const int64_t n = std::min(C, T - t0);
    if (states) {
      std::copy(S.begin(), S.end(), states + c * M * E);
      shifts[c] = R;
    }
    prepare_chunk(fm, Q + t0 * D, K + t0 * D, V ? V + t0 * Dv : nullptr, n, Dv, R, false, b);
    gemm(false, false, n, E, n, 1.0f, b.L.data(), n, b.Vaug.data(), E, 0.0f, b.NA.data(), E);  // intra-chunk
    if (c > 0) {  // the carried state, read at each query's shift r_i
      for (int64_t i = 0; i < n; ++i) b.alpha[i] = std::exp(R - b.r[i]);
      UnalignedMatrixMap(b.tmp.data(), n, M) =
          Eigen::Map<Eigen::VectorXf>(b.alpha.data(), n).asDiagonal() * ConstUnalignedMatrixMap(b.PQ.data(), n, M);
      gemm(false, false, n, E, M, 1.0f, b.tmp.data(), M, S.data(), E, 1.0f, b.NA.data(), E);
    }
    finish_rows(b.NA.data(), n, Dv, O ? O + t0 * Dv : nullptr, den + t0);
    if (t0 + n >= T) break;  // no later chunk reads the state
    const float R_new = b.r[n - 1];
    if (c > 0) {
      const float beta = std::exp(R - R_new);
      for (float& x : S) x *= beta;
    }
    for (int64_t j = 0; j < n; ++j) b.kw[j] = std::exp(b.s[j] - R_new);
    UnalignedMatrixMap(b.tmp.data(), n, M) =
        Eigen::Map<Eigen::VectorXf>(b.kw.data(), n).asDiagonal() * ConstUnalignedMatrixMap(b.PK.data(), n, M);
    gemm(true, false, M, E, n, 1.0f, b.tmp.data(), M, b.Vaug.data(), E, 1.0f, S.data(), E);
    R = R_new;
  }
}

// Backward of one (batch, head). g, O: (T, Dv); den (T); states/shifts as saved by forward_head.
// dQ, dK (T, D), dV (T, Dv) are accumulated into (+=); a null target is skipped.
void backward_head(const FeatureMap& fm, int64_t T, int64_t C, int64_t Dv, const float* Q, const float* K,
                   const float* V, const float* g, const float* O, const float* den, const float* states,
                   const float* shifts, float* dQ, float* dK, float* dV) {
  const int64_t M = fm.M, D = fm.D, E = Dv + 1;
  const int64_t nc = (T + C - 1) / C;
  ChunkBuffers b(C, M, E, true);
  Buffer dNA(C * E), dPQ(C * M), dPK(C * M), dG(C * C), dVaug(C * E);
  Buffer dS(M * E, 0.0f);  // gradient of Saug leaving the current chunk
  for (int64_t c = nc - 1; c >= 0; --c) {
    const int64_t t0 = c * C, n = std::min(C, T - t0);
    const float* S_prev = states + c * M * E;
    const float R = shifts[c];
    prepare_chunk(fm, Q + t0 * D, K + t0 * D, V + t0 * Dv, n, Dv, R, true, b);
    finish_rows_backward(g + t0 * Dv, O + t0 * Dv, den + t0, n, Dv, dNA.data());
    // Queries reading the carried state: dPQ = diag(alpha) dNA Saug^T.
    if (c > 0) {
      for (int64_t i = 0; i < n; ++i) b.alpha[i] = std::exp(R - b.r[i]);
      gemm(false, true, n, M, E, 1.0f, dNA.data(), E, S_prev, E, 0.0f, dPQ.data(), M);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t f = 0; f < M; ++f) dPQ[i * M + f] *= b.alpha[i];
    }
    // Intra-chunk: dL = dNA Vaug^T on and below the diagonal; dG = dL o Wgt (SET to 0 above).
    gemm(false, true, n, n, E, 1.0f, dNA.data(), E, b.Vaug.data(), E, 0.0f, dG.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      float* dg = dG.data() + i * n;
      const float* w = b.Wgt.data() + i * n;
      for (int64_t j = 0; j <= i; ++j) dg[j] *= w[j];
      std::fill(dg + i + 1, dg + n, 0.0f);
    }
    gemm(false, false, n, M, n, 1.0f, dG.data(), n, b.PK.data(), M, c > 0 ? 1.0f : 0.0f, dPQ.data(), M);
    gemm(true, false, n, M, n, 1.0f, dG.data(), n, b.PQ.data(), M, 0.0f, dPK.data(), M);
    gemm(true, false, n, E, n, 1.0f, b.L.data(), n, dNA.data(), E, 0.0f, dVaug.data(), E);
    const float R_new = b.r[n - 1];
    // Keys feeding the state read by later chunks: Saug' = ... + (diag(kw) PK)^T Vaug.
    if (c < nc - 1) {
      for (int64_t j = 0; j < n; ++j) b.kw[j] = std::exp(b.s[j] - R_new);
      gemm(false, true, n, M, E, 1.0f, b.Vaug.data(), E, dS.data(), E, 0.0f, b.tmp.data(), M);  // Vaug dS^T
      for (int64_t j = 0; j < n; ++j)
        for (int64_t f = 0; f < M; ++f) dPK[j * M + f] += b.kw[j] * b.tmp[j * M + f];
      UnalignedMatrixMap(b.tmp.data(), n, M) =
          Eigen::Map<Eigen::VectorXf>(b.kw.data(), n).asDiagonal() * ConstUnalignedMatrixMap(b.PK.data(), n, M);
      gemm(false, false, n, E, M, 1.0f, b.tmp.data(), M, dS.data(), E, 1.0f, dVaug.data(), E);
    }
    // Carry to the state entering this chunk: dS <- exp(R - R') dS + (diag(alpha) PQ)^T dNA.
    if (c > 0) {
      const float beta = std::exp(R - R_new);
      for (float& x : dS) x *= beta;
      UnalignedMatrixMap(b.tmp.data(), n, M) =
          Eigen::Map<Eigen::VectorXf>(b.alpha.data(), n).asDiagonal() * ConstUnalignedMatrixMap(b.PQ.data(), n, M);
      gemm(true, false, M, E, n, 1.0f, b.tmp.data(), M, dNA.data(), E, 1.0f, dS.data(), E);
    }
    if (dV)
      for (int64_t i = 0; i < n; ++i)
        for (int64_t e = 0; e < Dv; ++e) dV[(t0 + i) * Dv + e] += dVaug[i * E + e];
    if (dQ) fm.backward(Q + t0 * D, b.DrQ.data(), dPQ.data(), n, dQ + t0 * D, true);
    if (dK) fm.backward(K + t0 * D, b.DrK.data(), dPK.data(), n, dK + t0 * D, true);
  }
}

int64_t chunk_length(const FavorOptions& opt, int64_t T) {
  return std::max<int64_t>(1, std::min(opt.chunk_size, T));
}

}  // namespace

Var favor_causal(const Var& q, const Var& k, const Var& v, const Tensor& projection, const FavorOptions& opt,
                 const FavorDims& d) {
  const int64_t T = d.T, D = d.D, Dv = d.Dv, M = d.M, BH = d.BH(), E = Dv + 1;
  const int64_t C = chunk_length(opt, T), nc = (T + C - 1) / C;
  const bool grad = needs_grad({&q, &k, &v});
  Tensor out = Tensor::empty({d.B, d.H, T, Dv});  // (B, H, T, Dv)
  Tensor den = Tensor::empty({BH, T});            // (B*H, T) before the guard
  // Saved for the backward: Saug (M, Dv + 1) and its shift entering each chunk; never per position.
  Tensor states, shifts;
  if (grad) {
    states = Tensor::empty({BH, nc, M, E});
    shifts = Tensor::empty({BH, nc});
  }
  const FeatureMap fm(opt, D, M, projection.data());
  const float *pq = q.value().data(), *pk = k.value().data(), *pv = v.value().data();
  float* po = out.data();
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < BH; ++bh)
    forward_head(fm, T, C, Dv, pq + bh * T * D, pk + bh * T * D, pv + bh * T * Dv, po + bh * T * Dv,
                 den.data() + bh * T, grad ? states.data() + bh * nc * M * E : nullptr,
                 grad ? shifts.data() + bh * nc : nullptr);
  if (!grad) return make_result(std::move(out), false, "favor_causal", nullptr);
  // Saves: the input handles, a copy of W (M, D) (a redraw must not change this backward), the output,
  // den (B*H, T) and the chunk-boundary states (B*H, ceil(T/C), M, Dv + 1) with their shifts.
  Tensor w = projection.clone();
  Tensor saved_out = out;
  return make_result(
      std::move(out), true, "favor_causal",
      [q = q.slot_ptr(), k = k.slot_ptr(), v = v.slot_ptr(), qv = q.value(), kv = k.value(), vv = v.value(), w, opt, d, C, saved_out, den, states,
       shifts](const Tensor& g) {
        const int64_t T = d.T, D = d.D, Dv = d.Dv, M = d.M, BH = d.BH(), E = Dv + 1, nc = (T + C - 1) / C;
        const FeatureMap fm(opt, D, M, w.data());
        float* dq = q->requires_grad ? q->grad_buffer().data() : nullptr;
        float* dk = k->requires_grad ? k->grad_buffer().data() : nullptr;
        float* dv = v->requires_grad ? v->grad_buffer().data() : nullptr;
        const float *pq = qv.data(), *pk = kv.data(), *pv = vv.data();
#pragma omp parallel for schedule(static)
        for (int64_t bh = 0; bh < BH; ++bh)
          backward_head(fm, T, C, Dv, pq + bh * T * D, pk + bh * T * D, pv + bh * T * Dv, g.data() + bh * T * Dv,
                        saved_out.data() + bh * T * Dv, den.data() + bh * T, states.data() + bh * nc * M * E,
                        shifts.data() + bh * nc, dq ? dq + bh * T * D : nullptr, dk ? dk + bh * T * D : nullptr,
                        dv ? dv + bh * T * Dv : nullptr);
      });
}

void favor_causal_denominator(const Tensor& q, const Tensor& k, const Tensor& projection, const FavorOptions& opt,
                              const FavorDims& d, float* den) {
  const int64_t T = d.T, D = d.D, BH = d.BH(), C = chunk_length(opt, T);
  const FeatureMap fm(opt, D, d.M, projection.data());
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < BH; ++bh)
    forward_head(fm, T, C, 0, q.data() + bh * T * D, k.data() + bh * T * D, nullptr, nullptr, den + bh * T, nullptr,
                 nullptr);
}

}  // namespace pf::favor_detail
