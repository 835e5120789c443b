#include "data/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "base/hash.h"

namespace pf {

namespace {

// The lines of a text as SentencePiece training sentences (without their newline), skipping those
// longer than the trainer accepts.
class LineIterator : public sentencepiece::SentenceIterator {
 public:
  LineIterator(std::string_view text, size_t max_length) : text_(text), max_length_(max_length) { advance(); }
  bool done() const override { return done_; }
  void Next() override { advance(); }
  const std::string& value() const override { return line_; }
  sentencepiece::util::Status status() const override { return sentencepiece::util::Status(); }

 private:
  void advance() {
    while (pos_ < text_.size()) {
      size_t end = text_.find('\n', pos_);
      if (end == std::string_view::npos) end = text_.size();
      const std::string_view line = text_.substr(pos_, end - pos_);
      pos_ = end + 1;
      if (line.empty() || line.size() > max_length_) continue;
      line_.assign(line);
      return;
    }
    done_ = true;
  }
  std::string_view text_;
  size_t max_length_;
  size_t pos_ = 0;
  bool done_ = false;
  std::string line_;
};

constexpr size_t kMaxSentence = 16384;
constexpr size_t kEncodeChunk = size_t{1} << 20;

}  // namespace

SentencePieceModel::~SentencePieceModel() = default;

std::shared_ptr<const SentencePieceModel> SentencePieceModel::from_bytes(std::string proto, const std::string& source) {
  auto sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto status = proto.empty() ? sentencepiece::util::Status(sentencepiece::util::StatusCode::kInternal, "empty")
                                    : sp->LoadFromSerializedProto(proto);
  if (!status.ok() || sp->GetPieceSize() <= 0)
    throw std::invalid_argument(source + ": not a SentencePiece model (" +
                                (proto.empty() ? std::string("the file is empty") : "the library cannot parse it") +
                                "); give a .model file written by SentencePiece (spm_train, or a run's tokenizer.model)");
  std::shared_ptr<SentencePieceModel> m(new SentencePieceModel());
  m->sp_ = std::move(sp);
  m->splits_at_spaces_ = m->decomposes_at_spaces();
  m->hash_ = fnv1a64(proto);
  m->proto_ = std::move(proto);
  return m;
}

std::shared_ptr<const SentencePieceModel> SentencePieceModel::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::invalid_argument("--tokenizer-model " + path + ": cannot open the file (no such file?)");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) throw std::invalid_argument("--tokenizer-model " + path + ": read error");
  return from_bytes(bytes.str(), "--tokenizer-model " + path);
}

std::shared_ptr<const SentencePieceModel> SentencePieceModel::train(std::string_view text, const TrainOptions& options) {
  if (options.vocab_size < 1) throw std::invalid_argument("--vocab-size " + std::to_string(options.vocab_size) + ": must be > 0");
  const std::unordered_map<std::string, std::string> args = {
      {"vocab_size", std::to_string(options.vocab_size)},
      {"model_type", enum_name(options.model_type)},
      {"byte_fallback", "true"},
      {"character_coverage", "1.0"},
      {"normalization_rule_name", "identity"},
      {"add_dummy_prefix", "false"},
      {"remove_extra_whitespaces", "false"},
      {"split_digits", "false"},
      {"max_sentence_length", std::to_string(kMaxSentence)},
      {"input_sentence_size", "0"},
      {"shuffle_input_sentence", "false"},
      {"num_threads", "1"},
      {"minloglevel", "2"},
  };
  sentencepiece::SetRandomGeneratorSeed(1);
  LineIterator lines(text, kMaxSentence);
  if (lines.done())
    throw std::invalid_argument("--vocab-size: the training text has no line to train a SentencePiece model on");
  std::string proto;
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, &lines, &proto);
  if (!status.ok()) {
    std::string why = status.error_message();
    const size_t bracket = why.rfind("] ");  // drop the library's source location
    if (bracket != std::string::npos) why = why.substr(bracket + 2);
    throw std::invalid_argument("--vocab-size " + std::to_string(options.vocab_size) + " (--tokenizer-type " +
                                enum_name(options.model_type) + "): SentencePiece cannot train this vocabulary on the training "
                                "split: " + why);
  }
  return from_bytes(std::move(proto), "the trained SentencePiece model");
}

int32_t SentencePieceModel::size() const {
  return sp_->GetPieceSize();
}

std::string SentencePieceModel::hash_hex() const {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(hash_));
  return buf;
}

// The model encodes a text as the concatenation of the encodings of its words (the text cut before
// each space) when no piece holds the space symbol after its first character (so no piece can span
// a cut) and the normalizer keeps spaces as they are (no dummy prefix, no collapsing of repeated
// spaces): the probes below check both on the model itself.
bool SentencePieceModel::decomposes_at_spaces() const {
  const std::string space = "\xE2\x96\x81";  // U+2581, SentencePiece's space symbol
  for (int i = 0; i < sp_->GetPieceSize(); ++i)
    if (sp_->IdToPiece(i).find(space, 1) != std::string::npos) return false;
  auto pieces = [&](const std::string& text) {
    std::vector<std::string> out;
    if (!sp_->Encode(text, &out).ok()) return std::string("?");
    std::string joined;
    for (const std::string& p : out) joined += p;
    return joined;
  };
  return pieces("a") == "a" && pieces(" a") == space + "a" && pieces("a  b") == "a" + space + space + "b" &&
         pieces("a b ") == "a" + space + "b" + space;
}

void SentencePieceModel::encode_words(std::string_view text, std::vector<int32_t>& ids, std::vector<int32_t>* bytes,
                                      WordCache& cache) const {
  if (!splits_at_spaces_) return encode(text, ids, bytes);
  const size_t ids_before = ids.size(), bytes_before = bytes ? bytes->size() : 0;
  std::vector<int32_t> word_bytes;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find(' ', pos + 1);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view word = text.substr(pos, end - pos);
    pos = end;
    const WordCache::Entry* entry = nullptr;
    WordCache::Entry fresh;
    if (word.size() <= WordCache::kMaxWord) {
      const auto it = cache.map.find(word);
      if (it != cache.map.end()) entry = &it->second;
    }
    if (entry == nullptr) {
      const sentencepiece::ImmutableSentencePieceText spt = sp_->EncodeAsImmutableProto(word);
      const size_t n = spt.pieces_size();
      if (n == 0) {  // a word that normalizes to nothing: leave it to the whole-text encoder
        ids.resize(ids_before);
        if (bytes) bytes->resize(bytes_before);
        return encode(text, ids, bytes);
      }
      for (size_t i = 0; i < n; ++i) {
        const auto p = spt.pieces(static_cast<int>(i));
        fresh.ids.push_back(static_cast<int32_t>(p.id()));
        const size_t begin = i == 0 ? 0 : p.begin();
        const size_t next = i + 1 < n ? spt.pieces(static_cast<int>(i + 1)).begin() : word.size();
        fresh.bytes.push_back(static_cast<int32_t>(next - begin));
      }
      entry = &fresh;
      if (word.size() <= WordCache::kMaxWord) {
        if (cache.map.size() >= WordCache::kMaxEntries) cache.map.clear();
        entry = &cache.map.emplace(std::string(word), std::move(fresh)).first->second;
      }
    }
    ids.insert(ids.end(), entry->ids.begin(), entry->ids.end());
    if (bytes) bytes->insert(bytes->end(), entry->bytes.begin(), entry->bytes.end());
  }
}

void SentencePieceModel::encode(std::string_view text, std::vector<int32_t>& ids, std::vector<int32_t>* bytes) const {
  size_t pos = 0;
  int64_t carry = 0;  // bytes of chunks that normalized to nothing: given to the next piece
  while (pos < text.size()) {
    const size_t end = encode_piece_end(text, pos);
    const std::string_view chunk = text.substr(pos, end - pos);
    const sentencepiece::ImmutableSentencePieceText spt = sp_->EncodeAsImmutableProto(chunk);
    const size_t n = spt.pieces_size();
    for (size_t i = 0; i < n; ++i) {
      const auto p = spt.pieces(static_cast<int>(i));
      ids.push_back(static_cast<int32_t>(p.id()));
      if (bytes) {
        const size_t begin = i == 0 ? 0 : p.begin();
        const size_t next = i + 1 < n ? spt.pieces(static_cast<int>(i + 1)).begin() : chunk.size();
        bytes->push_back(static_cast<int32_t>(next - begin + carry));
        carry = 0;
      }
    }
    if (n == 0) carry += static_cast<int64_t>(chunk.size());
    pos = end;
  }
  if (bytes && carry > 0 && !bytes->empty()) bytes->back() += static_cast<int32_t>(carry);
}

size_t encode_piece_end(std::string_view text, size_t pos) {
  if (text.size() - pos <= kEncodeChunk) return text.size();
  // After the first newline from pos + 1 MiB on; a text without one for another MiB (one enormous
  // line) is cut after the last space before pos + 2 MiB, else at a UTF-8 character start there.
  const size_t limit = std::min(text.size(), pos + 2 * kEncodeChunk);
  const std::string_view window = text.substr(pos + kEncodeChunk, limit - pos - kEncodeChunk);
  const size_t nl = window.find('\n');
  if (nl != std::string_view::npos) return pos + kEncodeChunk + nl + 1;
  if (limit == text.size()) return text.size();
  const size_t space = window.rfind(' ');
  if (space != std::string_view::npos) return pos + kEncodeChunk + space + 1;
  size_t cut = limit;
  while (cut > pos + kEncodeChunk && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return cut;
}

std::string SentencePieceModel::decode(std::span<const int32_t> ids) const {
  std::vector<int> v;
  v.reserve(ids.size());
  for (int32_t id : ids) {
    if (id < 0 || id >= size())
      throw std::out_of_range("SentencePiece: token id " + std::to_string(id) + " is outside [0, " +
                              std::to_string(size()) + ")");
    v.push_back(id);
  }
  std::string out;
  const auto status = sp_->Decode(v, &out);
  if (!status.ok()) throw std::runtime_error("SentencePiece: cannot decode: " + status.ToString());
  return out;
}

std::string SentencePieceModel::piece(int32_t id) const {
  if (id < 0 || id >= size())
    throw std::out_of_range("SentencePiece: token id " + std::to_string(id) + " is outside [0, " +
                            std::to_string(size()) + ")");
  return sp_->IdToPiece(id);
}

bool SentencePieceModel::is_control(int32_t id) const {
  return sp_->IsControl(id);
}

bool SentencePieceModel::is_unknown(int32_t id) const {
  return sp_->IsUnknown(id);
}

}  // namespace pf
