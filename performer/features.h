// Random features for FAVOR+ (Choromanski et al., "Rethinking Attention with Performers", ICLR 2021).
//
// The projection W (M, D) turns a query or key x into M random features phi(x) whose dot products
// estimate the softmax kernel exp(q.k / sqrt(D)) (FeatureKind::Softmax, paper eq. 7, "positive random
// features") or define the generalized ReLU kernel (FeatureKind::Relu, paper section 4). The feature
// map itself and its stabilizers live in performer/favor.h; this file only draws W.
#pragma once

#include <cstdint>

#include "base/random.h"
#include "autograd/tensor.h"

namespace pf {

enum class FeatureKind { Softmax, Relu };  // FAVOR+ positive softmax kernel; generalized ReLU kernel

// Orthogonal random features (M, D) (paper section 2.4, "ORFs"): stack ceil(M/D) blocks, each the
// transposed Q of the QR factorization of a D x D standard Gaussian matrix (columns sign-corrected by the
// signs of diag(R), which makes Q Haar-distributed), truncated to M rows; then every row is scaled by the
// norm of an independent D-dimensional Gaussian vector, so each row has the same marginal law as an iid
// N(0, I) row (the estimator stays unbiased) while rows inside a block are exactly orthogonal.
// Draw order (for reproducibility): the ceil(M/D) Gaussian blocks, row by row, then the M norm vectors.
// Throws std::invalid_argument if m < 1 or d < 1.
Tensor orthogonal_random_features(int64_t m, int64_t d, Generator& gen);

// iid Gaussian features (M, D): rows ~ N(0, I). The baseline the orthogonal draw improves on.
Tensor iid_random_features(int64_t m, int64_t d, Generator& gen);

// Antithetic pairs (M, D), M even: W = [V; -V] with V (M/2, D) drawn orthogonal (or iid). With the
// softmax kernel's positive features this is the paper's hyperbolic estimator (Choromanski et al.
// 2021, Lemma 1, "SM+hyp": exp(-|x|^2/2) cosh(w.x)): still unbiased (each row is marginally N(0, I)),
// and at an equal feature count M its MSE is (1 - exp(-|x + y|^2)) times that of M plain positive
// features, i.e. never larger. Throws std::invalid_argument if m is odd or < 2.
Tensor antithetic_random_features(int64_t m, int64_t d, Generator& gen, bool orthogonal = true);

}  // namespace pf
