// Module: the base of every layer and model. Registers parameters (trained), buffers (saved,
// never trained; e.g. FAVOR+'s random projection) and submodules by name. The dotted name
// (`blocks.3.attn.q_proj.weight`) is the one key for state dicts, optimizer state and
// checkpoints. Parameters and buffers are Var handles: a module keeps its own handle as a
// member, and the registry holds the same handle, so an in-place update through either
// (optimizer step, load_state_dict, redraw) is seen by both.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/tensor.h"
#include "autograd/var.h"

namespace pf {

using StateDict = std::map<std::string, Tensor>;

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Every parameter of this module and its submodules, dotted names, registration order.
  std::vector<std::pair<std::string, Var>> named_parameters() const;
  std::vector<Var> parameters() const;
  std::vector<std::pair<std::string, Var>> named_buffers() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }
  int64_t num_parameters() const;

  void train(bool on = true);  // propagates to children
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();

  // name -> value for every parameter and buffer (handles to the live storage; clone to keep).
  StateDict state_dict() const;
  // Strict by default: every missing, unexpected and mis-shaped key is listed in one
  // std::invalid_argument, and the module is left unchanged when it throws. Values are copied
  // into the existing storage. Non-strict ignores unexpected and missing keys (not shapes).
  void load_state_dict(const StateDict& state, bool strict = true);

 protected:
  // Registers a trainable parameter (requires_grad) and returns its handle.
  Var register_parameter(const std::string& name, Tensor value);
  // Registers a buffer (saved in state dicts, never trained) and returns its handle.
  Var register_buffer(const std::string& name, Tensor value);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    check_new_name(name);
    children_.emplace_back(name, module);
    return module;
  }

 private:
  void check_new_name(const std::string& name) const;
  void collect(const std::string& prefix, bool buffers, std::vector<std::pair<std::string, Var>>& out) const;

  std::vector<std::pair<std::string, Var>> params_;
  std::vector<std::pair<std::string, Var>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// A list of submodules named 0, 1, 2, ... (e.g. the blocks of a model).
template <class M>
class ModuleList : public Module {
 public:
  void push_back(std::shared_ptr<M> m) {
    register_module(std::to_string(items_.size()), m);
    items_.push_back(std::move(m));
  }
  size_t size() const { return items_.size(); }
  M& operator[](size_t i) { return *items_.at(i); }
  const M& operator[](size_t i) const { return *items_.at(i); }
  auto begin() { return items_.begin(); }
  auto end() { return items_.end(); }
  auto begin() const { return items_.cbegin(); }
  auto end() const { return items_.cend(); }

 private:
  std::vector<std::shared_ptr<M>> items_;
};

}  // namespace pf
