// ModelConfig: validation names the bad field; the enum parsers name the bad string.
#include <gtest/gtest.h>

#include <cereal/archives/binary.hpp>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "performer/config.h"
#include "tests/archive_round_trip.h"

using namespace pf;

// The layout of ModelConfig before shared_key_shift (class version 0), as checkpoints of that time hold it.
struct ModelConfigV0 {
  ModelConfig c;
  template <class Archive>
  void serialize(Archive& ar, const uint32_t) {
    ar(c.vocab_size, c.dim, c.depth, c.heads, c.ff_hidden, c.features, c.max_seq_len, c.attention, c.causal,
       c.positions, c.tie_embeddings, c.dropout, c.orthogonal_features, c.redraw_every, c.kernel_eps, c.chunk_size,
       c.seed);
  }
};

// The layout of version 3 (before learned_features): every field the field list had by then, in order.
struct ModelConfigV3 {
  ModelConfig c;
  template <class Archive>
  void serialize(Archive& ar, const uint32_t) {
    ModelConfig::visit_fields([&](const ModelField& f, auto member) {
      if (f.since <= 3) ar(c.*member);
    });
  }
};
CEREAL_CLASS_VERSION(ModelConfigV3, 3);

namespace {

// The config written to a binary archive and read back into a default one.
ModelConfig round_trip(const ModelConfig& a) { return test::archive_round_trip(a); }

// Expects cfg.validate() to throw std::invalid_argument whose message contains every `needle`.
void expect_rejected(const std::function<void(ModelConfig&)>& change, std::initializer_list<std::string> needles) {
  ModelConfig cfg;
  change(cfg);
  try {
    cfg.validate();
    FAIL() << "validate() accepted a bad config (expected a message naming " << *needles.begin() << ")";
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "message '" << msg << "' lacks " << n;
  }
}

}  // namespace

TEST(ModelConfig, DefaultsAreValid) {
  ModelConfig cfg;
  EXPECT_NO_THROW(cfg.validate());
  EXPECT_EQ(cfg.head_dim(), 32);  // performer-train's default model: dim 128, 4 heads
}

TEST(ModelConfig, HeadsMustDivideDim) {
  expect_rejected([](ModelConfig& c) { c.heads = 3; }, {"heads (3)", "dim (128)"});
}

TEST(ModelConfig, EachSizeMustBePositive) {
  expect_rejected([](ModelConfig& c) { c.vocab_size = 0; }, {"vocab_size (0)"});
  expect_rejected([](ModelConfig& c) { c.dim = -4; }, {"dim (-4)"});
  expect_rejected([](ModelConfig& c) { c.depth = 0; }, {"depth (0)"});
  expect_rejected([](ModelConfig& c) { c.heads = 0; }, {"heads (0)"});
  expect_rejected([](ModelConfig& c) { c.ff_hidden = 0; }, {"ff_hidden (0)"});
  expect_rejected([](ModelConfig& c) { c.features = 0; }, {"features (0)"});
  expect_rejected([](ModelConfig& c) { c.max_seq_len = 0; }, {"max_seq_len (0)"});
  expect_rejected([](ModelConfig& c) { c.chunk_size = 0; }, {"chunk_size (0)"});
}

TEST(ModelConfig, RangesAreChecked) {
  expect_rejected([](ModelConfig& c) { c.dropout = 1.0f; }, {"dropout"});
  expect_rejected([](ModelConfig& c) { c.dropout = -0.1f; }, {"dropout"});
  expect_rejected([](ModelConfig& c) { c.redraw_every = -1; }, {"redraw_every (-1)"});
  expect_rejected([](ModelConfig& c) { c.kernel_eps = -1e-6f; }, {"kernel_eps"});
  expect_rejected([](ModelConfig& c) { c.attention = static_cast<AttentionKind>(7); }, {"attention (7)"});
  expect_rejected([](ModelConfig& c) { c.positions = static_cast<PositionKind>(9); }, {"positions (9)"});
  expect_rejected([](ModelConfig& c) { c.local_window = 0; }, {"local_window (0)"});
  expect_rejected([](ModelConfig& c) { c.feature_map = static_cast<FeatureMapKind>(5); }, {"feature_map (5)"});
  expect_rejected([](ModelConfig& c) { c.favorpp_z = -1.0f; }, {"favorpp_z"});
}

TEST(ModelConfig, FavorLocalAndFavorPlusPlusCombinations) {
  {  // bidirectional favor-local (masked LM) is valid; the learned far-field gain needs favor-local
    ModelConfig c;
    c.attention = AttentionKind::FavorLocal;
    c.causal = false;
    c.local_mix = true;
    c.short_conv = 3;
    EXPECT_NO_THROW(c.validate());
  }
  expect_rejected(
      [](ModelConfig& c) {
        c.attention = AttentionKind::Favor;
        c.local_mix = true;
      },
      {"local_mix", "favor-local"});
  expect_rejected([](ModelConfig& c) { c.short_conv = -1; }, {"short_conv"});
  for (auto kind : {AttentionKind::Relu, AttentionKind::Softmax})
    expect_rejected(
        [&](ModelConfig& c) {
          c.attention = kind;
          c.feature_map = FeatureMapKind::FavorPlusPlus;
        },
        {"favor++", to_string(kind)});
  for (auto kind : {AttentionKind::Favor, AttentionKind::FavorLocal}) {
    ModelConfig c;
    c.attention = kind;
    c.feature_map = FeatureMapKind::FavorPlusPlus;
    EXPECT_NO_THROW(c.validate()) << to_string(kind);
  }
}

// A learned projection: favor and favor-local (causal or not, FAVOR+ or FAVOR++); refused for softmax
// (no projection), relu, and with redraws, naming the fields (and the flags, for performer-train).
TEST(ModelConfig, LearnedFeaturesCombinations) {
  for (auto kind : {AttentionKind::Favor, AttentionKind::FavorLocal})
    for (bool causal : {true, false})
      for (auto map : {FeatureMapKind::FavorPlus, FeatureMapKind::FavorPlusPlus}) {
        ModelConfig c;
        c.attention = kind;
        c.causal = causal;
        c.feature_map = map;
        c.learned_features = true;
        EXPECT_NO_THROW(c.validate()) << to_string(kind) << " causal " << causal << " " << to_string(map);
      }
  expect_rejected(
      [](ModelConfig& c) {
        c.attention = AttentionKind::Softmax;
        c.learned_features = true;
      },
      {"learned_features (true)", "favor or favor-local", "got softmax", "no feature projection"});
  expect_rejected(
      [](ModelConfig& c) {
        c.attention = AttentionKind::Relu;
        c.learned_features = true;
      },
      {"learned_features (true)", "favor or favor-local", "got relu"});
  expect_rejected(
      [](ModelConfig& c) {
        c.learned_features = true;
        c.redraw_every = 5;
      },
      {"learned_features (true)", "redraw", "redraw_every 0", "redraw_every (5)"});
  auto flag_message = [](const std::function<void(ModelConfig&)>& change) {
    ModelConfig c;
    c.learned_features = true;
    change(c);
    try {
      c.validate_flags();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  EXPECT_EQ(flag_message([](ModelConfig& c) { c.attention = AttentionKind::Softmax; }),
            "--learned-features true: needs --attention favor or favor-local, got softmax (exact softmax attention "
            "has no feature projection)");
  EXPECT_EQ(flag_message([](ModelConfig& c) { c.attention = AttentionKind::Relu; }),
            "--learned-features true: needs --attention favor or favor-local, got relu (the learned feature map is "
            "the softmax kernel's)");
  EXPECT_EQ(flag_message([](ModelConfig& c) { c.redraw_every = 5; }),
            "--learned-features true: trains the projection, which a redraw would replace: needs --redraw-every 0, "
            "got --redraw-every 5");
}

TEST(ModelConfig, RotaryNeedsEvenHeadDim) {
  expect_rejected(
      [](ModelConfig& c) {
        c.dim = 12;
        c.heads = 4;  // head dim 3
        c.positions = PositionKind::Rotary;
      },
      {"rotary", "even head dim"});
  ModelConfig ok;
  ok.dim = 12;
  ok.heads = 4;  // odd head dim is fine without rotary
  EXPECT_NO_THROW(ok.validate());
}

TEST(ModelConfig, ParseRoundTripsAndNamesBadStrings) {
  for (auto k : {AttentionKind::Favor, AttentionKind::Relu, AttentionKind::Softmax, AttentionKind::FavorLocal})
    EXPECT_EQ(parse_attention(to_string(k)), k);
  EXPECT_EQ(to_string(AttentionKind::FavorLocal), "favor-local");
  for (auto k : {FeatureMapKind::FavorPlus, FeatureMapKind::FavorPlusPlus}) EXPECT_EQ(parse_feature_map(to_string(k)), k);
  EXPECT_EQ(to_string(FeatureMapKind::FavorPlusPlus), "favor++");
  EXPECT_THROW(parse_feature_map("favor+++"), std::invalid_argument);
  for (auto k : {PositionKind::Learned, PositionKind::Sinusoidal, PositionKind::Rotary})
    EXPECT_EQ(parse_positions(to_string(k)), k);
  EXPECT_EQ(to_string(AttentionKind::Favor), "favor");
  EXPECT_EQ(to_string(PositionKind::Rotary), "rotary");
  try {
    parse_attention("performer");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'performer'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("favor"), std::string::npos) << e.what();
  }
  try {
    parse_positions("absolute");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'absolute'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_attention("Favor"), std::invalid_argument);  // exact, lowercase names only
  EXPECT_THROW(parse_positions(""), std::invalid_argument);
}

TEST(ModelConfig, SerializationRoundTripsAndReadsVersionZero) {
  ModelConfig a;
  a.dim = 96;
  a.heads = 3;
  a.shared_key_shift = true;
  a.antithetic_features = true;
  a.attention = AttentionKind::FavorLocal;
  a.local_window = 17;
  a.feature_map = FeatureMapKind::FavorPlusPlus;
  a.favorpp_z = 9.5f;
  a.short_conv = 4;
  a.local_mix = true;
  a.learned_features = true;
  const ModelConfig b = round_trip(a);
  EXPECT_EQ(b.short_conv, 4);
  EXPECT_TRUE(b.local_mix);
  EXPECT_TRUE(b.learned_features);
  EXPECT_EQ(b.dim, 96);
  EXPECT_EQ(b.heads, 3);
  EXPECT_TRUE(b.shared_key_shift);
  EXPECT_TRUE(b.antithetic_features);
  EXPECT_EQ(b.attention, AttentionKind::FavorLocal);
  EXPECT_EQ(b.local_window, 17);
  EXPECT_EQ(b.feature_map, FeatureMapKind::FavorPlusPlus);
  EXPECT_EQ(b.favorpp_z, 9.5f);

  // A version-0 archive (no shared_key_shift) loads with the default, PerKey.
  ModelConfigV0 old;
  old.c.dim = 80;
  old.c.heads = 5;
  std::stringstream s0;
  {
    cereal::BinaryOutputArchive out(s0);
    out(old);
  }
  ModelConfig c;
  c.shared_key_shift = true;
  c.antithetic_features = true;
  c.local_window = 5;
  c.feature_map = FeatureMapKind::FavorPlusPlus;
  c.favorpp_z = 1.0f;
  c.short_conv = 4;
  c.local_mix = true;
  c.learned_features = true;
  {
    cereal::BinaryInputArchive in(s0);
    in(c);
  }
  EXPECT_EQ(c.dim, 80);
  EXPECT_EQ(c.heads, 5);
  EXPECT_FALSE(c.shared_key_shift);
  EXPECT_FALSE(c.antithetic_features);
  EXPECT_EQ(c.local_window, ModelConfig().local_window);  // version < 2: the defaults
  EXPECT_EQ(c.feature_map, FeatureMapKind::FavorPlus);
  EXPECT_EQ(c.favorpp_z, ModelConfig().favorpp_z);
  EXPECT_EQ(c.short_conv, 0);  // version < 3: off
  EXPECT_FALSE(c.local_mix);
  EXPECT_FALSE(c.learned_features);  // version < 4: off
  EXPECT_EQ(c.seed, old.c.seed);
}

// A version-3 archive (a checkpoint written before learned_features) loads every field it holds and
// leaves the projection fixed.
TEST(ModelConfig, ReadsVersionThreeWithoutLearnedFeatures) {
  ModelConfigV3 old;
  old.c.attention = AttentionKind::FavorLocal;
  old.c.short_conv = 4;
  old.c.local_mix = true;
  old.c.seed = 77;
  std::stringstream s3;
  {
    cereal::BinaryOutputArchive out(s3);
    out(old);
  }
  ModelConfig c;
  c.learned_features = true;
  {
    cereal::BinaryInputArchive in(s3);
    in(c);
  }
  EXPECT_FALSE(c.learned_features);
  EXPECT_EQ(c.attention, AttentionKind::FavorLocal);
  EXPECT_EQ(c.short_conv, 4);
  EXPECT_TRUE(c.local_mix);
  EXPECT_EQ(c.seed, 77u);
  // and the current version carries the field
  c.learned_features = true;
  EXPECT_TRUE(round_trip(c).learned_features);
}

namespace {

// A config in which every field differs from its default (and from every other such config's
// value for the same field when `salt` differs), so that a field the field list forgets shows up.
ModelConfig all_changed(int salt) {
  ModelConfig c;
  ModelConfig::visit_fields([&](const ModelField&, auto member) {
    auto& v = c.*member;
    using T = std::decay_t<decltype(v)>;
    if constexpr (std::is_same_v<T, bool>)
      v = !v;
    else if constexpr (std::is_same_v<T, AttentionKind>)
      v = salt % 2 ? AttentionKind::Relu : AttentionKind::Softmax;
    else if constexpr (std::is_same_v<T, PositionKind>)
      v = salt % 2 ? PositionKind::Sinusoidal : PositionKind::Rotary;
    else if constexpr (std::is_same_v<T, FeatureMapKind>)
      v = FeatureMapKind::FavorPlusPlus;
    else if constexpr (std::is_same_v<T, float>)
      v = 0.25f / static_cast<float>(salt + 1);
    else
      v = static_cast<T>(v + 2 * (salt + 1));
  });
  return c;
}

}  // namespace

// Serialization is driven by the field list: a config with every listed field changed comes back
// with every field changed.
TEST(ModelConfigFields, SerializationCarriesEveryListedField) {
  const ModelConfig a = all_changed(1);
  const ModelConfig b = round_trip(a);
  ModelConfig::visit_fields([&](const ModelField& f, auto member) {
    EXPECT_TRUE(a.*member == b.*member) << f.name;
    EXPECT_FALSE(a.*member == ModelConfig{}.*member) << f.name << " was not changed by all_changed";
  });
}

TEST(ModelConfigFields, TextFormsReadBack) {
  const ModelConfig a = all_changed(2);
  ModelConfig b;
  ModelConfig::visit_fields([&](const ModelField& f, auto member) {
    parse_field(f.spec, flag_text(a.*member), b.*member);
    EXPECT_TRUE(a.*member == b.*member) << f.name << " = " << flag_text(a.*member);
    parse_field(f.spec, field_text(a.*member), b.*member);  // the quoted (stored) form too
    EXPECT_TRUE(a.*member == b.*member) << f.name << " = " << field_text(a.*member);
  });
  int64_t dim = 0;
  EXPECT_THROW(parse_field(FieldSpec{"dim", ""}, "12x", dim), FieldValueError);
  bool flag = false;
  EXPECT_THROW(parse_field(FieldSpec{"tie-embeddings", ""}, "maybe", flag), FieldValueError);
  AttentionKind kind = AttentionKind::Favor;
  EXPECT_THROW(parse_field(FieldSpec{"attention", ""}, "favour", kind), FieldValueError);
}

TEST(ModelConfigFields, DescribeNamesEveryField) {
  const std::string text = ModelConfig{}.describe();
  ModelConfig::visit_fields([&](const ModelField& f, auto) {
    EXPECT_NE(text.find(std::string(f.name) + " "), std::string::npos) << f.name << " missing from: " << text;
  });
}

TEST(ModelConfigFields, FlagNamesInFlagMessages) {
  ModelConfig c;
  c.dim = 64;
  c.heads = 3;
  try {
    c.validate_flags();
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--heads 3: must divide --dim 64"), std::string::npos) << e.what();
  }
  c = ModelConfig{};
  c.vocab_size = 0;  // no flag of its own: named by the member
  try {
    c.validate_flags();
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("vocab_size (0): must be > 0"), std::string::npos) << e.what();
  }
}
