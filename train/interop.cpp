#include "train/interop.h"
#include "base/format.h"

#include "data/base64.h"
#include "data/tokenizer.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <type_traits>

namespace pf {

namespace {

// Calls f(name, member pointer, compared) for every ModelConfig field (ModelConfig::visit_fields);
// `compared` is false for the fields that belong to a run rather than to the weights (seed,
// dropout, redraw_every).
template <class F>
void visit_model_fields(F&& f) {
  ModelConfig::visit_fields([&](const ModelField& field, auto member) { f(field.name, member, field.weights); });
}

template <class T>
std::string text(const T& v) {
  return flag_text(v);
}

// Parses the text form of one field (its range is checked with the whole model, by validate());
// throws std::invalid_argument describing the bad value.
template <class T>
T parse(const std::string& s) {
  T v{};
  try {
    parse_field(FieldSpec{"value", ""}, s, v);
  } catch (const FieldValueError& e) {
    throw std::invalid_argument("'" + s + "': " + e.rule);
  }
  return v;
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

void export_safetensors(const PerformerLM& model, const Vocab& vocab, int64_t step, const std::string& path) {
  SafetensorsMetadata m = model_metadata(model.config(), vocab.name(), step);
  for (auto& [key, value] : tokenizer_metadata(vocab)) m[key] = value;
  save_safetensors(path, model.state_dict(), m);
}

SafetensorsMetadata tokenizer_metadata(const Vocab& vocab) {
  SafetensorsMetadata m;
  const SentencePieceModel* spm = vocab.sentencepiece_model();
  if (!spm) return m;
  m["tokenizer"] = enum_name(TokenizerKind::SentencePiece);
  m["tokenizer_model"] = base64_encode(spm->proto());
  m["tokenizer_fnv1a64"] = spm->hash_hex();
  return m;
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

namespace {

// The metadata keys export_safetensors writes besides the model's fields.
constexpr const char* kMetadataKeys[] = {"format",          "producer",         "vocab", "step", "tokenizer",
                                         "tokenizer_model", "tokenizer_fnv1a64"};

void check_metadata_keys(const SafetensorsMetadata& metadata, const std::string& source) {
  for (const auto& [key, value] : metadata) {
    bool known = std::find_if(std::begin(kMetadataKeys), std::end(kMetadataKeys),
                              [&](const char* k) { return key == k; }) != std::end(kMetadataKeys);
    std::string fields;
    visit_model_fields([&](const char* name, auto, bool) {
      known = known || key == name;
      fields += std::string(fields.empty() ? "" : ", ") + name;
    });
    if (!known)
      throw SafetensorsError(source + ": unknown metadata key " + json_quote(key) +
                             " (a misspelled field would go unchecked; the keys are format, producer, vocab, step, "
                             "tokenizer, tokenizer_model, tokenizer_fnv1a64 and the model's fields: " + fields + ")");
  }
}

void check_tokenizer_metadata(const SafetensorsMetadata& metadata, const std::string& source) {
  const auto kind = metadata.find("tokenizer");
  const auto model = metadata.find("tokenizer_model");
  const auto hash = metadata.find("tokenizer_fnv1a64");
  if (kind == metadata.end() && model == metadata.end() && hash == metadata.end()) return;
  if (kind == metadata.end() || kind->second != enum_name(TokenizerKind::SentencePiece) || model == metadata.end() || hash == metadata.end())
    throw SafetensorsError(source +
                           ": incomplete tokenizer metadata (expected tokenizer = \"sentencepiece\" with "
                           "tokenizer_model and tokenizer_fnv1a64)");
  std::shared_ptr<const SentencePieceModel> spm;
  try {
    spm = SentencePieceModel::from_bytes(base64_decode(model->second), "metadata tokenizer_model");
  } catch (const std::exception& e) {
    throw SafetensorsError(source + ": metadata tokenizer_model does not decode to a SentencePiece model: " + e.what());
  }
  if (spm->hash_hex() != hash->second)
    throw SafetensorsError(source + ": metadata tokenizer_fnv1a64 " + hash->second +
                           " is not the hash of tokenizer_model (" + spm->hash_hex() + ")");
}

void check_finite(const StateDict& tensors, const std::string& source) {
  for (const auto& [name, t] : tensors) {
    const float* p = t.data();
    for (int64_t i = 0; i < t.numel(); ++i)
      if (!std::isfinite(p[i]))
        throw SafetensorsError(source + ": tensor " + json_quote(name) + " holds " +
                               (std::isnan(p[i]) ? "NaN" : "an infinity") + " (value " + std::to_string(i) +
                               "); a model cannot start from non-finite weights");
  }
}

}  // namespace

void check_import(const Safetensors& file, const std::string& source) {
  check_metadata_keys(file.metadata, source);
  check_tokenizer_metadata(file.metadata, source);
  check_finite(file.tensors, source);
}

void load_safetensors_into(PerformerLM& model, const Safetensors& file, const std::string& source,
                           const std::string& model_name) {
  check_import(file, source);
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
