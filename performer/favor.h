// FAVOR+ attention (Choromanski et al., "Rethinking Attention with Performers", ICLR 2021, section 2):
// softmax attention approximated through positive random features, in time and memory linear in T.
//
// Feature map of a query or key x (D), with the projection W (M, D) of performer/features.h:
//   x' = x D^(-1/4)                                 (so that x'_q . x'_k = q.k / sqrt(D))
//   u  = W x'                                       (M)
//   Softmax: phi(x)_f = M^(-1/2) (exp(u_f - |x'|^2/2 - s) + eps)   (paper eq. 7, shifted by s)
//   Relu:    phi(x)_f = relu(u_f) + relu_floor                      (paper section 4; no shift, eps unused)
//
// Stabilizers (shifts). a(x) = max_f u_f - |x'|^2/2 is the log of x's largest un-floored feature.
//   Query i: s = a(q_i), so its largest feature is exactly M^(-1/2) (1 + eps). (The norm term is part of
//     the shift: with s = max_f u_f alone, a query of large norm would have every feature under eps.)
//     The query shift cancels in the ratio below.
//   Key j: its features are computed at its own shift s_j (KeyShift below), and a query i reads every
//     key it sees at one common shift r_i = max over those keys of s_j, through the factor exp(s_j - r_i)
//     (<= 1, never overflows):
//         phi(k_j) exp(s_j - r_i) = M^(-1/2) (exp(u_j - |k'_j|^2/2 - r_i) + eps exp(s_j - r_i)).
//     Causal: r_i = max_{j <= i} s_j, a running max that never looks at later positions, so batch
//       training and step-by-step generation compute the same numbers and the future never leaks.
//     Bidirectional: r = the max over the non-padded keys of that (batch, head).
//   All shifts are constants for the gradient: r_i cancels exactly in the ratio, and s_j and the
//   query shift only move the eps terms, so the true derivative differs from ours by O(eps).
//
// Where eps is added, and the measured pitfall (docs/ARCHITECTURE.md, "Shifts"): eps is added at the key's
// own shift s_j.
//   KeyShift::PerKey (default): s_j = a(k_j). Each key's largest feature is 1 before eps, so eps is a
//     relative floor of at most 1e-6 on every key whatever the spread of key norms; the signal term
//     exp(u_j - |k'_j|^2/2 - r_i) is the same as in any other placement.
//   KeyShift::Shared: s_j = r_j (causal: the prefix max, i.e. the "running max" design; bidirectional:
//     the one max over all keys, as in the reference code). A few outlier keys raise the shared max,
//     every other key's exponential falls under eps, eps makes up the denominator and attention
//     collapses to an average of the prefix. Kept for experiments and to demonstrate the pitfall
//     (tests/performer/test_favor_accuracy.cpp measures the eps share of the denominator for both).
//
// Output (renormalized attention), with w_ij = phi(q_i) . phi(k_j) exp(s_j - r_i) over the visible j:
//   out_i = (sum_j w_ij v_j) / max(den_i, kFavorDenominatorFloor),   den_i = sum_j w_ij.
// The guard: features are positive, so den_i >= 0 and |sum_j w_ij v_j| <= den_i max_j |v_j|. When den_i
// underflows (eps = 0 and a query orthogonal to every key's features, or ReLU features all zero with
// relu_floor = 0) the plain ratio is 0/0. Dividing by max(den_i, 1e-30) keeps |out_i| <= max_j |v_j|
// (never larger than any attention output could be) and sends out_i to 0 as the attention mass
// vanishes; below the floor the gradient with respect to den_i is 0. 1e-30 is far below every
// denominator the features produce with eps > 0 (>= about eps / M, the key that sets r_i and the query
// each have one feature of M^(-1/2)) and far above the float32 subnormals (1.2e-38), so a denominator
// that passes the guard carries full precision.
//
// FAVOR++ (Likhosherstov et al., "Chefs' Random Tables", NeurIPS 2022: optimal positive random features).
// For w ~ N(0, I_D) and any A < 1/8, with B = sqrt(1 - 4A),
//   E_w[ (1-4A)^(D/2) exp(2A |w|^2 + B w.(x + y) - |x|^2/2 - |y|^2/2) ] = exp(x.y),
// so f_A(w, x) = (1-4A)^(D/4) exp(A |w|^2 + B w.x - |x|^2/2) are positive features of the softmax kernel
// for every A (A = 0: FAVOR+). Their relative second moment is
//   (1-4A)^D (1-8A)^(-D/2) exp(2(1-4A) z / (1-8A) - z),   z = |x + y|^2,
// which A = (1 - t) / 8, t = ((D + 2z) + sqrt((D + 2z)^2 + 8 D z)) / (2 D) minimizes (favorpp_optimal_a):
// exp(z) for FAVOR+ becomes polynomial in z. Implemented as FAVOR+ with the projection scaled by B and a
// per-feature log-weight b_f = A |w_f|^2 + (D/4) log(1 - 4A) added to u_f (so the shifts, eps and the
// kernels are unchanged). Equivalently: importance sampling of FAVOR+'s features from the wider Gaussian
// N(0, (1-4A) I). A must be one constant for a whole call (it is shared by every query-key pair), which
// is why the model takes it from its config (ModelConfig::favorpp_z) and not from the data of a batch:
// a batch statistic would let later tokens change earlier outputs.
//
// Causal attention is one fused autograd node (favor_causal.cpp) computing chunk by chunk: inside a
// chunk of C positions the masked (C x C) product of phi(Q) phi(K)^T with the factors exp(s_j - r_i)
// (entries above the diagonal SET to 0), times V; across chunks a carried state (S, z) at the running
// max of the previous chunk. It saves its inputs, the denominators (T) and the state entering each
// chunk (M x (Dv + 1) every C positions), never the T x M x Dv prefix states; the backward recomputes
// the features inside each chunk and carries the suffix sums of phi(q) g^T in reverse.
// Causality is bit-exact for finite data: a finite change at positions > t leaves the outputs at
// positions <= t bit-identical (later positions of the same chunk only enter as exact-zero products;
// a non-finite value of v after t inside t's chunk would still turn those zeros into NaN).
#pragma once

#include <cstdint>

#include "autograd/tensor.h"
#include "autograd/var.h"
#include "performer/favor_options.h"
#include "performer/features.h"

namespace pf {

// q, k: (B, H, T, D); v: (B, H, T, Dv); projection W: (M, D) shared by all heads of the layer.
// key_mask: optional (B, T) float, 1 = real token, 0 = padding: zeroes phi(k) of padded positions AFTER
// the feature map (bidirectional only; padded keys and values, whatever their values, change nothing and
// receive a zero gradient). A causal call with a key_mask throws (pads after the real tokens are never
// seen by them; mask the loss instead).
// Returns (B, H, T, Dv). Both directions are fused autograd nodes.
// A projection given as a Var that requires grad is trained (a learned feature map,
// ModelConfig::learned_features): it receives dW = sigma dU^T X summed over every row of q and k
// (favor_kernels.h, FeatureMap::backward; FAVOR++ adds its log-weights' term), with the shifts held
// constant as for q and k, the same bits at any thread count. A Tensor, or a Var without grad, is fixed.
Var favor_attention(const Var& q, const Var& k, const Var& v, const Var& projection, bool causal,
                    const FavorOptions& opt, const Tensor* key_mask = nullptr);
Var favor_attention(const Var& q, const Var& k, const Var& v, const Tensor& projection, bool causal,
                    const FavorOptions& opt, const Tensor* key_mask = nullptr);

// Composed reference (plain autograd ops with T x T matrices, no fused node) of exactly the same
// computation, shifts and guard included, for tests. O(T^2) memory. A projection that requires grad
// enters as a differentiable input (FAVOR++'s scaled projection and log-weights as ops on it).
Var favor_attention_reference(const Var& q, const Var& k, const Var& v, const Var& projection, bool causal,
                              const FavorOptions& opt, const Tensor* key_mask = nullptr);
Var favor_attention_reference(const Var& q, const Var& k, const Var& v, const Tensor& projection, bool causal,
                              const FavorOptions& opt, const Tensor* key_mask = nullptr);

// Diagnostics: the denominators den_i (B, H, T) of the kernel above (at query i's common shift r_i,
// before the guard), computed by the same fused forward code. With opt.eps = 0 (same shifts) this is the
// signal part alone, so 1 - den(eps = 0) / den(eps) is the share of the denominator that eps makes up.
Tensor favor_denominator(const Tensor& q, const Tensor& k, const Tensor& projection, bool causal,
                         const FavorOptions& opt, const Tensor* key_mask = nullptr);

// The FAVOR++ parameter A that minimizes the relative second moment of the estimate of exp(x.y) for
// |x + y|^2 = z (x' scale) in D dimensions (see "FAVOR++" above); 0 for z = 0, negative for z > 0.
// Throws std::invalid_argument if z < 0 or d < 1.
float favorpp_optimal_a(double z, int64_t d);

// Recurrent (RNN) form of causal FAVOR+ for generation: per (batch, head) the state below; one token
// at a time, O(M Dv + M D) per head per token, independent of the context length.
struct FavorState {
  Tensor S;              // (B, H, M, Dv): sum_j exp(s_j - shift) phi(k_j) v_j^T over the tokens seen
  Tensor z;              // (B, H, M):     sum_j exp(s_j - shift) phi(k_j)
  Tensor shift;          // (B, H): the running max r of the key shifts; -inf before the first token
  int64_t position = 0;  // tokens consumed
  void reset(int64_t B, int64_t H, int64_t M, int64_t Dv);
};

// q_t, k_t: (B, H, D); v_t: (B, H, Dv) -> (B, H, Dv) as plain Tensors (no grad; used under NoGradGuard).
// Advances the state by one position; equals row `position` of the batch causal output (to rounding).
Tensor favor_step(FavorState& state, const Tensor& q_t, const Tensor& k_t, const Tensor& v_t, const Tensor& projection,
                  const FavorOptions& opt);

}  // namespace pf
