#include "autograd/var.h"

#include <stdexcept>

namespace pf {

namespace {
thread_local bool g_grad_enabled = true;
}

void VarImpl::accumulate_grad(const Tensor& g) {
  if (g.shape() != value.shape()) throw_shape_error("backward", "gradient shape differs from value", g.shape(), value.shape());
  if (!grad.defined()) {
    grad = g.clone();
  } else {
    grad.add_(g);
  }
}

Tensor& VarImpl::grad_buffer() {
  if (!grad.defined()) grad = Tensor(value.shape());
  return grad;
}

Var::Var(Tensor value, bool requires_grad) : impl_(std::make_shared<VarImpl>()) {
  impl_->value = std::move(value);
  impl_->requires_grad = requires_grad;
  impl_->is_leaf = true;
}

void Var::zero_grad() { impl_->grad = Tensor(); }

void Var::backward(bool keep_tape) {
  if (numel() != 1)
    throw std::invalid_argument("backward: called on a non-scalar of shape " + shape_str(shape()) +
                                "; pass an explicit seed gradient of that shape");
  backward(Tensor::ones(shape()), keep_tape);
}

void Var::backward(const Tensor& seed, bool keep_tape) {
  if (!requires_grad())
    throw std::invalid_argument("backward: this value does not require a gradient (no input requires one, or it was "
                                "computed under NoGradGuard)");
  if (seed.shape() != shape()) throw_shape_error("backward", "seed shape differs from value", seed.shape(), shape());
  impl_->accumulate_grad(seed);
  Tape& tape = Tape::current();
  if (keep_tape) {
    // Run a copy of the nodes so the tape stays intact for another backward.
    Tape copy = tape;
    copy.run_backward();
  } else {
    tape.run_backward();
    tape.clear();
  }
}

Tape& Tape::current() {
  thread_local Tape tape;
  return tape;
}

void Tape::run_backward() {
  NoGradGuard no_grad;  // the backward closures never record
  for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it) {
    VarImpl* out = it->output.get();
    if (!out->grad.defined()) continue;  // nothing flowed here
    Tensor g = out->grad;
    // An intermediate value's gradient is not needed once pushed to its inputs.
    if (!out->is_leaf) out->grad = Tensor();
    it->backward(g);
  }
}

bool grad_enabled() { return g_grad_enabled; }

NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

bool needs_grad(std::initializer_list<const Var*> inputs) {
  if (!g_grad_enabled) return false;
  for (const Var* v : inputs)
    if (v->requires_grad()) return true;
  return false;
}

bool needs_grad(const std::vector<Var>& inputs) {
  if (!g_grad_enabled) return false;
  for (const Var& v : inputs)
    if (v.requires_grad()) return true;
  return false;
}

Var make_result(Tensor value, bool requires_grad, const char* op, BackwardFn backward) {
  Var out(std::move(value), requires_grad);
  if (requires_grad) {
    out.impl()->is_leaf = false;
    Tape::current().push(Node{out.impl_ptr(), std::move(backward), op});
  }
  return out;
}

}  // namespace pf
