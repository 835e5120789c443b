// Learning-rate schedules: pure functions of the step, so a resumed run needs only the step count.
#pragma once

#include <cstdint>
#include <string>

namespace pf {

struct ScheduleConfig {
  std::string kind = "cosine";  // constant | cosine | linear
  float lr = 1e-3f;             // peak learning rate
  int64_t warmup = 0;           // linear warm-up steps
  int64_t total_steps = 1000;   // decay reaches lr * min_lr_ratio here (and stays)
  float min_lr_ratio = 0.1f;    // in [0, 1]
  // Throws std::invalid_argument naming the option and its value.
  void validate() const;
};

// step counts from 0. During warm-up (step < warmup): lr * (step + 1) / warmup, so step 0 uses
// lr / warmup and step warmup - 1 the full lr. Afterwards, with progress
// p = (step - warmup) / (total_steps - warmup) clamped to [0, 1] and lr_min = lr * min_lr_ratio:
//   constant: lr
//   cosine:   lr_min + (lr - lr_min) * (1 + cos(pi p)) / 2   (Loshchilov & Hutter 2017, no restarts)
//   linear:   lr_min + (lr - lr_min) * (1 - p)
float learning_rate_at(const ScheduleConfig& s, int64_t step);

}  // namespace pf
