#include "performer/config.h"

#include <cmath>
#include <stdexcept>

#include "autograd/float_str.h"

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

namespace {

[[noreturn]] void reject(const std::string& what) {
  throw std::invalid_argument("ModelConfig: " + what);
}

void require_positive(const char* field, int64_t value) {
  if (value <= 0) reject(std::string(field) + " (" + std::to_string(value) + ") must be > 0");
}

}  // namespace

void ModelConfig::validate() const {
  require_positive("vocab_size", vocab_size);
  require_positive("dim", dim);
  require_positive("depth", depth);
  require_positive("heads", heads);
  if (dim % heads != 0) reject("heads (" + std::to_string(heads) + ") must divide dim (" + std::to_string(dim) + ")");
  require_positive("ff_hidden", ff_hidden);
  require_positive("features", features);
  require_positive("max_seq_len", max_seq_len);
  require_positive("chunk_size", chunk_size);
  if (static_cast<int>(attention) < 0 || static_cast<int>(attention) > static_cast<int>(AttentionKind::FavorLocal))
    reject("attention (" + std::to_string(static_cast<int>(attention)) + ") is not a valid AttentionKind");
  if (static_cast<int>(positions) < 0 || static_cast<int>(positions) > static_cast<int>(PositionKind::Rotary))
    reject("positions (" + std::to_string(static_cast<int>(positions)) + ") is not a valid PositionKind");
  // Rotary rotates pairs of channels (the two halves of each head).
  if (positions == PositionKind::Rotary && head_dim() % 2 != 0)
    reject("positions = rotary needs an even head dim, but dim (" + std::to_string(dim) + ") / heads (" +
           std::to_string(heads) + ") = " + std::to_string(head_dim()));
  if (!(dropout >= 0.0f && dropout < 1.0f)) reject("dropout (" + float_str(dropout) + ") must be in [0, 1)");
  if (redraw_every < 0) reject("redraw_every (" + std::to_string(redraw_every) + ") must be >= 0 (0 = never)");
  if (antithetic_features && features % 2 != 0)
    reject("antithetic_features needs an even number of features, got " + std::to_string(features));
  if (!(kernel_eps >= 0.0f && std::isfinite(kernel_eps)))
    reject("kernel_eps (" + float_str(kernel_eps) + ") must be finite and >= 0");
  if (attention == AttentionKind::FavorLocal && !causal)
    reject("attention = favor-local is causal only, but causal = false");
  require_positive("local_window", local_window);
  if (static_cast<int>(feature_map) < 0 || static_cast<int>(feature_map) > static_cast<int>(FeatureMapKind::FavorPlusPlus))
    reject("feature_map (" + std::to_string(static_cast<int>(feature_map)) + ") is not a valid FeatureMapKind");
  if (feature_map == FeatureMapKind::FavorPlusPlus && attention != AttentionKind::Favor &&
      attention != AttentionKind::FavorLocal)
    reject("feature_map = favor++ needs attention favor or favor-local, got " + to_string(attention));
  if (!(favorpp_z >= 0.0f && std::isfinite(favorpp_z)))
    reject("favorpp_z (" + float_str(favorpp_z) + ") must be finite and >= 0");
}

}  // namespace pf
