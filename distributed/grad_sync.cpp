#include "distributed/grad_sync.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "distributed/comm.h"

namespace pf::dist {

GradientSync::GradientSync(std::vector<std::pair<std::string, Var>> parameters,
                           std::vector<std::pair<std::string, Var>> buffers, int64_t bucket_bytes)
    : params_(std::move(parameters)), buffers_(std::move(buffers)) {
  const int64_t cap = std::max<int64_t>(1, bucket_bytes / static_cast<int64_t>(sizeof(float)));
  Bucket b;
  for (size_t i = 0; i < params_.size(); ++i) {
    const int64_t n = params_[i].second.numel();
    total_ += n;
    if (b.last > b.first && b.floats + n + 1 > cap) {
      buckets_.push_back(b);
      b = Bucket{i, i, 0};
    }
    b.last = i + 1;
    b.floats += n + 1;
  }
  if (b.last > b.first) buckets_.push_back(b);
  int64_t largest = 0;
  for (const Bucket& x : buckets_) largest = std::max(largest, x.floats);
  buffer_.resize(static_cast<size_t>(largest));
}

GradientSync::GradientSync(const Module& module, int64_t bucket_bytes)
    : GradientSync(module.named_parameters(), module.named_buffers(), bucket_bytes) {}

void GradientSync::broadcast_from_root() {
  if (size() == 1) return;
  // Parameters and buffers travel in the same order on every rank; each tensor is one broadcast
  // (called once per run, so fusing would save little).
  auto send = [](std::vector<std::pair<std::string, Var>>& list) {
    for (auto& [name, v] : list) {
      Tensor& t = v.mutable_value();
      broadcast(t.data(), t.numel() * static_cast<int64_t>(sizeof(float)), 0);
    }
  };
  send(params_);
  send(buffers_);
}

void GradientSync::average_gradients() {
  reduce(1.0f / static_cast<float>(size()));
}

void GradientSync::reduce(float scale) {
  const auto start = std::chrono::steady_clock::now();
  if (size() > 1) {
    for (const Bucket& b : buckets_) {
      float* p = buffer_.data();
      for (size_t i = b.first; i < b.last; ++i) {
        const Var& v = params_[i].second;
        const int64_t n = v.numel();
        if (v.has_grad())
          std::memcpy(p, v.grad().data(), static_cast<size_t>(n) * sizeof(float));
        else
          std::fill(p, p + n, 0.0f);
        p += n;
      }
      for (size_t i = b.first; i < b.last; ++i) *p++ = params_[i].second.has_grad() ? 1.0f : 0.0f;
      allreduce_sum(buffer_.data(), b.floats);
      p = buffer_.data();
      const float* flags = buffer_.data() + (b.floats - static_cast<int64_t>(b.last - b.first));
      for (size_t i = b.first; i < b.last; ++i) {
        Var& v = params_[i].second;
        const int64_t n = v.numel();
        if (flags[i - b.first] > 0.0f) {
          if (!v.has_grad()) v.grad() = Tensor(v.shape());
          float* g = v.grad().data();
          if (scale == 1.0f)
            std::memcpy(g, p, static_cast<size_t>(n) * sizeof(float));
          else
            for (int64_t k = 0; k < n; ++k) g[k] = p[k] * scale;
        }
        p += n;
      }
    }
  }
  last_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

uint64_t GradientSync::checksum() const {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a over the bytes
  auto feed = [&](const std::vector<std::pair<std::string, Var>>& list) {
    for (const auto& [name, v] : list) {
      const auto* bytes = reinterpret_cast<const unsigned char*>(v.value().data());
      const size_t n = static_cast<size_t>(v.numel()) * sizeof(float);
      for (size_t i = 0; i < n; ++i) {
        h ^= bytes[i];
        h *= 0x100000001b3ull;
      }
    }
  };
  feed(params_);
  feed(buffers_);
  return h;
}

bool GradientSync::replicas_identical() const {
  uint64_t mine = checksum(), root = mine;
  broadcast(&root, sizeof root, 0);
  return !any(mine != root);
}

}  // namespace pf::dist
