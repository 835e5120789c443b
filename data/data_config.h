// DataConfig and TokenizerConfig: what DataModule (data/data_module.h) and dataset preparation
// (data/prepared.h) read. Each lists its fields once (visit_fields, base/fields.h); performer-train's
// flags, config file and checkpoints are made from those lists (train/train_config.h). The defaults are
// performer-train's.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/enum_names.h"
#include "base/fields.h"
#include "data/format.h"

namespace pf {

// Causal: next-token targets. Mlm: masked tokens (BERT's 80/10/10 rule, data/masking.h).
enum class Objective { Causal, Mlm };
// Text tokenizers: 256 byte tokens, or a SentencePiece model (data/tokenizer.h).
enum class TokenizerKind { Bytes, SentencePiece };
// How a SentencePiece model is trained.
enum class SentencePieceType { Bpe, Unigram };

template <>
struct EnumNames<Objective> {
  static constexpr std::array<std::pair<Objective, const char*>, 2> table{
      {{Objective::Causal, "causal"}, {Objective::Mlm, "mlm"}}};
};
template <>
struct EnumNames<TokenizerKind> {
  static constexpr std::array<std::pair<TokenizerKind, const char*>, 2> table{
      {{TokenizerKind::Bytes, "bytes"}, {TokenizerKind::SentencePiece, "sentencepiece"}}};
};
template <>
struct EnumNames<SentencePieceType> {
  static constexpr std::array<std::pair<SentencePieceType, const char*>, 2> table{
      {{SentencePieceType::Bpe, "bpe"}, {SentencePieceType::Unigram, "unigram"}}};
};

inline Objective parse_objective(std::string_view name) { return parse_enum<Objective>(name, "objective"); }
inline std::string objective_name(Objective objective) { return enum_name(objective); }

// The smallest vocabulary SentencePiece trains here: 256 byte pieces (byte fallback) + <unk>, <s>, </s>.
inline constexpr int64_t kMinSentencePieceVocab = 260;

struct TokenizerConfig {
  TokenizerKind kind = TokenizerKind::Bytes;
  std::string model{};  // a SentencePiece .model file
  std::string proto{};  // the serialized model itself (wins over `model`); not a flag (checkpoints carry it)
  int64_t vocab_size = 0;  // pieces to train; with a given model, 0 or its size
  SentencePieceType type = SentencePieceType::Bpe;  // training only
  // Training a SentencePiece model: a stratified sample of this many bytes of the training part (all
  // of it when smaller), drawn with sample_seed (data/prepared.h).
  int64_t sample_bytes = int64_t{64} << 20;
  uint64_t sample_seed = 1;

  bool sentencepiece() const { return kind == TokenizerKind::SentencePiece; }
  bool operator==(const TokenizerConfig&) const = default;

  template <class V>
  static void visit_fields(V&& v) {
    using C = TokenizerConfig;
    constexpr auto M = OnResume::Model;
    v(FieldSpec{"tokenizer",
                "text tokenizer: bytes (256 byte tokens) or sentencepiece (subwords: --tokenizer-model FILE, or "
                "--vocab-size N to train one on the training split)",
                M},
      &C::kind);
    // Compared by content on resume (the checkpoint embeds the model), so a moved file may be given.
    v(FieldSpec{"tokenizer-model",
                "sentencepiece: an existing SentencePiece .model file (on resume it must be the checkpoint's own "
                "tokenizer)"},
      &C::model);
    v(FieldSpec{"vocab-size", "sentencepiece: train a model of this many pieces on the training split (0 = take "
                              "--tokenizer-model's)",
                M, Range{0, 2147483647, false, false, "must be >= 0 and fit a 32-bit token id"}},
      &C::vocab_size);
    v(FieldSpec{"tokenizer-type", "sentencepiece training: bpe or unigram", M}, &C::type);
    v(FieldSpec{"tokenizer-sample-bytes",
                "sentencepiece training: the model is trained on a sample of this many bytes of the training split "
                "(whole lines from evenly spread blocks; all of it when smaller), at least 1048576",
                M, Range{1048576, kMaxCount, false, false, "must be at least 1048576 (1 MiB)"}},
      &C::sample_bytes);
    v(FieldSpec{"tokenizer-sample-seed", "sentencepiece training: the seed of that sample", M, kSeed},
      &C::sample_seed);
  }

  // Each field's range and the rules between them (and the corpus format), naming the flags:
  // "--vocab-size 12: must be at least 260 ...". Throws std::invalid_argument.
  void validate(Format format) const;
};

struct DataConfig {
  std::vector<std::string> train_files{}, val_files{};
  Format format = Format::Auto;  // Auto: decided per file (data/format.h); all files must agree
  double val_fraction = 0.05;    // in [0, 1); used only when val_files is empty
  Objective objective = Objective::Causal;
  int64_t seq_len = 128;         // T
  int64_t batch_size = 16;       // B
  double mask_prob = 0.15;       // masked LM: selection probability per eligible token
  bool pack = false;             // proteins: pack records end to end (data/protein_batcher.h)
  bool skip_bad_records = false; // FASTA: skip malformed records instead of failing
  std::string cache_dir{};  // where corpora are prepared and .gz files decompressed ("" = data/corpus_file.h)
  TokenizerConfig tokenizer{};
  // Not flags of their own: performer-train sets them from --seed and --threads.
  uint64_t seed = 1;
  // Preparing the dataset (data/prepared.h): worker threads (0 = all cores) and a progress line on
  // stderr (bytes done, MB/s, time left) when a pass takes more than a second.
  int threads = 0;
  bool progress = true;
  // Evaluation only (performer-eval): train_files must be empty, val_files are read whole (no split,
  // no minimum length: a text shorter than seq_len is one partial window); next_train_batch throws.
  bool eval_only = false;

  template <class V>
  static void visit_fields(V&& v) {
    using C = DataConfig;
    constexpr auto D = OnResume::Data, M = OnResume::Model, F = OnResume::Free;
    // data and val-data may change on resume (a moved corpus): the data cursor checks the content.
    v(FieldSpec{"data",
                "training corpus files (text or FASTA, optionally .gz; prepared once into the cache, see "
                "--cache-dir), or one dataset directory written by performer-prepare",
                F},
      &C::train_files);
    v(FieldSpec{"val-data", "validation files (default: --val-fraction of --data)", F}, &C::val_files);
    v(FieldSpec{"val-fraction", "share of --data held out for validation, in [0, 1)", D, kFraction},
      &C::val_fraction);
    v(FieldSpec{"format", "corpus format: auto, text or fasta", D}, &C::format);
    v(FieldSpec{"objective", "causal (next token) or mlm (masked tokens, bidirectional model)", M}, &C::objective);
    v(FieldSpec{"seq-len", "tokens per training row (T); also the model's context for learned positions", M,
                kPositive},
      &C::seq_len);
    v(FieldSpec{"batch-size", "rows per batch (B)", D, kPositive}, &C::batch_size);
    v(FieldSpec{"mask-prob", "mlm: probability that a token is selected for prediction", D,
                Range{0, 1, true, false, "must be in (0, 1]"}},
      &C::mask_prob);
    v(FieldSpec{"pack", "proteins: pack records end to end instead of one per row", D}, &C::pack);
    v(FieldSpec{"skip-bad-records", "FASTA: skip malformed records instead of failing", D}, &C::skip_bad_records);
    v(FieldSpec{"cache-dir",
                "where corpora are prepared once (token shards under datasets/) and .gz files decompressed "
                "(default: $XDG_CACHE_HOME/performer-cpp, else ~/.cache/performer-cpp, else $TMPDIR)",
                F},
      &C::cache_dir);
  }

  bool operator==(const DataConfig&) const = default;
  // Throws std::invalid_argument naming the flag, its value and the rule.
  void validate() const;
};

}  // namespace pf
