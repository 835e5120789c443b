// performer-bench: the throughput benchmark of the B1 / B2 shapes (docs/ARCHITECTURE.md, "Benchmark shapes").
//
//   performer-bench train --preset b1|b2|b3 [--seq N] [--batch N] [--attention favor|relu|softmax|favor-local]
//                         [--local-window W] [--threads N] [--steps N] [--warmup N] [--recompute-blocks]
//                         [--precision fp32|bf16] [--short-conv K] [--local-mix] [--learned-features]
//   performer-bench attention --seq N [--batch 1 --heads 4 --head-dim 64 --features 128]
//                         [--kind favor|relu|softmax|favor-local] [--local-window W] [--causal|--bidirectional]
//                         [--threads N]
//   performer-bench generate --context N --tokens N [--preset b1] [--attention favor|relu|softmax|favor-local]
//                         [--local-window W]
//
// Every mode prints a few human lines, then ONE final line of JSON (bench/compare.sh parses it).
// Timings are medians over the timed repetitions after warm-up; peak memory is the process's
// maximum resident set (getrusage), so run one configuration per process.
//   train:     one full step = zero_grad, forward, cross-entropy, backward, AdamW step, on random
//              tokens of a 256-symbol vocabulary.
//   attention: the attention computation alone on random q, k, v (B,H,T,D) that require gradients:
//              forward, then backward of sum(out * r) for a fixed random r.
//   generate:  the prompt (random tokens) is fed through the recurrent Decoder, then `tokens` new
//              tokens are sampled; only the sampling phase is timed.
#include <sys/resource.h>
#include <time.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "base/random.h"
#include "autograd/gemm.h"
#include "autograd/ops.h"
#include "autograd/parallel.h"
#include "nn/attention.h"
#include "nn/optimizer.h"
#include "performer/favor.h"
#include "performer/favor_local.h"
#include "performer/features.h"
#include "performer/generate.h"
#include "performer/model.h"
#include "performer/presets.h"

using namespace pf;
using Clock = std::chrono::steady_clock;

namespace {

double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// CPU time of the whole process (all threads), in ms: on a shared machine the work a step does,
// less sensitive than wall time to how long the other processes kept our threads off the cores.
double process_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

ModelConfig preset_config(const std::string& preset) {
  ModelConfig c;
  c.vocab_size = 256;
  apply_shape(shape_preset(preset), c);
  c.redraw_every = 0;  // no redraw inside a benchmark
  c.dropout = 0.0f;
  return c;
}

std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, Generator& gen) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& t : ids) t = static_cast<int32_t>(gen.below(static_cast<uint64_t>(vocab)));
  return ids;
}

int run_train(const std::string& preset, int64_t seq, int64_t batch, const std::string& attention, int64_t window,
              int threads, int steps, int warmup, bool recompute_blocks, int64_t short_conv, bool local_mix,
              bool learned_features) {
  ModelConfig cfg = preset_config(preset);
  cfg.attention = parse_attention(attention);
  cfg.local_window = window;
  cfg.short_conv = short_conv;
  cfg.local_mix = local_mix;
  cfg.learned_features = learned_features;
  if (seq > 0) cfg.max_seq_len = seq;
  seq = cfg.max_seq_len;
  if (batch <= 0) batch = shape_preset(preset).batch_size;
  PerformerLM model(cfg);
  model.set_recompute_blocks(recompute_blocks);
  AdamOptions ao;
  ao.lr = 1e-4f;
  ao.weight_decay = 0.01f;
  AdamW opt(model.named_parameters(), ao);
  Generator gen(123);
  std::vector<double> times, cpu_times;
  double initial_loss = 0.0;
  std::cerr << "train " << preset << " attention=" << attention;
  if (cfg.attention == AttentionKind::FavorLocal) std::cerr << " window=" << window;
  std::cerr << " seq=" << seq << " batch=" << batch
            << " threads=" << threads << " precision=" << precision_name(Precision::process)
            << " params=" << model.num_parameters()
            << (recompute_blocks ? " recompute-blocks" : "") << "\n";
  for (int s = 0; s < warmup + steps; ++s) {
    std::vector<int32_t> ids = random_tokens(batch * (seq + 1), 256, gen);
    std::vector<int32_t> inputs, targets;
    inputs.reserve(batch * seq);
    targets.reserve(batch * seq);
    for (int64_t b = 0; b < batch; ++b) {
      inputs.insert(inputs.end(), ids.begin() + b * (seq + 1), ids.begin() + b * (seq + 1) + seq);
      targets.insert(targets.end(), ids.begin() + b * (seq + 1) + 1, ids.begin() + (b + 1) * (seq + 1));
    }
    auto t0 = Clock::now();
    const double cpu0 = process_cpu_ms();
    opt.zero_grad();
    Var loss;
    {  // as performer-train's Trainer does: no handle on the logits during the backward
      Var logits = model.forward(inputs, batch, seq);
      loss = cross_entropy(logits, targets);
    }
    loss.backward();
    opt.step();
    const double ms = ms_since(t0), cpu_ms = process_cpu_ms() - cpu0;
    if (s == 0) initial_loss = loss.item();
    const LargeBlockStats lb = large_block_stats();
    std::cerr << "  step " << s << (s < warmup ? " (warm-up)" : "") << ": " << ms << " ms, loss " << loss.item()
              << " (large blocks so far: " << lb.hits << " reused, " << lb.misses << " mapped, "
              << lb.released_bytes / (1 << 20) << " MB released)\n";
    if (s >= warmup) {
      times.push_back(ms);
      cpu_times.push_back(cpu_ms);
    }
  }
  const double step_ms = median(times);
  const double tps = static_cast<double>(batch * seq) / (step_ms / 1000.0);
  std::printf(
      "{\"mode\":\"train\",\"preset\":\"%s\",\"attention\":\"%s\",\"local_window\":%lld,\"seq\":%lld,\"batch\":%lld,\"threads\":%d,"
      "\"params\":%lld,\"tokens_per_s\":%.1f,\"step_ms_median\":%.2f,\"step_cpu_ms_median\":%.2f,\"peak_rss_mb\":%.1f,\"peak_tensor_mb\":%.1f,"
      "\"initial_loss\":%.4f,\"gemm\":\"%s\",\"precision\":\"%s\",\"recompute_blocks\":%s}\n",
      preset.c_str(), attention.c_str(), static_cast<long long>(window), static_cast<long long>(seq),
      static_cast<long long>(batch), threads, static_cast<long long>(model.num_parameters()), tps, step_ms, median(cpu_times), peak_rss_mb(),
      static_cast<double>(peak_live_tensor_bytes()) / (1 << 20), initial_loss, gemm_backend(),
      precision_name(Precision::process), recompute_blocks ? "true" : "false");
  return 0;
}

int run_attention(int64_t seq, int64_t batch, int64_t heads, int64_t head_dim, int64_t features,
                  const std::string& kind, int64_t window, bool causal, int threads, int steps, int warmup) {
  Generator gen(7);
  const Shape shape{batch, heads, seq, head_dim};
  // Realistic scale: entries N(0, 1) so q.k / sqrt(D) is O(1).
  Tensor q = Tensor::randn(shape, gen), k = Tensor::randn(shape, gen), v = Tensor::randn(shape, gen);
  Tensor r = Tensor::randn(shape, gen);
  Tensor proj = orthogonal_random_features(features, head_dim, gen);
  FavorOptions fo;
  fo.kind = kind == "relu" ? FeatureKind::Relu : FeatureKind::Softmax;
  std::vector<double> times;
  for (int s = 0; s < warmup + steps; ++s) {
    Var vq(q, true), vk(k, true), vv(v, true);
    auto t0 = Clock::now();
    Var out = kind == "softmax"       ? softmax_attention(vq, vk, vv, causal)
              : kind == "favor-local" ? (causal ? favor_local_attention(vq, vk, vv, proj, window, fo)
                                                : favor_local_bidirectional(vq, vk, vv, proj, window, fo))
                                      : favor_attention(vq, vk, vv, proj, causal, fo);
    out.backward(r);
    const double ms = ms_since(t0);
    std::cerr << "  rep " << s << (s < warmup ? " (warm-up)" : "") << ": " << ms << " ms\n";
    if (s >= warmup) times.push_back(ms);
  }
  std::printf(
      "{\"mode\":\"attention\",\"kind\":\"%s\",\"local_window\":%lld,\"causal\":%s,\"seq\":%lld,\"batch\":%lld,\"heads\":%lld,"
      "\"head_dim\":%lld,\"features\":%lld,\"threads\":%d,\"ms_median\":%.3f,\"peak_rss_mb\":%.1f}\n",
      kind.c_str(), static_cast<long long>(window), causal ? "true" : "false", static_cast<long long>(seq), static_cast<long long>(batch),
      static_cast<long long>(heads), static_cast<long long>(head_dim), static_cast<long long>(features), threads,
      median(times), peak_rss_mb());
  return 0;
}

int run_generate(const std::string& preset, const std::string& attention, int64_t window, int64_t context,
                 int64_t tokens, int threads) {
  ModelConfig cfg = preset_config(preset);
  cfg.attention = parse_attention(attention);
  cfg.local_window = window;
  cfg.max_seq_len = context + tokens;
  PerformerLM model(cfg);
  model.eval();
  NoGradGuard no_grad;
  Generator gen(11);
  std::vector<int32_t> prompt = random_tokens(context, 256, gen);
  Decoder dec(model);
  auto t0 = Clock::now();
  Tensor logits;
  for (int32_t t : prompt) logits = dec.step(t);
  const double prompt_ms = ms_since(t0);
  SamplingOptions so;
  so.temperature = 1.0f;
  auto t1 = Clock::now();
  for (int64_t i = 0; i < tokens; ++i) {
    int32_t next = sample_token(logits.data(), logits.numel(), so, gen);
    logits = dec.step(next);
  }
  const double gen_ms = ms_since(t1);
  std::cerr << "prompt of " << context << " tokens: " << prompt_ms << " ms; " << tokens << " new tokens: " << gen_ms
            << " ms\n";
  std::printf(
      "{\"mode\":\"generate\",\"preset\":\"%s\",\"attention\":\"%s\",\"local_window\":%lld,\"context\":%lld,\"tokens\":%lld,"
      "\"threads\":%d,\"tokens_per_s\":%.1f,\"prompt_tokens_per_s\":%.1f,\"peak_rss_mb\":%.1f}\n",
      preset.c_str(), attention.c_str(), static_cast<long long>(window), static_cast<long long>(context),
      static_cast<long long>(tokens), threads, tokens / (gen_ms / 1000.0), context / (prompt_ms / 1000.0), peak_rss_mb());
  return 0;
}

}  // namespace

// --threads: at most 4 x the cores (more only oversubscribes them, and a huge count crashes OpenMP).
static CLI::Range thread_range() {
  return CLI::Range(1, 4 * static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

int main(int argc, char** argv) {
  CLI::App app{"performer-bench: training, attention and generation throughput (see BENCHMARKS.md)"};
  app.require_subcommand(1);
  int threads = 2;
  app.add_option("--threads", threads, "threads (one OpenMP pool: our loops and oneDNN)")->check(thread_range());
  std::string precision = "fp32";
  app.add_option("--precision", precision, "matrix products: fp32 or bf16 (bf16 inputs, fp32 accumulation)")
      ->check(CLI::IsMember(pf::enum_names<pf::Precision>()));

  auto* train = app.add_subcommand("train", "full training steps on random tokens");
  std::string preset = "b1", attention = "favor";
  int64_t seq = 0, batch = 0;
  int steps = 5, warmup = 2;
  train->add_option("--preset", preset, "b1 | b2 | b3")->check(CLI::IsMember({"b1", "b2", "b3"}));
  train->add_option("--seq", seq, "sequence length (default: the preset's 1024)")->check(CLI::PositiveNumber);
  train->add_option("--batch", batch, "batch size (default: b1 4, b2 1)")->check(CLI::PositiveNumber);
  train->add_option("--attention", attention, "favor | relu | softmax | favor-local")
      ->check(CLI::IsMember(pf::enum_names<pf::AttentionKind>()));
  int64_t window = ModelConfig{}.local_window;
  const char* window_help = "favor-local: recent keys scored exactly (the query's own included)";
  train->add_option("--local-window", window, window_help)->check(CLI::PositiveNumber);
  train->add_option("--steps", steps, "timed steps")->check(CLI::PositiveNumber);
  train->add_option("--warmup", warmup, "untimed steps first")->check(CLI::NonNegativeNumber);
  train->add_option("--threads", threads, "threads")->check(thread_range());
  train->add_option("--precision", precision, "fp32 | bf16")->check(CLI::IsMember(pf::enum_names<pf::Precision>()));
  bool recompute_blocks = false, local_mix = false, learned_features = false;
  int64_t short_conv = 0;
  train->add_option("--short-conv", short_conv, "taps of the short convolution of q, k, v (0 = off)")
      ->check(CLI::Range(0, 64));
  train->add_flag("--local-mix", local_mix, "favor-local: learned per-head far-field gain");
  train->add_flag("--learned-features", learned_features, "favor, favor-local: train the feature projections");
  train->add_flag("--recompute-blocks", recompute_blocks,
                  "keep only each half-block's input and recompute the half-block in the backward (less memory)");

  auto* attn = app.add_subcommand("attention", "one attention computation, forward + backward");
  int64_t a_seq = 1024, a_batch = 1, heads = 4, head_dim = 64, features = 128;
  std::string kind = "favor";
  bool bidirectional = false;
  int a_steps = 5, a_warmup = 1;
  attn->add_option("--seq", a_seq, "sequence length")->check(CLI::PositiveNumber);
  attn->add_option("--batch", a_batch)->check(CLI::PositiveNumber);
  attn->add_option("--heads", heads)->check(CLI::PositiveNumber);
  attn->add_option("--head-dim", head_dim)->check(CLI::PositiveNumber);
  attn->add_option("--features", features)->check(CLI::PositiveNumber);
  attn->add_option("--kind", kind, "favor | relu | softmax | favor-local")->check(CLI::IsMember(pf::enum_names<pf::AttentionKind>()));
  attn->add_option("--local-window", window, window_help)->check(CLI::PositiveNumber);
  attn->add_flag("--causal,!--bidirectional", bidirectional, "causal (default) or bidirectional");
  attn->add_option("--steps", a_steps)->check(CLI::PositiveNumber);
  attn->add_option("--warmup", a_warmup)->check(CLI::NonNegativeNumber);
  attn->add_option("--threads", threads, "threads")->check(thread_range());
  attn->add_option("--precision", precision, "fp32 | bf16")->check(CLI::IsMember(pf::enum_names<pf::Precision>()));

  auto* gen = app.add_subcommand("generate", "recurrent sampling after a prompt");
  int64_t context = 256, tokens = 256;
  std::string g_preset = "b1", g_attention = "favor";
  gen->add_option("--context", context, "prompt length")->check(CLI::PositiveNumber);
  gen->add_option("--tokens", tokens, "tokens to sample (timed)")->check(CLI::PositiveNumber);
  gen->add_option("--preset", g_preset)->check(CLI::IsMember({"b1", "b2", "b3"}));
  gen->add_option("--attention", g_attention)->check(CLI::IsMember(pf::enum_names<pf::AttentionKind>()));
  gen->add_option("--local-window", window, window_help)->check(CLI::PositiveNumber);
  gen->add_option("--threads", threads, "threads")->check(thread_range());
  gen->add_option("--precision", precision, "fp32 | bf16")->check(CLI::IsMember(pf::enum_names<pf::Precision>()));

  CLI11_PARSE(app, argc, argv);
  // --causal,!--bidirectional: the flag value is true for --causal, false for --bidirectional.
  const bool causal = attn->count("--causal") + attn->count("--bidirectional") == 0 ? true : bidirectional;
  try {
    set_num_threads(threads);
    set_matmul_precision(parse_precision(precision));
    if (*train)
      return run_train(preset, seq, batch, attention, window, threads, steps, warmup, recompute_blocks, short_conv,
                       local_mix, learned_features);
    if (*attn) return run_attention(a_seq, a_batch, heads, head_dim, features, kind, window, causal, threads, a_steps, a_warmup);
    if (*gen) return run_generate(g_preset, g_attention, window, context, tokens, threads);
  } catch (const std::exception& e) {
    std::cerr << "performer-bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
