// ModelConfig: the shape and kind of a Performer model. Validated on construction of the model
// and saved with it (checkpoints), so a checkpoint rebuilds its own model.
#pragma once

#include <cereal/cereal.hpp>
#include <cstdint>
#include <string>
#include <type_traits>

namespace pf {

// FAVOR+ softmax kernel, generalized ReLU, exact, and favor-local: exact softmax over a window of recent
// keys plus FAVOR+ for the keys before it (performer/favor_local.h; causal, or a window on both sides for
// bidirectional models).
enum class AttentionKind { Favor, Relu, Softmax, FavorLocal };
// Random features of the softmax kernel (favor, favor-local): FAVOR+ positive features, or FAVOR++
// (optimal positive random features, performer/favor.h).
enum class FeatureMapKind { FavorPlus, FavorPlusPlus };
enum class PositionKind { Learned, Sinusoidal, Rotary };

std::string to_string(AttentionKind kind);
std::string to_string(PositionKind kind);
std::string to_string(FeatureMapKind kind);
// Parse "favor" | "relu" | "softmax" | "favor-local"; throws std::invalid_argument naming the bad value.
AttentionKind parse_attention(const std::string& s);
FeatureMapKind parse_feature_map(const std::string& s);  // "favor+" | "favor++"
PositionKind parse_positions(const std::string& s);  // "learned" | "sinusoidal" | "rotary"

// One field of ModelConfig as ModelConfig::visit_fields describes it.
struct ModelField {
  enum class Rule { None, Positive, NonNegative, Fraction, FiniteNonNegative };
  const char* name;  // the member's name, as library messages print it
  const char* flag;  // the performer-train flag (without "--") that sets it, or nullptr: set otherwise
  bool fixed;        // must match when a checkpoint resumes (dropout and redraw_every may change)
  bool weights;      // describes the weights: must match when weights are loaded into a model (not
                     // the seed, the dropout or the redraw interval)
  uint32_t since;    // the archive version that added the field
  Rule rule;         // the field's own rule; validate() adds the rules that tie fields together
};

struct ModelConfig {
  int64_t vocab_size = 256;
  int64_t dim = 256;          // C
  int64_t depth = 4;          // L, number of blocks
  int64_t heads = 4;          // H; dim / heads = D
  int64_t ff_hidden = 1024;   // feed-forward width
  int64_t features = 128;     // M, random features per head (favor, relu)
  int64_t max_seq_len = 1024; // for learned positions; generation past it is an error
  AttentionKind attention = AttentionKind::Favor;
  bool causal = true;         // false: bidirectional (masked LM)
  PositionKind positions = PositionKind::Learned;
  bool tie_embeddings = false;
  float dropout = 0.0f;
  bool orthogonal_features = true;  // false: iid Gaussian rows
  int64_t redraw_every = 0;         // optimizer steps between projection redraws; 0 = never (QUALITY.md)
  float kernel_eps = 1e-6f;         // FAVOR+ feature floor (see performer/favor.h)
  int64_t chunk_size = 64;          // causal FAVOR+ chunk length
  // FAVOR+ key stabilizer (performer/favor.h, KeyShift): false = PerKey (each key at its own shift,
  // the default), true = Shared (causal: the running max of the prefix). An ablation option.
  bool shared_key_shift = false;
  // Random features in antithetic pairs W = [V; -V] (performer/features.h): the paper's hyperbolic
  // estimator, lower variance at the same M (features must be even). An option; see QUALITY.md.
  bool antithetic_features = false;
  // favor-local: the number of recent keys (the query's own included) scored exactly; >= 1.
  int64_t local_window = 16;
  // favor, favor-local: FAVOR+ or FAVOR++ features. FAVOR++ uses the A that is optimal for
  // |q' + k'|^2 = favorpp_z (performer/favor.h, favorpp_optimal_a); >= 0, 0 gives A = 0 (FAVOR+).
  FeatureMapKind feature_map = FeatureMapKind::FavorPlus;
  float favorpp_z = 4.0f;
  // Short depthwise convolution of q, k and v along time (performer/short_conv.h), kernel short_conv taps
  // per channel, causal (or centered for bidirectional models); 0 = off. Initialized to the identity.
  int64_t short_conv = 0;
  // favor-local: a learned per-head log-gain on the far field inside the shared normalization
  // (performer/favor_local.h, far_log_gain), initialized to 0 (the plain estimator).
  bool local_mix = false;
  uint64_t seed = 1;                // initialization and projection draws

  int64_t head_dim() const { return dim / heads; }

  // The one description of the fields: calls v(ModelField, member pointer) for every field, in
  // archive order. It drives serialization, validation, TrainConfig's conversion to and from the
  // command-line flags, the resume comparison (model_config_mismatch) and describe().
  template <class V>
  static void visit_fields(V&& v) {
    using C = ModelConfig;
    using R = ModelField::Rule;
    v(ModelField{"vocab_size", nullptr, true, true, 0, R::Positive}, &C::vocab_size);  // from the data's vocabulary
    v(ModelField{"dim", "dim", true, true, 0, R::Positive}, &C::dim);
    v(ModelField{"depth", "depth", true, true, 0, R::Positive}, &C::depth);
    v(ModelField{"heads", "heads", true, true, 0, R::Positive}, &C::heads);
    v(ModelField{"ff_hidden", "ff-hidden", true, true, 0, R::Positive}, &C::ff_hidden);
    v(ModelField{"features", "features", true, true, 0, R::Positive}, &C::features);
    v(ModelField{"max_seq_len", "seq-len", true, true, 0, R::Positive}, &C::max_seq_len);
    v(ModelField{"attention", "attention", true, true, 0, R::None}, &C::attention);
    v(ModelField{"causal", nullptr, true, true, 0, R::None}, &C::causal);  // --objective causal | mlm
    v(ModelField{"positions", "positions", true, true, 0, R::None}, &C::positions);
    v(ModelField{"tie_embeddings", "tie-embeddings", true, true, 0, R::None}, &C::tie_embeddings);
    v(ModelField{"dropout", "dropout", false, false, 0, R::Fraction}, &C::dropout);
    v(ModelField{"orthogonal_features", "orthogonal-features", true, true, 0, R::None}, &C::orthogonal_features);
    v(ModelField{"redraw_every", "redraw-every", false, false, 0, R::NonNegative}, &C::redraw_every);
    v(ModelField{"kernel_eps", "kernel-eps", true, true, 0, R::FiniteNonNegative}, &C::kernel_eps);
    v(ModelField{"chunk_size", "chunk-size", true, true, 0, R::Positive}, &C::chunk_size);
    v(ModelField{"seed", "seed", true, false, 0, R::None}, &C::seed);
    v(ModelField{"shared_key_shift", "shared-key-shift", true, true, 1, R::None}, &C::shared_key_shift);
    v(ModelField{"antithetic_features", "antithetic-features", true, true, 1, R::None}, &C::antithetic_features);
    v(ModelField{"local_window", "local-window", true, true, 2, R::Positive}, &C::local_window);
    v(ModelField{"feature_map", "feature-map", true, true, 2, R::None}, &C::feature_map);
    v(ModelField{"favorpp_z", "favorpp-z", true, true, 2, R::FiniteNonNegative}, &C::favorpp_z);
    v(ModelField{"short_conv", "short-conv", true, true, 3, R::NonNegative}, &C::short_conv);
    v(ModelField{"local_mix", "local-mix", true, true, 3, R::None}, &C::local_mix);
  }

  // Throws std::invalid_argument naming the field and its value, e.g.
  // "ModelConfig: heads (3) must divide dim (256)".
  void validate() const;
  // The same rules, named by performer-train's flags: "--heads 3: must divide --dim 256".
  void validate_flags() const;
  // "attention favor, causal true, dim 256, ...": every field, for banners and messages.
  std::string describe() const;

  template <class Archive>
  void serialize(Archive& ar, const uint32_t version) {
    visit_fields([&](const ModelField& f, auto member) {
      if (version >= f.since)
        ar(this->*member);
      else
        this->*member = ModelConfig{}.*member;  // an older archive: the field's default
    });
  }
};

// A field's value as text ("256", "favor", "true", "1e-06").
template <class T>
std::string model_field_text(const T& v);
// Parses text into a field's type; throws std::invalid_argument naming `what` on a bad value.
template <class T>
void parse_model_field(const std::string& what, const std::string& text, T& out);

}  // namespace pf

// Version 1 added shared_key_shift and antithetic_features, version 2 local_window, feature_map and
// favorpp_z, version 3 short_conv and local_mix; earlier archives (checkpoints) still load.
CEREAL_CLASS_VERSION(pf::ModelConfig, 3);
