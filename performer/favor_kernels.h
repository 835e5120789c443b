// Internals shared by the FAVOR+ kernels (favor.cpp, favor_causal.cpp, favor_bidirectional.cpp,
// favor_reference.cpp). Not part of the public API: the math is documented in performer/favor.h.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include <Eigen/Core>

#include "autograd/tensor.h"
#include "autograd/var.h"
#include "performer/favor_options.h"

namespace pf::favor_detail {

// Scratch buffers: 64-byte aligned, so that vectorized sums and small GEMMs see the same
// alignment on every call and add in the same order (a plain std::vector<float> lands at
// varying offsets and made repeated forwards differ in the last bit).
using Buffer = std::vector<float, Eigen::aligned_allocator<float>>;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Sizes of one call: q, k (B, H, T, D), v (B, H, T, Dv), W (M, D).
struct FavorDims {
  int64_t B = 0, H = 0, T = 0, D = 0, Dv = 0, M = 0;
  int64_t BH() const { return B * H; }
};

// Checks the shapes of a favor_attention / favor_denominator call (v may be null) and the options;
// throws std::invalid_argument naming `op` and both offending shapes.
FavorDims check_favor_args(const char* op, const Tensor& q, const Tensor& k, const Tensor* v, const Tensor& projection,
                           const FavorOptions& opt, const Tensor* key_mask, bool causal);

// The feature map on blocks of rows, fixed for one call.
struct FeatureMap {
  FeatureKind kind = FeatureKind::Softmax;
  KeyShift key_shift = KeyShift::PerKey;
  float eps = 0.0f;
  float relu_floor = 0.0f;
  int64_t D = 0, M = 0;
  float sigma = 1.0f;        // D^(-1/4)
  float scale = 1.0f;        // M^(-1/2) for Softmax, 1 for Relu
  const float* W = nullptr;           // (M, D): the projection, or with FAVOR++ (A != 0) w_scaled
  const float* projection = nullptr;  // (M, D): the projection as given
  // FAVOR++ (performer/favor.h): W scaled by B = sqrt(1 - 4A) and the log-weights b_f = A |w_f|^2 +
  // (D/4) log(1 - 4A) added to U. Empty, and A = 0, B = 1, for FAVOR+ and Relu.
  Buffer w_scaled, bias;
  float feature_a = 0.0f, feature_b = 1.0f;

  FeatureMap(const FavorOptions& opt, int64_t d, int64_t m, const float* w);
  FeatureMap(const FeatureMap&) = delete;  // W may point into w_scaled
  FeatureMap& operator=(const FeatureMap&) = delete;
  bool shifted() const { return kind == FeatureKind::Softmax; }

  // U = sigma X W^T (+ b) (n, M); h_i = |x'_i|^2 / 2 and a_i = max_f U_if - h_i (Softmax; both 0 for Relu).
  void project(const float* X, int64_t n, float* U, float* h, float* a) const;
  // P (n, M) from U at the row shifts s: Softmax P = scale (exp(U - h - s) + eps), Relu P = relu(U) + floor.
  // If Dr is not null it receives dP/dU (Softmax: scale exp(U - h - s); Relu: [U > 0]).
  void features(const float* U, const float* h, const float* s, int64_t n, float* P, float* Dr) const;
  // Backward of project + features with the shifts held constant: dU = Dr o dP (overwrites dP), then
  // dX (+)= sigma dU W + sigma^2 dh_i x_i with dh_i = -sum_f dU_if (Softmax only); accumulate = false
  // overwrites dX, a null dX is skipped. With dW not null, the gradient of the projection as given is
  // added to it (M, D): u_if = sigma B w_f.x_i + A |w_f|^2 (+ const), and h_i does not depend on W, so
  //   dW += sigma B dU^T X  (+ 2A diag(sum_i dU_i) W for FAVOR++),
  // which for FAVOR+ and Relu (A = 0, B = 1) is sigma dU^T X. The same shifts-held-constant argument as
  // for dX (favor.h: the shifts cancel in the output up to eps terms) covers W.
  void backward(const float* X, const float* Dr, float* dP, int64_t n, float* dX, bool accumulate,
                float* dW = nullptr) const;
};

// A projection handle as an input of a fused node: itself when it is trained (requires grad), else
// undefined: a fixed buffer is neither version-checked nor held by the node, which keeps a copy of its
// value, so that a redraw between the forward and the backward changes nothing.
inline Var trained_projection(const Var& projection) {
  return projection.requires_grad() ? projection : Var();
}
// The value of a projection handle; undefined (refused by check_favor_args) for an undefined handle.
inline Tensor projection_value(const Var& projection) {
  return projection.defined() ? projection.value() : Tensor();
}

// The projection's gradient in one fused node's backward, deterministic at any thread count: the
// parallel loop over (batch, head) adds head bh's part into its own (M, D) buffer part(bh), and finish()
// adds the parts into W's gradient in bh order. Without a slot, or when W needs no gradient, it
// allocates nothing and part() is null.
class ProjectionGrad {
 public:
  ProjectionGrad(const std::shared_ptr<GradSlot>& slot, int64_t BH, int64_t M, int64_t D);
  float* part(int64_t bh) { return parts_.defined() ? parts_.data() + bh * size_ : nullptr; }
  void finish();

 private:
  GradSlot* slot_ = nullptr;
  int64_t BH_ = 0, size_ = 0;
  Tensor parts_;  // (BH, M, D)
};

// Row-wise pieces of the renormalized output. NA (n, Dv + 1) holds [numerator, denominator] per row.
// out_i = NA_i[:Dv] / max(den_i, floor); den[i] = NA_i[Dv] (before the guard).
void finish_rows(const float* NA, int64_t n, int64_t Dv, float* out, float* den);
// The gradient of finish_rows with respect to NA: dNA_i = [g_i / den_g, -(g_i . out_i) / den_g or 0 below
// the floor] with den_g = max(den_i, floor).
void finish_rows_backward(const float* g, const float* out, const float* den, int64_t n, int64_t Dv, float* dNA);

// Fused nodes (favor_causal.cpp, favor_bidirectional.cpp). With Dv = 0 (v == nullptr) they only write
// the denominators `den` (B*H, T) and record nothing.
// A trained projection (requires grad) receives its gradient (FeatureMap::backward, ProjectionGrad).
Var favor_causal(const Var& q, const Var& k, const Var& v, const Var& projection, const FavorOptions& opt,
                 const FavorDims& d);
void favor_causal_denominator(const Tensor& q, const Tensor& k, const Tensor& projection, const FavorOptions& opt,
                              const FavorDims& d, float* den);
Var favor_bidirectional(const Var& q, const Var& k, const Var& v, const Var& projection, const FavorOptions& opt,
                        const FavorDims& d, const Tensor* key_mask);
void favor_bidirectional_denominator(const Tensor& q, const Tensor& k, const Tensor& projection,
                                     const FavorOptions& opt, const FavorDims& d, const Tensor* key_mask, float* den);

}  // namespace pf::favor_detail
