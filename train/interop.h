// A PerformerLM in and out of safetensors files (nn/safetensors.h), the weight format of PyTorch and
// the Hugging Face tools.
//
// Export (performer-export): every parameter and buffer under its dotted state-dict name
// (tok_emb.weight, blocks.0.attn.q_proj.weight, blocks.0.attn.projection, ...; performer/model.h), F32,
// with the model described in the metadata, one string per field:
//   "format": "pt", "producer": "performer-cpp", "vocab": the vocabulary name, "step": the training step,
//   and every ModelConfig field under its own name: "vocab_size", "dim", "depth", "heads", "ff_hidden",
//   "features", "max_seq_len", "attention" (favor | relu | softmax | favor-local), "causal" (true | false),
//   "positions" (learned | sinusoidal | rotary), "tie_embeddings", "dropout", "orthogonal_features",
//   "redraw_every", "kernel_eps", "chunk_size", "shared_key_shift", "antithetic_features",
//   "local_window", "feature_map" (favor+ | favor++), "favorpp_z", "short_conv", "local_mix",
//   "learned_features", "seed".
// Numbers are decimal text that reads back to the same value; booleans are "true" / "false".
// A SentencePiece model (vocab "sentencepiece") adds its tokenizer: "tokenizer": "sentencepiece",
// "tokenizer_model": the serialized model (the bytes of its .model file) in standard base64 (RFC 4648,
// with padding), "tokenizer_fnv1a64": 16 hex digits of the FNV-1a 64 hash of those bytes.
//
// Import (load_safetensors_into, performer-train --init-from): the model is built from its own
// config (the flags); the file's metadata fields that are present must agree with it (all but seed,
// dropout and redraw_every, which belong to the run), and its tensors must be exactly the model's
// state-dict names and shapes (Module::load_state_dict, strict). A file written elsewhere (PyTorch)
// may carry fewer metadata fields or none: its names and shapes are still checked.
#pragma once

#include <string>

#include "data/vocab.h"
#include "nn/safetensors.h"
#include "performer/config.h"
#include "performer/model.h"

namespace pf {

// The metadata written for a model (see above). `step` < 0 leaves "step" out.
SafetensorsMetadata model_metadata(const ModelConfig& config, const std::string& vocab_name, int64_t step = -1);

// Writes model.state_dict() with model_metadata() atomically.
void export_safetensors(const PerformerLM& model, const std::string& vocab_name, int64_t step,
                        const std::string& path);
// The same, with the vocabulary's tokenizer in the metadata (tokenizer_metadata).
void export_safetensors(const PerformerLM& model, const Vocab& vocab, int64_t step, const std::string& path);
// The tokenizer keys above for a SentencePiece vocabulary; empty for bytes and protein.
SafetensorsMetadata tokenizer_metadata(const Vocab& vocab);
// (Standard base64 for the tokenizer_model value: data/base64.h.)

// Every metadata field that disagrees with `model` (or cannot be read), as
// "kernel_eps 0.001 in the file, 1e-06 <model_name>, ..."; "" when all present fields agree.
// seed, dropout and redraw_every are not compared.
std::string metadata_mismatch(const SafetensorsMetadata& metadata, const ModelConfig& model,
                              const std::string& model_name = "in this model");

// The ModelConfig a file describes (every field read from its metadata; fields it lacks keep the
// ModelConfig defaults). Throws SafetensorsError naming `source` and the field when a value cannot
// be read or the config is invalid.
ModelConfig model_config_from_metadata(const SafetensorsMetadata& metadata, const std::string& source);

// The import checks of a file's own content: every metadata key known (a misspelled key would drop its
// field from the comparison), tokenizer metadata that decodes to the SentencePiece model its hash
// names, every tensor value finite. Throws SafetensorsError naming `source` and the key or tensor.
void check_import(const Safetensors& file, const std::string& source);

// Copies the file's tensors into the model after check_import and the checks above; on any mismatch throws
// SafetensorsError naming `source` and each field or tensor, and leaves the model unchanged.
// `model_name` says where the model's config came from in messages ("from the flags").
void load_safetensors_into(PerformerLM& model, const Safetensors& file, const std::string& source,
                           const std::string& model_name = "in this model");

}  // namespace pf
