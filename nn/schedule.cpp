#include "nn/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>

#include "base/format.h"

namespace pf {

namespace {
[[noreturn]] void bad(const std::string& option, const std::string& value, const std::string& why) {
  throw std::invalid_argument("ScheduleConfig: " + option + " = " + value + ": " + why);
}
}  // namespace

void ScheduleConfig::validate() const {
  if (kind != "constant" && kind != "cosine" && kind != "linear")
    bad("kind", "'" + kind + "'", "must be constant, cosine or linear");
  if (!(lr >= 0.f) || !std::isfinite(lr)) bad("lr", float_str(lr), "must be finite and >= 0");
  if (warmup < 0) bad("warmup", std::to_string(warmup), "must be >= 0");
  if (total_steps <= 0) bad("total_steps", std::to_string(total_steps), "must be > 0");
  if (kind != "constant" && warmup > total_steps)
    bad("warmup", std::to_string(warmup), "must not exceed total_steps = " + std::to_string(total_steps));
  if (!(min_lr_ratio >= 0.f && min_lr_ratio <= 1.f)) bad("min_lr_ratio", float_str(min_lr_ratio), "must be in [0, 1]");
}

float learning_rate_at(const ScheduleConfig& s, int64_t step) {
  if (step < 0) throw std::invalid_argument("learning_rate_at: step must be >= 0, got " + std::to_string(step));
  const double lr = s.lr;
  if (step < s.warmup) return static_cast<float>(lr * static_cast<double>(step + 1) / static_cast<double>(s.warmup));
  if (s.kind == "constant") return s.lr;
  const double span = static_cast<double>(s.total_steps - s.warmup);
  const double p = span > 0 ? std::clamp(static_cast<double>(step - s.warmup) / span, 0.0, 1.0) : 1.0;
  const double lr_min = lr * s.min_lr_ratio;
  if (s.kind == "cosine")
    return static_cast<float>(lr_min + (lr - lr_min) * 0.5 * (1.0 + std::cos(std::numbers::pi * p)));
  if (s.kind == "linear") return static_cast<float>(lr_min + (lr - lr_min) * (1.0 - p));
  throw std::invalid_argument("learning_rate_at: unknown schedule kind '" + s.kind + "'");
}

}  // namespace pf
