// DataConfig: what DataModule (data/data_module.h) and dataset preparation (data/prepared.h) read.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/format.h"

namespace pf {

struct DataConfig {
  std::vector<std::string> train_files, val_files;
  Format format = Format::Auto;      // Auto: decided per file (data/format.h); all files must agree
  double val_fraction = 0.05;        // in [0, 1); used only when val_files is empty (performer-train's default)
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
  // Training a SentencePiece model: a stratified sample of this many bytes of the training part (all
  // of it when smaller), drawn with tokenizer_sample_seed (data/prepared.h).
  int64_t tokenizer_sample_bytes = int64_t{64} << 20;
  uint64_t tokenizer_sample_seed = 1;
  // Preparing the dataset (data/prepared.h): worker threads (0 = all cores) and a progress line on
  // stderr (bytes done, MB/s, time left) when a pass takes more than a second.
  int threads = 0;
  bool progress = true;
  // Evaluation only (performer-eval): train_files must be empty, val_files are read whole (no split,
  // no minimum length: a text shorter than seq_len is one partial window); next_train_batch throws.
  bool eval_only = false;

  // Throws std::invalid_argument naming the field, its value and the allowed range.
  void validate() const;
};

}  // namespace pf
