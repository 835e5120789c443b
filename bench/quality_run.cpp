// quality-run: the model-quality experiment of QUALITY.md. Trains a causal byte-level model on a
// text file (last 10% held out) with fixed hyper-parameters and prints validation loss against
// steps as CSV, so FAVOR+, ReLU and exact softmax can be compared at equal steps.
//
//   quality-run --data ../shared/data/text/tinyshakespeare.txt --attention favor --steps 2000
//               [--seq 256 --batch 16 --lr 1e-3 --warmup 100 --eval-every 250 --eval-batches 20 --threads 1]
//               [--features 128 --kernel-eps 1e-6 --redraw-every 0 --key-shift perkey|shared --antithetic]
//               [--attention favor-local --local-window 16] [--feature-map favor+|favor++ --favorpp-z 4]
//               [--precision fp32|bf16] [--short-conv K] [--local-mix] [--learned-features]
//
// The model is B1-sized (d_model 256, 4 layers, 4 heads, ff 1024, m = 128, learned positions).
#include <CLI/CLI.hpp>
#include <chrono>
#include <algorithm>
#include <cmath>
#include <thread>
#include <cstdio>
#include <iostream>

#include "autograd/gemm.h"
#include "autograd/ops.h"
#include "autograd/parallel.h"
#include "data/data_module.h"
#include "nn/clip.h"
#include "nn/optimizer.h"
#include "nn/schedule.h"
#include "performer/favor.h"
#include "performer/model.h"
#include "performer/presets.h"

using namespace pf;

namespace {

double evaluate(PerformerLM& model, const std::vector<Batch>& batches) {
  NoGradGuard no_grad;
  model.eval();
  double total = 0.0;
  int64_t count = 0;
  for (const Batch& b : batches) {
    Var logits = model.forward(b.inputs, b.batch, b.seq);
    const int64_t n = b.num_targets();
    total += static_cast<double>(cross_entropy(logits, b.targets).item()) * n;
    count += n;
  }
  model.train();
  return count ? total / count : 0.0;
}

// Per layer, on one validation batch: the scale of the FAVOR+ inputs, |x'|^2 / 2 with x' = x D^-1/4
// (the estimator's variance grows like exp of it), mean and max over (batch, head, position), for q and
// k; and for favor models the share of each denominator that eps makes up (favor.h, favor_denominator),
// mean and max over queries. Lines "diag,step,layer,..." on stderr.
void diagnose(PerformerLM& model, const Batch& b, int64_t step) {
  NoGradGuard no_grad;
  model.eval();
  Var x = model.embed(b.inputs, b.batch, b.seq, 0);
  for (int64_t l = 0; l < model.num_blocks(); ++l) {
    const PerformerBlock& block = model.block(l);
    const PerformerAttention::Heads h = block.attn().project(block.ln1().forward(x), nullptr);
    const float scale = 1.0f / std::sqrt(static_cast<float>(model.config().head_dim()));  // (D^-1/4)^2
    auto half_sq = [&](const Tensor& t, double* mean, double* max) {
      const int64_t D = t.size(-1), n = t.numel() / D;
      double sum = 0.0, mx = 0.0;
      for (int64_t r = 0; r < n; ++r) {
        double s = 0.0;
        for (int64_t d = 0; d < D; ++d) s += static_cast<double>(t.data()[r * D + d]) * t.data()[r * D + d];
        s *= 0.5 * scale;
        sum += s;
        mx = std::max(mx, s);
      }
      *mean = sum / static_cast<double>(n);
      *max = mx;
    };
    double qm, qx, km, kx;
    half_sq(h.q.value(), &qm, &qx);
    half_sq(h.k.value(), &km, &kx);
    double eps_mean = 0.0, eps_max = 0.0;
    if (block.attn().has_projection() && model.config().attention == AttentionKind::Favor) {
      FavorOptions opt = block.attn().favor_options();
      const Tensor den = favor_denominator(h.q.value(), h.k.value(), block.attn().projection(), true, opt);
      opt.eps = 0.0f;
      const Tensor den0 = favor_denominator(h.q.value(), h.k.value(), block.attn().projection(), true, opt);
      for (int64_t i = 0; i < den.numel(); ++i) {
        const double share = den.data()[i] > 0.0f ? 1.0 - den0.data()[i] / den.data()[i] : 0.0;
        eps_mean += share;
        eps_max = std::max(eps_max, share);
      }
      eps_mean /= static_cast<double>(den.numel());
    }
    std::fprintf(stderr, "diag,%lld,%lld,q_half_sq_mean=%.3f,q_half_sq_max=%.3f,k_half_sq_mean=%.3f,k_half_sq_max=%.3f,"
                 "eps_share_mean=%.2e,eps_share_max=%.2e\n",
                 static_cast<long long>(step), static_cast<long long>(l), qm, qx, km, kx, eps_mean, eps_max);
    x = block.forward(x, nullptr, nullptr);
  }
  model.train();
}

}  // namespace

// --threads: at most 4 x the cores (more only oversubscribes them, and a huge count crashes OpenMP).
static CLI::Range thread_range() {
  return CLI::Range(1, 4 * static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

int main(int argc, char** argv) {
  CLI::App app{"quality-run: validation loss against steps for one attention kind"};
  std::string data, attention = "favor", key_shift = "perkey", feature_map = "favor+";
  int64_t local_window = ModelConfig{}.local_window;
  float favorpp_z = 4.0f;
  bool antithetic = false, local_mix = false, learned_features = false;
  int64_t short_conv = 0;
  int64_t steps = 2000, features = 128, seq = 256, batch = 16, warmup = 100, eval_every = 250, eval_batches = 20, redraw = 0;
  float lr = 1e-3f, eps = 1e-6f;
  int threads = 1;
  uint64_t seed = 1;
  app.add_option("--data", data, "text file")->required()->check(CLI::ExistingFile);
  app.add_option("--attention", attention)->check(CLI::IsMember(pf::enum_names<pf::AttentionKind>()));
  app.add_option("--local-window", local_window, "favor-local: recent keys scored exactly")
      ->check(CLI::PositiveNumber);
  app.add_option("--feature-map", feature_map, "favor, favor-local: favor+ or favor++")
      ->check(CLI::IsMember(pf::enum_names<pf::FeatureMapKind>()));
  app.add_option("--favorpp-z", favorpp_z, "favor++: the |q' + k'|^2 its parameter A is optimal for")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--short-conv", short_conv, "taps of a causal depthwise convolution of q, k, v (0 = off)")
      ->check(CLI::Range(0, 64));
  app.add_flag("--local-mix", local_mix, "favor-local: learned per-head gain of the far field");
  app.add_flag("--learned-features", learned_features,
               "favor, favor-local: train the feature projection from its random draw (needs --redraw-every 0)");
  app.add_option("--steps", steps)->check(CLI::PositiveNumber);
  app.add_option("--seq", seq)->check(CLI::PositiveNumber);
  app.add_option("--batch", batch)->check(CLI::PositiveNumber);
  app.add_option("--lr", lr)->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup)->check(CLI::NonNegativeNumber);
  app.add_option("--eval-every", eval_every)->check(CLI::PositiveNumber);
  app.add_option("--eval-batches", eval_batches)->check(CLI::PositiveNumber);
  app.add_option("--redraw-every", redraw)->check(CLI::NonNegativeNumber);
  app.add_option("--kernel-eps", eps)->check(CLI::NonNegativeNumber);
  app.add_option("--features", features, "random features per head (m)")->check(CLI::PositiveNumber);
  app.add_option("--key-shift", key_shift, "FAVOR+ key stabilizer: perkey (default) or shared (running max)")
      ->check(CLI::IsMember({"perkey", "shared"}));
  app.add_flag("--antithetic", antithetic, "random features in antithetic pairs [V; -V] (hyperbolic estimator)");
  app.add_option("--threads", threads)->check(thread_range());
  app.add_option("--seed", seed);
  std::string precision = "fp32";
  app.add_option("--precision", precision, "matrix products: fp32 or bf16 (bf16 inputs, fp32 accumulation)")
      ->check(CLI::IsMember(pf::enum_names<pf::Precision>()));
  CLI11_PARSE(app, argc, argv);
  set_num_threads(threads);
  try {
    set_matmul_precision(parse_precision(precision));
  } catch (const std::exception& e) {
    std::cerr << "quality-run: --precision " << precision << ": " << e.what() << "\n";
    return 2;
  }

  DataConfig dc;
  dc.train_files = {data};
  dc.format = Format::Text;
  dc.val_fraction = 0.1;
  dc.seq_len = seq;
  dc.batch_size = batch;
  dc.seed = seed;
  DataModule dm(dc);
  const std::vector<Batch> val = dm.eval_batches(eval_batches);

  ModelConfig mc;
  mc.vocab_size = dm.vocab().size();
  apply_shape(shape_preset("b1"), mc);
  mc.features = features;
  mc.max_seq_len = seq;
  mc.attention = parse_attention(attention);
  mc.redraw_every = redraw;
  mc.kernel_eps = eps;
  mc.shared_key_shift = key_shift == "shared";
  mc.antithetic_features = antithetic;
  mc.local_window = local_window;
  mc.feature_map = parse_feature_map(feature_map);
  mc.favorpp_z = favorpp_z;
  mc.short_conv = short_conv;
  mc.local_mix = local_mix;
  mc.learned_features = learned_features;
  mc.seed = seed;
  PerformerLM model(mc);
  AdamOptions ao;
  ao.lr = lr;
  ao.weight_decay = 0.1f;
  AdamW opt(model.named_parameters(), ao);
  ScheduleConfig sc;
  sc.kind = ScheduleKind::Cosine;
  sc.lr = lr;
  sc.warmup = warmup;
  sc.total_steps = steps;
  sc.min_lr_ratio = 0.1f;

  std::cerr << dm.describe() << "\n";
  std::printf("attention,step,train_loss,val_loss,elapsed_s\n");
  const auto t0 = std::chrono::steady_clock::now();
  double running = 0.0;
  for (int64_t step = 0; step < steps; ++step) {
    // As the Trainer does (train/trainer.cpp): redraw at the start of the step that follows every
    // redraw_every-th, so the evaluation at step s sees the projection step s trained with.
    model.maybe_redraw(step);
    Batch b = dm.next_train_batch();
    opt.set_lr(learning_rate_at(sc, step));
    opt.zero_grad();
    Var loss = cross_entropy(model.forward(b.inputs, b.batch, b.seq), b.targets);
    loss.backward();
    clip_grad_norm(model.parameters(), 1.0f);
    opt.step();
    running = step == 0 ? loss.item() : 0.98 * running + 0.02 * loss.item();
    if ((step + 1) % eval_every == 0 || step + 1 == steps) {
      const double v = evaluate(model, val);
      diagnose(model, val.front(), step + 1);
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("%s,%lld,%.4f,%.4f,%.1f\n", attention.c_str(), static_cast<long long>(step + 1), running, v, el);
      std::fflush(stdout);
    }
  }
  return 0;
}
