// SentencePiece subword tokenizers for text corpora (the SentencePiece library, Debian
// libsentencepiece-dev): load a model from a file or from its serialized bytes, or train one on a text,
// encode text to piece ids (with the bytes of the original text each id stands for) and decode back.
//
//   auto m = pf::SentencePieceModel::train(training_text, {.vocab_size = 2000, .model_type = pf::SentencePieceType::Bpe});
//   std::vector<int32_t> ids, bytes;
//   m->encode("To be, or not to be", ids, &bytes);   // sum(bytes) == 19
//   std::string back = m->decode(ids);                 // "To be, or not to be"
//   write(m->proto());                                 // the serialized model: a standard .model file
//
// Models trained here (train()) normalize nothing (rule "identity", no dummy prefix, whitespace kept
// as is) and fall back to byte pieces <0x00>..<0xFF> for anything not in the vocabulary, so
// decode(encode(t)) == t for every valid UTF-8 text, newlines and tabs included. Models from elsewhere
// keep their own normalization (e.g. NFKC), so their round trip may change the text.
//
// The model's ids are the model's piece ids 0..size()-1 (unknown, <s>, </s> and any other control
// pieces included); the text Vocab (data/vocab.h) appends <pad> and <mask> after them.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

#include "data/data_config.h"

namespace pf {

class SentencePieceModel {
 public:
  struct TrainOptions {
    int64_t vocab_size = 0;          // pieces in the model, byte pieces and <unk> <s> </s> included
    SentencePieceType model_type = SentencePieceType::Bpe;
  };

  // Throws std::invalid_argument naming `source` (e.g. "--tokenizer-model m.model") if the bytes are
  // not a SentencePiece model.
  static std::shared_ptr<const SentencePieceModel> from_bytes(std::string proto, const std::string& source);
  // Reads the file; throws std::invalid_argument naming the path if it is missing, unreadable or not a model.
  static std::shared_ptr<const SentencePieceModel> from_file(const std::string& path);
  // Trains on `text`, one sentence per line (lines longer than 16 KiB are left out of the piece
  // statistics). Deterministic: one thread and a fixed seed. Throws std::invalid_argument with the
  // library's reason when the text cannot support the vocabulary (e.g. "Vocabulary size too high
  // (5000). Please set it to a value <= 1714.").
  static std::shared_ptr<const SentencePieceModel> train(std::string_view text, const TrainOptions& options);

  ~SentencePieceModel();

  int32_t size() const;                         // number of pieces
  const std::string& proto() const { return proto_; }  // the serialized model (a .model file)
  uint64_t hash() const { return hash_; }       // FNV-1a 64 of proto()
  std::string hash_hex() const;                 // 16 hex digits

  // Appends the ids of `text` to `ids`. When `bytes` is given, appends for each id the number of bytes
  // of `text` it stands for: piece i covers [begin_i, begin_{i+1}) of the original text (the last one
  // up to the end), so the counts sum to text.size() exactly, whatever the normalization (a piece that
  // only continues a multi-byte character, e.g. a byte-fallback piece, counts 0 bytes; the piece that
  // ends it counts the whole character). The text is encoded in pieces of about 1 MiB cut after a
  // newline (encode_piece_end).
  void encode(std::string_view text, std::vector<int32_t>& ids, std::vector<int32_t>* bytes = nullptr) const;
  // A memo of word encodings for encode_words (one per thread).
  struct WordCache {
    struct Hash {
      using is_transparent = void;
      size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    struct Entry {
      std::vector<int32_t> ids, bytes;
    };
    static constexpr size_t kMaxWord = 64, kMaxEntries = size_t{1} << 20;  // then it starts over
    std::unordered_map<std::string, Entry, Hash, std::equal_to<>> map;
  };
  // The same ids (and byte counts) as encode(text), computed word by word (the text cut before each
  // space) with each distinct word encoded once: several times faster on natural text. Used only
  // when the model decomposes at spaces (splits_at_spaces(): every model train() makes does; others
  // go to encode()). `text` is one piece of encode_piece_end.
  void encode_words(std::string_view text, std::vector<int32_t>& ids, std::vector<int32_t>* bytes,
                    WordCache& cache) const;
  bool splits_at_spaces() const { return splits_at_spaces_; }
  // Ids must be in [0, size()); throws std::out_of_range naming the id otherwise.
  std::string decode(std::span<const int32_t> ids) const;
  std::string piece(int32_t id) const;
  bool is_control(int32_t id) const;  // <s>, </s> and other control pieces
  bool is_unknown(int32_t id) const;

 private:
  SentencePieceModel() = default;
  bool decomposes_at_spaces() const;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  bool splits_at_spaces_ = false;
  std::string proto_;
  uint64_t hash_ = 0;
};

// Where encode() ends the piece of `text` that starts at `pos`: the end of the text when less than
// 1 MiB is left, else just after the first newline from pos + 1 MiB on; a line longer than another MiB
// is cut after its last space before pos + 2 MiB (else at a character start there), so that one huge
// line never becomes one huge piece. Pieces are encoded independently, so a text cut by this rule can
// be encoded in parallel with the same result.
size_t encode_piece_end(std::string_view text, size_t pos);

}  // namespace pf
