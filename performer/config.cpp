#include "performer/config.h"

#include <cmath>
#include <cstdlib>
#include <map>
#include <stdexcept>

#include "base/format.h"

namespace pf {

namespace {

// One rule set, two ways of naming a field: the library's "heads (3)" and the command line's
// "--heads 3" (a field without a flag of its own keeps its member name).
void check(const ModelConfig& c, bool as_flags) {
  auto name = [&](const ModelField& f, const std::string& value) {
    if (as_flags && f.flag()) return "--" + std::string(f.flag()) + " " + value;
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
    if constexpr (NamedEnum<T>) {
      if (!enum_from_name<T>(enum_name(v)))
        reject(std::string(f.name) + " (" + std::to_string(static_cast<int>(v)) + ")",
               "is not one of: " + enum_choices<T>());
    }
    named[f.name] = name(f, flag_text(v));
    if (!field_within(f.spec, v)) reject(named[f.name], f.spec.range.rule);
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
  // A learned projection: the exponential (softmax-kernel) features of favor and favor-local (FAVOR+ or
  // FAVOR++). Softmax attention has no projection; relu is refused by choice: the option is the learned
  // exponential map (the kernels' dW holds for ReLU features too, performer/favor.h).
  if (c.learned_features && c.attention != AttentionKind::Favor && c.attention != AttentionKind::FavorLocal)
    reject(named["learned_features"],
           std::string(as_flags ? "needs --attention" : "needs attention") + " favor or favor-local, got " +
               to_string(c.attention) +
               (c.attention == AttentionKind::Softmax ? " (exact softmax attention has no feature projection)"
                                                      : " (the learned feature map is the softmax kernel's)"));
  // A redraw would overwrite the trained projection (and leave the optimizer's moments for another W).
  if (c.learned_features && c.redraw_every > 0)
    reject(named["learned_features"], std::string("trains the projection, which a redraw would replace: needs ") +
                                          (as_flags ? "--redraw-every 0" : "redraw_every 0") + ", got " +
                                          named["redraw_every"]);
}

}  // namespace

void ModelConfig::validate() const { check(*this, false); }
void ModelConfig::validate_flags() const { check(*this, true); }

std::string ModelConfig::describe() const {
  std::string out;
  visit_fields([&](const ModelField& f, auto member) {
    out += (out.empty() ? "" : ", ") + std::string(f.name) + " " + flag_text(this->*member);
  });
  return out;
}

}  // namespace pf
