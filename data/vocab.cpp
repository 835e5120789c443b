#include "data/vocab.h"

#include "data/data_config.h"

#include <cctype>
#include <cstdio>

#include "data/tokenizer.h"

namespace pf {

namespace {

}  // namespace

std::string describe_char(unsigned char c) {
  char buf[32];
  if (std::isprint(c))
    std::snprintf(buf, sizeof buf, "'%c' (0x%02X)", c, c);
  else
    std::snprintf(buf, sizeof buf, "byte 0x%02X", c);
  return buf;
}

Vocab::Vocab() : Vocab(VocabKind::Bytes) {}

Vocab::Vocab(VocabKind kind) : kind_(kind) {
  char_to_id_.fill(-1);
  if (kind == VocabKind::Bytes) {
    name_ = enum_name(TokenizerKind::Bytes);
    for (int b = 0; b < 256; ++b) {
      tokens_.push_back(std::string(1, static_cast<char>(b)));
      char_to_id_[static_cast<size_t>(b)] = b;
      replacement_ids_.push_back(b);
    }
    pad_ = 256;
    mask_ = 257;
    tokens_.push_back("<pad>");
    tokens_.push_back("<mask>");
    return;
  }
  name_ = "protein";
  pad_ = 0;
  bos_ = 1;
  eos_ = 2;
  mask_ = 3;
  tokens_ = {"<pad>", "<bos>", "<eos>", "<mask>"};
  for (size_t i = 0; i < kProteinResidues.size(); ++i) {
    const char c = kProteinResidues[i];
    const auto id = static_cast<int32_t>(tokens_.size());
    tokens_.push_back(std::string(1, c));
    char_to_id_[static_cast<unsigned char>(c)] = id;
    char_to_id_[static_cast<unsigned char>(std::tolower(static_cast<unsigned char>(c)))] = id;
    if (i < kStandardResidueCount) replacement_ids_.push_back(id);
  }
}

Vocab Vocab::bytes() {
  return Vocab(VocabKind::Bytes);
}

Vocab Vocab::protein() {
  return Vocab(VocabKind::Protein);
}

Vocab Vocab::from_name(std::string_view name) {
  if (name == enum_name(TokenizerKind::Bytes)) return bytes();
  if (name == "protein") return protein();
  if (name == enum_name(TokenizerKind::SentencePiece))
    throw std::invalid_argument("Vocab: a 'sentencepiece' vocabulary needs its model (Vocab::sentencepiece)");
  throw std::invalid_argument("Vocab: unknown vocabulary name '" + std::string(name) +
                              "'; expected 'bytes', 'protein' or 'sentencepiece'");
}

Vocab Vocab::sentencepiece(std::shared_ptr<const SentencePieceModel> model) {
  if (!model) throw std::invalid_argument("Vocab::sentencepiece: no model");
  Vocab v(VocabKind::Bytes);
  v.kind_ = VocabKind::SentencePiece;
  v.name_ = enum_name(TokenizerKind::SentencePiece);
  v.tokens_.clear();
  v.replacement_ids_.clear();
  v.char_to_id_.fill(-1);
  const int32_t n = model->size();
  for (int32_t id = 0; id < n; ++id) {
    v.tokens_.push_back(model->piece(id));
    if (!model->is_control(id) && !model->is_unknown(id)) v.replacement_ids_.push_back(id);
  }
  v.pad_ = n;
  v.mask_ = n + 1;
  v.tokens_.push_back("<pad>");
  v.tokens_.push_back("<mask>");
  v.spm_ = std::move(model);
  return v;
}

Vocab Vocab::from_serialized(const std::string& name, std::string model) {
  if (name != enum_name(TokenizerKind::SentencePiece)) {
    if (!model.empty())
      throw std::runtime_error("Vocab(" + name + "): the archive carries a tokenizer model this vocabulary does not use");
    return from_name(name);
  }
  try {
    return sentencepiece(SentencePieceModel::from_bytes(std::move(model), "the embedded tokenizer"));
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(std::string("Vocab(sentencepiece): ") + e.what());
  }
}

const std::string& Vocab::model_proto() const {
  static const std::string none;
  return spm_ ? spm_->proto() : none;
}

std::vector<int32_t> Vocab::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  if (spm_) {
    spm_->encode(text, ids);
    return ids;
  }
  ids.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    const int32_t id = char_to_id_[c];
    if (id < 0)
      throw std::invalid_argument("Vocab(" + name_ + ").encode: " + describe_char(c) + " at position " +
                                  std::to_string(i) + " is not an amino-acid code; valid codes are " +
                                  std::string(kProteinResidues) + " (either case)");
    ids.push_back(id);
  }
  return ids;
}

std::string Vocab::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string out;
  if (spm_) {  // runs of pieces decoded by the model, <pad> and <mask> between them
    size_t run = 0;
    for (size_t i = 0; i <= ids.size(); ++i) {
      if (i < ids.size() && !is_special(ids[i])) {
        token(ids[i]);  // range check
        continue;
      }
      if (i > run) out += spm_->decode(ids.subspan(run, i - run));
      if (i < ids.size() && !skip_special) out += token(ids[i]);
      run = i + 1;
    }
    return out;
  }
  out.reserve(ids.size());
  for (int32_t id : ids) {
    if (skip_special && is_special(id)) continue;
    out += token(id);
  }
  return out;
}

const std::string& Vocab::token(int32_t id) const {
  if (id < 0 || id >= size())
    throw std::out_of_range("Vocab(" + name_ + "): token id " + std::to_string(id) + " is outside [0, " +
                            std::to_string(size()) + ")");
  return tokens_[static_cast<size_t>(id)];
}

std::string Vocab::label(int32_t id) const {
  const std::string& t = token(id);
  if (kind_ != VocabKind::Bytes || id >= 256) return t;
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", id);
  return buf;
}

std::vector<std::string> Vocab::labels() const {
  std::vector<std::string> out;
  out.reserve(tokens_.size());
  for (int32_t id = 0; id < size(); ++id) out.push_back(label(id));
  return out;
}

void Vocab::check_tokens(const std::vector<std::string>& saved) const {
  const std::vector<std::string> mine = labels();
  if (saved.size() != mine.size())
    throw std::runtime_error("Vocab(" + name_ + "): saved vocabulary has " + std::to_string(saved.size()) +
                             " tokens but this build's has " + std::to_string(mine.size()) +
                             "; the checkpoint was made by an incompatible build");
  for (size_t i = 0; i < saved.size(); ++i)
    if (saved[i] != mine[i])
      throw std::runtime_error("Vocab(" + name_ + "): saved token " + std::to_string(i) + " is '" + saved[i] +
                               "' but this build has '" + mine[i] +
                               "'; the checkpoint was made by an incompatible build");
}

}  // namespace pf
