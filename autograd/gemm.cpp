#include "autograd/gemm.h"

#include <cpuid.h>
#include <immintrin.h>

#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>

#include "autograd/parallel.h"
#include "autograd/tensor.h"

#ifdef PF_HAVE_DNNL
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>
#include <vector>
#endif

namespace pf {

namespace {

using Stride = Eigen::OuterStride<>;
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMat, Eigen::Unaligned, Stride>;
using Map = Eigen::Map<RowMat, Eigen::Unaligned, Stride>;

void gemm_eigen(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  Map c(C, M, N, Stride(ldc));
  if (beta == 0.0f) {
    c.setZero();
  } else if (beta != 1.0f) {
    c *= beta;
  }
  if (K == 0) return;
  ConstMap a(A, ta ? K : M, ta ? M : K, Stride(lda));
  ConstMap b(B, tb ? N : K, tb ? K : N, Stride(ldb));
  if (!ta && !tb) c.noalias() += alpha * a * b;
  else if (ta && !tb) c.noalias() += alpha * a.transpose() * b;
  else if (!ta && tb) c.noalias() += alpha * a * b.transpose();
  else c.noalias() += alpha * a.transpose() * b.transpose();
}

bool cpu_has_bf16_dot() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
  const bool avx512_bf16 = (a >> 5) & 1u;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return avx512_bf16;
  const bool amx_bf16 = (d >> 22) & 1u;
  return avx512_bf16 || amx_bf16;
}

std::atomic<Precision> g_precision{Precision::fp32};

// fp32 -> bf16 bits, round to nearest even; NaN stays a (quiet) NaN.
inline uint16_t to_bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// n floats to bf16 bits, vectorized where the compiler targets AVX512-BF16.
void convert_row_bf16(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512BF16__) && defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) {
    __m256bh v = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), reinterpret_cast<__m256i&>(v));
  }
#endif
  for (; i < n; ++i) dst[i] = to_bf16_bits(src[i]);
}

}  // namespace

Precision parse_precision(const std::string& name) {
  return parse_enum<Precision>(name, "precision");
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::process: return precision_name(g_precision.load());
    default: return enum_name(p);
  }
  return "?";
}

std::string bf16_unsupported_reason() {
#ifndef PF_HAVE_DNNL
  return "this build has no oneDNN (install libdnnl-dev and reconfigure): bf16 products need it";
#else
  static const bool cpu = cpu_has_bf16_dot();
  if (!cpu) return "this CPU has neither AVX512-BF16 nor AMX-BF16 (see the flags in /proc/cpuinfo): use fp32";
  return "";
#endif
}

bool bf16_supported() {
  static const bool supported = bf16_unsupported_reason().empty();  // asked on every bf16 product
  return supported;
}

void set_matmul_precision(Precision p) {
  if (p == Precision::process) return;
  if (p == Precision::bf16 && !bf16_supported())
    throw std::runtime_error("bf16 precision unavailable: " + bf16_unsupported_reason());
  g_precision.store(p);
}

Precision matmul_precision() { return g_precision.load(); }

void round_to_bf16(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t u = static_cast<uint32_t>(to_bf16_bits(x[i])) << 16;
    std::memcpy(&x[i], &u, 4);
  }
}

#ifdef PF_HAVE_DNNL

namespace {

// Products with fewer multiply-adds than this run on Eigen: oneDNN's per-call cost (memory objects,
// argument map, cache look-up: about 2 us) would dominate. Always fp32.
constexpr int64_t kSmallProduct = 8 * 8 * 8;
// Products below this many multiply-adds (64^3: a few microseconds on one core) run on the calling
// thread alone: splitting them costs a fork/join that is as long as the work, and far longer when the
// cores are shared and the other thread is not running.
constexpr int64_t kSerialProduct = 64 * 64 * 64;

struct Key {
  bool ta, tb, bf16, bias;
  int64_t M, N, K, lda, ldb, ldc;
  float alpha, beta;
  int threads;
  bool operator==(const Key&) const = default;
};

struct KeyHash {
  size_t operator()(const Key& k) const {
    size_t h = 1469598103934665603ull;
    auto mix = [&](uint64_t v) { h = (h ^ v) * 1099511628211ull; };
    mix(k.ta | (k.tb << 1) | (k.bf16 << 2) | (k.bias << 3));
    for (int64_t v : {k.M, k.N, k.K, k.lda, k.ldb, k.ldc}) mix(static_cast<uint64_t>(v));
    uint32_t a, b;
    std::memcpy(&a, &k.alpha, 4);
    std::memcpy(&b, &k.beta, 4);
    mix(a);
    mix(b);
    mix(static_cast<uint64_t>(k.threads));
    return h;
  }
};

struct Entry {
  dnnl::matmul prim;
  dnnl::memory::desc a, b, c;
  size_t scratch_bytes = 0;
};

dnnl::engine& cpu_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

// One primitive per distinct call shape, made on first use and kept (the shapes of a training run
// are a few dozen).
std::mutex g_cache_mutex;
std::unordered_map<Key, std::unique_ptr<Entry>, KeyHash> g_cache;

const Entry& primitive_for(const Key& k) {
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  auto& cache = g_cache;
  auto it = cache.find(k);
  if (it != cache.end()) return *it->second;
  using dt = dnnl::memory::data_type;
  const dt in = k.bf16 ? dt::bf16 : dt::f32;
  auto e = std::make_unique<Entry>();
  // Row-major with leading dimensions; a transposed operand is the stored matrix read with swapped strides.
  e->a = dnnl::memory::desc({k.M, k.K}, in, k.ta ? dnnl::memory::dims{1, k.lda} : dnnl::memory::dims{k.lda, 1});
  e->b = dnnl::memory::desc({k.K, k.N}, in, k.tb ? dnnl::memory::dims{1, k.ldb} : dnnl::memory::dims{k.ldb, 1});
  e->c = dnnl::memory::desc({k.M, k.N}, dt::f32, dnnl::memory::dims{k.ldc, 1});
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (k.alpha != 1.0f) attr.set_output_scales(0, {k.alpha});
  if (k.beta != 0.0f) {
    dnnl::post_ops po;
    po.append_sum(k.beta);
    attr.set_post_ops(po);
  }
  // A bias row (1, N) in fp32, added by the kernel to every row of the fp32 accumulator.
  const dnnl::memory::desc bias_md({1, k.N}, dt::f32, dnnl::memory::dims{k.N, 1});
  auto pd = k.bias ? dnnl::matmul::primitive_desc(dnnl::matmul::desc(e->a, e->b, bias_md, e->c), attr, cpu_engine())
                   : dnnl::matmul::primitive_desc(dnnl::matmul::desc(e->a, e->b, e->c), attr, cpu_engine());
  e->scratch_bytes = pd.scratchpad_desc().get_size();
  e->prim = dnnl::matmul(pd);
  return *cache.emplace(k, std::move(e)).first->second;
}

// Per-thread scratch: oneDNN's scratchpad and the bf16 copies of the operands.
struct Scratch {
  std::vector<uint8_t, Eigen::aligned_allocator<uint8_t>> pad;
  std::vector<uint16_t, Eigen::aligned_allocator<uint16_t>> a16, b16;
};

// The stored matrix (rows x cols, leading dimension ld) as dense bf16 (leading dimension cols).
void convert_bf16(const float* src, int64_t rows, int64_t cols, int64_t ld, uint16_t* dst, bool outer_parallel) {
  auto body = [&](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r) convert_row_bf16(src + r * ld, dst + r * cols, cols);
  };
  if (outer_parallel) body(0, rows);
  else parallel_for(rows, body, rows_grain(cols));
}

// Room for n bf16 values: the thread's kept scratch when small (the many small products of a FAVOR+
// chunk loop), else a tensor of this call only, so that the copy of a large activation is not kept
// for the rest of the process but goes back to the allocator (whose cache respects the peak bound).
uint16_t* bf16_buffer(std::vector<uint16_t, Eigen::aligned_allocator<uint16_t>>& keep, Tensor& hold, int64_t n) {
  constexpr int64_t kKeep = int64_t{1} << 19;  // 1 MiB of bf16 per operand and thread
  if (n <= kKeep) {
    if (static_cast<int64_t>(keep.size()) < n) keep.resize(static_cast<size_t>(n));
    return keep.data();
  }
  hold = Tensor::empty({(n + 1) / 2});
  return reinterpret_cast<uint16_t*>(hold.data());
}

// A / B: fp32 (A32, lda) or, when bf16, already converted (A16, dense) or to be converted here.
// bias: null, or N floats added to every row of C.
void gemm_dnnl(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, const uint16_t* A16,
               int64_t lda, const float* B, const uint16_t* B16, int64_t ldb, float beta, float* C, int64_t ldc,
               bool bf16, const float* bias = nullptr) {
  thread_local Scratch scratch;
  thread_local dnnl::stream stream(cpu_engine());
  const bool nested = in_parallel_region();
  const int64_t a_rows = ta ? K : M, a_cols = ta ? M : K;
  const int64_t b_rows = tb ? N : K, b_cols = tb ? K : N;
  const void* pa = A;
  const void* pb = B;
  Tensor a_hold, b_hold;  // large bf16 copies: from the tensor allocator, released after the call
  if (bf16) {
    if (A16 == nullptr) {
      uint16_t* buf = bf16_buffer(scratch.a16, a_hold, a_rows * a_cols);
      convert_bf16(A, a_rows, a_cols, lda, buf, nested);
      A16 = buf;
    }
    if (B16 == nullptr) {
      uint16_t* buf = bf16_buffer(scratch.b16, b_hold, b_rows * b_cols);
      convert_bf16(B, b_rows, b_cols, ldb, buf, nested);
      B16 = buf;
    }
    pa = A16;
    pb = B16;
    lda = a_cols;
    ldb = b_cols;
  }
  const bool serial = nested || M * N * K < kSerialProduct;
  const int threads = get_num_threads();
  if (serial && !nested && threads > 1) omp_set_num_threads(1);  // this thread's setting, restored below
  struct Restore {
    bool on;
    int n;
    ~Restore() {
      if (on) omp_set_num_threads(n);
    }
  } restore{serial && !nested && threads > 1, threads};
  const Key key{ta, tb, bf16, bias != nullptr, M, N, K, lda, ldb, ldc, alpha, beta, serial ? 1 : threads};
  // Per thread, per primitive: the memory objects and the argument map, made once and re-pointed at
  // each call's buffers (creating them costs about as much as a 64 x 64 x 64 product).
  struct Bound {
    std::unordered_map<int, dnnl::memory> args;
  };
  thread_local std::unordered_map<Key, std::pair<const Entry*, Bound>, KeyHash> bound;
  auto it = bound.find(key);
  if (it == bound.end()) {
    const Entry& e = primitive_for(key);
    auto& eng = cpu_engine();
    Bound b;
    b.args[DNNL_ARG_SRC] = dnnl::memory(e.a, eng, DNNL_MEMORY_NONE);
    b.args[DNNL_ARG_WEIGHTS] = dnnl::memory(e.b, eng, DNNL_MEMORY_NONE);
    b.args[DNNL_ARG_DST] = dnnl::memory(e.c, eng, DNNL_MEMORY_NONE);
    if (key.bias)
      b.args[DNNL_ARG_BIAS] = dnnl::memory(
          dnnl::memory::desc({1, N}, dnnl::memory::data_type::f32, dnnl::memory::dims{N, 1}), eng, DNNL_MEMORY_NONE);
    b.args[DNNL_ARG_SCRATCHPAD] =
        dnnl::memory(dnnl::memory::desc({static_cast<int64_t>(std::max<size_t>(e.scratch_bytes, 1))},
                                        dnnl::memory::data_type::u8, dnnl::memory::dims{1}),
                     eng, DNNL_MEMORY_NONE);
    it = bound.emplace(key, std::make_pair(&e, std::move(b))).first;
  }
  const Entry& e = *it->second.first;
  auto& args = it->second.second.args;
  if (scratch.pad.size() < std::max<size_t>(e.scratch_bytes, 1)) scratch.pad.resize(std::max<size_t>(e.scratch_bytes, 1));
  args[DNNL_ARG_SRC].set_data_handle(const_cast<void*>(pa));
  args[DNNL_ARG_WEIGHTS].set_data_handle(const_cast<void*>(pb));
  args[DNNL_ARG_DST].set_data_handle(C);
  if (bias) args[DNNL_ARG_BIAS].set_data_handle(const_cast<float*>(bias));
  args[DNNL_ARG_SCRATCHPAD].set_data_handle(scratch.pad.data());
  e.prim.execute(stream, args);
  stream.wait();
}

}  // namespace

#endif  // PF_HAVE_DNNL

void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
          int64_t ldb, float beta, float* C, int64_t ldc, [[maybe_unused]] Precision precision) {
  if (M == 0 || N == 0) return;
#ifdef PF_HAVE_DNNL
  if (K > 0 && M * N * K >= kSmallProduct) {
    if (precision == Precision::process) precision = g_precision.load(std::memory_order_relaxed);
    gemm_dnnl(ta, tb, M, N, K, alpha, A, nullptr, lda, B, nullptr, ldb, beta, C, ldc, precision == Precision::bf16);
    return;
  }
#endif
  gemm_eigen(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_bias(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, const uint16_t* A16, int64_t lda,
               const float* B, int64_t ldb, const float* bias, float* C, int64_t ldc, Precision precision) {
  if (M == 0 || N == 0) return;
  if (precision == Precision::process) precision = matmul_precision();
  const bool bf16 = gemm_uses_bf16(M, N, K, precision);
  if (A16 && !bf16) throw std::invalid_argument("gemm_bias: a bf16 operand was given for a product that runs in fp32");
#ifdef PF_HAVE_DNNL
  if (K > 0 && M * N * K >= kSmallProduct) {
    gemm_dnnl(ta, tb, M, N, K, 1.0f, A, A16, lda, B, nullptr, ldb, 0.0f, C, ldc, bf16, bias);
    return;
  }
#endif
  for (int64_t r = 0; r < M; ++r) std::copy(bias, bias + N, C + r * ldc);
  gemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 1.0f, C, ldc, precision);
}

bool gemm_uses_bf16(int64_t M, int64_t N, int64_t K, Precision precision) {
#ifdef PF_HAVE_DNNL
  if (precision == Precision::process) precision = g_precision.load(std::memory_order_relaxed);
  return precision == Precision::bf16 && M > 0 && N > 0 && K > 0 && M * N * K >= kSmallProduct;
#else
  (void)M, (void)N, (void)K, (void)precision;
  return false;
#endif
}

void to_bf16(const float* src, int64_t rows, int64_t cols, int64_t ld, uint16_t* dst) {
#ifdef PF_HAVE_DNNL
  convert_bf16(src, rows, cols, ld, dst, in_parallel_region());
#else
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[r * cols + c] = to_bf16_bits(src[r * ld + c]);
#endif
}

void gemm_bf16([[maybe_unused]] bool ta, [[maybe_unused]] bool tb, [[maybe_unused]] int64_t M,
               [[maybe_unused]] int64_t N, [[maybe_unused]] int64_t K, [[maybe_unused]] float alpha,
               [[maybe_unused]] const float* A, [[maybe_unused]] const uint16_t* A16, [[maybe_unused]] int64_t lda,
               [[maybe_unused]] const float* B, [[maybe_unused]] const uint16_t* B16, [[maybe_unused]] int64_t ldb,
               [[maybe_unused]] float beta, [[maybe_unused]] float* C, [[maybe_unused]] int64_t ldc) {
  if (!bf16_supported()) throw std::runtime_error("gemm_bf16: " + bf16_unsupported_reason());
#ifdef PF_HAVE_DNNL
  if (M == 0 || N == 0) return;
  if (K == 0) {
    gemm_eigen(false, false, M, N, 0, alpha, nullptr, 1, nullptr, 1, beta, C, ldc);
    return;
  }
  gemm_dnnl(ta, tb, M, N, K, alpha, A, A16, lda, B, B16, ldb, beta, C, ldc, true);
#endif
}

int64_t gemm_primitive_count() {
#ifdef PF_HAVE_DNNL
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  return static_cast<int64_t>(g_cache.size());
#else
  return 0;
#endif
}

const char* gemm_backend() {
#ifdef PF_HAVE_DNNL
  return "onednn";
#else
  return "eigen";
#endif
}

}  // namespace pf
