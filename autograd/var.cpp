#include "autograd/var.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace pf {

namespace {
thread_local bool g_grad_enabled = true;
thread_local const GradientHook* g_gradient_hook = nullptr;  // innermost GradientHookGuard's
// The inputs of the op being built: set by needs_grad(), taken by make_result().
thread_local std::vector<SavedVersion> g_pending_inputs;

void note_input(const Var& v) {
  if (v.defined()) g_pending_inputs.push_back(SavedVersion{v.slot_ptr(), v.version()});
}

[[noreturn]] void throw_modified(const char* op, uint64_t saved, uint64_t now) {
  throw std::logic_error(std::string("backward: an input of '") + op +
                         "' was modified in place after it was recorded (version " + std::to_string(saved) +
                         " when recorded, " + std::to_string(now) +
                         " now), e.g. by an optimizer step between the forward pass and backward(); its gradient "
                         "would be wrong. Call backward() before modifying the values, or run the forward again.");
}
}  // namespace

GradientHookGuard::GradientHookGuard(GradientHook hook) : hook_(std::move(hook)), previous_(g_gradient_hook) {
  g_gradient_hook = &hook_;
}
GradientHookGuard::~GradientHookGuard() { g_gradient_hook = previous_; }

// An intermediate value's first gradient shares the storage it was given (the residual add hands its
// output's gradient to both inputs, a reshape hands it on as it is) instead of copying it: copy on
// write. Anything that adds into a gradient in place (below, grad_buffer, grad_for_overwrite) first
// copies a buffer that something else still holds. A leaf (a parameter) always gets its own copy:
// optimizers and clipping modify those in place, outside this class.
void GradSlot::accumulate_grad(const Tensor& g) {
  if (g.shape() != shape) throw_shape_error("backward", "gradient shape differs from value", g.shape(), shape);
  if (!grad.defined()) {
    grad = is_leaf ? g.clone() : g;
  } else {
    own_grad();
    grad.add_(g);
  }
}

void GradSlot::own_grad() {
  if (grad.defined() && !grad.sole_owner()) grad = grad.clone();
}

void GradSlot::accumulate_grad(Tensor&& g) {
  if (!grad.defined() && g.sole_owner() && g.shape() == shape) {
    grad = std::move(g);
    return;
  }
  accumulate_grad(static_cast<const Tensor&>(g));
}

Tensor& GradSlot::grad_for_overwrite(float* beta) {
  *beta = grad.defined() ? 1.0f : 0.0f;
  if (!grad.defined()) grad = Tensor::empty(shape);
  own_grad();
  return grad;
}

Tensor& GradSlot::grad_buffer() {
  if (!grad.defined()) grad = Tensor(shape);
  own_grad();
  return grad;
}

Var::Var(Tensor value, bool requires_grad) : d_(std::make_shared<Data>()) {
  d_->slot = std::make_shared<GradSlot>();
  d_->slot->shape = value.shape();
  d_->slot->requires_grad = requires_grad;
  d_->slot->is_leaf = true;
  d_->value = std::move(value);
}

void Var::zero_grad() { d_->slot->grad = Tensor(); }

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
  GradSlot* slot = d_->slot.get();
  if (!slot->is_leaf && slot->tape != &Tape::current()) {
    if (slot->thread != std::this_thread::get_id())
      throw std::logic_error(
          "backward: this value was computed on another thread; the tape that recorded its graph belongs to that "
          "thread (tapes are per thread), so a backward here would find nothing to run and leave every gradient "
          "empty. Call backward() on the thread that ran the forward pass.");
    throw std::logic_error(
        "backward: this value was recorded on another tape of this thread (inside a TapeScope that has ended, or "
        "outside the TapeScope now active); call backward() in the scope that recorded it");
  }
  if (seed.shape() != shape()) throw_shape_error("backward", "seed shape differs from value", seed.shape(), shape());
  slot->accumulate_grad(seed);
  Tape::current().run_backward(!keep_tape);
}

namespace {
thread_local Tape* g_scoped_tape = nullptr;  // innermost TapeScope's tape, if any
}  // namespace

Tape& Tape::current() {
  thread_local Tape tape;
  return g_scoped_tape ? *g_scoped_tape : tape;
}

TapeScope::TapeScope() : previous_(g_scoped_tape) { g_scoped_tape = &tape_; }
TapeScope::~TapeScope() { g_scoped_tape = previous_; }

void Tape::push(Node node) {
  nodes_.push_back(std::move(node));
  // Amortized pruning of dead branches: only when the tape has doubled since the last prune.
  if (nodes_.size() >= prune_at_) {
    prune();
    prune_at_ = std::max<size_t>(1024, 2 * nodes_.size());
  }
}

void Tape::prune() {
  // Consumers come after producers, so one pass from the end suffices: destroying a dead
  // node's closure releases its inputs, which may make earlier nodes dead in turn.
  std::vector<bool> dead(nodes_.size(), false);
  for (size_t k = nodes_.size(); k-- > 0;) {
    if (nodes_[k].output.expired()) {
      dead[k] = true;
      nodes_[k].backward = nullptr;
    }
  }
  std::vector<Node> kept;
  kept.reserve(nodes_.size());
  for (size_t k = 0; k < nodes_.size(); ++k)
    if (!dead[k]) kept.push_back(std::move(nodes_[k]));
  nodes_.swap(kept);
}

void Tape::run_backward(bool release) {
  NoGradGuard no_grad;  // the backward closures never record
  std::vector<bool> done(nodes_.size(), false);
  std::vector<std::shared_ptr<GradSlot>> keep_alive;  // inputs of the nodes already run and released
  for (size_t k = nodes_.size(); k-- > 0;) {
    Node& node = nodes_[k];
    std::shared_ptr<GradSlot> out_ptr = node.output.lock();
    if (!out_ptr) {
      done[k] = true;  // dead: nobody can ever seed it
      node.backward = nullptr;
      continue;
    }
    GradSlot* out = out_ptr.get();
    if (!out->grad.defined()) continue;  // nothing flowed here (another graph, or unused)
    for (const SavedVersion& in : node.inputs) {
      const std::shared_ptr<GradSlot> v = in.var.lock();
      if (v && v->version != in.version) throw_modified(node.op, in.version, v->version);
    }
    done[k] = true;
    Tensor g = out->grad;
    // An intermediate value's gradient is not needed once pushed to its inputs.
    if (!out->is_leaf) out->grad = Tensor();
    if (g_gradient_hook) {
      g = g.clone();
      (*g_gradient_hook)(node.op, g);
    }
    node.backward(g);
    if (release) {
      // Done with this node: free what its closure saved (activations, statistics) now rather than
      // at the end of the pass. The closure also holds its inputs' slots, which earlier nodes still
      // have to receive gradients through, so those are kept alive for the rest of the pass first.
      for (const SavedVersion& in : node.inputs)
        if (std::shared_ptr<GradSlot> v = in.var.lock()) keep_alive.push_back(std::move(v));
      node.backward = nullptr;
    }
  }
  if (release) {
    std::vector<Node> kept;
    for (size_t k = 0; k < nodes_.size(); ++k)
      if (!done[k]) kept.push_back(std::move(nodes_[k]));
    nodes_.swap(kept);
  }
}

bool grad_enabled() { return g_grad_enabled; }

GradModeGuard::GradModeGuard(bool enabled) : previous_(g_grad_enabled) { g_grad_enabled = enabled; }
GradModeGuard::~GradModeGuard() { g_grad_enabled = previous_; }

bool needs_grad(std::initializer_list<const Var*> inputs) {
  g_pending_inputs.clear();
  if (!g_grad_enabled) return false;
  bool any = false;
  for (const Var* v : inputs) any = any || v->requires_grad();
  if (any)
    for (const Var* v : inputs) note_input(*v);
  return any;
}

bool needs_grad(const std::vector<Var>& inputs) {
  g_pending_inputs.clear();
  if (!g_grad_enabled) return false;
  bool any = false;
  for (const Var& v : inputs) any = any || v.requires_grad();
  if (any)
    for (const Var& v : inputs) note_input(v);
  return any;
}

Var make_result(Tensor value, bool requires_grad, const char* op, BackwardFn backward) {
  Var out(std::move(value), requires_grad);
  if (requires_grad) {
    GradSlot* slot = out.slot();
    slot->is_leaf = false;
    Tape& tape = Tape::current();
    slot->tape = &tape;
    slot->thread = std::this_thread::get_id();
    tape.push(Node{out.slot_ptr(), std::move(backward), op, std::move(g_pending_inputs)});
  }
  g_pending_inputs.clear();
  return out;
}

}  // namespace pf
