// Optimizers: SGD (momentum, Nesterov, weight decay), Adam and AdamW, following PyTorch's update
// rules exactly (tests/golden compares five steps of each with torch.optim).
//
// Parameters are given by dotted name (Module::named_parameters()); the name is the key of the
// per-parameter state, which is created lazily at a parameter's first update. Parameters whose
// gradient is undefined at step() are skipped (their state does not advance), as in PyTorch.
//
// State on disk: `ar(optimizer)` with any cereal archive writes a format version, the kind
// ("sgd", "adam", "adamw"), the step count, the learning rate and, per parameter name, the
// per-parameter step and buffers (momentum_buffer; exp_avg, exp_avg_sq) as Tensors (see
// autograd/serialize.h). Loading validates everything (kind, names, shapes) before changing
// anything, so a failed load leaves the optimizer as it was; after a load the next step is
// bit-identical to an uninterrupted run. nn/state_io.h wraps this in a file with a header.
// Hyperparameters are not saved: they come from the constructor (so a resumed run may change them).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "autograd/serialize.h"
#include "base/enum_names.h"
#include "base/fields.h"
#include "autograd/tensor.h"
#include "autograd/var.h"

namespace pf {

using NamedParameters = std::vector<std::pair<std::string, Var>>;

enum class OptimizerKind { Sgd, Adam, AdamW };
template <>
struct EnumNames<OptimizerKind> {
  static constexpr std::array<std::pair<OptimizerKind, const char*>, 3> table{
      {{OptimizerKind::Sgd, "sgd"}, {OptimizerKind::Adam, "adam"}, {OptimizerKind::AdamW, "adamw"}}};
};
// true = apply weight decay to this parameter.
using DecayFilter = std::function<bool(const std::string& name, const Var& p)>;

// The usual exclusions for weight decay: false for biases (last name component "bias"),
// normalization parameters (a name component containing "norm" or starting with "ln"),
// embeddings (a name component containing "emb") and any parameter with fewer than 2 axes
// (which covers LayerNorm gains and biases whatever their names); also for a learned feature
// projection (last component "projection", ModelConfig::learned_features): its rows set the kernel's
// scale (rows of norm about sqrt(D) at the draw), and decay would shrink every feature map towards the
// constant one, i.e. attention towards a plain average; true otherwise.
// This is the default filter of every optimizer.
bool decay_by_default(const std::string& name, const Var& p);
// Decay everything (PyTorch's behaviour for a single parameter group).
bool decay_all(const std::string& name, const Var& p);

// Per-parameter state: the number of updates this parameter received and its named buffers.
struct ParamState {
  int64_t step = 0;
  std::map<std::string, Tensor> buffers;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(step, buffers);
  }
};

class Optimizer {
 public:
  static constexpr uint32_t kStateVersion = 1;

  virtual ~Optimizer();
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient; then step_count() increases by one.
  virtual void step() = 0;
  // "sgd", "adam" or "adamw": saved with the state and checked when loading.
  virtual std::string kind() const = 0;

  // Frees every parameter's gradient.
  void zero_grad();
  float lr() const { return lr_; }
  void set_lr(float lr);  // throws std::invalid_argument if negative or non-finite
  int64_t step_count() const { return step_count_; }

  const NamedParameters& named_parameters() const { return params_; }
  // Whether weight decay applies to parameter `name` (as decided by the filter at construction).
  bool decays(const std::string& name) const;
  // The state of one parameter, or nullptr before its first update.
  const ParamState* state(const std::string& name) const;
  const std::map<std::string, ParamState>& states() const { return state_; }

  template <class Archive>
  void save(Archive& ar) const {
    ar(kStateVersion, kind(), step_count_, lr_, state_);
  }
  template <class Archive>
  void load(Archive& ar) {
    uint32_t version = 0;
    std::string kind;
    int64_t steps = 0;
    float lr = 0.f;
    std::map<std::string, ParamState> state;
    ar(version, kind);
    check_version_and_kind(version, kind);
    ar(steps, lr, state);
    restore(steps, lr, std::move(state));
  }

 protected:
  // Throws on an empty name, duplicate names, an undefined Var or a negative lr.
  Optimizer(NamedParameters params, float lr, const DecayFilter& decay_filter);

  // The state of parameter i, created (step 0, no buffers) on first use.
  ParamState& state_for(size_t i);
  // The buffers each parameter may hold (checked when loading).
  virtual std::vector<std::string> buffer_names() const = 0;

  NamedParameters params_;
  std::vector<bool> decay_;  // per parameter
  float lr_;
  int64_t step_count_ = 0;
  std::map<std::string, ParamState> state_;

 private:
  void check_version_and_kind(uint32_t version, const std::string& kind) const;
  // Validates the loaded state against the parameters, then installs it (all or nothing).
  void restore(int64_t steps, float lr, std::map<std::string, ParamState> state);
};

// ---------------------------------------------------------------- SGD

struct SGDOptions {
  float lr = 0.01f, momentum = 0.f, weight_decay = 0.f, dampening = 0.f;
  bool nesterov = false;
  // Throws std::invalid_argument naming the option and the value: negative lr, momentum,
  // weight_decay; dampening outside [0, 1]; nesterov without momentum or with dampening.
  void validate() const;
};

// PyTorch's SGD: g += wd * p; buf = g at the first step, then buf = momentum * buf + (1 - dampening) * g;
// g = nesterov ? g + momentum * buf : buf; p -= lr * g.
class SGD : public Optimizer {
 public:
  SGD(NamedParameters named_params, SGDOptions o, const DecayFilter& decay_filter = decay_by_default);
  void step() override;
  std::string kind() const override { return enum_name(OptimizerKind::Sgd); }
  const SGDOptions& options() const { return options_; }

 protected:
  std::vector<std::string> buffer_names() const override { return {"momentum_buffer"}; }

 private:
  SGDOptions options_;
};

// ---------------------------------------------------------------- Adam and AdamW

struct AdamOptions {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.f;
  // Throws std::invalid_argument naming the option and the value: negative lr, eps or
  // weight_decay; betas outside [0, 1).
  void validate() const;
};

// Kingma & Ba (2015), Algorithm 1, as in PyTorch: weight decay is L2 added to the gradient.
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
class Adam : public Optimizer {
 public:
  Adam(NamedParameters named_params, AdamOptions o, const DecayFilter& decay_filter = decay_by_default);
  void step() override;
  std::string kind() const override { return enum_name(OptimizerKind::Adam); }
  const AdamOptions& options() const { return options_; }

 protected:
  // decoupled = AdamW: p *= 1 - lr * wd before the Adam update instead of the L2 term.
  Adam(NamedParameters named_params, AdamOptions o, const DecayFilter& decay_filter, bool decoupled);
  std::vector<std::string> buffer_names() const override { return {"exp_avg", "exp_avg_sq"}; }

 private:
  AdamOptions options_;
  bool decoupled_;
};

// Loshchilov & Hutter (2019), "Decoupled Weight Decay Regularization", as in PyTorch's AdamW.
class AdamW : public Adam {
 public:
  AdamW(NamedParameters named_params, AdamOptions o, const DecayFilter& decay_filter = decay_by_default);
  std::string kind() const override { return enum_name(OptimizerKind::AdamW); }
};

// ---------------------------------------------------------------- the optimizer of a training run

// Which optimizer and its hyperparameters (the learning rate comes from the schedule, nn/schedule.h),
// with performer-train's defaults; make_optimizer builds it.
struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::AdamW;
  double beta1 = 0.9, beta2 = 0.99;  // adam, adamw
  double momentum = 0.9;             // sgd
  double weight_decay = 0.01;
  double clip = 1.0;                 // global gradient norm, 0 = off (applied by the training loop)

  template <class V>
  static void visit_fields(V&& v) {
    using C = OptimizerConfig;
    constexpr auto F = OnResume::Free;
    v(FieldSpec{"optimizer", "sgd, adam or adamw", OnResume::Model}, &C::kind);
    v(FieldSpec{"beta1", "adam, adamw: first-moment decay", F, kFraction}, &C::beta1);
    v(FieldSpec{"beta2", "adam, adamw: second-moment decay", F, kFraction}, &C::beta2);
    v(FieldSpec{"momentum", "sgd: momentum", F, kFraction}, &C::momentum);
    v(FieldSpec{"weight-decay",
                "weight decay (decoupled for adamw; not on biases, norms, embeddings, feature projections)", F,
                Range{0, kMaxFloat, false, false, "must be >= 0 (a float: at most 3.4e38)"}},
      &C::weight_decay);
    v(FieldSpec{"clip", "clip the global gradient norm to this value (0 = off)", F,
                Range{0, kMaxFloat, false, false, "must be >= 0 (0 = off; a float: at most 3.4e38)"}},
      &C::clip);
  }
};

// The optimizer `c` describes over `params`, starting at learning rate `lr` (weight decay filtered by
// decay_by_default).
std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& c, NamedParameters params, float lr);

}  // namespace pf
