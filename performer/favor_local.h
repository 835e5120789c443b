// favor-local attention: exact softmax attention over a window of recent keys plus FAVOR+ (or FAVOR++)
// for every key before the window, in one normalization (docs/ARCHITECTURE.md, "favor-local").
//
// Causal (favor_local_attention) and bidirectional (favor_local_bidirectional, below). For causal query i
// with window w >= 1:
//   near keys  N(i) = { j : i - w < j <= i }   scored exactly: exp(q_i.k_j / sqrt(D))
//   far keys   F(i) = { j : j <= i - w }       scored by the random features of performer/favor.h
//   out_i = ( sum_{N(i)} exp(l_ij) v_j + sum_{F(i)} phi(q_i).phi(k_j) e^(a_i + s_j) v_j )
//           / ( the same sums with v_j = 1 ),                              l_ij = q_i.k_j / sqrt(D)
// The far sum is an unbiased estimate of sum_{F(i)} exp(l_ij) v_j, so out_i estimates softmax attention
// with the near field exact (Scatterbrain's sparse + low-rank split, Chen et al. NeurIPS 2021, with the
// sparse part a sliding window). With w >= T it is exact softmax attention; the far field alone is
// causal FAVOR+ over the keys delayed by w positions.
//
// One shared scale. The far sum is computed as in causal FAVOR+ (favor.h): at the query's shift a_i and
// the common key shift r_i = max_{j in F(i)} s_j, giving NF_i = [numerator, denominator] with true-scale
// value NF_i e^(a_i + r_i). Both parts are then brought to the scale c_i = max(m_i, lF_i):
//   m_i  = max_{j in N(i)} l_ij                          (the largest near logit)
//   lF_i = a_i + r_i + log(den F_i)                      (the log of the far denominator; -inf when
//                                                         F(i) is empty or den F_i < kFavorDenominatorFloor)
//   NA_i = sum_{N(i)} exp(l_ij - c_i) [v_j 1] + g_i NF_i,    g_i = exp(a_i + r_i - c_i) (0 if lF_i = -inf)
//   out_i = NA_i[:Dv] / max(NA_i[Dv], floor)
// Every near weight is <= 1, the far part's denominator is <= 1, and the larger of the two parts'
// denominators is exactly 1: nothing overflows, neither part can underflow while the other is of
// order 1, and eps stays a relative floor of each far key (per-key shifts) as in FAVOR+. c_i and g_i
// cancel exactly in the ratio, so they are constants for the gradient (like the shifts).
//
// The fused node works in chunks of C queries: the far part is the chunked causal FAVOR+ recurrence over
// the delayed keys k_{j-w} (a carried state (S, z) at shift R, no T x M x Dv prefix states), the near
// part one (C x (C + w - 1)) block of exact logits per chunk. It saves its inputs, the output, the
// denominators, c, g (T each) and the state entering each chunk; the backward recomputes the rest.
// Causality is bit-exact: a finite change at positions > t leaves outputs at positions <= t
// bit-identical (entries for later keys are SET to 0, never multiplied by a mask).
#pragma once

#include <cstdint>

#include "autograd/tensor.h"
#include "autograd/var.h"
#include "performer/favor.h"

namespace pf {

// q, k: (B, H, T, D); v: (B, H, T, Dv); projection W (M, D); window w >= 1; opt.kind must be Softmax
// (FAVOR+ with feature_a = 0, FAVOR++ otherwise). Returns (B, H, T, Dv). A fused autograd node.
// far_log_gain (optional, (H), trainable): learned per-head mixing of the two fields (LoLCATs-style): head h's
// far sums are weighted by exp(far_log_gain[h]) inside the shared normalization, numerator and denominator
//   out_i = ( sum_N exp(l_ij) v_j + e^lambda_h sum_F phi.phi e^(a_i + s_j) v_j ) / ( the same with v_j = 1 ),
// so lambda = 0 is the plain estimator, lambda < 0 leans on the window, lambda > 0 on the far field (in
// favor_local.h's scaled form: lF_i and g_i take a_i + r_i + lambda_h for a_i + r_i).
// A projection given as a Var that requires grad is trained, as in favor_attention (favor.h): only the far
// field reads W, so dW is the far field's sigma dU^T X over the queries and the delayed keys (c_i and g_i,
// like the shifts, are constants: they cancel in the ratio).
Var favor_local_attention(const Var& q, const Var& k, const Var& v, const Var& projection, int64_t window,
                          const FavorOptions& opt, const Var& far_log_gain = Var());
Var favor_local_attention(const Var& q, const Var& k, const Var& v, const Tensor& projection, int64_t window,
                          const FavorOptions& opt, const Var& far_log_gain = Var());

// Bidirectional favor-local, for masked-LM (non-causal) models:
//   near keys  N(i) = { j : |i - j| < w }    scored exactly (2w - 1 keys for a query away from the ends)
//   far keys   F(i) = { j : |i - j| >= w }   scored by bidirectional FAVOR+ features
// in one normalization as above. Keys are stabilized as in bidirectional FAVOR+ (favor.h): one shift R per
// (batch, head), the max of the key shifts s_j over the real keys, so the far sums are at shift a_i + R;
// c_i = max(m_i, lF_i), g_i = exp(a_i + R (+ lambda_h) - c_i) as in the causal node. key_mask (B, T)
// (1 = real, 0 = pad; optional) removes padded keys from both fields (their k, v are never read).
// With w >= T it is exact bidirectional softmax attention. Computed per chunk of C queries as
//   far_i = phi(q_i) Stot - sum_{near real j} phi(q_i).phi(k_j) e^(s_j - R) [v_j 1],
//   Stot  = sum_{real j} e^(s_j - R) phi(k_j)^T [v_j 1]                                    (M, Dv + 1)
// (the near terms that the total holds are subtracted: a sum of positive terms minus some of them, exact
// up to a rounding of ~1e-7 of the total far estimate; a query without any far key has no far part).
// A fused autograd node (gradients for q, k, v, the gain and a trained projection).
Var favor_local_bidirectional(const Var& q, const Var& k, const Var& v, const Var& projection, int64_t window,
                              const FavorOptions& opt, const Tensor* key_mask = nullptr,
                              const Var& far_log_gain = Var());
Var favor_local_bidirectional(const Var& q, const Var& k, const Var& v, const Tensor& projection, int64_t window,
                              const FavorOptions& opt, const Tensor* key_mask = nullptr,
                              const Var& far_log_gain = Var());

// Composed reference of the same computations (plain autograd ops, T x T matrices; shifts, c and g read
// off the forward values as constants, exactly as in the fused nodes): causal (favor_local_attention) or
// bidirectional (favor_local_bidirectional, with key_mask). For tests. O(T^2) memory. A projection that
// requires grad enters as a differentiable input (favor_attention_reference).
Var favor_local_attention_reference(const Var& q, const Var& k, const Var& v, const Var& projection,
                                    int64_t window, const FavorOptions& opt, bool causal = true,
                                    const Tensor* key_mask = nullptr, const Var& far_log_gain = Var());
Var favor_local_attention_reference(const Var& q, const Var& k, const Var& v, const Tensor& projection,
                                    int64_t window, const FavorOptions& opt, bool causal = true,
                                    const Tensor* key_mask = nullptr, const Var& far_log_gain = Var());

// Recurrent form for generation: the far-field state (S, z, shift) of the keys that have left the window,
// and a ring buffer of the last w keys and values (position p in slot p % w). Per token
// O(w D + M (D + Dv)) per head, independent of the context length.
struct FavorLocalState {
  FavorState far;        // keys at positions <= t - w
  Tensor keys, values;   // (B, H, w, D), (B, H, w, Dv)
  int64_t window = 0;    // w
  int64_t position = 0;  // tokens consumed
  void reset(int64_t B, int64_t H, int64_t M, int64_t D, int64_t Dv, int64_t window);
};

// q_t, k_t: (B, H, D); v_t: (B, H, Dv) -> (B, H, Dv) (no grad). Advances the state by one position;
// equals row `position` of favor_local_attention (to rounding).
Tensor favor_local_step(FavorLocalState& state, const Tensor& q_t, const Tensor& k_t, const Tensor& v_t,
                        const Tensor& projection, const FavorOptions& opt, const Tensor* far_log_gain = nullptr);

}  // namespace pf
