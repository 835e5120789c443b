#include "autograd/tensor.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <cmath>
#include <malloc.h>
#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "autograd/generator.h"
#include "autograd/parallel.h"

namespace pf {

namespace {

std::atomic<int64_t> g_live_bytes{0};
std::atomic<int64_t> g_peak_live_bytes{0};

// Training allocates and frees the same large activation buffers every step. By default glibc
// serves each one with a fresh mmap, so every step pays page faults and kernel zeroing on
// hundreds of megabytes. Keeping large blocks on the heap (and not trimming it) lets freed
// buffers be reused, like a caching allocator. Runs once, before the first tensor exists.
// (glibc caps the mmap threshold at 32 MiB; larger blocks are still mapped per allocation.)
const bool g_malloc_tuned = [] {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  return true;
}();

// Blocks of 32 MiB and more are mapped by glibc per allocation whatever mallopt says, so a
// long-sequence step would pay page faults on every activation, every step. Freed large blocks
// are kept in a cache and handed out again: the next step's allocations then touch no new pages.
// A request takes the smallest cached block of at least its size, if that block is less than
// kMaxSlack times the request (a block keeps its own size while in use, and live bytes count it).
//
// The cache must not raise peak memory. With F = live + cached bytes and P the peak of live
// bytes so far: a free leaves F unchanged, a hit leaves it unchanged, and on a miss cached blocks
// are released (the smallest single block that is enough, else the largest ones first) until the
// new block fits under max(P, live after the allocation). So F never exceeds the peak of live
// tensor bytes, and the process's large-block footprint is what the computation itself needed
// at its peak; blocks are released only when keeping them would break that bound.
constexpr size_t kLargeBlock = size_t{32} << 20;
constexpr size_t kLargeCacheBytes = size_t{4} << 30;
constexpr size_t kMaxSlack = 2;

// Large blocks are mapped directly, 2 MiB-aligned and marked for transparent huge pages where the
// kernel offers them (madvise mode): a block the cache could not supply then costs one fault per
// 2 MiB instead of one per 4 KiB.
constexpr size_t kHugePage = size_t{2} << 20;

void* map_large(size_t bytes) {
  const size_t span = bytes + kHugePage;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const uintptr_t base = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t start = (base + kHugePage - 1) / kHugePage * kHugePage;
  if (start > base) munmap(raw, start - base);
  const uintptr_t end = base + span, used_end = start + (bytes + 4095) / 4096 * 4096;
  if (end > used_end) munmap(reinterpret_cast<void*>(used_end), end - used_end);
  void* p = reinterpret_cast<void*>(start);
#ifdef MADV_HUGEPAGE
  madvise(p, bytes, MADV_HUGEPAGE);
#endif
  return p;
}

void unmap_large(void* p, size_t bytes) { munmap(p, bytes); }

struct LargeBlockCache {
  std::mutex mutex;
  std::multimap<size_t, void*> blocks;
  size_t bytes = 0;
  LargeBlockStats stats;
  ~LargeBlockCache() {
    for (auto& [size, p] : blocks) unmap_large(p, size);
  }
};

LargeBlockCache& large_cache() {
  static LargeBlockCache* cache = new LargeBlockCache();  // never destroyed: tensors may outlive statics
  return *cache;
}

void release(LargeBlockCache& c, std::multimap<size_t, void*>::iterator it) {
  c.bytes -= it->first;
  c.stats.released_bytes += static_cast<int64_t>(it->first);
  unmap_large(it->second, it->first);
  c.blocks.erase(it);
}

// Releases cached blocks totalling at least `bytes` (or all of them). Caller holds the mutex.
void evict_for(LargeBlockCache& c, size_t bytes) {
  auto fit = c.blocks.lower_bound(bytes);
  if (fit != c.blocks.end()) {
    release(c, fit);
    return;
  }
  size_t freed = 0;
  while (freed < bytes && !c.blocks.empty()) {
    auto last = std::prev(c.blocks.end());
    freed += last->first;
    release(c, last);
  }
}

// Returns a block of at least `bytes` and sets `capacity` to its size.
void* take_block(size_t bytes, size_t& capacity) {
  capacity = bytes;
  if (bytes >= kLargeBlock) {
    LargeBlockCache& c = large_cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.blocks.lower_bound(bytes);
    if (it != c.blocks.end() && it->first < kMaxSlack * bytes) {
      void* p = it->second;
      capacity = it->first;
      c.bytes -= capacity;
      c.blocks.erase(it);
      ++c.stats.hits;
      return p;
    }
    ++c.stats.misses;
    const size_t live = static_cast<size_t>(g_live_bytes.load());
    const size_t bound = std::max(static_cast<size_t>(g_peak_live_bytes.load()), live + bytes);
    if (live + c.bytes + bytes > bound) evict_for(c, live + c.bytes + bytes - bound);
    return map_large(bytes);
  }
  return std::aligned_alloc(64, bytes);
}

void give_block(void* p, size_t bytes) {
  if (bytes >= kLargeBlock) {
    LargeBlockCache& c = large_cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    if (c.bytes + bytes <= kLargeCacheBytes) {
      c.blocks.emplace(bytes, p);
      c.bytes += bytes;
      return;
    }
    unmap_large(p, bytes);
    return;
  }
  std::free(p);
}

std::shared_ptr<float[]> allocate(int64_t numel) {
  // Round up to a whole number of 64-byte lines; aligned_alloc requires it.
  size_t bytes = static_cast<size_t>(std::max<int64_t>(numel, 1)) * sizeof(float);
  bytes = (bytes + 63) / 64 * 64;
  size_t capacity = 0;
  void* p = take_block(bytes, capacity);
  if (!p) throw std::bad_alloc();
  const int64_t live = g_live_bytes += static_cast<int64_t>(capacity);
  int64_t peak = g_peak_live_bytes.load(std::memory_order_relaxed);
  while (live > peak && !g_peak_live_bytes.compare_exchange_weak(peak, live, std::memory_order_relaxed)) {
  }
  return std::shared_ptr<float[]>(static_cast<float*>(p), [capacity](float* q) {
    g_live_bytes -= static_cast<int64_t>(capacity);
    give_block(q, capacity);
  });
}

void check_shape(const Shape& shape, const char* op) {
  for (int64_t s : shape)
    if (s < 0) throw std::invalid_argument(std::string(op) + ": negative size in shape " + shape_str(shape));
}

}  // namespace

int64_t live_tensor_bytes() { return g_live_bytes.load(); }
int64_t peak_live_tensor_bytes() { return g_peak_live_bytes.load(); }

int64_t cached_tensor_bytes() {
  LargeBlockCache& c = large_cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return static_cast<int64_t>(c.bytes);
}

LargeBlockStats large_block_stats() {
  LargeBlockCache& c = large_cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.stats;
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
  storage_ = allocate(numel_);
  std::memset(storage_.get(), 0, static_cast<size_t>(numel_) * sizeof(float));
}

Tensor Tensor::empty(Shape shape) {
  check_shape(shape, "Tensor::empty");
  Tensor t;
  t.shape_ = std::move(shape);
  t.numel_ = shape_numel(t.shape_);
  t.storage_ = allocate(t.numel_);
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
