#include "train/interop.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <type_traits>

namespace pf {

namespace {

// The shortest decimal text that reads back to exactly this float.
std::string float_text(float v) {
  char buf[32];
  for (int precision = 1; precision <= 9; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, static_cast<double>(v));
    if (std::strtof(buf, nullptr) == v) break;
  }
  return buf;
}

template <class T>
std::string text(const T& v) {
  if constexpr (std::is_same_v<T, bool>)
    return v ? "true" : "false";
  else if constexpr (std::is_same_v<T, float>)
    return float_text(v);
  else if constexpr (std::is_same_v<T, AttentionKind> || std::is_same_v<T, PositionKind> ||
                     std::is_same_v<T, FeatureMapKind>)
    return to_string(v);
  else
    return std::to_string(v);
}

// Parses the text form of one field; throws std::invalid_argument describing the bad value.
template <class T>
T parse(const std::string& s) {
  auto bad = [&](const char* expected) { return std::invalid_argument("'" + s + "' is not " + expected); };
  if constexpr (std::is_same_v<T, bool>) {
    if (s == "true") return true;
    if (s == "false") return false;
    throw bad("true or false");
  } else if constexpr (std::is_same_v<T, float>) {
    char* end = nullptr;
    errno = 0;
    const float v = std::strtof(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size() || errno == ERANGE) throw bad("a number");
    return v;
  } else if constexpr (std::is_same_v<T, AttentionKind>) {
    return parse_attention(s);
  } else if constexpr (std::is_same_v<T, PositionKind>) {
    return parse_positions(s);
  } else if constexpr (std::is_same_v<T, FeatureMapKind>) {
    return parse_feature_map(s);
  } else {
    static_assert(std::is_integral_v<T>);
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || end != s.c_str() + s.size() || errno == ERANGE || (std::is_unsigned_v<T> && v < 0))
      throw bad("an integer");
    return static_cast<T>(v);
  }
}

// Calls f(name, member pointer, compared) for every ModelConfig field; `compared` is false for the
// fields that belong to a run rather than to the weights (seed, dropout, redraw_every).
template <class F>
void visit_model_fields(F&& f) {
  using M = ModelConfig;
  f("vocab_size", &M::vocab_size, true);
  f("dim", &M::dim, true);
  f("depth", &M::depth, true);
  f("heads", &M::heads, true);
  f("ff_hidden", &M::ff_hidden, true);
  f("features", &M::features, true);
  f("max_seq_len", &M::max_seq_len, true);
  f("attention", &M::attention, true);
  f("causal", &M::causal, true);
  f("positions", &M::positions, true);
  f("tie_embeddings", &M::tie_embeddings, true);
  f("dropout", &M::dropout, false);
  f("orthogonal_features", &M::orthogonal_features, true);
  f("redraw_every", &M::redraw_every, false);
  f("kernel_eps", &M::kernel_eps, true);
  f("chunk_size", &M::chunk_size, true);
  f("shared_key_shift", &M::shared_key_shift, true);
  f("antithetic_features", &M::antithetic_features, true);
  f("local_window", &M::local_window, true);
  f("feature_map", &M::feature_map, true);
  f("favorpp_z", &M::favorpp_z, true);
  f("seed", &M::seed, false);
}

}  // namespace

SafetensorsMetadata model_metadata(const ModelConfig& config, const std::string& vocab_name, int64_t step) {
  SafetensorsMetadata m;
  m["format"] = "pt";
  m["producer"] = "performer-cpp";
  m["vocab"] = vocab_name;
  if (step >= 0) m["step"] = std::to_string(step);
  visit_model_fields([&](const char* name, auto member, bool) { m[name] = text(config.*member); });
  return m;
}

void export_safetensors(const PerformerLM& model, const std::string& vocab_name, int64_t step,
                        const std::string& path) {
  save_safetensors(path, model.state_dict(), model_metadata(model.config(), vocab_name, step));
}

std::string metadata_mismatch(const SafetensorsMetadata& metadata, const ModelConfig& model,
                              const std::string& model_name) {
  std::string out;
  visit_model_fields([&](const char* name, auto member, bool compared) {
    if (!compared) return;
    const auto it = metadata.find(name);
    if (it == metadata.end()) return;
    using T = std::remove_cvref_t<decltype(model.*member)>;
    std::string problem;
    try {
      const T v = parse<T>(it->second);
      if (!(v == model.*member))
        problem = std::string(name) + " " + text(v) + " in the file, " + text(model.*member) + " " + model_name;
    } catch (const std::invalid_argument& e) {
      problem = std::string(name) + ": unreadable value in the file (" + e.what() + ")";
    }
    if (!problem.empty()) out += (out.empty() ? "" : ", ") + problem;
  });
  return out;
}

ModelConfig model_config_from_metadata(const SafetensorsMetadata& metadata, const std::string& source) {
  ModelConfig c;
  visit_model_fields([&](const char* name, auto member, bool) {
    const auto it = metadata.find(name);
    if (it == metadata.end()) return;
    using T = std::remove_cvref_t<decltype(c.*member)>;
    try {
      c.*member = parse<T>(it->second);
    } catch (const std::invalid_argument& e) {
      throw SafetensorsError(source + ": metadata field " + name + ": " + e.what());
    }
  });
  try {
    c.validate();
  } catch (const std::invalid_argument& e) {
    throw SafetensorsError(source + ": the metadata describes an invalid model: " + e.what());
  }
  return c;
}

void load_safetensors_into(PerformerLM& model, const Safetensors& file, const std::string& source,
                           const std::string& model_name) {
  const std::string mismatch = metadata_mismatch(file.metadata, model.config(), model_name);
  if (!mismatch.empty())
    throw SafetensorsError(source + ": the file's model differs from the model " + model_name + ": " + mismatch);
  try {
    model.load_state_dict(file.tensors, /*strict=*/true);  // lists every bad name and shape; no change on error
  } catch (const std::invalid_argument& e) {
    throw SafetensorsError(source + ": the tensors do not fit the model " + model_name + ": " + e.what());
  }
}

}  // namespace pf
