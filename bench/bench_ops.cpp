// Micro-benchmarks of the autograd building blocks (Google Benchmark).
//   build/bench/bench_ops --benchmark_filter=Matmul
// Threads: PF_THREADS environment variable (default 2). GFLOP/s is reported as "FLOPS".
#include <benchmark/benchmark.h>

#include <cstdlib>

#include "autograd/gemm.h"
#include "autograd/generator.h"
#include "autograd/ops.h"
#include "autograd/parallel.h"

using namespace pf;

namespace {

int threads_from_env() {
  const char* s = std::getenv("PF_THREADS");
  return s ? std::atoi(s) : 2;
}

// C = A B for the B1 model's shapes: (B*T, C) x (C, 3C) and friends.
void BM_Matmul(benchmark::State& state) {
  set_num_threads(threads_from_env());
  const int64_t M = state.range(0), K = state.range(1), N = state.range(2);
  Generator g(1);
  Tensor a = Tensor::randn({M, K}, g), b = Tensor::randn({K, N}, g);
  Var va(a), vb(b);
  for (auto _ : state) {
    Var c = matmul(va, vb);
    benchmark::DoNotOptimize(c.value().data());
  }
  state.counters["FLOPS"] =
      benchmark::Counter(2.0 * M * N * K, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.counters["threads"] = get_num_threads();
  state.SetLabel(gemm_backend());
}
BENCHMARK(BM_Matmul)->Args({4096, 256, 768})->Args({4096, 256, 1024})->Args({4096, 1024, 256})->Args({2048, 2048, 2048})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

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
