// Threads. One OpenMP pool for the whole process; the count is set from code (and the CLI).
// parallel_for splits [0, n) into contiguous blocks, one per thread, with a static schedule:
// the split depends only on n and the thread count, so results are deterministic for a fixed
// thread count. Small ranges run inline to avoid the fork/join cost.
#pragma once

#include <omp.h>

#include <cstdint>

namespace pf {

// Sets the number of threads of the one OpenMP pool: the project's loops, Eigen and oneDNN (built on
// the same GNU OpenMP runtime) all use it.
void set_num_threads(int n);
int get_num_threads();
bool in_parallel_region();

constexpr int64_t kParallelGrain = 32768;

// The grain of a loop over rows of `cols` elements each: enough rows for kParallelGrain elements.
constexpr int64_t rows_grain(int64_t cols) {
  const int64_t rows = kParallelGrain / (cols > 1 ? cols : 1);
  return rows > 1 ? rows : 1;
}

template <class F>
void parallel_for(int64_t n, F&& body, int64_t grain = kParallelGrain) {
  if (n <= 0) return;
  if (n < grain || in_parallel_region() || get_num_threads() == 1) {
    body(int64_t{0}, n);
    return;
  }
#pragma omp parallel
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t chunk = (n + nt - 1) / nt;
    const int64_t b = t * chunk;
    const int64_t e = b + chunk < n ? b + chunk : n;
    if (b < e) body(b, e);
  }
}

}  // namespace pf
