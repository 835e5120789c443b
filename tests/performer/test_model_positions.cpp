// Position encodings: sinusoidal values, rotary's relative-position property, tables computed for
// an offset equal the rows of a full table (what the recurrent decoder relies on), rotary gradient.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "base/random.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "performer/positions.h"

using namespace pf;

TEST(Positions, SinusoidalValues) {
  Tensor pe = sinusoidal_positions(0, 3, 4);  // (T, C)
  ASSERT_EQ(pe.shape(), (Shape{3, 4}));
  for (int64_t p = 0; p < 3; ++p) {
    EXPECT_FLOAT_EQ(pe.at({p, 0}), std::sin(static_cast<float>(p)));
    EXPECT_FLOAT_EQ(pe.at({p, 1}), std::cos(static_cast<float>(p)));
    EXPECT_FLOAT_EQ(pe.at({p, 2}), static_cast<float>(std::sin(p / 100.0)));  // 10000^(2/4) = 100
    EXPECT_FLOAT_EQ(pe.at({p, 3}), static_cast<float>(std::cos(p / 100.0)));
  }
}

TEST(Positions, OffsetTablesEqualRowsOfTheFullTable) {
  Tensor full = sinusoidal_positions(0, 50, 6);
  Tensor row = sinusoidal_positions(37, 1, 6);
  EXPECT_EQ(std::memcmp(row.data(), full.data() + 37 * 6, 6 * sizeof(float)), 0);
  RotaryTables rf = rotary_tables(0, 50, 8), rr = rotary_tables(37, 1, 8);
  EXPECT_EQ(std::memcmp(rr.cos.data(), rf.cos.data() + 37 * 8, 8 * sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(rr.signed_sin.data(), rf.signed_sin.data() + 37 * 8, 8 * sizeof(float)), 0);
}

TEST(Positions, RotaryDotProductDependsOnlyOnTheOffset) {
  const int64_t D = 8;
  Generator gen(3);
  Tensor q = Tensor::randn({1, D}, gen), k = Tensor::randn({1, D}, gen);
  auto rotated_dot = [&](int64_t m, int64_t n) {
    Var qm = apply_rotary(constant(q), rotary_tables(m, 1, D));
    Var kn = apply_rotary(constant(k), rotary_tables(n, 1, D));
    return sum(mul(qm, kn)).item();
  };
  const float base = rotated_dot(3, 1);
  EXPECT_NEAR(rotated_dot(10, 8), base, 1e-5f);
  EXPECT_NEAR(rotated_dot(102, 100), base, 1e-4f);
  // Position 0 is the identity, and the rotation preserves norms.
  Var q0 = apply_rotary(constant(q), rotary_tables(0, 1, D));
  EXPECT_EQ(std::memcmp(q0.value().data(), q.data(), D * sizeof(float)), 0);
  Var q9 = apply_rotary(constant(q), rotary_tables(9, 1, D));
  EXPECT_NEAR(sum(mul(q9, q9)).item(), sum(mul(constant(q), constant(q))).item(), 1e-5f);
}

TEST(Positions, RotaryGradient) {
  Generator gen(5);
  const RotaryTables tables = rotary_tables(2, 3, 4);
  auto f = [&](const std::vector<Var>& in) { return apply_rotary(in[0], tables); };
  GradcheckResult r = gradcheck(f, {Tensor::randn({2, 2, 3, 4}, gen)});  // (B,H,T,D)
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(Positions, RotaryChecksShapes) {
  EXPECT_THROW(apply_rotary(constant(Tensor({2, 3, 4})), rotary_tables(0, 5, 4)), std::invalid_argument);
  EXPECT_THROW(rotary_tables(0, 2, 3), std::invalid_argument);  // odd head dim
}
