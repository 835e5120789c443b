// Attention kernels, forward + backward: the fused causal FAVOR+ node against exact softmax attention
// (composed pf ops, O(T^2)). B = 1, H = 4, D = 64, M = 128 (the B1 head shape), T = 512 .. 65536.
// Items are tokens, so items_per_second is tokens/s and the time per token should stay flat in T for
// FAVOR+ (linear) while it grows linearly for exact attention (quadratic).
//
//   bench_attention --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <cmath>

#include "base/random.h"
#include "autograd/ops.h"
#include "performer/favor.h"
#include "performer/features.h"

namespace {

using namespace pf;

constexpr int64_t kB = 1, kH = 4, kD = 64, kM = 128;

struct Inputs {
  Var q, k, v;
  Tensor w, g;
};

Inputs make_inputs(int64_t T) {
  Generator gen(1);
  Inputs in;
  in.q = Var(Tensor::randn({kB, kH, T, kD}, gen, 0.0f, 0.5f), true);
  in.k = Var(Tensor::randn({kB, kH, T, kD}, gen, 0.0f, 0.5f), true);
  in.v = Var(Tensor::randn({kB, kH, T, kD}, gen), true);
  in.w = orthogonal_random_features(kM, kD, gen);
  in.g = Tensor::randn({kB, kH, T, kD}, gen);
  return in;
}

void report(benchmark::State& state, int64_t T) {
  state.SetItemsProcessed(state.iterations() * kB * T);
  state.counters["us_per_token"] = benchmark::Counter(
      static_cast<double>(kB * T), benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

// One forward and backward of FAVOR+, causal or bidirectional, per iteration.
void favor_forward_backward(benchmark::State& state, bool causal) {
  const int64_t T = state.range(0);
  Inputs in = make_inputs(T);
  FavorOptions opt;
  for (auto _ : state) {
    in.q.zero_grad();
    in.k.zero_grad();
    in.v.zero_grad();
    Var out = favor_attention(in.q, in.k, in.v, in.w, causal, opt);
    out.backward(in.g);
    benchmark::DoNotOptimize(in.q.grad().data());
  }
  report(state, T);
}

void BM_FavorCausal(benchmark::State& state) { favor_forward_backward(state, true); }

void BM_FavorCausalForward(benchmark::State& state) {
  const int64_t T = state.range(0);
  Inputs in = make_inputs(T);
  FavorOptions opt;
  NoGradGuard no_grad;
  for (auto _ : state) {
    Var out = favor_attention(in.q, in.k, in.v, in.w, true, opt);
    benchmark::DoNotOptimize(out.value().data());
  }
  report(state, T);
}

void BM_FavorBidirectional(benchmark::State& state) { favor_forward_backward(state, false); }

// softmax(q k^T / sqrt(D) with the upper triangle masked) v, from pf ops: the quadratic baseline.
void BM_ExactSoftmaxCausal(benchmark::State& state) {
  const int64_t T = state.range(0);
  Inputs in = make_inputs(T);
  Tensor upper({T, T});
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = i + 1; j < T; ++j) upper.data()[i * T + j] = 1.0f;
  const float scale = 1.0f / std::sqrt(static_cast<float>(kD));
  for (auto _ : state) {
    in.q.zero_grad();
    in.k.zero_grad();
    in.v.zero_grad();
    Var scores = masked_fill(matmul(in.q, in.k, false, true) * scale, upper, -1e30f);
    Var out = matmul(softmax(scores), in.v);
    out.backward(in.g);
    benchmark::DoNotOptimize(in.q.grad().data());
  }
  report(state, T);
}

}  // namespace

BENCHMARK(BM_FavorCausal)->RangeMultiplier(2)->Range(512, 65536)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_FavorCausalForward)->RangeMultiplier(4)->Range(512, 65536)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_FavorBidirectional)->RangeMultiplier(4)->Range(512, 65536)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ExactSoftmaxCausal)->RangeMultiplier(2)->Range(512, 4096)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
