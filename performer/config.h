// ModelConfig: the shape and kind of a Performer model. Validated on construction of the model
// and saved with it (checkpoints), so a checkpoint rebuilds its own model.
#pragma once

#include <cereal/cereal.hpp>
#include <cstdint>
#include <string>

namespace pf {

// FAVOR+ softmax kernel, generalized ReLU, exact, and favor-local: exact softmax over a window of recent
// keys plus FAVOR+ for the keys before it (performer/favor_local.h; causal only).
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
  int64_t local_window = 64;
  // favor, favor-local: FAVOR+ or FAVOR++ features. FAVOR++ uses the A that is optimal for
  // |q' + k'|^2 = favorpp_z (performer/favor.h, favorpp_optimal_a); >= 0, 0 gives A = 0 (FAVOR+).
  FeatureMapKind feature_map = FeatureMapKind::FavorPlus;
  float favorpp_z = 4.0f;
  uint64_t seed = 1;                // initialization and projection draws

  int64_t head_dim() const { return dim / heads; }
  // Throws std::invalid_argument naming the field and its value, e.g.
  // "ModelConfig: heads (3) must divide dim (256)".
  void validate() const;

  template <class Archive>
  void serialize(Archive& ar, const uint32_t version) {
    ar(vocab_size, dim, depth, heads, ff_hidden, features, max_seq_len, attention, causal, positions, tie_embeddings,
       dropout, orthogonal_features, redraw_every, kernel_eps, chunk_size, seed);
    if (version >= 1)
      ar(shared_key_shift, antithetic_features);
    else
      shared_key_shift = antithetic_features = false;  // version 0 (before these options)
    if (version >= 2) {
      ar(local_window, feature_map, favorpp_z);
    } else {  // before favor-local and FAVOR++
      local_window = ModelConfig().local_window;
      feature_map = FeatureMapKind::FavorPlus;
      favorpp_z = ModelConfig().favorpp_z;
    }
  }
};

}  // namespace pf

// Version 1 added shared_key_shift and antithetic_features, version 2 local_window, feature_map and
// favorpp_z; earlier archives (checkpoints) still load.
CEREAL_CLASS_VERSION(pf::ModelConfig, 2);
