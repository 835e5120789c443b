// Var: a differentiable value (a Tensor, its gradient, and whether it wants one), and the tape.
//
// Reverse mode on a Wengert list: every differentiable op run while recording appends one
// Node to the thread's tape: the output it produced and a closure that, given the output's
// gradient, accumulates (+=) into its inputs' gradients (their GradSlots). A closure keeps only the
// values its backward reads, so a recorded value nothing reads is freed when the user drops it. backward() walks the tape from the
// end to the start. Gradients of intermediate values are freed as soon as they have been
// propagated; leaves (parameters, inputs created with requires_grad) keep theirs until
// zero_grad(). The tape is cleared after backward unless keep_tape is asked for.
//
// Two traps are refused rather than silently giving wrong gradients:
//  - The tape is per thread (and per TapeScope): backward() on a value recorded on another thread's
//    tape (or in another TapeScope) throws std::logic_error saying so, instead of finding nothing to
//    run and leaving every gradient empty.
//  - Version counters: every Var has version(), bumped by each in-place modification through the
//    public API (mutable_value(), mark_modified(); the optimizers' step() and Module::load_state_dict
//    bump their parameters). Each recorded op notes the versions of its inputs (the values its
//    backward may read); backward() throws std::logic_error naming the op when one of them has
//    changed since, e.g. an optimizer step between the forward and the backward. The check is
//    conservative (it covers every input of the op, also ones whose value its backward does not
//    read) and costs one counter compare per input per node. Writing through the non-const value()
//    is not seen: modify values in place through mutable_value() (or call mark_modified()).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "autograd/tensor.h"

namespace pf {

// What the tape needs of a value: where its gradient accumulates, and the facts backward checks.
// Recorded ops hold their inputs' slots, not their values: a node keeps alive only the tensors its
// backward reads (captured in its closure), so a value that no backward reads (the input of an add,
// of a reshape or permute, of a reduction) is freed as soon as the user drops it, instead of living
// until backward because some later op once took it as an input.
struct GradSlot {
  Shape shape;  // of the value (and so of the gradient)
  Tensor grad;  // undefined until some gradient arrives
  bool requires_grad = false;
  bool is_leaf = true;  // created by the user, not by an op
  uint64_t version = 0;  // in-place modifications of the value so far (see the header comment)
  // For values produced by a recorded op: the tape it was recorded on and the recording thread.
  const void* tape = nullptr;
  std::thread::id thread;
  // The value rounded to bf16 (raw bits), when a bf16 product made it; valid while version equals
  // bf16_version. Kept here so that it lives as long as the backward closures that read it (linear()).
  Tensor bf16_value;
  uint64_t bf16_version = 0;
  // Adds g into grad (allocating it on first use). Shapes must match.
  void accumulate_grad(const Tensor& g);
  // The same, for a gradient the caller gives up: the first one is taken over without a copy when
  // nothing else shares its storage (otherwise copied as above).
  void accumulate_grad(Tensor&& g);
  // The gradient buffer, allocated zeroed on first use, for ops that accumulate in place
  // (e.g. a GEMM with beta = 1).
  Tensor& grad_buffer();
  // The gradient buffer for an op that computes grad = (its part) + beta * grad, like a GEMM: on first
  // use it is allocated uninitialized and *beta = 0 (overwrite, no zero-fill pass), else *beta = 1.
  Tensor& grad_for_overwrite(float* beta);
  // Copies grad if its storage is shared (an intermediate value's first gradient is, see var.cpp).
  void own_grad();
};

class Var {
 public:
  Var() = default;
  explicit Var(Tensor value, bool requires_grad = false);

  bool defined() const { return static_cast<bool>(d_); }
  const Tensor& value() const { return d_->value; }
  // Mutable access for filling a value before it is used; an in-place modification of a value that
  // a recorded op may still read must go through mutable_value() (or be followed by mark_modified()).
  // Do not give it another shape.
  Tensor& value() { return d_->value; }
  // The value, for an in-place modification: bumps version() first.
  Tensor& mutable_value() {
    ++d_->slot->version;
    return d_->value;
  }
  // Records an in-place modification made through value() or data pointers.
  void mark_modified() { ++d_->slot->version; }
  uint64_t version() const { return d_->slot->version; }
  const Shape& shape() const { return d_->value.shape(); }
  int64_t dim() const { return d_->value.dim(); }
  int64_t size(int64_t axis) const { return d_->value.size(axis); }
  int64_t numel() const { return d_->value.numel(); }
  float item() const { return d_->value.item(); }

  bool requires_grad() const { return d_ && d_->slot->requires_grad; }
  void set_requires_grad(bool r) { d_->slot->requires_grad = r; }
  bool is_leaf() const { return d_->slot->is_leaf; }
  bool has_grad() const { return d_->slot->grad.defined(); }
  // The accumulated gradient; undefined Tensor if none has arrived.
  const Tensor& grad() const { return d_->slot->grad; }
  Tensor& grad() { return d_->slot->grad; }
  void zero_grad();  // frees the gradient (the next backward allocates a fresh zeroed one)

  // Seeds d(this)/d(this) = 1; this must be a scalar (numel 1).
  void backward(bool keep_tape = false);
  // Seeds with an explicit gradient of this value's shape.
  void backward(const Tensor& seed, bool keep_tape = false);

  // A Var sharing the value but cut from the graph (never requires grad).
  Var detach() const { return Var(d_->value, false); }

  // The gradient slot: what a recorded op holds of its inputs (with the value tensors its backward
  // reads, captured separately). Two Vars are the same variable when their slots are.
  GradSlot* slot() const { return d_->slot.get(); }
  const std::shared_ptr<GradSlot>& slot_ptr() const { return d_->slot; }

 private:
  struct Data {
    Tensor value;
    std::shared_ptr<GradSlot> slot;
  };
  std::shared_ptr<Data> d_;
};

// Backward closure: receives the output's gradient and accumulates into captured inputs.
using BackwardFn = std::function<void(const Tensor& grad_output)>;

// An input of a recorded op and its version when the op ran (checked by backward).
struct SavedVersion {
  std::weak_ptr<GradSlot> var;
  uint64_t version = 0;
};

// The node holds its output weakly: when the user drops every handle to a value that nothing
// later consumes (a branch computed for logging, say), the node can never receive a gradient
// and is pruned, so the tape does not leak.
struct Node {
  std::weak_ptr<GradSlot> output;
  BackwardFn backward;
  const char* op = "";
  std::vector<SavedVersion> inputs;  // filled by make_result from the preceding needs_grad call
};

class Tape {
 public:
  static Tape& current();  // the calling thread's tape (the innermost TapeScope's, if any)
  size_t size() const { return nodes_.size(); }
  void clear() { nodes_.clear(); }
  void push(Node node);
  // Runs, from the end back to the start, every node whose output has received a gradient.
  // With `release`, removes the nodes it ran and the dead ones; nodes of other graphs that
  // are still alive (not reached from this backward) stay for their own backward.
  void run_backward(bool release);
  // Drops nodes whose outputs no longer exist.
  void prune();

 private:
  std::vector<Node> nodes_;
  size_t prune_at_ = 1024;
};

// Debugging aid: while a GradientHookGuard lives, every backward on this thread calls its hook with
// each node's op name and a private copy of the gradient arriving at the node's output, before the
// node runs; the node then receives that copy, so the hook may inspect it (e.g. find the first op
// whose gradient is not finite) or change it (e.g. perturb every backward to check that a gradient
// check notices). Nests: the innermost guard's hook is the one called. Costs nothing when none is
// installed.
using GradientHook = std::function<void(const char* op, Tensor& grad_output)>;
class GradientHookGuard {
 public:
  explicit GradientHookGuard(GradientHook hook);
  ~GradientHookGuard();
  GradientHookGuard(const GradientHookGuard&) = delete;
  GradientHookGuard& operator=(const GradientHookGuard&) = delete;

 private:
  GradientHook hook_;
  const GradientHook* previous_;
};

// Is recording on for this thread?
bool grad_enabled();

// RAII: gives the calling thread a fresh, empty tape for its scope, and restores the previous one
// after. recompute() uses it to record and run a backward inside another backward. Nests.
class TapeScope {
 public:
  TapeScope();
  ~TapeScope();
  TapeScope(const TapeScope&) = delete;
  TapeScope& operator=(const TapeScope&) = delete;

 private:
  Tape tape_;
  Tape* previous_;
};

// RAII: sets recording on or off for its scope, and restores the previous setting after. Nests.
class GradModeGuard {
 public:
  explicit GradModeGuard(bool enabled);
  ~GradModeGuard();
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool previous_;
};

// Recording off for the scope (evaluation, generation).
struct NoGradGuard : GradModeGuard {
  NoGradGuard() : GradModeGuard(false) {}
};

// Recording on for the scope (recompute() inside a backward pass).
struct EnableGradGuard : GradModeGuard {
  EnableGradGuard() : GradModeGuard(true) {}
};

// The helper every op uses to produce its output. If recording is on and any input requires a
// gradient, the output requires one too and `make_backward()` is called to build the closure
// (so ops pay for saving tensors only when a backward will run). needs_grad() also notes, for this
// thread, the inputs it was asked about and their versions; the next make_result() puts them on
// its node (the version check of backward), and any needs_grad() call replaces them.
// The closure holds its inputs' gradient slots (Var::slot_ptr()) and, separately, only the tensors
// its backward reads. backward() frees each closure as soon as it has run, keeping alive the slots of
// the inputs noted by needs_grad(): so every input whose slot the closure holds must be among them.
bool needs_grad(std::initializer_list<const Var*> inputs);
bool needs_grad(const std::vector<Var>& inputs);
Var make_result(Tensor value, bool requires_grad, const char* op, BackwardFn backward);

}  // namespace pf
