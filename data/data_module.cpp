#include "data/data_module.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "base/format.h"
#include "base/hash.h"
#include "data/corpus_file.h"
#include "data/protein_batcher.h"
#include "data/split.h"
#include "data/text_batcher.h"
#include "data/text_corpus.h"
#include "data/prepared.h"
#include "data/tokenizer.h"

namespace pf {

namespace {

// Each field's own range, naming the flag ("--seq-len 0: must be > 0").
template <class C>
void check_ranges(const C& c) {
  C::visit_fields([&](const FieldSpec& f, auto member) {
    if (!field_within(f, c.*member)) throw FieldValueError(f.key, flag_text(c.*member), f.range.rule);
  });
}

[[noreturn]] void bad(const char* key, const std::string& value, const std::string& rule) {
  throw FieldValueError(key, value, rule);
}

}  // namespace

void TokenizerConfig::validate(Format format) const {
  check_ranges(*this);
  if (!sentencepiece()) {
    if (!model.empty()) bad("tokenizer-model", model, "applies to --tokenizer sentencepiece only (the tokenizer is bytes)");
    if (vocab_size != 0)
      bad("vocab-size", std::to_string(vocab_size),
          "applies to --tokenizer sentencepiece only (the byte tokenizer has 256 tokens)");
    if (type != SentencePieceType::Bpe)
      bad("tokenizer-type", enum_name(type), "applies to --tokenizer sentencepiece only (the tokenizer is bytes)");
    return;
  }
  if (model.empty() && proto.empty() && vocab_size == 0)
    bad("tokenizer", enum_name(kind),
        "needs --tokenizer-model FILE (an existing SentencePiece model) or --vocab-size N (train one on the "
        "training split)");
  if (format == Format::Fasta)
    bad("tokenizer", enum_name(kind),
        "applies to text corpora; --format fasta is read with the protein vocabulary (give --format text to read "
        "the file as text)");
  if (vocab_size != 0 && vocab_size < kMinSentencePieceVocab)
    bad("vocab-size", std::to_string(vocab_size),
        "must be at least " + std::to_string(kMinSentencePieceVocab) +
            " (or 0 with --tokenizer-model): a SentencePiece model here holds the 256 byte pieces (byte fallback) "
            "and <unk>, <s>, </s>");
}

void DataConfig::validate() const {
  if (eval_only) {
    if (!train_files.empty())
      throw std::invalid_argument("DataConfig.eval_only: give the files to evaluate as val_files, not train_files");
    if (val_files.empty()) throw std::invalid_argument("DataConfig.val_files is empty: give at least one file to evaluate");
  } else if (train_files.empty()) {
    bad("data", "(none)", "give at least one corpus file");
  }
  check_ranges(*this);
  if (!enum_from_name<Objective>(enum_name(objective)) || !enum_from_name<Format>(enum_name(format)))
    throw std::invalid_argument("DataConfig: objective or format is not a valid value");
  if (threads < 0) throw std::invalid_argument("DataConfig.threads = " + std::to_string(threads) + ": must be >= 0");
  tokenizer.validate(format);
}

namespace {

// The dataset directory: a prepared one given as the data, the cache's, or prepared now. A resumed
// SentencePiece run first looks for the dataset its first run prepared (keyed by the training
// options) and takes it when its tokenizer is the checkpoint's.
std::string locate(const DataConfig& c, PreparedInfo& info) {
  if (!c.tokenizer.proto.empty() && c.tokenizer.model.empty() && c.tokenizer.vocab_size > 0) {
    DataConfig first = c;
    first.tokenizer.proto.clear();
    const std::string dir = cached_dataset(first);
    if (!dir.empty()) {
      const Manifest m = PreparedDataset::open(dir, c.threads).manifest();
      if (m.tokenizer_hash == hex64(fnv1a64(c.tokenizer.proto))) {
        info = {dir, true, 0.0, m.fingerprint};
        return dir;
      }
    }
  }
  return prepare_dataset(c, "", &info);
}

}  // namespace

DataModule::DataModule(const DataConfig& config) : config_(config) {
  config_.validate();
  const auto start = std::chrono::steady_clock::now();
  const std::string dir = locate(config_, prepared_);
  dataset_ = std::make_shared<PreparedDataset>(PreparedDataset::open(dir, config_.threads));
  prepared_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const Manifest& m = dataset_->manifest();
  prepared_.fingerprint = m.fingerprint;
  format_ = m.kind == "fasta" ? Format::Fasta : Format::Text;
  options_.seq_len = config_.seq_len;
  options_.batch_size = config_.batch_size;
  options_.objective = config_.objective;
  options_.pack = config_.pack;
  options_.mask_prob = config_.mask_prob;
  options_.seed = config_.seed;
  options_.dataset = m.fingerprint;
  check_tokenizer(dir);
  if (format_ == Format::Fasta)
    build_fasta();
  else
    build_text();
}

DataModule::DataModule(DataModule&&) noexcept = default;
DataModule& DataModule::operator=(DataModule&&) noexcept = default;
DataModule::~DataModule() = default;

void DataModule::check_tokenizer(const std::string& dir) {
  const Manifest& m = dataset_->manifest();
  if (m.tokenizer == enum_name(TokenizerKind::SentencePiece)) {
    if (!config_.tokenizer.proto.empty() && hex64(fnv1a64(config_.tokenizer.proto)) != m.tokenizer_hash)
      throw std::invalid_argument(dir + ": the dataset was encoded with SentencePiece model " + m.tokenizer_hash +
                                  ", not the checkpoint's (" + hex64(fnv1a64(config_.tokenizer.proto)) +
                                  "); give the corpus file instead, so that it is encoded with the checkpoint's model");
    vocab_ = Vocab::sentencepiece(dataset_->tokenizer());
  } else if (m.kind == "fasta") {
    vocab_ = Vocab::protein();
  } else {
    if (!config_.tokenizer.proto.empty())
      throw std::invalid_argument(dir + ": the dataset holds byte tokens but the checkpoint was trained with a "
                                  "SentencePiece model; give the corpus file instead");
    vocab_ = Vocab::bytes();
  }
  const bool explicit_spm = config_.tokenizer.sentencepiece() && config_.tokenizer.proto.empty();
  if (explicit_spm && m.tokenizer != enum_name(TokenizerKind::SentencePiece))
    throw std::invalid_argument("--tokenizer sentencepiece: " + dir + " is a prepared dataset of " + m.tokenizer +
                                " tokens; the tokenizer is chosen when a dataset is prepared (performer-prepare)");
  if (explicit_spm && config_.tokenizer.vocab_size > 0 && config_.tokenizer.vocab_size != m.pieces)
    throw std::invalid_argument("--vocab-size " + std::to_string(config_.tokenizer.vocab_size) + ": the dataset " + dir +
                                " was encoded with a model of " + std::to_string(m.pieces) + " pieces");
}

void DataModule::build_text() {
  const Manifest& m = dataset_->manifest();
  auto train = dataset_->text(false);
  auto val = dataset_->text(true);
  const TextRange train_range{0, config_.eval_only ? 0 : train->size()};
  const TextRange val_range{0, val ? val->size() : 0};
  if (!config_.eval_only && train_range.size() == 0)
    throw std::invalid_argument("text: the training files (--data) are empty; give a non-empty corpus");
  const int64_t files = static_cast<int64_t>(m.sources.size() + m.val_sources.size());
  const bool spm = m.tokenizer == enum_name(TokenizerKind::SentencePiece);
  auto count = [](int64_t n) { return human_count(static_cast<double>(n)); };
  std::string d = "text: " + std::to_string(files) + (files == 1 ? " file, " : " files, ") +
                  count(m.train.text_bytes + m.val.text_bytes) + " bytes; ";
  if (spm)
    d += "sentencepiece " + std::to_string(m.pieces) + " pieces (" + m.tokenizer_origin + "); train " +
         count(m.train.token_count) + " tokens (" + count(m.train.text_bytes) + " bytes) / val " +
         count(m.val.token_count) + " tokens (" + count(m.val.text_bytes) + " bytes)";
  else
    d += "train " + count(train_range.size()) + " / val " + count(val_range.size()) + " bytes";
  description_ = d + (m.val_sources.empty() ? "" : " (val files)");
  batcher_ = std::make_unique<TextBatcher>(train, train_range, val, val_range, vocab_, options_);
}

void DataModule::build_fasta() {
  const Manifest& m = dataset_->manifest();
  fasta_stats_ = m.stats;
  if (fasta_stats_.looks_like_nucleotides()) {
    char share[32];
    std::snprintf(share, sizeof share, "%.1f%%",
                  100.0 * static_cast<double>(fasta_stats_.nucleotide_residues) /
                      static_cast<double>(fasta_stats_.residues));
    const std::vector<std::string>& files = config_.eval_only ? config_.val_files : config_.train_files;
    warnings_.push_back(std::string(files.empty() ? "the FASTA data" : files[0]) + (files.size() > 1 ? " ..." : "") +
                        ": " + share +
                        " of the residues are A, C, G, T, U or N: this looks like DNA or RNA, but the only FASTA "
                        "vocabulary is the protein one, which reads these letters as amino acids");
  }
  description_ = "fasta: " + std::to_string(fasta_stats_.records) + " records (" +
                 std::to_string(fasta_stats_.skipped_records) + " skipped), " +
                 human_count(static_cast<double>(fasta_stats_.residues)) +
                 " residues; train " + std::to_string(m.train.records) + " / val " + std::to_string(m.val.records) +
                 " records" + (m.val_sources.empty() ? "" : " (val files)");
  auto train = dataset_->proteins(false);
  if (config_.eval_only) train = std::make_shared<const ProteinCorpus>();
  batcher_ = std::make_unique<ProteinBatcher>(train, dataset_->proteins(true), vocab_, options_);
}

std::string DataModule::dataset_summary() const {
  const Manifest& m = dataset_->manifest();
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.1f", prepared_.seconds);
  return std::string(prepared_.reused ? "reused" : "prepared") + " in " + secs + " s: " +
         prepared_.dir + " (fingerprint " + hex64(m.fingerprint) + ")";
}

void DataModule::restore(const DataCursor& cursor) {
  const uint64_t mine = dataset_->manifest().fingerprint;
  if (cursor.dataset == 0)
    throw std::invalid_argument(
        "the data cursor was written by an earlier version of performer-cpp (data cursor version 1), before "
        "prepared datasets: its batches cannot be reproduced; start a new run (--init-from an exported model keeps "
        "the weights)");
  if (cursor.dataset != mine) {
    const std::vector<std::string>& files = config_.eval_only ? config_.val_files : config_.train_files;
    throw std::invalid_argument("the checkpoint was trained on a dataset with content fingerprint " + hex64(cursor.dataset) +
                                ", but " + (files.empty() ? std::string("the data") : files[0]) +
                                (files.size() > 1 ? " ..." : "") + " is now " + hex64(mine) +
                                " (" + dataset_->dir() + "): the corpus or its preparation changed since; resume with "
                                "the same data, or start a new run");
  }
  batcher_->restore(cursor);
}

// The kernel maps a file's cached pages in blocks of up to 2 MiB around each read (large folios), so a
// batch of random records can map tens of MB: the pages are released after every batch (a few
// microseconds: only the pages mapped since the last release are visited).
constexpr int64_t kReleaseEvery = 1;

Batch DataModule::next_train_batch() {
  // Resident memory stays independent of the dataset's size (PreparedDataset::release_pages).
  if (++batches_ % kReleaseEvery == 0) dataset_->release_pages();
  return batcher_->next_train_batch();
}

std::vector<Batch> DataModule::eval_batches(int64_t max_batches) const {
  std::vector<Batch> batches = batcher_->eval_batches(max_batches);
  dataset_->release_pages();
  return batches;
}

DataCursor DataModule::cursor() const {
  DataCursor c = batcher_->cursor();
  c.dataset = dataset_->manifest().fingerprint;
  return c;
}

std::string DataModule::describe() const {
  return description_;
}

}  // namespace pf
