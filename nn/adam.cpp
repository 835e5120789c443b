// Adam and AdamW, written to match torch.optim.Adam / AdamW (single-tensor path) operation for
// operation: scalar coefficients in double, rounded to float once; element-wise work in float.
#include <cmath>
#include <stdexcept>

#include "autograd/parallel.h"
#include "base/format.h"
#include "nn/optimizer.h"

namespace pf {

namespace {
[[noreturn]] void bad(const char* option, float value, const char* why) {
  throw std::invalid_argument(std::string("AdamOptions: ") + option + " = " + float_str(value) + ": " + why);
}
}  // namespace

void AdamOptions::validate() const {
  if (!(lr >= 0.f) || !std::isfinite(lr)) bad("lr", lr, "must be finite and >= 0");
  if (!(beta1 >= 0.f && beta1 < 1.f)) bad("beta1", beta1, "must be in [0, 1)");
  if (!(beta2 >= 0.f && beta2 < 1.f)) bad("beta2", beta2, "must be in [0, 1)");
  if (!(eps >= 0.f)) bad("eps", eps, "must be >= 0");
  if (!(weight_decay >= 0.f)) bad("weight_decay", weight_decay, "must be >= 0");
}

Adam::Adam(NamedParameters named_params, AdamOptions o, const DecayFilter& decay_filter)
    : Adam(std::move(named_params), o, decay_filter, false) {}

Adam::Adam(NamedParameters named_params, AdamOptions o, const DecayFilter& decay_filter, bool decoupled)
    : Optimizer(std::move(named_params), (o.validate(), o.lr), decay_filter), options_(o), decoupled_(decoupled) {}

AdamW::AdamW(NamedParameters named_params, AdamOptions o, const DecayFilter& decay_filter)
    : Adam(std::move(named_params), o, decay_filter, true) {}

void Adam::step() {
  const double beta1 = options_.beta1, beta2 = options_.beta2;
  const float b1 = options_.beta1, b2 = options_.beta2;
  const float c1 = static_cast<float>(1.0 - beta1), c2 = static_cast<float>(1.0 - beta2);
  const float eps = options_.eps;
  for (size_t i = 0; i < params_.size(); ++i) {
    Var& p = params_[i].second;
    if (!p.has_grad()) continue;
    const float wd = decay_[i] ? options_.weight_decay : 0.f;
    ParamState& st = state_for(i);
    auto m_it = st.buffers.find("exp_avg");
    if (m_it == st.buffers.end()) {
      m_it = st.buffers.emplace("exp_avg", Tensor::zeros(p.shape())).first;
      st.buffers.emplace("exp_avg_sq", Tensor::zeros(p.shape()));
    }
    float* m = m_it->second.data();
    float* v = st.buffers.at("exp_avg_sq").data();
    const int64_t t = ++st.step;
    const double bias1 = 1.0 - std::pow(beta1, static_cast<double>(t));
    const double bias2 = 1.0 - std::pow(beta2, static_cast<double>(t));
    const float neg_step_size = static_cast<float>(-(static_cast<double>(lr_) / bias1));
    const float bias2_sqrt = static_cast<float>(std::sqrt(bias2));
    // AdamW: p *= 1 - lr * wd (decoupled); Adam: g += wd * p (L2).
    const float shrink = static_cast<float>(1.0 - static_cast<double>(lr_) * static_cast<double>(wd));
    const bool decoupled = decoupled_;
    float* pp = p.mutable_value().data();  // an in-place update: bumps the version (autograd/var.h)
    const float* pg = p.grad().data();
    parallel_for(p.numel(), [&](int64_t s, int64_t e) {
      for (int64_t j = s; j < e; ++j) {
        float g = pg[j];
        if (wd != 0.f) {
          if (decoupled)
            pp[j] = pp[j] * shrink;
          else
            g = g + wd * pp[j];
        }
        m[j] = m[j] * b1 + c1 * g;
        v[j] = v[j] * b2 + c2 * g * g;
        const float denom = std::sqrt(v[j]) / bias2_sqrt + eps;
        pp[j] = pp[j] + neg_step_size * (m[j] / denom);
      }
    });
  }
  ++step_count_;
}

}  // namespace pf
