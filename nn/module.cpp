#include "nn/module.h"

#include <set>
#include <sstream>
#include <stdexcept>

namespace pf {

void Module::check_new_name(const std::string& name) const {
  if (name.empty() || name.find('.') != std::string::npos)
    throw std::invalid_argument("Module: invalid name '" + name + "' (non-empty, no dots)");
  for (const auto& [n, _] : params_)
    if (n == name) throw std::invalid_argument("Module: name '" + name + "' already registered");
  for (const auto& [n, _] : buffers_)
    if (n == name) throw std::invalid_argument("Module: name '" + name + "' already registered");
  for (const auto& [n, _] : children_)
    if (n == name) throw std::invalid_argument("Module: name '" + name + "' already registered");
}

Var Module::register_parameter(const std::string& name, Tensor value) {
  check_new_name(name);
  Var v(std::move(value), true);
  params_.emplace_back(name, v);
  return v;
}

Var Module::register_buffer(const std::string& name, Tensor value) {
  check_new_name(name);
  Var v(std::move(value), false);
  buffers_.emplace_back(name, v);
  return v;
}

void Module::collect(const std::string& prefix, bool buffers, std::vector<std::pair<std::string, Var>>& out) const {
  for (const auto& [n, v] : buffers ? buffers_ : params_) out.emplace_back(prefix + n, v);
  for (const auto& [n, m] : children_) m->collect(prefix + n + ".", buffers, out);
}

std::vector<std::pair<std::string, Var>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Var>> out;
  collect("", false, out);
  return out;
}

std::vector<Var> Module::parameters() const {
  std::vector<Var> out;
  for (auto& [n, v] : named_parameters()) out.push_back(v);
  return out;
}

std::vector<std::pair<std::string, Var>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Var>> out;
  collect("", true, out);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto& [name, v] : named_parameters()) n += v.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, m] : children_) m->train(on);
}

void Module::zero_grad() {
  for (auto& [n, v] : named_parameters()) v.zero_grad();
}

StateDict Module::state_dict() const {
  StateDict out;
  for (auto& [n, v] : named_parameters()) out[n] = v.value();
  for (auto& [n, v] : named_buffers()) out[n] = v.value();
  return out;
}

void Module::load_state_dict(const StateDict& state, bool strict) {
  std::vector<std::pair<std::string, Var>> all = named_parameters();
  for (auto& b : named_buffers()) all.push_back(b);
  std::vector<std::string> missing, mismatched, unexpected;
  std::set<std::string> known;
  for (auto& [n, v] : all) {
    known.insert(n);
    auto it = state.find(n);
    if (it == state.end()) {
      missing.push_back(n);
    } else if (it->second.shape() != v.shape()) {
      mismatched.push_back(n + " (checkpoint " + shape_str(it->second.shape()) + ", model " + shape_str(v.shape()) +
                           ")");
    }
  }
  for (auto& [n, t] : state)
    if (!known.count(n)) unexpected.push_back(n);
  const bool fail = !mismatched.empty() || (strict && (!missing.empty() || !unexpected.empty()));
  if (fail) {
    std::ostringstream os;
    os << "load_state_dict: state does not match the model.";
    auto list = [&](const char* what, const std::vector<std::string>& names) {
      if (names.empty()) return;
      os << "\n  " << what << " (" << names.size() << "):";
      for (auto& n : names) os << " " << n << ";";
    };
    list("missing keys", missing);
    list("unexpected keys", unexpected);
    list("shape mismatches", mismatched);
    throw std::invalid_argument(os.str());
  }
  // Validated: now copy (cannot fail half way).
  for (auto& [n, v] : all) {
    auto it = state.find(n);
    if (it != state.end()) v.mutable_value().copy_from(it->second);
  }
}

}  // namespace pf
