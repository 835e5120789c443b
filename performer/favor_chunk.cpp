#include "performer/favor_chunk.h"

#include <algorithm>
#include <cmath>

#include "autograd/gemm.h"

namespace pf::favor_detail {

namespace {

using ArrayXfMap = Eigen::Map<Eigen::ArrayXf>;
using ConstArrayXfMap = Eigen::Map<const Eigen::ArrayXf>;

// tmp (n, M) = diag(x) P.
void scale_rows(const float* x, const float* P, int64_t n, int64_t M, float* tmp) {
  UnalignedMatrixMap(tmp, n, M) =
      Eigen::Map<const Eigen::VectorXf>(x, n).asDiagonal() * ConstUnalignedMatrixMap(P, n, M);
}

}  // namespace

ChunkBuffers::ChunkBuffers(int64_t C, int64_t M, int64_t E, bool backward)
    : PQ(C * M),
      PK(C * M),
      DrQ(backward ? C * M : 0),
      DrK(backward ? C * M : 0),
      Wgt(C * C),
      G(C * C),
      L(C * C),
      Vaug(C * E),
      N(C * E),
      tmp(C * M),
      hq(C),
      aq(C),
      hk(C),
      ak(C),
      s(C),
      r(C),
      alpha(C),
      kw(C) {}

ChunkGrads::ChunkGrads(int64_t C, int64_t M, int64_t E)
    : dPQ(C * M), dPK(C * M), dG(C * C), dVaug(C * E), dS(M * E, 0.0f) {}

void chunk_query_features(const FeatureMap& fm, const float* Q, int64_t n, bool with_dr, ChunkBuffers& b) {
  fm.project(Q, n, b.PQ.data(), b.hq.data(), b.aq.data());
  fm.features(b.PQ.data(), b.hq.data(), b.aq.data(), n, b.PQ.data(), with_dr ? b.DrQ.data() : nullptr);
}

void chunk_key_features(const FeatureMap& fm, const float* K, int64_t n, int64_t j0, float R, bool with_dr,
                        ChunkBuffers& b) {
  const int64_t M = fm.M, np = n - j0;
  std::fill(b.PK.begin(), b.PK.begin() + j0 * M, 0.0f);
  for (int64_t j = 0; j < j0; ++j) {
    b.s[j] = kNegInf;
    b.r[j] = R;
  }
  if (np <= 0) return;
  fm.project(K, np, b.PK.data() + j0 * M, b.hk.data() + j0, b.ak.data() + j0);
  if (!fm.shifted()) {
    std::fill(b.s.begin() + j0, b.s.begin() + n, 0.0f);
    std::fill(b.r.begin() + j0, b.r.begin() + n, 0.0f);
  } else {
    float run = R;
    for (int64_t j = j0; j < n; ++j) {
      run = std::max(run, b.ak[j]);
      b.s[j] = fm.key_shift == KeyShift::Shared ? run : b.ak[j];
      b.r[j] = run;
    }
  }
  fm.features(b.PK.data() + j0 * M, b.hk.data() + j0, b.s.data() + j0, np, b.PK.data() + j0 * M,
              with_dr ? b.DrK.data() + j0 * M : nullptr);
}

void chunk_weights(const FeatureMap& fm, int64_t n, int64_t j0, ChunkBuffers& b) {
  for (int64_t i = 0; i < n; ++i) {
    float* w = b.Wgt.data() + i * n;
    std::fill(w, w + n, 0.0f);
    if (i < j0) continue;
    if (fm.shifted())
      ArrayXfMap(w + j0, i + 1 - j0) = (ConstArrayXfMap(b.s.data() + j0, i + 1 - j0) - b.r[i]).exp();
    else
      std::fill(w + j0, w + i + 1, 1.0f);
  }
  gemm(false, true, n, n, fm.M, 1.0f, b.PQ.data(), fm.M, b.PK.data(), fm.M, 0.0f, b.G.data(), n);  // (n, n)
  for (int64_t i = 0; i < n; ++i) {
    const float* g = b.G.data() + i * n;
    const float* w = b.Wgt.data() + i * n;
    float* l = b.L.data() + i * n;
    std::fill(l, l + n, 0.0f);  // G outside j0 <= j <= i holds absent or later keys: overwritten, never read
    for (int64_t j = j0; j <= i; ++j) l[j] = g[j] * w[j];
  }
}

void chunk_values(const float* V, int64_t n, int64_t j0, int64_t Dv, ChunkBuffers& b) {
  const int64_t E = Dv + 1;
  for (int64_t j = 0; j < n; ++j) {
    float* row = b.Vaug.data() + j * E;
    if (j < j0) {
      std::fill(row, row + E, 0.0f);
      continue;
    }
    if (Dv > 0) std::copy(V + (j - j0) * Dv, V + (j - j0 + 1) * Dv, row);
    row[Dv] = 1.0f;
  }
}

void chunk_numerators(int64_t n, int64_t M, int64_t E, const float* S, float R, bool reads_state, ChunkBuffers& b) {
  gemm(false, false, n, E, n, 1.0f, b.L.data(), n, b.Vaug.data(), E, 0.0f, b.N.data(), E);  // within the chunk
  if (!reads_state) return;
  for (int64_t i = 0; i < n; ++i) b.alpha[i] = std::exp(R - b.r[i]);  // the state, read at each query's shift r_i
  scale_rows(b.alpha.data(), b.PQ.data(), n, M, b.tmp.data());
  gemm(false, false, n, E, M, 1.0f, b.tmp.data(), M, S, E, 1.0f, b.N.data(), E);
}

void add_keys_to_state(int64_t n, int64_t M, int64_t E, int64_t j0, float R, float R_new, bool rescale, float* S,
                       ChunkBuffers& b) {
  if (rescale) {
    const float beta = std::exp(R - R_new);
    for (int64_t i = 0; i < M * E; ++i) S[i] *= beta;
  }
  for (int64_t j = 0; j < n; ++j) b.kw[j] = j < j0 ? 0.0f : std::exp(b.s[j] - R_new);
  scale_rows(b.kw.data(), b.PK.data(), n, M, b.tmp.data());
  gemm(true, false, M, E, n, 1.0f, b.tmp.data(), M, b.Vaug.data(), E, 1.0f, S, E);
}

void chunk_backward(int64_t n, int64_t M, int64_t E, int64_t j0, const float* dN, const float* S_prev, float R,
                    bool reads_state, bool feeds_state, ChunkBuffers& b, ChunkGrads& gr) {
  float *dPQ = gr.dPQ.data(), *dPK = gr.dPK.data(), *dG = gr.dG.data(), *dVaug = gr.dVaug.data();
  // Queries reading the carried state: dPQ = diag(alpha) dN Saug^T.
  if (reads_state) {
    for (int64_t i = 0; i < n; ++i) b.alpha[i] = std::exp(R - b.r[i]);
    gemm(false, true, n, M, E, 1.0f, dN, E, S_prev, E, 0.0f, dPQ, M);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t f = 0; f < M; ++f) dPQ[i * M + f] *= b.alpha[i];
  }
  // Within the chunk: dL = dN Vaug^T on j0 <= j <= i; dG = dL o Wgt (SET to 0 elsewhere).
  gemm(false, true, n, n, E, 1.0f, dN, E, b.Vaug.data(), E, 0.0f, dG, n);
  for (int64_t i = 0; i < n; ++i) {
    float* dg = dG + i * n;
    const float* w = b.Wgt.data() + i * n;
    for (int64_t j = 0; j < n; ++j) dg[j] = (j >= j0 && j <= i) ? dg[j] * w[j] : 0.0f;
  }
  gemm(false, false, n, M, n, 1.0f, dG, n, b.PK.data(), M, reads_state ? 1.0f : 0.0f, dPQ, M);
  gemm(true, false, n, M, n, 1.0f, dG, n, b.PQ.data(), M, 0.0f, dPK, M);
  gemm(true, false, n, E, n, 1.0f, b.L.data(), n, dN, E, 0.0f, dVaug, E);
  const float R_new = b.r[n - 1];
  // Keys feeding the state read by later chunks: Saug' = ... + (diag(kw) PK)^T Vaug.
  if (feeds_state) {
    for (int64_t j = 0; j < n; ++j) b.kw[j] = j < j0 ? 0.0f : std::exp(b.s[j] - R_new);
    gemm(false, true, n, M, E, 1.0f, b.Vaug.data(), E, gr.dS.data(), E, 0.0f, b.tmp.data(), M);  // Vaug dS^T
    for (int64_t j = 0; j < n; ++j)
      for (int64_t f = 0; f < M; ++f) dPK[j * M + f] += b.kw[j] * b.tmp[j * M + f];
    scale_rows(b.kw.data(), b.PK.data(), n, M, b.tmp.data());
    gemm(false, false, n, E, M, 1.0f, b.tmp.data(), M, gr.dS.data(), E, 1.0f, dVaug, E);
  }
  // Carry to the state entering this chunk: dS <- exp(R - R') dS + (diag(alpha) PQ)^T dN.
  if (reads_state) {
    const float beta = std::exp(R - R_new);
    for (float& x : gr.dS) x *= beta;
    scale_rows(b.alpha.data(), b.PQ.data(), n, M, b.tmp.data());
    gemm(true, false, M, E, n, 1.0f, b.tmp.data(), M, dN, E, 1.0f, gr.dS.data(), E);
  }
}

}  // namespace pf::favor_detail
