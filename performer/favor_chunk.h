// The causal chunk step shared by causal FAVOR+ (favor_causal.cpp) and favor-local's far field
// (favor_local.cpp). Not part of the public API; the math is in favor_causal.cpp's head comment.
//
// Per (batch, head), one chunk of n queries against n keys, of which the first j0 are absent (favor-local's
// delayed keys before the sequence starts; j0 = 0 in causal FAVOR+), with the state Saug (M, E = Dv + 1)
// carried at shift R:
//   N = L Vaug (+ diag(alpha) PQ Saug when the chunk reads the state), alpha_i = exp(R - r_i)
//   Saug <- exp(R - R') Saug + (diag(kw) PK)^T Vaug, kw_j = exp(s_j - R') (0 for absent keys), R' = r_{n-1}
#pragma once

#include <cstdint>

#include "performer/favor_kernels.h"

namespace pf::favor_detail {

// Scratch of one (batch, head); C is the chunk length, E = Dv + 1.
struct ChunkBuffers {
  Buffer PQ, PK, DrQ, DrK, Wgt, G, L, Vaug, N, tmp;
  Buffer hq, aq, hk, ak, s, r, alpha, kw;
  ChunkBuffers(int64_t C, int64_t M, int64_t E, bool backward);
};

// The gradients of one chunk step; dS is the gradient of the state, carried from chunk to chunk.
struct ChunkGrads {
  Buffer dPQ, dPK, dG, dVaug, dS;
  ChunkGrads(int64_t C, int64_t M, int64_t E);
};

// PQ = phi(Q) of the chunk's n queries, their shifts a_i in aq (and dphi/dU in DrQ when with_dr).
void chunk_query_features(const FeatureMap& fm, const float* Q, int64_t n, bool with_dr, ChunkBuffers& b);

// PK = phi(K) of the present keys j0 <= j < n (K points at key j0's row), at the key shifts s_j, with the
// running maxima r_j = max(R, s_j0 .. s_j); absent keys get PK = 0, s = -inf, r = R. Unshifted features
// (Relu): s = r = 0.
void chunk_key_features(const FeatureMap& fm, const float* K, int64_t n, int64_t j0, float R, bool with_dr,
                        ChunkBuffers& b);

// Wgt_ij = exp(s_j - r_i) (1 unshifted) for j0 <= j <= i and 0 elsewhere; G = PQ PK^T; L = G o Wgt,
// SET to 0 outside j0 <= j <= i (never a multiplied mask).
void chunk_weights(const FeatureMap& fm, int64_t n, int64_t j0, ChunkBuffers& b);

// Vaug rows j0 <= j < n = [V_j 1] (V points at key j0's row, (n - j0, Dv)); absent rows 0.
void chunk_values(const float* V, int64_t n, int64_t j0, int64_t Dv, ChunkBuffers& b);

// N = L Vaug, plus diag(alpha) PQ S when reads_state (S at shift R; sets alpha).
void chunk_numerators(int64_t n, int64_t M, int64_t E, const float* S, float R, bool reads_state, ChunkBuffers& b);

// The chunk's present keys join the state: S <- exp(R - R_new) S when rescale, then
// S += (diag(kw) PK)^T Vaug with kw_j = exp(s_j - R_new), 0 for j < j0.
void add_keys_to_state(int64_t n, int64_t M, int64_t E, int64_t j0, float R, float R_new, bool rescale, float* S,
                       ChunkBuffers& b);

// Backward of the step given dN (n, E): sets dPQ, dPK and dVaug; turns dS, the gradient of the state
// leaving the chunk, into that of the state entering it. reads_state: the queries read S_prev at shift R
// (as in the forward); feeds_state: the chunk's keys joined the state that later chunks read.
void chunk_backward(int64_t n, int64_t M, int64_t E, int64_t j0, const float* dN, const float* S_prev, float R,
                    bool reads_state, bool feeds_state, ChunkBuffers& b, ChunkGrads& gr);

}  // namespace pf::favor_detail
