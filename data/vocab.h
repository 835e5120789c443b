// Vocab: the token set of a model, bytes (text), SentencePiece subwords (text) or amino acids (proteins).
//
// Bytes: ids 0..255 are the byte values themselves (any file is valid input), then pad = 256 and
// mask = 257 (size 258); there is no begin/end token because text is trained as windows of one
// stream. Protein: pad 0, bos 1, eos 2, mask 3, then the 20 standard amino acids ACDEFGHIKLMNPQRSTVWY
// (ids 4..23) and the ambiguous/rare codes X B Z U O (24..28), size 29. SentencePiece: the model's
// pieces 0..n-1 (data/tokenizer.h), then pad = n and mask = n + 1 (size n + 2); no bos/eos either. No "unknown" token: a character
// that is not a residue is an input error, reported where it occurs, never silently mapped.
//
// The vocabulary is saved with the model (cereal, versioned): its name plus a printable label of every
// token ("A", "<pad>", byte tokens as "0x41" so text archives such as JSON stay valid), and (version 2)
// the serialized SentencePiece model, empty for bytes and protein (base64 in text archives). Load rebuilds the vocabulary from the
// name (and the model) and checks every label, so a checkpoint made with a different token table fails
// loudly instead of decoding wrong. Version 1 archives (no model) still load.
#pragma once

#include <array>
#include <cereal/cereal.hpp>
#include <cereal/details/traits.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "data/base64.h"

namespace pf {

class SentencePieceModel;  // data/tokenizer.h

enum class VocabKind : int32_t { Bytes = 0, Protein = 1, SentencePiece = 2 };

// The residue letters in protein-id order: the 20 standard amino acids, then X B Z U O. Letter i has
// id kFirstResidueId + i in Vocab::protein().
inline constexpr std::string_view kProteinResidues = "ACDEFGHIKLMNPQRSTVWYXBZUO";
inline constexpr size_t kStandardResidueCount = 20;
inline constexpr int32_t kFirstResidueId = 4;

// Byte -> protein token id, either case (-1: not a residue). A compile-time table, so FASTA
// parsing's hot loop reads a constant; Vocab::protein().char_to_id gives the same ids.
inline constexpr std::array<int8_t, 256> kResidueIds = [] {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (size_t i = 0; i < kProteinResidues.size(); ++i) {
    const auto upper = static_cast<unsigned char>(kProteinResidues[i]);
    t[upper] = static_cast<int8_t>(kFirstResidueId + static_cast<int32_t>(i));
    t[static_cast<unsigned char>(upper - 'A' + 'a')] = static_cast<int8_t>(kFirstResidueId + static_cast<int32_t>(i));
  }
  return t;
}();

// A character for error messages: "'A' (0x41)" if printable, else "byte 0x07".
std::string describe_char(unsigned char c);

class Vocab {
 public:
  Vocab();  // bytes; a default exists so cereal can load into it
  static Vocab bytes();
  static Vocab protein();
  static Vocab from_name(std::string_view name);  // "bytes" | "protein"; throws std::invalid_argument
  // Name "sentencepiece"; the model is shared (copies of the Vocab are cheap).
  static Vocab sentencepiece(std::shared_ptr<const SentencePieceModel> model);
  // The SentencePiece model, or null for bytes and protein.
  const SentencePieceModel* sentencepiece_model() const { return spm_.get(); }
  std::shared_ptr<const SentencePieceModel> shared_sentencepiece_model() const { return spm_; }
  // The serialized SentencePiece model, "" for bytes and protein.
  const std::string& model_proto() const;

  VocabKind kind() const { return kind_; }
  const std::string& name() const { return name_; }
  int32_t size() const { return static_cast<int32_t>(tokens_.size()); }

  // Bytes: one id per byte. SentencePiece: the model's pieces (data/tokenizer.h). Protein: one id per residue letter, case-insensitive; any other character
  // throws std::invalid_argument naming the character and its position.
  std::vector<int32_t> encode(std::string_view text) const;
  // Specials are written as "<pad>", "<bos>", "<eos>", "<mask>" unless skip_special. An id outside
  // [0, size) throws std::out_of_range naming the id.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  int32_t pad_id() const { return pad_; }
  int32_t bos_id() const { return bos_; }    // -1 for bytes
  int32_t eos_id() const { return eos_; }    // -1 for bytes
  int32_t mask_id() const { return mask_; }  // -1 when the vocabulary has none
  bool is_special(int32_t id) const { return id == pad_ || id == bos_ || id == eos_ || id == mask_; }

  // Id of one input character, or -1 if it is not a token (protein: lowercase maps to uppercase).
  // A 256-entry table, so the FASTA parser can use it per byte.
  int32_t char_to_id(unsigned char c) const { return char_to_id_[c]; }
  // Text form of one token ("A", "<pad>", or the byte itself).
  const std::string& token(int32_t id) const;
  // Printable form of one token, as saved: byte tokens are "0x00".."0xFF", others as token().
  std::string label(int32_t id) const;
  // Tokens a masked-LM "random replacement" draws from: all 256 bytes, the 20 standard residues, or
  // every SentencePiece piece that is neither control nor unknown.
  const std::vector<int32_t>& mlm_replacement_ids() const { return replacement_ids_; }

  bool operator==(const Vocab& other) const {
    return name_ == other.name_ && tokens_ == other.tokens_ && model_proto() == other.model_proto();
  }

  template <class Archive>
  void save(Archive& ar, std::uint32_t /*version*/) const {
    // Text archives (JSON, XML) hold the model's bytes as base64.
    if constexpr (cereal::traits::is_text_archive<Archive>::value)
      ar(cereal::make_nvp("name", name_), cereal::make_nvp("tokens", labels()),
         cereal::make_nvp("model", base64_encode(model_proto())));
    else
      ar(cereal::make_nvp("name", name_), cereal::make_nvp("tokens", labels()), cereal::make_nvp("model", model_proto()));
  }
  template <class Archive>
  void load(Archive& ar, std::uint32_t version) {
    if (version != 1 && version != 2)
      throw std::runtime_error("Vocab: unsupported serialized version " + std::to_string(version) +
                               " (this build reads versions 1 and 2); use a matching build");
    std::string name, model;
    std::vector<std::string> tokens;
    ar(cereal::make_nvp("name", name), cereal::make_nvp("tokens", tokens));
    if (version >= 2) {
      ar(cereal::make_nvp("model", model));
      if constexpr (cereal::traits::is_text_archive<Archive>::value) {
        try {
          model = base64_decode(model);
        } catch (const std::invalid_argument& e) {
          throw std::runtime_error(std::string("Vocab: the tokenizer model is not valid base64: ") + e.what());
        }
      }
    }
    Vocab loaded = from_serialized(name, std::move(model));  // validate fully before touching *this
    loaded.check_tokens(tokens);
    *this = std::move(loaded);
  }

 private:
  explicit Vocab(VocabKind kind);
  // from_name, or for "sentencepiece" the model parsed from `model` (throws std::runtime_error if bad).
  static Vocab from_serialized(const std::string& name, std::string model);
  std::vector<std::string> labels() const;
  void check_tokens(const std::vector<std::string>& saved) const;

  VocabKind kind_ = VocabKind::Bytes;
  std::string name_;
  std::vector<std::string> tokens_;  // text of each id
  std::array<int32_t, 256> char_to_id_{};
  std::vector<int32_t> replacement_ids_;
  int32_t pad_ = -1, bos_ = -1, eos_ = -1, mask_ = -1;
  std::shared_ptr<const SentencePieceModel> spm_;
};

}  // namespace pf

CEREAL_CLASS_VERSION(pf::Vocab, 2);
