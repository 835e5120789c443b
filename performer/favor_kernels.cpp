#include "performer/favor_kernels.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "autograd/gemm.h"

namespace pf::favor_detail {

namespace {

using ArrayMap = Eigen::Map<Eigen::Array<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;
using ConstArrayMap = Eigen::Map<const Eigen::Array<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;

}  // namespace

FavorDims check_favor_args(const char* op, const Tensor& q, const Tensor& k, const Tensor* v, const Tensor& projection,
                           const FavorOptions& opt, const Tensor* key_mask, bool causal) {
  opt.validate();
  const std::string name(op);
  if (q.dim() != 4) throw_shape_error(name, "q must be (B, H, T, D)", q.shape(), k.shape());
  if (k.shape() != q.shape()) throw_shape_error(name, "k must have the shape of q (B, H, T, D)", k.shape(), q.shape());
  FavorDims d;
  d.B = q.size(0);
  d.H = q.size(1);
  d.T = q.size(2);
  d.D = q.size(3);
  if (v) {
    if (v->dim() != 4 || v->size(0) != d.B || v->size(1) != d.H || v->size(2) != d.T)
      throw_shape_error(name, "v must be (B, H, T, Dv) with the B, H, T of q", v->shape(), q.shape());
    d.Dv = v->size(3);
  }
  if (!projection.defined() || projection.dim() != 2 || projection.size(1) != d.D || projection.size(0) < 1)
    throw_shape_error(name, "projection must be (M, D) with the head dim D of q",
                      projection.defined() ? projection.shape() : Shape{}, q.shape());
  d.M = projection.size(0);
  if (key_mask) {
    if (causal)
      throw std::invalid_argument(name +
                                  ": key_mask is only supported for bidirectional attention (causal queries never see "
                                  "the pads that follow them; pass nullptr and mask the loss instead)");
    if (key_mask->shape() != Shape{d.B, d.T})
      throw_shape_error(name, "key_mask must be (B, T) for q (B, H, T, D)", key_mask->shape(), q.shape());
  }
  return d;
}

FeatureMap::FeatureMap(const FavorOptions& opt, int64_t d, int64_t m, const float* w)
    : kind(opt.kind),
      key_shift(opt.key_shift),
      eps(opt.eps),
      relu_floor(opt.relu_floor),
      D(d),
      M(m),
      sigma(static_cast<float>(std::pow(static_cast<double>(d), -0.25))),
      scale(opt.kind == FeatureKind::Softmax ? static_cast<float>(1.0 / std::sqrt(static_cast<double>(m))) : 1.0f),
      W(w),
      projection(w) {
  if (opt.feature_a == 0.0f || kind != FeatureKind::Softmax) return;
  const double A = opt.feature_a, B = std::sqrt(1.0 - 4.0 * A), c = 0.25 * static_cast<double>(d) * std::log(1.0 - 4.0 * A);
  feature_a = opt.feature_a;
  feature_b = static_cast<float>(B);
  w_scaled.resize(static_cast<size_t>(m * d));
  bias.resize(static_cast<size_t>(m));
  for (int64_t f = 0; f < m; ++f) {
    double sq = 0.0;
    for (int64_t e = 0; e < d; ++e) {
      const double x = w[f * d + e];
      sq += x * x;
      w_scaled[f * d + e] = static_cast<float>(B * x);
    }
    bias[f] = static_cast<float>(A * sq + c);
  }
  W = w_scaled.data();
}

void FeatureMap::project(const float* X, int64_t n, float* U, float* h, float* a) const {
  // (n, M) = sigma X W^T, always fp32: exp() below turns an absolute error in u into a relative error
  // of the features (a bf16 projection would err by up to 2^-9 |u|, several percent once |q'| grows).
  gemm(false, true, n, M, D, sigma, X, D, W, D, 0.0f, U, M, Precision::fp32);
  if (!shifted()) {
    for (int64_t i = 0; i < n; ++i) h[i] = a[i] = 0.0f;
    return;
  }
  if (!bias.empty()) {
    UnalignedMatrixMap ub(U, n, M);
    ub.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(bias.data(), M);
  }
  const float half_s2 = 0.5f * sigma * sigma;
  ConstUnalignedMatrixMap x(X, n, D);
  ConstUnalignedMatrixMap u(U, n, M);
  for (int64_t i = 0; i < n; ++i) {
    h[i] = half_s2 * x.row(i).squaredNorm();
    a[i] = u.row(i).maxCoeff() - h[i];
  }
}

void FeatureMap::features(const float* U, const float* h, const float* s, int64_t n, float* P, float* Dr) const {
  ConstArrayMap u(U, n, M);
  ArrayMap p(P, n, M);
  if (!shifted()) {
    if (Dr) ArrayMap(Dr, n, M) = (u > 0.0f).cast<float>();
    p = u.max(0.0f) + relu_floor;  // U may alias P: Dr is taken first
    return;
  }
  ArrayMap dr(Dr, Dr ? n : 0, M);
  for (int64_t i = 0; i < n; ++i) {
    const float off = h[i] + s[i];
    if (Dr) {
      dr.row(i) = scale * (u.row(i) - off).exp();
      p.row(i) = dr.row(i) + scale * eps;
    } else {
      p.row(i) = scale * ((u.row(i) - off).exp() + eps);
    }
  }
}

void FeatureMap::backward(const float* X, const float* Dr, float* dP, int64_t n, float* dX, bool accumulate,
                          float* dW) const {
  ArrayMap du(dP, n, M);
  du *= ConstArrayMap(Dr, n, M);
  if (dW) {
    // dW += sigma B dU^T X, in fp32 like the projection itself; FAVOR++'s log-weights add 2A (sum_i dU_if) w_f.
    gemm(true, false, M, D, n, sigma * feature_b, dP, M, X, D, 1.0f, dW, D, Precision::fp32);
    if (feature_a != 0.0f)
      for (int64_t f = 0; f < M; ++f) {
        const float c = 2.0f * feature_a * du.col(f).sum();
        for (int64_t e = 0; e < D; ++e) dW[f * D + e] += c * projection[f * D + e];
      }
  }
  if (!dX) return;
  gemm(false, false, n, D, M, sigma, dP, M, W, D, accumulate ? 1.0f : 0.0f, dX, D);  // dX (+)= sigma dU W
  if (!shifted()) return;
  // h = sigma^2 |x|^2 / 2 enters every exponent with a minus sign: dx += -sigma^2 (sum_f dU_f) x.
  const float s2 = sigma * sigma;
  ConstUnalignedMatrixMap x(X, n, D);
  UnalignedMatrixMap dx(dX, n, D);
  for (int64_t i = 0; i < n; ++i) dx.row(i) -= (s2 * du.row(i).sum()) * x.row(i);
}

ProjectionGrad::ProjectionGrad(const std::shared_ptr<GradSlot>& slot, int64_t BH, int64_t M, int64_t D) {
  if (!slot || !slot->requires_grad) return;
  slot_ = slot.get();
  BH_ = BH;
  size_ = M * D;
  parts_ = Tensor::zeros({BH, M, D});
}

void ProjectionGrad::finish() {
  if (!slot_) return;
  float* dW = slot_->grad_buffer().data();
  for (int64_t bh = 0; bh < BH_; ++bh) {
    const float* p = parts_.data() + bh * size_;
    for (int64_t i = 0; i < size_; ++i) dW[i] += p[i];
  }
}

void finish_rows(const float* NA, int64_t n, int64_t Dv, float* out, float* den) {
  const int64_t E = Dv + 1;
  for (int64_t i = 0; i < n; ++i) {
    const float* row = NA + i * E;
    den[i] = row[Dv];
    if (!out) continue;
    const float inv = 1.0f / std::max(row[Dv], kFavorDenominatorFloor);
    for (int64_t c = 0; c < Dv; ++c) out[i * Dv + c] = row[c] * inv;
  }
}

void finish_rows_backward(const float* g, const float* out, const float* den, int64_t n, int64_t Dv, float* dNA) {
  const int64_t E = Dv + 1;
  for (int64_t i = 0; i < n; ++i) {
    const float dg = std::max(den[i], kFavorDenominatorFloor);
    const float inv = 1.0f / dg;
    float dot = 0.0f;
    for (int64_t c = 0; c < Dv; ++c) {
      dNA[i * E + c] = g[i * Dv + c] * inv;
      dot += g[i * Dv + c] * out[i * Dv + c];
    }
    dNA[i * E + Dv] = den[i] < kFavorDenominatorFloor ? 0.0f : -dot * inv;
  }
}

}  // namespace pf::favor_detail
