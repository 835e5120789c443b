#include "performer/presets.h"

#include <stdexcept>

namespace pf {

const std::vector<ShapePreset>& shape_presets() {
  static const std::vector<ShapePreset> table = {
      {"tiny", 64, 2, 2, 256, 32, 64, 8},
      {"small", 128, 4, 4, 512, 64, 256, 8},
      {"b1", 256, 4, 4, 1024, 128, 1024, 4},
      {"b2", 128, 2, 2, 512, 64, 1024, 1},
      {"b3", 512, 8, 8, 2048, 256, 1024, 4},
  };
  return table;
}

std::string shape_preset_names() {
  std::string names;
  for (const ShapePreset& p : shape_presets()) names += (names.empty() ? "" : ", ") + p.name;
  return names;
}

const ShapePreset& shape_preset(const std::string& name) {
  for (const ShapePreset& p : shape_presets())
    if (p.name == name) return p;
  throw std::invalid_argument("unknown preset '" + name + "' (expected one of: " + shape_preset_names() + ")");
}

void apply_shape(const ShapePreset& preset, ModelConfig& c) {
  c.dim = preset.dim;
  c.depth = preset.depth;
  c.heads = preset.heads;
  c.ff_hidden = preset.ff_hidden;
  c.features = preset.features;
  c.max_seq_len = preset.seq_len;
}

}  // namespace pf
