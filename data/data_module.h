// DataModule: the one object the trainer uses. It opens the corpora, picks the vocabulary from the
// format (fasta -> protein, text -> bytes), splits train/validation, and hands out batches.
//
//   pf::DataConfig cfg;
//   cfg.train_files = {"uniprot.fasta.gz"}; cfg.seq_len = 512; cfg.batch_size = 8; cfg.seed = 1;
//   pf::DataModule data(cfg);
//   pf::Batch b = data.next_train_batch();          // (B,T) inputs, targets, key_mask
//   auto val = data.eval_batches(/*max_batches=*/50);
//   checkpoint << data.vocab() << data.cursor();     // cereal; data.restore(cursor) to resume
//
// Validation comes from val_files when given (then val_fraction is ignored), else from val_fraction
// of the training files (data/split.h: by content hash for FASTA, the tail for text); val_fraction 0
// and no val_files means no validation (eval_batches returns nothing). A FASTA split always keeps at
// least one training record (data/split.h).
// Text tokenizer: bytes (the default), or SentencePiece (tokenizer = "sentencepiece", data/tokenizer.h):
// the model comes from tokenizer_proto (a checkpoint's), else the file tokenizer_model, else it is
// trained on the training split (vocab_size pieces, tokenizer_type bpe | unigram). The text is split
// by bytes first (the held-out tail starts at a UTF-8 character boundary), then the training and the
// validation text are each encoded once to token ids, which the text batcher windows like bytes. The
// validation ids remember how many bytes of the original text each one stands for (bits per byte,
// Batch::target_bytes).
// Batching rules: data/text_batcher.h and data/protein_batcher.h; masking: data/masking.h;
// .gz handling and its cache: data/corpus_file.h; FASTA rules: data/fasta.h.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/batch.h"
#include "data/batcher.h"
#include "data/cursor.h"
#include "data/fasta.h"
#include "data/format.h"
#include "data/mapped_file.h"
#include "data/text_corpus.h"
#include "data/vocab.h"

namespace pf {

struct DataConfig {
  std::vector<std::string> train_files, val_files;
  Format format = Format::Auto;      // Auto: decided per file (data/format.h); all files must agree
  double val_fraction = 0.1;         // in [0, 1); used only when val_files is empty
  std::string objective = "causal";  // "causal" | "mlm"
  int64_t seq_len = 0;               // T, required
  int64_t batch_size = 0;            // B, required
  bool pack = false;                 // proteins: pack records end to end (data/protein_batcher.h)
  bool skip_bad_records = false;     // FASTA: skip malformed records instead of failing
  double mask_prob = 0.15;           // masked LM: selection probability per eligible token
  uint64_t seed = 0;
  std::string cache_dir;  // where .gz corpora are decompressed ("" = automatic, data/corpus_file.h)
  // Text tokenizer (see above). Errors name the flags (--tokenizer, --tokenizer-model, --vocab-size).
  std::string tokenizer = "bytes";     // "bytes" | "sentencepiece"
  std::string tokenizer_model;         // a SentencePiece .model file
  std::string tokenizer_proto;         // the serialized model itself (wins over tokenizer_model)
  int64_t vocab_size = 0;              // pieces to train; with a given model, 0 or its size
  std::string tokenizer_type = "bpe";  // "bpe" | "unigram" (training only)
  // Evaluation only (performer-eval): train_files must be empty, val_files are read whole (no split,
  // no minimum length: a text shorter than seq_len is one partial window); next_train_batch throws.
  bool eval_only = false;

  // Throws std::invalid_argument naming the field, its value and the allowed range.
  void validate() const;
};

class DataModule {
 public:
  explicit DataModule(const DataConfig& config);
  DataModule(DataModule&&) noexcept;
  DataModule& operator=(DataModule&&) noexcept;
  ~DataModule();

  const DataConfig& config() const { return config_; }
  const Vocab& vocab() const { return vocab_; }
  Format format() const { return format_; }  // resolved: Text or Fasta

  Batch next_train_batch() { return batcher_->next_train_batch(); }
  // Deterministic validation batches (at most max_batches when > 0), independent of the cursor.
  std::vector<Batch> eval_batches(int64_t max_batches) const { return batcher_->eval_batches(max_batches); }
  DataCursor cursor() const { return batcher_->cursor(); }
  // Throws std::invalid_argument, leaving the stream unchanged, if the cursor belongs to other data.
  void restore(const DataCursor& cursor) { batcher_->restore(cursor); }

  // One line for the log, e.g. "fasta: 20000 records (19 skipped), 9.0M residues; train 18000 / val 2000 records".
  std::string describe() const;
  const FastaStats& fasta_stats() const { return fasta_stats_; }  // FASTA only
  // Things the user should know that are not errors, one sentence each, e.g. a FASTA that looks like
  // DNA read with the protein vocabulary. Programs print them as warnings.
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  void build_text(std::vector<MappedFile>& train_maps, std::vector<MappedFile>& val_maps);
  void build_fasta(std::vector<MappedFile>& train_maps, std::vector<MappedFile>& val_maps);
  void build_sentencepiece(const TextCorpus& train, TextRange train_range, const TextCorpus* val, TextRange val_range);

  DataConfig config_;
  BatchOptions options_;
  Format format_ = Format::Text;
  Vocab vocab_;
  std::unique_ptr<Batcher> batcher_;
  FastaStats fasta_stats_;
  std::string description_;
  std::vector<std::string> warnings_;
  // SentencePiece text: the encoded corpora and their sizes.
  std::shared_ptr<TextCorpus> encoded_train_, encoded_val_;
  int64_t tokens_train_ = 0, tokens_val_ = 0, bytes_train_ = 0, bytes_val_ = 0;
  std::string tokenizer_origin_;
};

}  // namespace pf
