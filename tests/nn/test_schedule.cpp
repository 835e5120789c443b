// Learning-rate schedules: warm-up endpoints, cosine midpoint and floor, linear decay, constant,
// validation.
#include <gtest/gtest.h>

#include "nn/schedule.h"

using namespace pf;

TEST(Schedule, WarmupEndpoints) {
  ScheduleConfig s{.kind = ScheduleKind::Cosine, .lr = 1e-3f, .warmup = 10, .total_steps = 110, .min_lr_ratio = 0.1f};
  s.validate();
  EXPECT_FLOAT_EQ(learning_rate_at(s, 0), 1e-4f);  // lr / warmup
  EXPECT_FLOAT_EQ(learning_rate_at(s, 4), 5e-4f);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 9), 1e-3f);   // last warm-up step reaches lr
  EXPECT_FLOAT_EQ(learning_rate_at(s, 10), 1e-3f);  // decay starts from lr
}

TEST(Schedule, CosineMidpointAndFloor) {
  ScheduleConfig s{.kind = ScheduleKind::Cosine, .lr = 2e-3f, .warmup = 10, .total_steps = 110, .min_lr_ratio = 0.1f};
  EXPECT_FLOAT_EQ(learning_rate_at(s, 60), (2e-3f + 2e-4f) / 2);  // halfway through the decay
  EXPECT_FLOAT_EQ(learning_rate_at(s, 110), 2e-4f);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 5000), 2e-4f);  // stays at the floor
  // Monotone non-increasing after warm-up.
  for (int64_t t = 10; t < 120; ++t) EXPECT_LE(learning_rate_at(s, t + 1), learning_rate_at(s, t));
  s.min_lr_ratio = 0.f;
  EXPECT_FLOAT_EQ(learning_rate_at(s, 110), 0.f);
}

TEST(Schedule, LinearAndConstant) {
  ScheduleConfig s{.kind = ScheduleKind::Linear, .lr = 1.f, .warmup = 0, .total_steps = 100, .min_lr_ratio = 0.2f};
  EXPECT_FLOAT_EQ(learning_rate_at(s, 0), 1.f);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 25), 0.8f);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 50), 0.6f);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 100), 0.2f);
  s.kind = ScheduleKind::Constant;
  s.warmup = 4;
  EXPECT_FLOAT_EQ(learning_rate_at(s, 0), 0.25f);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 3), 1.f);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 1000000), 1.f);  // constant ignores decay
}

TEST(Schedule, ValidationNamesTheOption) {
  auto err = [](ScheduleConfig s) -> std::string {
    try {
      s.validate();
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(err({.lr = -1.f}).find("--lr -1: must be finite and > 0"), std::string::npos);
  EXPECT_NE(err({.lr = 0.f}).find("--lr 0:"), std::string::npos);
  EXPECT_NE(err({.warmup = -3}).find("--warmup -3"), std::string::npos);
  EXPECT_NE(err({.total_steps = 0}).find("--steps 0"), std::string::npos);
  EXPECT_NE(err({.warmup = 20, .total_steps = 10}).find("--warmup 20: must not exceed --steps 10"), std::string::npos);
  EXPECT_NE(err({.min_lr_ratio = 1.5f}).find("--min-lr-ratio 1.5"), std::string::npos);
  EXPECT_EQ(err({}), "");
  EXPECT_THROW(learning_rate_at(ScheduleConfig{}, -1), std::invalid_argument);
}

// The default warm-up (-1) adapts to the run's length: min(50, steps / 10).
TEST(Schedule, AutomaticWarmup) {
  ScheduleConfig s;
  EXPECT_EQ(s.warmup, kAutoWarmup);
  s.total_steps = 40;
  EXPECT_EQ(s.effective_warmup(), 4);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 0), s.lr / 4);
  s.total_steps = 5000;
  EXPECT_EQ(s.effective_warmup(), 50);
  s.warmup = 7;
  EXPECT_EQ(s.effective_warmup(), 7);
}
