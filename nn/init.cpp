#include "nn/init.h"

#include <cmath>
#include <stdexcept>

#include "base/format.h"

namespace pf {

void normal_(Tensor& t, Generator& gen, float mean, float stddev) {
  if (!(stddev >= 0.f)) throw std::invalid_argument("normal_: stddev must be >= 0, got " + float_str(stddev));
  float* p = t.data();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = gen.normal(mean, stddev);
}

void uniform_(Tensor& t, Generator& gen, float low, float high) {
  if (!(low <= high)) throw std::invalid_argument("uniform_: low " + float_str(low) + " > high " + float_str(high));
  float* p = t.data();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = gen.uniform(low, high);
}

std::pair<int64_t, int64_t> fan_in_out(const Tensor& t) {
  if (t.dim() < 2)
    throw std::invalid_argument("init: fan-in/fan-out need a weight with at least 2 axes, got shape " +
                                shape_str(t.shape()));
  int64_t receptive = 1;
  for (int64_t i = 2; i < t.dim(); ++i) receptive *= t.size(i);
  return {t.size(1) * receptive, t.size(0) * receptive};
}

void xavier_uniform_(Tensor& t, Generator& gen, float gain) {
  auto [fan_in, fan_out] = fan_in_out(t);
  const double bound = gain * std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  uniform_(t, gen, static_cast<float>(-bound), static_cast<float>(bound));
}

void xavier_normal_(Tensor& t, Generator& gen, float gain) {
  auto [fan_in, fan_out] = fan_in_out(t);
  normal_(t, gen, 0.f, static_cast<float>(gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out))));
}

namespace {
double kaiming_std(const Tensor& t, float a) {
  const double gain = std::sqrt(2.0 / (1.0 + static_cast<double>(a) * a));
  return gain / std::sqrt(static_cast<double>(fan_in_out(t).first));
}
}  // namespace

void kaiming_uniform_(Tensor& t, Generator& gen, float a) {
  const double bound = std::sqrt(3.0) * kaiming_std(t, a);
  uniform_(t, gen, static_cast<float>(-bound), static_cast<float>(bound));
}

void kaiming_normal_(Tensor& t, Generator& gen, float a) {
  normal_(t, gen, 0.f, static_cast<float>(kaiming_std(t, a)));
}

void zeros_(Tensor& t) {
  t.fill(0.f);
}
void ones_(Tensor& t) {
  t.fill(1.f);
}

}  // namespace pf
