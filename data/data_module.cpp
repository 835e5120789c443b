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
  description_ = "text: " + std::to_string(files) + (files == 1 ? " file, " : " files, ") +
                 human(train->size() + (val_maps.empty() ? 0 : val_range.size())) + " bytes; train " +
                 human(train_range.size()) + " / val " + human(val_range.size()) + " bytes" +
                 (val_maps.empty() ? "" : " (val files)");
  batcher_ = std::make_unique<TextBatcher>(train, train_range, val, val_range, vocab_, options_);
}

void DataModule::build_fasta(std::vector<MappedFile>& train_maps, std::vector<MappedFile>& val_maps) {
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
