// Learning-rate schedules: pure functions of the step, so a resumed run needs only the step count.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <utility>

#include "base/enum_names.h"
#include "base/fields.h"

namespace pf {

enum class ScheduleKind { Constant, Cosine, Linear };
template <>
struct EnumNames<ScheduleKind> {
  static constexpr std::array<std::pair<ScheduleKind, const char*>, 3> table{
      {{ScheduleKind::Constant, "constant"}, {ScheduleKind::Cosine, "cosine"}, {ScheduleKind::Linear, "linear"}}};
};

// warmup's default: adapt to the run's length (effective_warmup).
inline constexpr int64_t kAutoWarmup = -1;

// The defaults are performer-train's.
struct ScheduleConfig {
  ScheduleKind kind = ScheduleKind::Cosine;
  float lr = 2e-3f;             // peak learning rate
  int64_t warmup = kAutoWarmup; // linear warm-up steps; kAutoWarmup: min(50, total_steps / 10)
  int64_t total_steps = 2500;   // the run's optimizer steps; decay reaches lr * min_lr_ratio here (and stays)
  float min_lr_ratio = 0.1f;    // in [0, 1]

  // The warm-up used: warmup when >= 0, else min(50, total_steps / 10), so that a short run gets a
  // proportionate warm-up instead of an error.
  int64_t effective_warmup() const { return warmup >= 0 ? warmup : std::min<int64_t>(50, total_steps / 10); }

  template <class V>
  static void visit_fields(V&& v) {
    using C = ScheduleConfig;
    v(FieldSpec{"steps", "optimizer steps in the whole run (also the schedule length)", OnResume::Free, kPositive},
      &C::total_steps);
    v(FieldSpec{"lr", "peak learning rate", OnResume::Free,
                Range{0, kMaxFloat, true, false, "must be finite and > 0 (a float: at most 3.4e38)"}},
      &C::lr);
    v(FieldSpec{"warmup",
                "linear warm-up steps; -1 (the default) = min(50, --steps / 10). An explicit value must not exceed "
                "--steps",
                OnResume::Free, Range{-1, kMaxCount, false, false, "must be >= 0 (or -1: min(50, --steps / 10))"}},
      &C::warmup);
    v(FieldSpec{"schedule", "learning-rate schedule after warm-up: constant, cosine or linear"}, &C::kind);
    v(FieldSpec{"min-lr-ratio", "final learning rate as a fraction of --lr (cosine, linear)", OnResume::Free,
                Range{0, 1, false, false, "must be in [0, 1]"}},
      &C::min_lr_ratio);
  }

  // Throws std::invalid_argument naming the flag and its value.
  void validate() const;
};

// step counts from 0; warmup below is effective_warmup(). During warm-up (step < warmup): lr * (step + 1) / warmup, so step 0 uses
// lr / warmup and step warmup - 1 the full lr. Afterwards, with progress
// p = (step - warmup) / (total_steps - warmup) clamped to [0, 1] and lr_min = lr * min_lr_ratio:
//   constant: lr
//   cosine:   lr_min + (lr - lr_min) * (1 + cos(pi p)) / 2   (Loshchilov & Hutter 2017, no restarts)
//   linear:   lr_min + (lr - lr_min) * (1 - p)
float learning_rate_at(const ScheduleConfig& s, int64_t step);

}  // namespace pf
