#include "nn/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>

#include "base/format.h"

namespace pf {

void ScheduleConfig::validate() const {
  visit_fields([&](const FieldSpec& f, auto member) {
    if (!field_within(f, this->*member)) throw FieldValueError(f.key, flag_text(this->*member), f.range.rule);
  });
  if (!enum_from_name<ScheduleKind>(enum_name(kind)))
    throw FieldValueError("schedule", std::to_string(static_cast<int>(kind)), "unknown schedule kind");
  if (kind != ScheduleKind::Constant && warmup > total_steps)
    throw FieldValueError("warmup", std::to_string(warmup), "must not exceed --steps " + std::to_string(total_steps));
}

float learning_rate_at(const ScheduleConfig& s, int64_t step) {
  if (step < 0) throw std::invalid_argument("learning_rate_at: step must be >= 0, got " + std::to_string(step));
  const double lr = s.lr;
  const int64_t warmup = s.effective_warmup();
  if (step < warmup) return static_cast<float>(lr * static_cast<double>(step + 1) / static_cast<double>(warmup));
  if (s.kind == ScheduleKind::Constant) return s.lr;
  const double span = static_cast<double>(s.total_steps - warmup);
  const double p = span > 0 ? std::clamp(static_cast<double>(step - warmup) / span, 0.0, 1.0) : 1.0;
  const double lr_min = lr * s.min_lr_ratio;
  if (s.kind == ScheduleKind::Cosine)
    return static_cast<float>(lr_min + (lr - lr_min) * 0.5 * (1.0 + std::cos(std::numbers::pi * p)));
  return static_cast<float>(lr_min + (lr - lr_min) * (1.0 - p));
}

}  // namespace pf
