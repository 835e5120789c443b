// Micro-benchmarks of the autograd building blocks (Google Benchmark).
//   build/bench/bench_ops --benchmark_filter=Matmul
// Threads: PF_THREADS environment variable (default 2). GFLOP/s is reported as "FLOPS".
#include <benchmark/benchmark.h>

#include <cstdlib>

#include "autograd/gemm.h"
#include "base/random.h"
#include "autograd/ops.h"
#include "autograd/parallel.h"

using namespace pf;

namespace {

int threads_from_env() {
  const char* s = std::getenv("PF_THREADS");
  return s ? std::atoi(s) : 2;
}

// PF_PRECISION=bf16 runs the products in bf16 (autograd/gemm.h); default fp32.
void set_precision_from_env() {
  const char* s = std::getenv("PF_PRECISION");
  set_matmul_precision(s ? parse_precision(s) : Precision::fp32);
}

// C = A B for the B1 model's shapes: (B*T, C) x (C, 3C) and friends, then B3's (C 512, ff 2048); range(3) = 1: C = A^T B with A
// stored (K, M), the weight-gradient product of a linear layer. Small shapes: FAVOR+'s chunk products
// (chunk 64, m 128, head dim 64 + 1).
void BM_Matmul(benchmark::State& state) {
  set_num_threads(threads_from_env());
  set_precision_from_env();
  const int64_t M = state.range(0), K = state.range(1), N = state.range(2);
  const bool ta = state.range(3) != 0;
  Generator g(1);
  Tensor a = ta ? Tensor::randn({K, M}, g) : Tensor::randn({M, K}, g), b = Tensor::randn({K, N}, g);
  Var va(a), vb(b);
  for (auto _ : state) {
    Var c = matmul(va, vb, ta, false);
    benchmark::DoNotOptimize(c.value().data());
  }
  state.counters["FLOPS"] =
      benchmark::Counter(2.0 * M * N * K, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.counters["threads"] = get_num_threads();
  state.SetLabel(std::string(gemm_backend()) + " " + precision_name(Precision::process));
}
BENCHMARK(BM_Matmul)->Args({4096, 256, 768, 0})->Args({4096, 256, 1024, 0})->Args({4096, 1024, 256, 0})
    ->Args({1024, 4096, 256, 1})->Args({256, 4096, 1024, 1})->Args({2048, 2048, 2048, 0})
    ->Args({4096, 512, 512, 0})->Args({4096, 512, 2048, 0})->Args({4096, 2048, 512, 0})->Args({512, 4096, 2048, 1})
    ->Args({64, 128, 64, 0})->Args({64, 64, 65, 0})->Args({128, 64, 65, 1})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_Gelu(benchmark::State& state) {
  set_num_threads(threads_from_env());
  Generator g(1);
  Var x(Tensor::randn({4096, 1024}, g));
  for (auto _ : state) benchmark::DoNotOptimize(gelu(x).value().data());
  state.SetBytesProcessed(state.iterations() * 4096 * 1024 * 8);
}
BENCHMARK(BM_Gelu)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Add(benchmark::State& state) {
  set_num_threads(threads_from_env());
  Generator g(1);
  Var x(Tensor::randn({4096, 1024}, g)), y(Tensor::randn({4096, 1024}, g));
  for (auto _ : state) benchmark::DoNotOptimize(add(x, y).value().data());
  state.SetBytesProcessed(state.iterations() * 4096 * 1024 * 12);
}
BENCHMARK(BM_Add)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_LayerNorm(benchmark::State& state) {
  set_num_threads(threads_from_env());
  Generator g(1);
  Var x(Tensor::randn({4096, 256}, g)), w(Tensor::ones({256})), b(Tensor::zeros({256}));
  for (auto _ : state) benchmark::DoNotOptimize(layer_norm(x, w, b).value().data());
  state.SetBytesProcessed(state.iterations() * 4096 * 256 * 8);
}
BENCHMARK(BM_LayerNorm)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Softmax(benchmark::State& state) {
  set_num_threads(threads_from_env());
  Generator g(1);
  Var x(Tensor::randn({4096, 256}, g));
  for (auto _ : state) benchmark::DoNotOptimize(softmax(x).value().data());
  state.SetBytesProcessed(state.iterations() * 4096 * 256 * 8);
}
BENCHMARK(BM_Softmax)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
