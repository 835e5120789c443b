#include "train/memory_estimate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace pf {

namespace {

constexpr double kFloat = 4.0;

double vocabulary(const TrainConfig& c) {
  return c.data.tokenizer.kind == TokenizerKind::SentencePiece && c.data.tokenizer.vocab_size > 0 ? static_cast<double>(c.data.tokenizer.vocab_size) + 2 : 258.0;
}

// Parameters and buffers of the model (counts, in double: the flags may be far too large for int64 products).
void model_counts(const TrainConfig& c, double& params, double& buffers) {
  const double C = static_cast<double>(c.model.dim), L = static_cast<double>(c.model.depth);
  const double F = static_cast<double>(c.model.ff_hidden), V = vocabulary(c), T = static_cast<double>(c.data.seq_len);
  const double M = static_cast<double>(c.model.features);
  params = V * C + (c.model.tie_embeddings ? 0.0 : V * C + V) + (c.model.positions == PositionKind::Learned ? T * C : 0.0) + 2 * C;
  params += L * (4 * C * C + 4 * C + 2 * C * F + F + C + 4 * C);
  buffers = c.model.attention == AttentionKind::Softmax ? 0.0 : L * M * C;  // one projection of --features rows per block
  if (c.model.learned_features) {  // the projections (M, D) are parameters instead
    params += L * M * (C / static_cast<double>(c.model.heads));  // D = C / H
    buffers = 0.0;
  }
}

std::string gib(double bytes) {
  char buf[64];
  if (bytes >= 1e15)
    std::snprintf(buf, sizeof buf, "%.2g bytes", bytes);
  else if (bytes >= 1e12)
    std::snprintf(buf, sizeof buf, "%.1f TB", bytes / 1e12);
  else if (bytes >= 1e9)
    std::snprintf(buf, sizeof buf, "%.1f GB", bytes / 1e9);
  else
    std::snprintf(buf, sizeof buf, "%.1f MB", bytes / 1e6);
  return buf;
}

double meminfo_available() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  double kb = 0;
  while (in >> key >> kb) {
    if (key == "MemAvailable:") return kb * 1024.0;
    in.ignore(1 << 10, '\n');
  }
  return 0;
}

double cgroup_available() {
  std::ifstream max_in("/sys/fs/cgroup/memory.max"), cur_in("/sys/fs/cgroup/memory.current");
  std::string max_text;
  double current = 0;
  if (!(max_in >> max_text) || max_text == "max" || !(cur_in >> current)) return 0;
  const double limit = std::strtod(max_text.c_str(), nullptr);
  return limit > current ? limit - current : 1.0;
}

}  // namespace

MemoryEstimate estimate_memory(const TrainConfig& c) {
  MemoryEstimate e;
  double params = 0, buffers = 0;
  model_counts(c, params, buffers);
  e.parameters = params;
  e.model = (params + buffers) * kFloat;
  e.optimizer = params * kFloat * (c.optimizer.kind == OptimizerKind::Sgd ? 2.0 : 3.0);  // gradients + state
  const double rows = std::ceil(static_cast<double>(c.data.batch_size) / static_cast<double>(std::max<int64_t>(1, c.distributed.world_size)));
  const double tokens = rows * static_cast<double>(c.data.seq_len);
  const double H = static_cast<double>(c.model.heads), M = static_cast<double>(c.model.features);
  double attention = 2 * H * M;
  if (c.model.attention == AttentionKind::Softmax) attention = 2 * H * static_cast<double>(c.data.seq_len);
  if (c.model.attention == AttentionKind::FavorLocal) attention += 2 * H * static_cast<double>(std::min(c.model.local_window, c.data.seq_len));
  const double per_block = 8 * static_cast<double>(c.model.dim) + static_cast<double>(c.model.ff_hidden) + attention;
  e.activations = tokens * kFloat * (static_cast<double>(c.model.depth) * per_block + 2 * vocabulary(c));
  e.batches = static_cast<double>(c.run.grad_accum) * tokens * 3 * kFloat;
  return e;
}

double available_memory() {
  const double mem = meminfo_available(), cgroup = cgroup_available();
  if (mem > 0 && cgroup > 0) return std::min(mem, cgroup);
  return std::max(mem, cgroup);
}

void check_memory(const TrainConfig& c, int ranks_on_host, double available) {
  if (available < 0) available = available_memory();
  const MemoryEstimate e = estimate_memory(c);
  const double total = e.total(ranks_on_host);
  if (available <= 0 || total <= available) return;
  struct Part {
    const char* name;
    double bytes;
    const char* flags;
  };
  const Part parts[] = {
      {"model", e.model, "--dim, --depth, --ff-hidden, --features, --seq-len (learned positions), --vocab-size"},
      {"optimizer state", e.optimizer, "--dim, --depth, --ff-hidden, --optimizer"},
      {"activations", e.activations, "--batch-size, --seq-len, --dim, --depth, --ff-hidden, --heads, --features"},
      {"batches", e.batches, "--grad-accum, --batch-size, --seq-len"},
  };
  const Part* largest = &parts[0];
  std::string detail;
  for (const Part& p : parts) {
    if (p.bytes > largest->bytes) largest = &p;
    detail += std::string(detail.empty() ? "" : ", ") + p.name + " " + gib(p.bytes);
  }
  char params[64];
  std::snprintf(params, sizeof params, "%.3g", e.parameters);
  throw std::invalid_argument(
      "this run needs at least " + gib(total) + " of memory (" + detail + " per process; " + params +
      " parameters" + (ranks_on_host > 1 ? "; " + std::to_string(ranks_on_host) + " ranks on this host" : "") +
      ") but " + gib(available) + " are available. The largest part, the " + largest->name + ", decides it: lower " +
      largest->flags +
      " (the values given: --dim " + std::to_string(c.model.dim) + " --depth " + std::to_string(c.model.depth) + " --ff-hidden " +
      std::to_string(c.model.ff_hidden) + " --features " + std::to_string(c.model.features) + " --seq-len " +
      std::to_string(c.data.seq_len) + " --batch-size " + std::to_string(c.data.batch_size) + " --grad-accum " +
      std::to_string(c.run.grad_accum) + ")");
}

}  // namespace pf
