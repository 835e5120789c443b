// Named model and batch shapes, defined once: performer-train --preset, performer-bench --preset and
// quality-run all read this table. b1 and b2 are the benchmark shapes (docs/ARCHITECTURE.md,
// "Benchmark shapes"), b3 the wider and deeper one of the scaling table (BENCHMARKS.md, issue 28);
// tiny and small are quick starting points.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "performer/config.h"

namespace pf {

struct ShapePreset {
  std::string name;
  int64_t dim = 0, depth = 0, heads = 0, ff_hidden = 0, features = 0;
  int64_t seq_len = 0;     // becomes ModelConfig::max_seq_len
  int64_t batch_size = 0;  // sequences per step
};

// tiny, small, b1, b2, b3 (in that order).
const std::vector<ShapePreset>& shape_presets();
// "tiny, small, b1, b2, b3": for messages and --help.
std::string shape_preset_names();
// The preset called `name`; throws std::invalid_argument listing the names if there is none.
const ShapePreset& shape_preset(const std::string& name);
// Sets dim, depth, heads, ff_hidden, features and max_seq_len of `c` from the preset.
void apply_shape(const ShapePreset& preset, ModelConfig& c);

}  // namespace pf
