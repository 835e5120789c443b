// Parameter initialization. Every function draws from an explicit Generator, so the same seed
// gives the same model. Fan-in and fan-out follow PyTorch's convention for a weight of shape
// (out, in, ...): fan_in = in * receptive, fan_out = out * receptive, receptive = product of the
// remaining axes.
#pragma once

#include <utility>

#include "base/random.h"
#include "autograd/tensor.h"

namespace pf {

void normal_(Tensor& t, Generator& gen, float mean = 0.f, float stddev = 1.f);
void uniform_(Tensor& t, Generator& gen, float low, float high);
// Glorot and Bengio (2010): U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)).
void xavier_uniform_(Tensor& t, Generator& gen, float gain = 1.f);
// N(0, s^2), s = gain * sqrt(2 / (fan_in + fan_out)).
void xavier_normal_(Tensor& t, Generator& gen, float gain = 1.f);
// He et al. (2015), fan_in mode, leaky-ReLU slope a: gain = sqrt(2 / (1 + a^2)),
// s = gain / sqrt(fan_in); uniform uses b = sqrt(3) * s.
void kaiming_uniform_(Tensor& t, Generator& gen, float a = 0.f);
void kaiming_normal_(Tensor& t, Generator& gen, float a = 0.f);
void zeros_(Tensor& t);
void ones_(Tensor& t);

// (fan_in, fan_out) of a weight with at least 2 axes; throws std::invalid_argument otherwise.
std::pair<int64_t, int64_t> fan_in_out(const Tensor& t);

}  // namespace pf
