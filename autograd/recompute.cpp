#include "autograd/recompute.h"

#include <memory>
#include <string>
#include <utility>

namespace pf {

Var recompute(const std::vector<Var>& inputs, RecomputeFn fn) {
  // Not recording (evaluation, generation): there is no backward to prepare for.
  if (!grad_enabled()) return fn(inputs);
  Tensor value;
  {
    NoGradGuard no_grad;
    value = fn(inputs).value();
  }
  // fn may use parameters that want gradients even when no input does; so, while recording, the
  // output always wants one (a backward that reaches nothing that wants it does nothing).
  std::vector<std::shared_ptr<GradSlot>> saved;
  std::vector<Tensor> values;
  saved.reserve(inputs.size());
  for (const Var& v : inputs) {
    saved.push_back(v.slot_ptr());
    values.push_back(v.value());
  }
  needs_grad(inputs);  // notes the inputs' versions for backward's in-place check (autograd/var.h)
  return make_result(std::move(value), true, "recompute", [saved, values, fn = std::move(fn)](const Tensor& g) {
    TapeScope private_tape;
    EnableGradGuard recording;
    std::vector<Var> leaves;
    leaves.reserve(saved.size());
    for (size_t i = 0; i < saved.size(); ++i) leaves.emplace_back(values[i], saved[i]->requires_grad);
    Var out = fn(leaves);
    if (out.shape() != g.shape())
      throw_shape_error("recompute", "fn's output changed shape between forward and backward", out.shape(), g.shape());
    if (!out.requires_grad()) return;  // nothing inside wants a gradient
    out.backward(g);
    for (size_t i = 0; i < saved.size(); ++i)
      if (saved[i]->requires_grad && leaves[i].has_grad()) saved[i]->accumulate_grad(std::move(leaves[i].grad()));
  });
}

Var recompute_replaying(const Var& x, std::shared_ptr<Generator> gen, std::function<Var(const Var&)> fn) {
  if (!gen) return recompute({x}, [fn = std::move(fn)](const std::vector<Var>& in) { return fn(in[0]); });
  auto start = std::make_shared<const std::string>(gen->state());
  auto after = std::make_shared<std::string>();
  Var out = recompute({x}, [fn = std::move(fn), gen, start, after](const std::vector<Var>& in) {
    const std::string resume = gen->state();
    gen->set_state(*start);
    Var y = fn(in[0]);
    *after = gen->state();
    gen->set_state(resume);
    return y;
  });
  gen->set_state(*after);  // the forward advances the generator as a plain fn(x) would
  return out;
}

}  // namespace pf
