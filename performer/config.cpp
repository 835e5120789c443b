#include "performer/config.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <map>
#include <stdexcept>

#include "base/format.h"

namespace pf {

std::string to_string(AttentionKind kind) {
  switch (kind) {
    case AttentionKind::Favor:
      return "favor";
    case AttentionKind::Relu:
      return "relu";
    case AttentionKind::Softmax:
      return "softmax";
    case AttentionKind::FavorLocal:
      return "favor-local";
  }
  throw std::invalid_argument("to_string: invalid AttentionKind " + std::to_string(static_cast<int>(kind)));
}

std::string to_string(PositionKind kind) {
  switch (kind) {
    case PositionKind::Learned:
      return "learned";
    case PositionKind::Sinusoidal:
      return "sinusoidal";
    case PositionKind::Rotary:
      return "rotary";
  }
  throw std::invalid_argument("to_string: invalid PositionKind " + std::to_string(static_cast<int>(kind)));
}

std::string to_string(FeatureMapKind kind) {
  switch (kind) {
    case FeatureMapKind::FavorPlus:
      return "favor+";
    case FeatureMapKind::FavorPlusPlus:
      return "favor++";
  }
  throw std::invalid_argument("to_string: invalid FeatureMapKind " + std::to_string(static_cast<int>(kind)));
}

AttentionKind parse_attention(const std::string& s) {
  if (s == "favor") return AttentionKind::Favor;
  if (s == "relu") return AttentionKind::Relu;
  if (s == "softmax") return AttentionKind::Softmax;
  if (s == "favor-local") return AttentionKind::FavorLocal;
  throw std::invalid_argument("attention: unknown kind '" + s + "' (expected favor, relu, softmax or favor-local)");
}

FeatureMapKind parse_feature_map(const std::string& s) {
  if (s == "favor+") return FeatureMapKind::FavorPlus;
  if (s == "favor++") return FeatureMapKind::FavorPlusPlus;
  throw std::invalid_argument("feature map: unknown kind '" + s + "' (expected favor+ or favor++)");
}

PositionKind parse_positions(const std::string& s) {
  if (s == "learned") return PositionKind::Learned;
  if (s == "sinusoidal") return PositionKind::Sinusoidal;
  if (s == "rotary") return PositionKind::Rotary;
  throw std::invalid_argument("positions: unknown kind '" + s + "' (expected learned, sinusoidal or rotary)");
}

template <class T>
std::string model_field_text(const T& v) {
  if constexpr (std::is_same_v<T, bool>)
    return v ? "true" : "false";
  else if constexpr (std::is_same_v<T, float>)
    return exact_str(v);
  else if constexpr (std::is_enum_v<T>)
    return to_string(v);
  else
    return std::to_string(v);
}

template <class T>
void parse_model_field(const std::string& what, const std::string& text, T& out) {
  auto fail = [&](const char* expected) {
    throw std::invalid_argument(what + " '" + text + "': expected " + expected);
  };
  if constexpr (std::is_same_v<T, bool>) {
    if (text == "true" || text == "1")
      out = true;
    else if (text == "false" || text == "0")
      out = false;
    else
      fail("true or false");
  } else if constexpr (std::is_same_v<T, AttentionKind>) {
    out = parse_attention(text);
  } else if constexpr (std::is_same_v<T, PositionKind>) {
    out = parse_positions(text);
  } else if constexpr (std::is_same_v<T, FeatureMapKind>) {
    out = parse_feature_map(text);
  } else if constexpr (std::is_same_v<T, float>) {
    char* end = nullptr;
    const float v = std::strtof(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size()) fail("a number");
    out = v;
  } else {
    T v{};
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) fail("an integer");
    out = v;
  }
}

#define PF_MODEL_FIELD_TYPE(T)                                   \
  template std::string model_field_text<T>(const T&);           \
  template void parse_model_field<T>(const std::string&, const std::string&, T&);
PF_MODEL_FIELD_TYPE(int64_t)
PF_MODEL_FIELD_TYPE(uint64_t)
PF_MODEL_FIELD_TYPE(float)
PF_MODEL_FIELD_TYPE(bool)
PF_MODEL_FIELD_TYPE(AttentionKind)
PF_MODEL_FIELD_TYPE(PositionKind)
PF_MODEL_FIELD_TYPE(FeatureMapKind)
#undef PF_MODEL_FIELD_TYPE

namespace {

int enum_last(AttentionKind) { return static_cast<int>(AttentionKind::FavorLocal); }
int enum_last(PositionKind) { return static_cast<int>(PositionKind::Rotary); }
int enum_last(FeatureMapKind) { return static_cast<int>(FeatureMapKind::FavorPlusPlus); }
std::string enum_name(AttentionKind) { return "AttentionKind"; }
std::string enum_name(PositionKind) { return "PositionKind"; }
std::string enum_name(FeatureMapKind) { return "FeatureMapKind"; }

// One rule set, two ways of naming a field: the library's "heads (3)" and the command line's
// "--heads 3" (a field without a flag of its own keeps its member name).
void check(const ModelConfig& c, bool as_flags) {
  auto name = [&](const ModelField& f, const std::string& value) {
    if (as_flags && f.flag) return "--" + std::string(f.flag) + " " + value;
    return std::string(f.name) + " (" + value + ")";
  };
  auto reject = [&](const std::string& subject, const std::string& rule) {
    throw std::invalid_argument(as_flags ? subject + ": " + rule : "ModelConfig: " + subject + " " + rule);
  };
  // Each field's own rule, in field order; `named` remembers how each field is named.
  std::map<std::string, std::string> named;
  ModelConfig::visit_fields([&](const ModelField& f, auto member) {
    const auto& v = c.*member;
    using T = std::decay_t<decltype(v)>;
    if constexpr (std::is_enum_v<T>) {
      if (static_cast<int>(v) < 0 || static_cast<int>(v) > enum_last(v))
        reject(std::string(f.name) + " (" + std::to_string(static_cast<int>(v)) + ")", "is not a valid " + enum_name(v));
    }
    named[f.name] = name(f, model_field_text(v));
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
      const double x = static_cast<double>(v);
      switch (f.rule) {
        case ModelField::Rule::Positive:
          if (!(x > 0)) reject(named[f.name], "must be > 0");
          break;
        case ModelField::Rule::NonNegative:
          if (!(x >= 0)) reject(named[f.name], "must be >= 0 (0 = never)");
          break;
        case ModelField::Rule::Fraction:
          if (!(x >= 0 && x < 1)) reject(named[f.name], "must be in [0, 1)");
          break;
        case ModelField::Rule::FiniteNonNegative:
          if (!(x >= 0 && std::isfinite(x))) reject(named[f.name], "must be finite and >= 0");
          break;
        case ModelField::Rule::None:
          break;
      }
    }
  });
  // Rules that tie fields together.
  if (c.dim % c.heads != 0) reject(named["heads"], "must divide " + named["dim"] + " (head dim = dim / heads)");
  // Rotary rotates pairs of channels (the two halves of each head).
  if (c.positions == PositionKind::Rotary && c.head_dim() % 2 != 0)
    reject(named["positions"], "needs an even head dim, but " + named["dim"] + " / " + named["heads"] + " = " +
                                   std::to_string(c.head_dim()));
  if (c.antithetic_features && c.features % 2 != 0)
    reject(named["antithetic_features"], "needs an even number of features, got " + named["features"]);
  if (c.local_mix && c.attention != AttentionKind::FavorLocal)
    reject(named["local_mix"], std::string(as_flags ? "needs --attention" : "needs attention") + " favor-local, got " +
                                   to_string(c.attention));
  if (c.feature_map == FeatureMapKind::FavorPlusPlus && c.attention != AttentionKind::Favor &&
      c.attention != AttentionKind::FavorLocal)
    reject(named["feature_map"], std::string(as_flags ? "needs --attention" : "needs attention") +
                                     " favor or favor-local, got " + to_string(c.attention));
}

}  // namespace

void ModelConfig::validate() const { check(*this, false); }
void ModelConfig::validate_flags() const { check(*this, true); }

std::string ModelConfig::describe() const {
  std::string out;
  visit_fields([&](const ModelField& f, auto member) {
    out += (out.empty() ? "" : ", ") + std::string(f.name) + " " + model_field_text(this->*member);
  });
  return out;
}

}  // namespace pf
