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
#include <memory>
#include <vector>

#include "autograd/gemm.h"
#include "performer/favor_chunk.h"
#include "performer/favor_kernels.h"

namespace pf::favor_detail {

namespace {

// Features, weights and Vaug of the chunk [t0, t0 + n) (favor_chunk.h), R the running max before it.
void prepare_chunk(const FeatureMap& fm, const float* Q, const float* K, const float* V, int64_t n, int64_t Dv, float R,
                   bool with_dr, ChunkBuffers& b) {
  chunk_query_features(fm, Q, n, with_dr, b);
  chunk_key_features(fm, K, n, 0, R, with_dr, b);
  chunk_weights(fm, n, 0, b);
  chunk_values(V, n, 0, Dv, b);
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
    chunk_numerators(n, M, E, S.data(), R, c > 0, b);
    finish_rows(b.N.data(), n, Dv, O ? O + t0 * Dv : nullptr, den + t0);
    if (t0 + n >= T) break;  // no later chunk reads the state
    const float R_new = b.r[n - 1];
    add_keys_to_state(n, M, E, 0, R, R_new, c > 0, S.data(), b);
    R = R_new;
  }
}

// Backward of one (batch, head). g, O: (T, Dv); den (T); states/shifts as saved by forward_head.
// dQ, dK (T, D), dV (T, Dv) and this head's part of the projection's gradient dW (M, D) are accumulated
// into (+=); a null target is skipped.
void backward_head(const FeatureMap& fm, int64_t T, int64_t C, int64_t Dv, const float* Q, const float* K,
                   const float* V, const float* g, const float* O, const float* den, const float* states,
                   const float* shifts, float* dQ, float* dK, float* dV, float* dW) {
  const int64_t M = fm.M, D = fm.D, E = Dv + 1;
  const int64_t nc = (T + C - 1) / C;
  ChunkBuffers b(C, M, E, true);
  ChunkGrads gr(C, M, E);
  Buffer dNA(C * E);
  for (int64_t c = nc - 1; c >= 0; --c) {
    const int64_t t0 = c * C, n = std::min(C, T - t0);
    prepare_chunk(fm, Q + t0 * D, K + t0 * D, V + t0 * Dv, n, Dv, shifts[c], true, b);
    finish_rows_backward(g + t0 * Dv, O + t0 * Dv, den + t0, n, Dv, dNA.data());
    chunk_backward(n, M, E, 0, dNA.data(), states + c * M * E, shifts[c], c > 0, c < nc - 1, b, gr);
    if (dV)
      for (int64_t i = 0; i < n; ++i)
        for (int64_t e = 0; e < Dv; ++e) dV[(t0 + i) * Dv + e] += gr.dVaug[i * E + e];
    if (dQ || dW) fm.backward(Q + t0 * D, b.DrQ.data(), gr.dPQ.data(), n, dQ ? dQ + t0 * D : nullptr, true, dW);
    if (dK || dW) fm.backward(K + t0 * D, b.DrK.data(), gr.dPK.data(), n, dK ? dK + t0 * D : nullptr, true, dW);
  }
}

}  // namespace

Var favor_causal(const Var& q, const Var& k, const Var& v, const Var& projection, const FavorOptions& opt,
                 const FavorDims& d) {
  const int64_t T = d.T, D = d.D, Dv = d.Dv, M = d.M, BH = d.BH(), E = Dv + 1;
  const int64_t C = opt.chunk_length(T), nc = (T + C - 1) / C;
  const Var trained = trained_projection(projection);
  const bool grad = needs_grad({&q, &k, &v, &trained});
  Tensor out = Tensor::empty({d.B, d.H, T, Dv});  // (B, H, T, Dv)
  Tensor den = Tensor::empty({BH, T});            // (B*H, T) before the guard
  // Saved for the backward: Saug (M, Dv + 1) and its shift entering each chunk; never per position.
  Tensor states, shifts;
  if (grad) {
    states = Tensor::empty({BH, nc, M, E});
    shifts = Tensor::empty({BH, nc});
  }
  const FeatureMap fm(opt, D, M, projection.value().data());
  const float *pq = q.value().data(), *pk = k.value().data(), *pv = v.value().data();
  float* po = out.data();
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < BH; ++bh)
    forward_head(fm, T, C, Dv, pq + bh * T * D, pk + bh * T * D, pv + bh * T * Dv, po + bh * T * Dv,
                 den.data() + bh * T, grad ? states.data() + bh * nc * M * E : nullptr,
                 grad ? shifts.data() + bh * nc : nullptr);
  if (!grad) return make_result(std::move(out), false, "favor_causal", nullptr);
  // Saves: the input handles (W's when it is trained), a copy of W (M, D) (a redraw must not change this
  // backward), the output, den (B*H, T) and the chunk-boundary states (B*H, ceil(T/C), M, Dv + 1) with
  // their shifts.
  Tensor w = projection.value().clone();
  Tensor saved_out = out;
  std::shared_ptr<GradSlot> ws = trained.defined() ? trained.slot_ptr() : nullptr;
  return make_result(
      std::move(out), true, "favor_causal",
      [q = q.slot_ptr(), k = k.slot_ptr(), v = v.slot_ptr(), ws, qv = q.value(), kv = k.value(), vv = v.value(), w,
       opt, d, C, saved_out, den, states, shifts](const Tensor& g) {
        const int64_t T = d.T, D = d.D, Dv = d.Dv, M = d.M, BH = d.BH(), E = Dv + 1, nc = (T + C - 1) / C;
        const FeatureMap fm(opt, D, M, w.data());
        float* dq = q->requires_grad ? q->grad_buffer().data() : nullptr;
        float* dk = k->requires_grad ? k->grad_buffer().data() : nullptr;
        float* dv = v->requires_grad ? v->grad_buffer().data() : nullptr;
        ProjectionGrad dw(ws, BH, M, D);
        const float *pq = qv.data(), *pk = kv.data(), *pv = vv.data();
#pragma omp parallel for schedule(static)
        for (int64_t bh = 0; bh < BH; ++bh)
          backward_head(fm, T, C, Dv, pq + bh * T * D, pk + bh * T * D, pv + bh * T * Dv, g.data() + bh * T * Dv,
                        saved_out.data() + bh * T * Dv, den.data() + bh * T, states.data() + bh * nc * M * E,
                        shifts.data() + bh * nc, dq ? dq + bh * T * D : nullptr, dk ? dk + bh * T * D : nullptr,
                        dv ? dv + bh * T * Dv : nullptr, dw.part(bh));
        dw.finish();
      });
}

void favor_causal_denominator(const Tensor& q, const Tensor& k, const Tensor& projection, const FavorOptions& opt,
                              const FavorDims& d, float* den) {
  const int64_t T = d.T, D = d.D, BH = d.BH(), C = opt.chunk_length(T);
  const FeatureMap fm(opt, D, d.M, projection.data());
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < BH; ++bh)
    forward_head(fm, T, C, 0, q.data() + bh * T * D, k.data() + bh * T * D, nullptr, nullptr, den + bh * T, nullptr,
                 nullptr);
}

}  // namespace pf::favor_detail
