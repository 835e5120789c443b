// Global-norm gradient clipping (Pascanu et al. 2013).
#pragma once

#include <vector>

#include "autograd/var.h"

namespace pf {

// The L2 norm of all gradients together (accumulated in double; parameters without a gradient
// are skipped). If it exceeds max_norm every gradient is scaled by max_norm / norm. Returns the
// norm before clipping. A non-finite norm (inf / NaN gradients) is returned and the gradients
// are left untouched, so the caller can skip the step and report it.
float clip_grad_norm(const std::vector<Var>& params, float max_norm);

// The same global norm without clipping.
double grad_norm(const std::vector<Var>& params);

}  // namespace pf
