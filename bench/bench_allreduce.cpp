// bench_allreduce: the gradient synchronization of a model alone, without training: the time of
// GradientSync::sum_gradients() over a PerformerLM's gradients (fused buckets), after a barrier so that
// no rank waits for another's computation. Run under mpirun:
//   mpirun -np 2 build/bench/bench_allreduce --preset b1 [--reps 50] [--bucket-mb 4]
// Prints one JSON line (rank 0): parameters, gradient bytes, buckets, median / min milliseconds.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "distributed/comm.h"
#include "distributed/grad_sync.h"
#include "performer/model.h"

int main(int argc, char** argv) {
  pf::dist::Session mpi(&argc, &argv);
  CLI::App app{"bench_allreduce: time of one gradient synchronization of a Performer model"};
  std::string preset = "b1";
  int reps = 50;
  double bucket_mb = 4.0;
  app.add_option("--preset", preset, "b1 (dim 256, depth 4, ff 1024, seq 1024) or default (performer-train's)")
      ->check(CLI::IsMember({"b1", "default"}));
  app.add_option("--reps", reps, "timed repetitions")->check(CLI::PositiveNumber);
  app.add_option("--bucket-mb", bucket_mb, "bucket size in MB")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  pf::ModelConfig cfg;
  if (preset == "b1") {
    cfg.vocab_size = 258;
    cfg.dim = 256; cfg.depth = 4; cfg.heads = 4; cfg.ff_hidden = 1024; cfg.features = 128; cfg.max_seq_len = 1024;
  } else {
    cfg.vocab_size = 29;  // the protein vocabulary
    cfg.dim = 128; cfg.depth = 2; cfg.heads = 4; cfg.ff_hidden = 512; cfg.features = 64; cfg.max_seq_len = 128;
  }
  pf::PerformerLM model(cfg);
  for (auto& [name, v] : model.named_parameters()) {
    v.grad() = pf::Tensor(v.shape());
    std::fill(v.grad().data(), v.grad().data() + v.numel(), 1e-3f);
  }
  pf::dist::GradientSync sync(model, static_cast<int64_t>(bucket_mb * (1 << 20)));
  std::vector<double> ms;
  for (int i = 0; i < reps + 3; ++i) {
    pf::dist::barrier();
    const auto t0 = std::chrono::steady_clock::now();
    sync.sum_gradients();
    const double t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (i >= 3) ms.push_back(pf::dist::max(static_cast<int64_t>(t * 1000.0)) / 1000.0);  // slowest rank
  }
  std::sort(ms.begin(), ms.end());
  if (pf::dist::rank() == 0)
    std::printf("{\"preset\":\"%s\",\"ranks\":%d,\"parameters\":%lld,\"gradient_bytes\":%lld,\"buckets\":%lld,"
                "\"median_ms\":%.3f,\"min_ms\":%.3f}\n",
                preset.c_str(), pf::dist::size(), static_cast<long long>(model.num_parameters()),
                static_cast<long long>(sync.gradient_bytes()), static_cast<long long>(sync.num_buckets()),
                ms[ms.size() / 2], ms.front());
  return 0;
}
