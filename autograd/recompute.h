// Activation recomputation ("gradient checkpointing"): trade compute for memory.
//
// recompute(inputs, fn) returns fn(inputs) computed WITHOUT recording: none of fn's intermediate
// values are kept. Its one tape node keeps only the inputs. In the backward pass that node runs fn
// again, this time recording on a private tape (TapeScope) from fresh leaves sharing the inputs'
// values, back-propagates the output gradient through that private graph, and hands the leaves'
// gradients to the inputs. Parameters used inside fn receive their gradients directly, as in the
// plain graph.
//
// fn must compute the same values both times: it must not depend on state that changes between
// the forward and the backward (a random generator it advances must be restored by fn itself,
// see PerformerLM). The gradients are then identical to those of the unrecomputed graph; only the
// peak memory (one fn's intermediates at a time, instead of all of them) and the time (fn's
// forward runs twice) differ.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "autograd/var.h"
#include "base/random.h"

namespace pf {

using RecomputeFn = std::function<Var(const std::vector<Var>& inputs)>;

Var recompute(const std::vector<Var>& inputs, RecomputeFn fn);

// recompute() for a function of one input that draws from a random generator (dropout): the
// recomputation in the backward replays the draws of the forward. The forward's draws start where
// `gen` stood at this call; the backward starts `gen` there again and puts it back afterwards, and
// this call leaves `gen` where a plain fn(x) would have. gen == nullptr: fn draws nothing.
Var recompute_replaying(const Var& x, std::shared_ptr<Generator> gen, std::function<Var(const Var&)> fn);

}  // namespace pf
