// ModelConfig: the shape and kind of a Performer model. Validated on construction of the model
// and saved with it (checkpoints), so a checkpoint rebuilds its own model.
#pragma once

#include <cereal/cereal.hpp>
#include <cstdint>
#include <string>
#include <type_traits>
#include <array>
#include <utility>

#include "base/enum_names.h"
#include "base/fields.h"

namespace pf {

// FAVOR+ softmax kernel, generalized ReLU, exact, and favor-local: exact softmax over a window of recent
// keys plus FAVOR+ for the keys before it (performer/favor_local.h; causal, or a window on both sides for
// bidirectional models).
enum class AttentionKind { Favor, Relu, Softmax, FavorLocal };
// Random features of the softmax kernel (favor, favor-local): FAVOR+ positive features, or FAVOR++
// (optimal positive random features, performer/favor.h).
enum class FeatureMapKind { FavorPlus, FavorPlusPlus };
enum class PositionKind { Learned, Sinusoidal, Rotary };

template <>
struct EnumNames<AttentionKind> {
  static constexpr std::array<std::pair<AttentionKind, const char*>, 4> table{{{AttentionKind::Favor, "favor"},
                                                                               {AttentionKind::Relu, "relu"},
                                                                               {AttentionKind::Softmax, "softmax"},
                                                                               {AttentionKind::FavorLocal, "favor-local"}}};
};
template <>
struct EnumNames<FeatureMapKind> {
  static constexpr std::array<std::pair<FeatureMapKind, const char*>, 2> table{
      {{FeatureMapKind::FavorPlus, "favor+"}, {FeatureMapKind::FavorPlusPlus, "favor++"}}};
};
template <>
struct EnumNames<PositionKind> {
  static constexpr std::array<std::pair<PositionKind, const char*>, 3> table{
      {{PositionKind::Learned, "learned"}, {PositionKind::Sinusoidal, "sinusoidal"}, {PositionKind::Rotary, "rotary"}}};
};

// The names of base/enum_names.h, as std::string (messages, banners).
inline std::string to_string(AttentionKind kind) { return enum_name(kind); }
inline std::string to_string(PositionKind kind) { return enum_name(kind); }
inline std::string to_string(FeatureMapKind kind) { return enum_name(kind); }
// Throw std::invalid_argument naming the bad value and the names allowed.
inline AttentionKind parse_attention(const std::string& s) { return parse_enum<AttentionKind>(s, "attention"); }
inline FeatureMapKind parse_feature_map(const std::string& s) { return parse_enum<FeatureMapKind>(s, "feature map"); }
inline PositionKind parse_positions(const std::string& s) { return parse_enum<PositionKind>(s, "positions"); }

// One field of ModelConfig as ModelConfig::visit_fields describes it.
struct ModelField {
  FieldSpec spec;    // key: the performer-train flag (and config key) that sets it; nullptr for a field
                     // set from another setting (`via`); resume: Free for dropout and redraw_every
  const char* name;  // the member's name, as library messages print it
  const char* via;   // a field without a flag of its own: the flag it follows (nullptr: the data's vocabulary)
  bool weights;      // describes the weights: must match when weights are loaded into a model (not
                     // the seed, the dropout or the redraw interval)
  uint32_t since;    // the archive version that added the field
  bool fixed() const { return spec.resume != OnResume::Free; }  // must match when a checkpoint resumes
  const char* flag() const { return spec.key ? spec.key : via; }
};

// The defaults are performer-train's: a default-constructed ModelConfig is the model the command line
// builds when no model flag is given (with the byte vocabulary and --seq-len 128).
struct ModelConfig {
  int64_t vocab_size = 256;
  int64_t dim = 128;          // C
  int64_t depth = 2;          // L, number of blocks
  int64_t heads = 4;          // H; dim / heads = D
  int64_t ff_hidden = 512;    // feed-forward width
  int64_t features = 64;      // M, random features per head (favor, relu)
  int64_t max_seq_len = 128;  // for learned positions; generation past it is an error
  AttentionKind attention = AttentionKind::FavorLocal;
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
  // favor, favor-local: train each layer's projection W (M, D) as a parameter, starting from its random
  // draw (a learned feature map, Hedgehog-style; performer/favor.h); false: a fixed buffer. No weight
  // decay (nn/optimizer.h), never redrawn (redraw_every must be 0).
  bool learned_features = false;
  uint64_t seed = 1;                // initialization and projection draws

  int64_t head_dim() const { return dim / heads; }

  // The one description of the fields: calls v(ModelField, member pointer) for every field, in
  // archive order. It drives serialization, validation, performer-train's flags and config file
  // (train/train_config.h), the resume comparison (model_config_mismatch), the safetensors metadata
  // (train/interop.h) and describe().
  template <class V>
  static void visit_fields(V&& v) {
    using C = ModelConfig;
    constexpr auto M = OnResume::Model, F = OnResume::Free;
    auto f = [&](const char* key, const char* name, auto member, const char* help, OnResume resume = OnResume::Model,
                 Range range = {}, uint32_t since = 0, bool weights = true, const char* via = nullptr) {
      v(ModelField{FieldSpec{key, help, resume, range}, name, via, weights, since}, member);
    };
    f(nullptr, "vocab_size", &C::vocab_size, "tokens of the vocabulary (from the data)", M, kPositive);
    f("dim", "dim", &C::dim, "model width (C)", M, kPositive);
    f("depth", "depth", &C::depth, "number of blocks (L)", M, kPositive);
    f("heads", "heads", &C::heads, "attention heads (H); must divide --dim", M, kPositive);
    f("ff-hidden", "ff_hidden", &C::ff_hidden, "feed-forward width", M, kPositive);
    f("features", "features", &C::features, "random features per head (M) for favor and relu", M, kPositive);
    f(nullptr, "max_seq_len", &C::max_seq_len, "the longest sequence (learned positions)", M, kPositive, 0, true,
      "seq-len");
    f("attention", "attention", &C::attention,
      "favor-local (exact softmax over the --local-window nearest keys, FAVOR+ for the others), favor "
      "(FAVOR+ softmax kernel), relu (generalized) or softmax (exact); the default is favor-local, and favor with "
      "--objective mlm");
    f(nullptr, "causal", &C::causal, "causal (next token) or bidirectional (masked LM)", M, {}, 0, true, "objective");
    f("positions", "positions", &C::positions, "position encoding: learned, sinusoidal or rotary");
    f("tie-embeddings", "tie_embeddings", &C::tie_embeddings, "share the token embedding with the output head");
    f("dropout", "dropout", &C::dropout, "dropout probability in [0, 1)", F, kFraction, 0, false);
    f("orthogonal-features", "orthogonal_features", &C::orthogonal_features,
      "draw each head's random features as orthogonal blocks (false: independent Gaussian rows)");
    f("redraw-every", "redraw_every", &C::redraw_every, "optimizer steps between random-feature redraws (0 = never)", F,
      Range{0, kMaxCount, false, false, "must be >= 0 (0 = never)"}, 0, false);
    f("kernel-eps", "kernel_eps", &C::kernel_eps, "favor: floor added to every positive feature, >= 0", M,
      Range{0, kMaxFloat, false, false, "must be finite and >= 0"});
    f("chunk-size", "chunk_size", &C::chunk_size,
      "causal favor and relu: positions per chunk of the fused kernel (speed only; the result does not depend on "
      "it beyond rounding)",
      M, kPositive);
    f(nullptr, "seed", &C::seed, "initialization and projection draws", M, {}, 0, false, "seed");
    f("shared-key-shift", "shared_key_shift", &C::shared_key_shift,
      "favor: stabilize keys by one running maximum instead of each key's own (an ablation; QUALITY.md)", M, {}, 1);
    f("antithetic-features", "antithetic_features", &C::antithetic_features,
      "draw the random features in antithetic pairs (w, -w): the paper's hyperbolic estimator, lower variance at "
      "the same --features (even)",
      M, {}, 1);
    f("local-window", "local_window", &C::local_window,
      "favor-local: the number of most recent keys (the query's own included) scored exactly", M, kPositive, 2);
    f("feature-map", "feature_map", &C::feature_map,
      "random features of favor and favor-local: favor+ (positive) or favor++ (optimal positive, lower variance)", M,
      {}, 2);
    f("favorpp-z", "favorpp_z", &C::favorpp_z,
      "favor++: the mean |q' + k'|^2 (q' = q D^-1/4) its parameter A is chosen for; 0 = FAVOR+", M,
      Range{0, 1e6, false, false, "must be in [0, 1000000]"}, 2);
    f("short-conv", "short_conv", &C::short_conv,
      "depthwise convolution of q, k and v along time with this many taps (0 = off; centered with mlm)", M,
      Range{0, 64, false, false, "must be in [0, 64]"}, 3);
    f("local-mix", "local_mix", &C::local_mix,
      "favor-local: learn a per-head gain of the far field (LoLCATs-style mixing)", M, {}, 3);
    f("learned-features", "learned_features", &C::learned_features,
      "favor, favor-local: train the feature projection W from its random draw (a learned feature map; no weight "
      "decay, needs --redraw-every 0)",
      M, {}, 4);
  }

  // Throws std::invalid_argument naming the field and its value, e.g.
  // "ModelConfig: heads (3) must divide dim (256)".
  void validate() const;
  // The same rules, named by performer-train's flags: "--heads 3: must divide --dim 256".
  void validate_flags() const;
  // "attention favor, causal true, dim 256, ...": every field, for banners and messages.
  std::string describe() const;

  bool operator==(const ModelConfig&) const = default;

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

}  // namespace pf

// Version 1 added shared_key_shift and antithetic_features, version 2 local_window, feature_map and
// favorpp_z, version 3 short_conv and local_mix, version 4 learned_features; earlier archives
// (checkpoints) still load.
CEREAL_CLASS_VERSION(pf::ModelConfig, 4);
