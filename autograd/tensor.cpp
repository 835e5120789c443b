#include "autograd/tensor.h"

#include "autograd/allocator.h"

#include <algorithm>
#include <cmath>

#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "base/random.h"
#include "autograd/parallel.h"

namespace pf {

namespace {

void check_shape(const Shape& shape, const char* op) {
  for (int64_t s : shape)
    if (s < 0) throw std::invalid_argument(std::string(op) + ": negative size in shape " + shape_str(shape));
}

}  // namespace

int64_t normalize_axis(int64_t axis, int64_t dim, const char* op, const Shape& shape) {
  const int64_t a = axis < 0 ? axis + dim : axis;
  if (a < 0 || a >= dim)
    throw std::invalid_argument(std::string(op) + ": axis " + std::to_string(axis) + " out of range for shape " +
                                shape_str(shape));
  return a;
}

void split_axis(const Shape& s, int64_t axis, int64_t& outer, int64_t& n, int64_t& inner) {
  outer = 1;
  inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= s[static_cast<size_t>(i)];
  n = s[static_cast<size_t>(axis)];
  for (size_t i = static_cast<size_t>(axis) + 1; i < s.size(); ++i) inner *= s[i];
}

std::string shape_str(const Shape& shape) {
  std::ostringstream os;
  os << '(';
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  if (shape.size() == 1) os << ',';
  os << ')';
  return os.str();
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

void throw_shape_error(const std::string& op, const std::string& what, const Shape& a, const Shape& b) {
  throw std::invalid_argument(op + ": " + what + ": " + shape_str(a) + " vs " + shape_str(b));
}

Tensor::Tensor(Shape shape) {
  check_shape(shape, "Tensor");
  shape_ = std::move(shape);
  numel_ = shape_numel(shape_);
  storage_ = allocate_floats(numel_);
  std::memset(storage_.get(), 0, static_cast<size_t>(numel_) * sizeof(float));
}

Tensor Tensor::empty(Shape shape) {
  check_shape(shape, "Tensor::empty");
  Tensor t;
  t.shape_ = std::move(shape);
  t.numel_ = shape_numel(t.shape_);
  t.storage_ = allocate_floats(t.numel_);
  return t;
}

Tensor Tensor::zeros(Shape shape) { return Tensor(std::move(shape)); }

Tensor Tensor::ones(Shape shape) { return full(std::move(shape), 1.0f); }

Tensor Tensor::full(Shape shape, float value) {
  Tensor t = empty(std::move(shape));
  t.fill(value);
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& values, Shape shape) {
  if (static_cast<int64_t>(values.size()) != shape_numel(shape))
    throw std::invalid_argument("Tensor::from_vector: " + std::to_string(values.size()) +
                                " values do not fill shape " + shape_str(shape));
  Tensor t = empty(std::move(shape));
  std::copy(values.begin(), values.end(), t.data());
  return t;
}

Tensor Tensor::scalar(float value) { return full({}, value); }

Tensor Tensor::arange(int64_t n) {
  Tensor t = empty({n});
  for (int64_t i = 0; i < n; ++i) t.data()[i] = static_cast<float>(i);
  return t;
}

Tensor Tensor::arange(float start, float end, float step) {
  if (step == 0.0f || (end - start) / step < 0)
    throw std::invalid_argument("Tensor::arange: step " + std::to_string(step) + " does not go from " +
                                std::to_string(start) + " to " + std::to_string(end));
  int64_t n = static_cast<int64_t>(std::ceil((end - start) / step));
  Tensor t = empty({n});
  for (int64_t i = 0; i < n; ++i) t.data()[i] = start + step * static_cast<float>(i);
  return t;
}

Tensor Tensor::randn(Shape shape, Generator& gen, float mean, float stddev) {
  Tensor t = empty(std::move(shape));
  float* p = t.data();
  for (int64_t i = 0; i < t.numel_; ++i) p[i] = gen.normal(mean, stddev);
  return t;
}

Tensor Tensor::rand(Shape shape, Generator& gen, float low, float high) {
  Tensor t = empty(std::move(shape));
  float* p = t.data();
  for (int64_t i = 0; i < t.numel_; ++i) p[i] = gen.uniform(low, high);
  return t;
}

int64_t Tensor::size(int64_t axis) const {
  int64_t d = dim();
  int64_t a = axis < 0 ? axis + d : axis;
  if (a < 0 || a >= d)
    throw std::invalid_argument("Tensor::size: axis " + std::to_string(axis) + " out of range for shape " +
                                shape_str(shape_));
  return shape_[a];
}

std::vector<float> Tensor::to_vector() const { return std::vector<float>(data(), data() + numel_); }

float Tensor::item() const {
  if (numel_ != 1)
    throw std::invalid_argument("Tensor::item: tensor of shape " + shape_str(shape_) + " has " +
                                std::to_string(numel_) + " elements, not 1");
  return data()[0];
}

namespace {
int64_t flat_index(const Shape& shape, std::initializer_list<int64_t> index) {
  if (index.size() != shape.size())
    throw std::invalid_argument("Tensor::at: " + std::to_string(index.size()) + " indices for shape " +
                                shape_str(shape));
  int64_t flat = 0;
  size_t a = 0;
  for (int64_t i : index) {
    if (i < 0 || i >= shape[a])
      throw std::out_of_range("Tensor::at: index " + std::to_string(i) + " out of range for axis " +
                              std::to_string(a) + " of shape " + shape_str(shape));
    flat = flat * shape[a] + i;
    ++a;
  }
  return flat;
}
}  // namespace

float& Tensor::at(std::initializer_list<int64_t> index) { return data()[flat_index(shape_, index)]; }
float Tensor::at(std::initializer_list<int64_t> index) const { return data()[flat_index(shape_, index)]; }

Tensor Tensor::clone() const {
  if (!defined()) return Tensor();
  Tensor t = empty(shape_);
  std::memcpy(t.data(), data(), static_cast<size_t>(numel_) * sizeof(float));
  return t;
}

Tensor Tensor::reshape(Shape shape) const {
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer >= 0) throw std::invalid_argument("reshape: more than one -1 in " + shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || numel_ % known != 0) throw_shape_error("reshape", "cannot reshape", shape_, shape);
    shape[infer] = numel_ / known;
  }
  if (shape_numel(shape) != numel_) throw_shape_error("reshape", "element count differs", shape_, shape);
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::narrow0(int64_t start, int64_t count) const {
  if (dim() == 0 || start < 0 || count < 0 || start + count > shape_[0])
    throw std::invalid_argument("Tensor::narrow0: rows [" + std::to_string(start) + ", " +
                                std::to_string(start + count) + ") out of range for shape " + shape_str(shape_));
  Tensor t = *this;
  int64_t row = shape_[0] ? numel_ / shape_[0] : 0;
  t.offset_ += start * row;
  t.shape_[0] = count;
  t.numel_ = count * row;
  return t;
}

namespace {
void matrix_dims(const Shape& shape, int64_t numel, int64_t& rows, int64_t& cols) {
  if (shape.empty()) {
    rows = cols = 1;
  } else {
    cols = shape.back();
    rows = cols ? numel / cols : 0;
  }
}
}  // namespace

// Eigen's Aligned64 map requires aligned data; narrow0 views may not be, so matrix() checks.
MatrixMap Tensor::matrix() {
  int64_t r, c;
  matrix_dims(shape_, numel_, r, c);
  return matrix(r, c);
}
ConstMatrixMap Tensor::matrix() const {
  int64_t r, c;
  matrix_dims(shape_, numel_, r, c);
  return matrix(r, c);
}
MatrixMap Tensor::matrix(int64_t rows, int64_t cols) {
  if (rows * cols != numel_) throw_shape_error("Tensor::matrix", "view does not cover tensor", shape_, {rows, cols});
  if (reinterpret_cast<uintptr_t>(data()) % 64 != 0)
    throw std::logic_error("Tensor::matrix: view is not 64-byte aligned; clone() it first");
  return MatrixMap(data(), rows, cols);
}
ConstMatrixMap Tensor::matrix(int64_t rows, int64_t cols) const {
  if (rows * cols != numel_) throw_shape_error("Tensor::matrix", "view does not cover tensor", shape_, {rows, cols});
  if (reinterpret_cast<uintptr_t>(data()) % 64 != 0)
    throw std::logic_error("Tensor::matrix: view is not 64-byte aligned; clone() it first");
  return ConstMatrixMap(data(), rows, cols);
}

void Tensor::fill(float value) {
  float* p = data();
  const int64_t n = numel_;
  parallel_for(n, [&](int64_t b, int64_t e) { std::fill(p + b, p + e, value); });
}

void Tensor::copy_from(const Tensor& other) {
  if (other.numel_ != numel_) throw_shape_error("Tensor::copy_from", "element count differs", shape_, other.shape_);
  if (numel_) std::memcpy(data(), other.data(), static_cast<size_t>(numel_) * sizeof(float));
}

void Tensor::add_(const Tensor& other) {
  if (other.numel_ != numel_) throw_shape_error("Tensor::add_", "element count differs", shape_, other.shape_);
  float* p = data();
  const float* q = other.data();
  parallel_for(numel_, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) p[i] += q[i];
  });
}

float max_abs_diff(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) throw_shape_error("max_abs_diff", "shapes differ", a.shape(), b.shape());
  float m = 0.0f;
  for (int64_t i = 0; i < a.numel(); ++i) {
    float d = std::fabs(a.data()[i] - b.data()[i]);
    if (std::isnan(d)) return d;
    m = std::max(m, d);
  }
  return m;
}

bool allclose(const Tensor& a, const Tensor& b, float rtol, float atol) {
  if (a.shape() != b.shape()) return false;
  for (int64_t i = 0; i < a.numel(); ++i) {
    float x = a.data()[i], y = b.data()[i];
    if (!(std::fabs(x - y) <= atol + rtol * std::fabs(y))) return false;
  }
  return true;
}

}  // namespace pf
