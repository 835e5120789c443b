// SGD's update, written to match torch.optim.SGD (single-tensor path) operation for operation:
// scalar coefficients are computed in double and rounded to float once, as PyTorch does with
// its Python-float hyperparameters.
#include <cmath>
#include <stdexcept>

#include "autograd/parallel.h"
#include "base/format.h"
#include "nn/optimizer.h"

namespace pf {

namespace {
[[noreturn]] void bad(const char* option, float value, const char* why) {
  throw std::invalid_argument(std::string("SGDOptions: ") + option + " = " + float_str(value) + ": " + why);
}
}  // namespace

void SGDOptions::validate() const {
  if (!(lr >= 0.f) || !std::isfinite(lr)) bad("lr", lr, "must be finite and >= 0");
  if (!(momentum >= 0.f)) bad("momentum", momentum, "must be >= 0");
  if (!(weight_decay >= 0.f)) bad("weight_decay", weight_decay, "must be >= 0");
  if (!(dampening >= 0.f && dampening <= 1.f)) bad("dampening", dampening, "must be in [0, 1]");
  if (nesterov && momentum == 0.f) bad("momentum", momentum, "nesterov = true needs momentum > 0");
  if (nesterov && dampening != 0.f) bad("dampening", dampening, "nesterov = true needs dampening = 0");
}

SGD::SGD(NamedParameters named_params, SGDOptions o, const DecayFilter& decay_filter)
    : Optimizer(std::move(named_params), (o.validate(), o.lr), decay_filter), options_(o) {}

void SGD::step() {
  const float momentum = options_.momentum;
  const float damp = static_cast<float>(1.0 - static_cast<double>(options_.dampening));
  const float neg_lr = -lr_;
  const bool nesterov = options_.nesterov;
  for (size_t i = 0; i < params_.size(); ++i) {
    Var& p = params_[i].second;
    if (!p.has_grad()) continue;
    const float wd = decay_[i] ? options_.weight_decay : 0.f;
    ParamState& st = state_for(i);
    float* pp = p.mutable_value().data();  // an in-place update: bumps the version (autograd/var.h)
    const float* pg = p.grad().data();
    float* buf = nullptr;
    bool first = false;
    if (momentum != 0.f) {
      auto it = st.buffers.find("momentum_buffer");
      if (it == st.buffers.end()) {
        it = st.buffers.emplace("momentum_buffer", Tensor::empty(p.shape())).first;
        first = true;
      }
      buf = it->second.data();
    }
    parallel_for(p.numel(), [&](int64_t s, int64_t e) {
      for (int64_t j = s; j < e; ++j) {
        float d = pg[j];
        if (wd != 0.f) d = d + wd * pp[j];
        if (buf) {
          buf[j] = first ? d : buf[j] * momentum + damp * d;
          d = nesterov ? d + momentum * buf[j] : buf[j];
        }
        pp[j] = pp[j] + neg_lr * d;
      }
    });
    ++st.step;
  }
  ++step_count_;
}

}  // namespace pf
