#include "performer/features.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace pf {

namespace {

void check_dims(const char* op, int64_t m, int64_t d) {
  if (m < 1 || d < 1)
    throw std::invalid_argument(std::string(op) + ": need m >= 1 features and d >= 1 dimensions, got m = " +
                                std::to_string(m) + ", d = " + std::to_string(d));
}

}  // namespace

Tensor orthogonal_random_features(int64_t m, int64_t d, Generator& gen) {
  check_dims("orthogonal_random_features", m, d);
  Tensor w({m, d});  // (M, D)
  const int64_t blocks = (m + d - 1) / d;
  for (int64_t b = 0; b < blocks; ++b) {
    Eigen::MatrixXd g(d, d);  // D x D standard Gaussian, filled row by row
    for (int64_t i = 0; i < d; ++i)
      for (int64_t j = 0; j < d; ++j) g(i, j) = gen.normal();
    // QR in double: the float32 result is then orthogonal to float rounding.
    Eigen::HouseholderQR<Eigen::MatrixXd> qr(g);
    Eigen::MatrixXd q = qr.householderQ() * Eigen::MatrixXd::Identity(d, d);
    const Eigen::MatrixXd& r = qr.matrixQR();
    // Q diag(sign(R_ii)): the unique QR with a positive diagonal, so Q is Haar-distributed
    // (Mezzadri, "How to generate random matrices from the classical compact groups", 2007).
    for (int64_t j = 0; j < d; ++j)
      if (r(j, j) < 0) q.col(j) *= -1.0;
    const int64_t rows = std::min(d, m - b * d);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < d; ++j) w.data()[(b * d + i) * d + j] = static_cast<float>(q(j, i));  // row i of Q^T
  }
  // Row norms: chi-distributed with d degrees of freedom, like the norm of an iid Gaussian row.
  for (int64_t i = 0; i < m; ++i) {
    double sq = 0.0;
    for (int64_t j = 0; j < d; ++j) {
      const double x = gen.normal();
      sq += x * x;
    }
    const float norm = static_cast<float>(std::sqrt(sq));
    for (int64_t j = 0; j < d; ++j) w.data()[i * d + j] *= norm;
  }
  return w;
}

Tensor iid_random_features(int64_t m, int64_t d, Generator& gen) {
  check_dims("iid_random_features", m, d);
  return Tensor::randn({m, d}, gen);
}

Tensor antithetic_random_features(int64_t m, int64_t d, Generator& gen, bool orthogonal) {
  check_dims("antithetic_random_features", m, d);
  if (m % 2 != 0)
    throw std::invalid_argument("antithetic_random_features: m must be even (pairs w, -w), got " + std::to_string(m));
  const int64_t half = m / 2;
  const Tensor v = orthogonal ? orthogonal_random_features(half, d, gen) : iid_random_features(half, d, gen);
  Tensor w = Tensor::empty({m, d});
  for (int64_t i = 0; i < half * d; ++i) {
    w.data()[i] = v.data()[i];
    w.data()[half * d + i] = -v.data()[i];
  }
  return w;
}

}  // namespace pf
