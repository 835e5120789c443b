// Tensor: float32, contiguous, row-major, N-D. Storage is shared between handles
// (copying a Tensor is cheap and aliases the same memory; use clone() for a deep copy)
// and aligned to 64 bytes so AVX-512 loads never straddle a cache line.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "autograd/allocator.h"

namespace pf {

using Shape = std::vector<int64_t>;

// "(2, 3, 4)"; used in every shape error message.
std::string shape_str(const Shape& shape);
int64_t shape_numel(const Shape& shape);
// `axis` in [-dim, dim) as an index in [0, dim); otherwise throws std::invalid_argument naming `op`
// and the shape.
int64_t normalize_axis(int64_t axis, int64_t dim, const char* op, const Shape& shape);
// The shape viewed as (outer, n, inner) around a normalized `axis`.
void split_axis(const Shape& shape, int64_t axis, int64_t& outer, int64_t& n, int64_t& inner);

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatrixMap = Eigen::Map<RowMatrix, Eigen::Aligned64>;
using ConstMatrixMap = Eigen::Map<const RowMatrix, Eigen::Aligned64>;
using UnalignedMatrixMap = Eigen::Map<RowMatrix>;
using ConstUnalignedMatrixMap = Eigen::Map<const RowMatrix>;
using VectorMap = Eigen::Map<Eigen::VectorXf>;
using ConstVectorMap = Eigen::Map<const Eigen::VectorXf>;

class Generator;

class Tensor {
 public:
  Tensor() = default;  // empty: defined() is false
  // Allocates numel floats; contents are zero.
  explicit Tensor(Shape shape);

  static Tensor zeros(Shape shape);
  static Tensor ones(Shape shape);
  static Tensor full(Shape shape, float value);
  static Tensor empty(Shape shape);  // uninitialized memory: only for outputs fully overwritten
  static Tensor from_vector(const std::vector<float>& values, Shape shape);
  static Tensor scalar(float value);  // shape ()
  static Tensor arange(int64_t n);  // 0, 1, ..., n-1 as floats, shape (n)
  static Tensor arange(float start, float end, float step);
  static Tensor randn(Shape shape, Generator& gen, float mean = 0.0f, float stddev = 1.0f);
  static Tensor rand(Shape shape, Generator& gen, float low = 0.0f, float high = 1.0f);

  bool defined() const { return static_cast<bool>(storage_); }
  const Shape& shape() const { return shape_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  // Size of axis i; negative i counts from the end.
  int64_t size(int64_t axis) const;
  int64_t numel() const { return numel_; }

  float* data() { return storage_.get() + offset_; }
  const float* data() const { return storage_.get() + offset_; }
  std::vector<float> to_vector() const;
  float item() const;  // the one value of a tensor with numel 1
  // Element access by full index, bounds-checked: t.at({i, j}).
  float& at(std::initializer_list<int64_t> index);
  float at(std::initializer_list<int64_t> index) const;

  // Deep copy with its own storage.
  Tensor clone() const;
  // Same storage, new shape (numel must match; one axis may be -1).
  Tensor reshape(Shape shape) const;
  // Rows [start, start + count) of axis 0 as a view that shares storage.
  Tensor narrow0(int64_t start, int64_t count) const;
  bool shares_storage_with(const Tensor& other) const { return storage_ == other.storage_; }
  // True when no other tensor shares this one's storage (so it can be taken over instead of copied).
  bool sole_owner() const { return storage_ && storage_.use_count() == 1; }

  // Matrix views: the tensor seen as (rows, cols) with rows * cols == numel (row-major).
  // With no arguments: a 2-D tensor as itself, anything else as (numel / last, last).
  MatrixMap matrix();
  ConstMatrixMap matrix() const;
  MatrixMap matrix(int64_t rows, int64_t cols);
  ConstMatrixMap matrix(int64_t rows, int64_t cols) const;
  VectorMap vec() { return VectorMap(data(), numel_); }
  ConstVectorMap vec() const { return ConstVectorMap(data(), numel_); }

  void fill(float value);
  void copy_from(const Tensor& other);  // same numel; copies values
  void add_(const Tensor& other);       // this += other, same numel
  void zero() { fill(0.0f); }

 private:
  std::shared_ptr<float[]> storage_;
  int64_t offset_ = 0;
  Shape shape_;
  int64_t numel_ = 0;
};

// Throws std::invalid_argument("op: message <shape a> vs <shape b>").
[[noreturn]] void throw_shape_error(const std::string& op, const std::string& what, const Shape& a,
                                    const Shape& b);


// Maximum absolute difference; throws if the shapes differ.
float max_abs_diff(const Tensor& a, const Tensor& b);
bool allclose(const Tensor& a, const Tensor& b, float rtol = 1e-5f, float atol = 1e-6f);

}  // namespace pf
