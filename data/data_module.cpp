#include "data/data_module.h"

#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "base/format.h"
#include "data/corpus_file.h"
#include "data/protein_batcher.h"
#include "data/split.h"
#include "data/text_batcher.h"
#include "data/text_corpus.h"
#include "data/tokenizer.h"

namespace pf {

namespace {

// 950 -> "950", 12345 -> "12.3K", 9012345 -> "9.0M".
std::string human(int64_t n) {
  char buf[32];
  if (n < 1000) return std::to_string(n);
  if (n < 1000000)
    std::snprintf(buf, sizeof buf, "%.1fK", static_cast<double>(n) / 1e3);
  else if (n < 1000000000)
    std::snprintf(buf, sizeof buf, "%.1fM", static_cast<double>(n) / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.1fG", static_cast<double>(n) / 1e9);
  return buf;
}

std::string bad_field(const std::string& field, const std::string& value, const std::string& rule) {
  return "DataConfig." + field + " = " + value + " is invalid: " + rule;
}

}  // namespace

void DataConfig::validate() const {
  if (eval_only) {
    if (!train_files.empty())
      throw std::invalid_argument("DataConfig.eval_only: give the files to evaluate as val_files, not train_files");
    if (val_files.empty()) throw std::invalid_argument("DataConfig.val_files is empty: give at least one file to evaluate");
  } else if (train_files.empty()) {
    throw std::invalid_argument("DataConfig.train_files is empty: give at least one corpus file");
  }
  if (seq_len < 1) throw std::invalid_argument(bad_field("seq_len", std::to_string(seq_len), "must be >= 1"));
  if (batch_size < 1) throw std::invalid_argument(bad_field("batch_size", std::to_string(batch_size), "must be >= 1"));
  if (!(val_fraction >= 0.0 && val_fraction < 1.0))
    throw std::invalid_argument(bad_field("val_fraction", float_str(val_fraction), "must be in [0, 1)"));
  parse_objective(objective);
  if (!(mask_prob > 0.0 && mask_prob <= 1.0))
    throw std::invalid_argument(bad_field("mask_prob", float_str(mask_prob), "must be in (0, 1]"));
  if (tokenizer != "bytes" && tokenizer != "sentencepiece")
    throw std::invalid_argument("--tokenizer '" + tokenizer + "': unknown value (expected one of: bytes, sentencepiece)");
  if (tokenizer == "bytes" && (!tokenizer_model.empty() || !tokenizer_proto.empty() || vocab_size != 0))
    throw std::invalid_argument(std::string(vocab_size != 0 ? "--vocab-size" : "--tokenizer-model") +
                                " applies to --tokenizer sentencepiece only (the byte tokenizer has 256 bytes)");
  if (tokenizer == "sentencepiece" && tokenizer_model.empty() && tokenizer_proto.empty() && vocab_size <= 0)
    throw std::invalid_argument(
        "--tokenizer sentencepiece needs --tokenizer-model FILE (an existing model) or --vocab-size N (train one on "
        "the training split)");
  if (vocab_size < 0) throw std::invalid_argument("--vocab-size " + std::to_string(vocab_size) + ": must be > 0");
  if (format == Format::Fasta && tokenizer != "bytes")
    throw std::invalid_argument("--tokenizer " + tokenizer +
                                " applies to text corpora; FASTA is read with the protein vocabulary (give --format "
                                "text to read the file as text)");
}

DataModule::DataModule(const DataConfig& config) : config_(config) {
  config_.validate();
  options_.seq_len = config_.seq_len;
  options_.batch_size = config_.batch_size;
  options_.objective = parse_objective(config_.objective);
  options_.pack = config_.pack;
  options_.mask_prob = config_.mask_prob;
  options_.seed = config_.seed;

  // Map every file once (decompressing .gz), decide each one's format, and insist they agree.
  std::vector<MappedFile> train_maps, val_maps;
  std::string first_file;
  bool have_format = false;
  auto open_all = [&](const std::vector<std::string>& files, std::vector<MappedFile>& maps) {
    for (const std::string& file : files) {
      MappedFile map = open_corpus_file(file, config_.cache_dir);
      const Format f = config_.format == Format::Auto ? detect_format(file, map.view()) : config_.format;
      if (!have_format) {
        format_ = f;
        first_file = file;
        have_format = true;
      } else if (f != format_) {
        throw std::invalid_argument("mixed corpus formats: " + first_file + " is " + format_name(format_) + " but " +
                                    file + " is " + format_name(f) +
                                    "; give files of one kind (or force one with format)");
      }
      maps.push_back(std::move(map));
    }
  };
  open_all(config_.train_files, train_maps);
  open_all(config_.val_files, val_maps);

  if (format_ == Format::Fasta)
    build_fasta(train_maps, val_maps);
  else
    build_text(train_maps, val_maps);
}

DataModule::DataModule(DataModule&&) noexcept = default;
DataModule& DataModule::operator=(DataModule&&) noexcept = default;
DataModule::~DataModule() = default;

void DataModule::build_text(std::vector<MappedFile>& train_maps, std::vector<MappedFile>& val_maps) {
  vocab_ = Vocab::bytes();
  auto train = std::make_shared<TextCorpus>();
  for (MappedFile& m : train_maps) train->add(std::move(m));
  std::shared_ptr<const TextCorpus> val;
  TextRange train_range{0, train->size()}, val_range;
  if (!val_maps.empty()) {
    auto v = std::make_shared<TextCorpus>();
    for (MappedFile& m : val_maps) v->add(std::move(m));
    val_range = {0, v->size()};
    val = v;
  } else if (config_.val_fraction > 0.0 && !config_.eval_only) {
    const TextSplit split = split_text(train->size(), config_.val_fraction);
    train_range = split.train;
    val_range = split.val;
    val = train;
  }
  if (!config_.eval_only && train_range.size() == 0)
    throw std::invalid_argument("text: the training files (--data) are empty; give a non-empty corpus");
  const int64_t files = train->num_files() + static_cast<int64_t>(val_maps.size());
  if (config_.tokenizer == "sentencepiece") {
    // The held-out tail starts at a character boundary: a UTF-8 continuation byte moves to training.
    if (val == train)
      while (val_range.begin < val_range.end) {
        char c = 0;
        for (int64_t f = 0, start = 0; f < train->num_files(); ++f) {
          const int64_t size = static_cast<int64_t>(train->file(f).size());
          if (val_range.begin < start + size) {
            c = train->file(f).view()[static_cast<size_t>(val_range.begin - start)];
            break;
          }
          start += size;
        }
        if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) break;
        ++val_range.begin;
        ++train_range.end;
      }
    build_sentencepiece(*train, train_range, val.get(), val_range);
    const int64_t tokens_train = tokens_train_, tokens_val = tokens_val_;
    if (!config_.eval_only && tokens_train < 1)
      throw std::invalid_argument("text: the training part encodes to no token; give more text");
    description_ = "text: " + std::to_string(files) + (files == 1 ? " file, " : " files, ") +
                   human(bytes_train_ + bytes_val_) + " bytes; sentencepiece " + std::to_string(vocab_.size() - 2) +
                   " pieces (" + tokenizer_origin_ + "); train " + human(tokens_train) + " tokens (" +
                   human(bytes_train_) + " bytes) / val " + human(tokens_val) + " tokens (" + human(bytes_val_) +
                   " bytes)" + (val_maps.empty() ? "" : " (val files)");
    batcher_ = std::make_unique<TextBatcher>(encoded_train_, TextRange{0, tokens_train}, encoded_val_,
                                             TextRange{0, tokens_val}, vocab_, options_);
    return;
  }
  description_ = "text: " + std::to_string(files) + (files == 1 ? " file, " : " files, ") +
                 human(train->size() + (val_maps.empty() ? 0 : val_range.size())) + " bytes; train " +
                 human(train_range.size()) + " / val " + human(val_range.size()) + " bytes" +
                 (val_maps.empty() ? "" : " (val files)");
  batcher_ = std::make_unique<TextBatcher>(train, train_range, val, val_range, vocab_, options_);
}

namespace {

// The bytes [range) of a text corpus, in memory.
std::string corpus_text(const TextCorpus& corpus, TextRange range) {
  std::string out;
  out.reserve(static_cast<size_t>(range.size()));
  int64_t start = 0;
  for (int64_t f = 0; f < corpus.num_files(); ++f) {
    const std::string_view v = corpus.file(f).view();
    const int64_t end = start + static_cast<int64_t>(v.size());
    const int64_t b = std::max(start, range.begin), e = std::min(end, range.end);
    if (b < e) out.append(v.substr(static_cast<size_t>(b - start), static_cast<size_t>(e - b)));
    start = end;
  }
  return out;
}

}  // namespace

void DataModule::build_sentencepiece(const TextCorpus& train, TextRange train_range, const TextCorpus* val,
                                     TextRange val_range) {
  std::string train_text = corpus_text(train, train_range);
  std::string val_text = val ? corpus_text(*val, val_range) : std::string();
  std::shared_ptr<const SentencePieceModel> model;
  std::string origin;
  if (!config_.tokenizer_proto.empty()) {
    model = SentencePieceModel::from_bytes(config_.tokenizer_proto, "the checkpoint's tokenizer");
    origin = "from the checkpoint";
  } else if (!config_.tokenizer_model.empty()) {
    model = SentencePieceModel::from_file(config_.tokenizer_model);
    origin = config_.tokenizer_model;
  } else {
    if (train_text.empty())
      throw std::invalid_argument("--vocab-size: there is no training text to train the SentencePiece model on");
    model = SentencePieceModel::train(train_text, {.vocab_size = config_.vocab_size, .model_type = config_.tokenizer_type});
    origin = config_.tokenizer_type + ", trained on the training split";
  }
  if (config_.vocab_size > 0 && config_.vocab_size != model->size())
    throw std::invalid_argument("--vocab-size " + std::to_string(config_.vocab_size) + ": the tokenizer model (" +
                                origin + ") has " + std::to_string(model->size()) +
                                " pieces; drop --vocab-size or give the model's size");
  vocab_ = Vocab::sentencepiece(model);
  std::vector<int32_t> train_ids, val_ids, val_bytes;
  model->encode(train_text, train_ids);
  model->encode(val_text, val_ids, &val_bytes);
  tokens_train_ = static_cast<int64_t>(train_ids.size());
  tokens_val_ = static_cast<int64_t>(val_ids.size());
  bytes_train_ = train_range.size();
  bytes_val_ = val_range.size();
  tokenizer_origin_ = origin;
  encoded_train_ = std::make_shared<TextCorpus>(TextCorpus::from_tokens(std::move(train_ids), {}));
  encoded_val_ = val ? std::make_shared<TextCorpus>(TextCorpus::from_tokens(std::move(val_ids), val_bytes)) : nullptr;
}

void DataModule::build_fasta(std::vector<MappedFile>& train_maps, std::vector<MappedFile>& val_maps) {
  if (config_.tokenizer != "bytes") {
    const std::vector<std::string>& files = config_.eval_only ? config_.val_files : config_.train_files;
    throw std::invalid_argument("--tokenizer " + config_.tokenizer + " applies to text corpora, but " +
                                (files.empty() ? std::string("the data") : files[0]) +
                                " is FASTA, which is read with the protein vocabulary (give --format text to read it "
                                "as text)");
  }
  vocab_ = Vocab::protein();
  FastaOptions fasta;
  fasta.skip_bad_records = config_.skip_bad_records;
  fasta.cache_dir = config_.cache_dir;

  auto parse_all = [&](std::vector<MappedFile>& maps, FastaStats& stats) {
    auto corpus = std::make_shared<ProteinCorpus>();
    for (MappedFile& m : maps) {
      m.advise_sequential();
      parse_fasta(m.view(), m.name(), fasta, *corpus, stats);
      m = MappedFile();  // residues are copied; release the map
    }
    return corpus;
  };
  std::shared_ptr<ProteinCorpus> train = parse_all(train_maps, fasta_stats_);
  std::shared_ptr<const ProteinCorpus> val;
  std::vector<int64_t> train_records, val_records;
  if (!val_maps.empty()) {
    FastaStats val_stats;
    auto v = parse_all(val_maps, val_stats);
    for (int64_t i = 0; i < train->size(); ++i) train_records.push_back(i);
    for (int64_t i = 0; i < v->size(); ++i) val_records.push_back(i);
    fasta_stats_.files += val_stats.files;
    fasta_stats_.records += val_stats.records;
    fasta_stats_.skipped_records += val_stats.skipped_records;
    fasta_stats_.residues += val_stats.residues;
    for (auto& e : val_stats.skipped_examples)
      if (fasta_stats_.skipped_examples.size() < FastaStats::kMaxExamples) fasta_stats_.skipped_examples.push_back(e);
    val = v;
  } else {
    RecordSplit split = split_records(*train, config_.val_fraction);
    train_records = std::move(split.train);
    val_records = std::move(split.val);
    val = train;
  }
  if (!config_.eval_only && train_records.empty())
    throw std::invalid_argument("fasta: no training records (all were skipped as malformed); give more sequences");
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
                 std::to_string(fasta_stats_.skipped_records) + " skipped), " + human(fasta_stats_.residues) +
                 " residues; train " + std::to_string(train_records.size()) + " / val " +
                 std::to_string(val_records.size()) + " records" + (val_maps.empty() ? "" : " (val files)");
  batcher_ =
      std::make_unique<ProteinBatcher>(train, std::move(train_records), val, std::move(val_records), vocab_, options_);
}

std::string DataModule::describe() const {
  return description_;
}

}  // namespace pf
