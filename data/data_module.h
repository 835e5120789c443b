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
// The files are prepared once into a dataset of memory-mapped token shards (data/prepared.h) in the
// cache, or train_files is one prepared dataset directory (performer-prepare); later runs reuse it.
// Validation comes from val_files when given (then val_fraction is ignored), else from val_fraction
// of the training files (data/split.h: by content hash for FASTA, the tail for text); val_fraction 0
// and no val_files means no validation (eval_batches returns nothing). A FASTA split always keeps at
// least one training record (data/split.h).
// Text tokenizer: bytes (the default), or SentencePiece (tokenizer = "sentencepiece", data/tokenizer.h):
// the model comes from tokenizer_proto (a checkpoint's), else the file tokenizer_model, else it is
// trained on the training split (vocab_size pieces, tokenizer_type bpe | unigram). The text is split
// by bytes first (the held-out tail starts at a UTF-8 character boundary), then the training and the
// validation text are each encoded once to token ids (when the dataset is prepared), which the text
// batcher windows like bytes. The validation ids remember how many bytes of the original text each one
// stands for (bits per byte, Batch::target_bytes).
// Batching rules: data/text_batcher.h and data/protein_batcher.h; masking: data/masking.h;
// .gz handling and its cache: data/corpus_file.h; FASTA rules: data/fasta.h.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/batch.h"
#include "data/data_config.h"
#include "data/batcher.h"
#include "data/cursor.h"
#include "data/fasta.h"
#include "data/format.h"
#include "data/mapped_file.h"
#include "data/prepared_info.h"
#include "data/text_corpus.h"
#include "data/vocab.h"

namespace pf {

class PreparedDataset;

class DataModule {
 public:
  explicit DataModule(const DataConfig& config);
  DataModule(DataModule&&) noexcept;
  DataModule& operator=(DataModule&&) noexcept;
  ~DataModule();

  const DataConfig& config() const { return config_; }
  const Vocab& vocab() const { return vocab_; }
  Format format() const { return format_; }  // resolved: Text or Fasta

  Batch next_train_batch();
  // Deterministic validation batches (at most max_batches when > 0), independent of the cursor.
  std::vector<Batch> eval_batches(int64_t max_batches) const;
  DataCursor cursor() const;
  // Throws std::invalid_argument, leaving the stream unchanged, if the cursor belongs to other data
  // (another dataset fingerprint, other batching settings) or was written before prepared datasets.
  void restore(const DataCursor& cursor);

  // Where the prepared dataset lives and whether this run prepared or reused it.
  const PreparedInfo& prepared() const { return prepared_; }
  uint64_t fingerprint() const { return prepared_.fingerprint; }  // the dataset's content fingerprint
  // "reused in 0.4 s: /root/.cache/performer-cpp/datasets/big.txt-0123... (fingerprint 89ab...)"
  std::string dataset_summary() const;

  // One line for the log, e.g. "fasta: 20000 records (19 skipped), 9.0M residues; train 18000 / val 2000 records".
  std::string describe() const;
  const FastaStats& fasta_stats() const { return fasta_stats_; }  // FASTA only
  // Things the user should know that are not errors, one sentence each, e.g. a FASTA that looks like
  // DNA read with the protein vocabulary. Programs print them as warnings.
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  void check_tokenizer(const std::string& dir);
  void build_text();
  void build_fasta();

  DataConfig config_;
  BatchOptions options_;
  Format format_ = Format::Text;
  Vocab vocab_;
  std::unique_ptr<Batcher> batcher_;
  FastaStats fasta_stats_;
  std::string description_;
  std::vector<std::string> warnings_;
  std::shared_ptr<const PreparedDataset> dataset_;
  PreparedInfo prepared_;
  int64_t batches_ = 0;  // training batches drawn by this object
};

}  // namespace pf
