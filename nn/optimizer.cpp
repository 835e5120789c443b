#include "nn/optimizer.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>
#include <sstream>
#include <stdexcept>

#include "base/format.h"

namespace pf {

namespace {

std::vector<std::string> split_dots(const std::string& name) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : name) {
    if (c == '.') {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
  }
  parts.push_back(cur);
  return parts;
}

}  // namespace

bool decay_by_default(const std::string& name, const Var& p) {
  if (p.dim() < 2) return false;
  const std::vector<std::string> parts = split_dots(name);
  if (parts.back() == "bias" || parts.back() == "projection") return false;
  for (const std::string& s : parts)
    if (s.find("norm") != std::string::npos || s.rfind("ln", 0) == 0 || s.find("emb") != std::string::npos)
      return false;
  return true;
}

bool decay_all(const std::string&, const Var&) {
  return true;
}

Optimizer::~Optimizer() = default;

Optimizer::Optimizer(NamedParameters params, float lr, const DecayFilter& decay_filter)
    : params_(std::move(params)), lr_(lr) {
  set_lr(lr);
  std::set<std::string> seen;
  for (const auto& [name, p] : params_) {
    if (name.empty()) throw std::invalid_argument("Optimizer: a parameter has an empty name");
    if (!p.defined()) throw std::invalid_argument("Optimizer: parameter '" + name + "' is undefined");
    if (!seen.insert(name).second)
      throw std::invalid_argument("Optimizer: parameter name '" + name + "' appears twice");
    decay_.push_back(decay_filter ? decay_filter(name, p) : true);
  }
}

void Optimizer::zero_grad() {
  for (auto& [name, p] : params_) p.zero_grad();
}

void Optimizer::set_lr(float lr) {
  if (!(lr >= 0.f) || !std::isfinite(lr))
    throw std::invalid_argument("Optimizer: learning rate must be finite and >= 0, got " + float_str(lr));
  lr_ = lr;
}

bool Optimizer::decays(const std::string& name) const {
  for (size_t i = 0; i < params_.size(); ++i)
    if (params_[i].first == name) return decay_[i];
  throw std::invalid_argument("Optimizer::decays: no parameter named '" + name + "'");
}

const ParamState* Optimizer::state(const std::string& name) const {
  auto it = state_.find(name);
  return it == state_.end() ? nullptr : &it->second;
}

ParamState& Optimizer::state_for(size_t i) {
  return state_[params_[i].first];
}

void Optimizer::check_version_and_kind(uint32_t version, const std::string& kind) const {
  if (version == 0 || version > kStateVersion)
    throw std::runtime_error("Optimizer load: state format version " + std::to_string(version) +
                             ", this build reads versions 1 to " + std::to_string(kStateVersion));
  if (kind != this->kind())
    throw std::runtime_error("Optimizer load: the saved state is for a '" + kind + "' optimizer, this one is '" +
                             this->kind() + "'");
}

void Optimizer::restore(int64_t steps, float lr, std::map<std::string, ParamState> state) {
  std::vector<std::string> problems;
  if (steps < 0) problems.push_back("negative step count " + std::to_string(steps));
  if (!(lr >= 0.f) || !std::isfinite(lr)) problems.push_back("invalid learning rate " + float_str(lr));
  const std::vector<std::string> allowed = buffer_names();
  for (const auto& [name, ps] : state) {
    const Var* param = nullptr;
    for (const auto& [n, p] : params_)
      if (n == name) param = &p;
    if (!param) {
      problems.push_back("unexpected parameter '" + name + "'");
      continue;
    }
    if (ps.step < 0) problems.push_back(name + ": negative step " + std::to_string(ps.step));
    for (const auto& [slot, t] : ps.buffers) {
      if (std::find(allowed.begin(), allowed.end(), slot) == allowed.end())
        problems.push_back(name + ": unknown buffer '" + slot + "'");
      else if (t.shape() != param->shape())
        problems.push_back(name + "." + slot + ": shape " + shape_str(t.shape()) + ", parameter " +
                           shape_str(param->shape()));
    }
  }
  if (!problems.empty()) {
    std::ostringstream os;
    os << "Optimizer load (" << kind() << "): the saved state does not match the parameters (" << problems.size()
       << " problems):";
    for (const auto& p : problems) os << "\n  " << p;
    throw std::runtime_error(os.str());
  }
  step_count_ = steps;
  lr_ = lr;
  state_ = std::move(state);
}

std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& c, NamedParameters params, float lr) {
  if (c.kind == OptimizerKind::Sgd) {
    SGDOptions o;
    o.lr = lr;
    o.momentum = static_cast<float>(c.momentum);
    o.weight_decay = static_cast<float>(c.weight_decay);
    return std::make_unique<SGD>(std::move(params), o);
  }
  AdamOptions o;
  o.lr = lr;
  o.beta1 = static_cast<float>(c.beta1);
  o.beta2 = static_cast<float>(c.beta2);
  o.weight_decay = static_cast<float>(c.weight_decay);
  if (c.kind == OptimizerKind::Adam) return std::make_unique<Adam>(std::move(params), o);
  return std::make_unique<AdamW>(std::move(params), o);
}

}  // namespace pf
