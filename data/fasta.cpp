#include "data/fasta.h"

#include <array>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "data/corpus_file.h"
#include "data/vocab.h"
#include "base/hash.h"

namespace pf {

namespace {

bool is_blank(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

// Residue id -> 1 for the nucleotide letters A C G T U N (all valid amino-acid codes too).
constexpr std::array<uint8_t, 128> kNucleotideIds = [] {
  std::array<uint8_t, 128> t{};
  for (char c : std::string_view("ACGTUN")) t[static_cast<size_t>(kResidueIds[static_cast<unsigned char>(c)])] = 1;
  return t;
}();

constexpr const char* kValidCodes = "ACDEFGHIKLMNPQRSTVWY XBZUO (either case) and one final '*'";

// One file's parse: the state of the record being read and the error policy.
class FastaParser {
 public:
  FastaParser(const std::string& name, const FastaOptions& options, const FastaSink& out, FastaStats& stats)
      : name_(name), options_(options), out_(out), stats_(stats) {}

  // Returns the number of header lines; line_base = the number of lines before content.
  int64_t parse(std::string_view content, int64_t line_base) {
    const char* p = content.data();
    const char* end = p + content.size();
    int64_t line_no = line_base;
    int64_t headers = 0;
    while (p < end) {
      ++line_no;
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
      const char* line_end = nl != nullptr ? nl : end;
      const char* next = nl != nullptr ? nl + 1 : end;
      // Trailing whitespace (including the CR of CRLF) carries no data.
      while (line_end > p && is_blank(static_cast<unsigned char>(line_end[-1]))) --line_end;
      const char* first = p;
      while (first < line_end && is_blank(static_cast<unsigned char>(*first))) ++first;
      if (first == line_end) {  // blank line
        p = next;
        continue;
      }
      if (*first == '>') {
        finish_record();
        ++headers;
        start_record(first + 1, line_end, line_no);
      } else {
        if (!in_record_)
          throw std::runtime_error(where(line_no) +
                                   "sequence data before the first '>' header; a FASTA file starts with a "
                                   "header line (for plain text use --format text)");
        if (!record_bad_) read_sequence_line(p, line_end, line_no);
      }
      p = next;
    }
    finish_record();
    return headers;
  }

 private:
  std::string where(int64_t line) const { return name_ + ":" + std::to_string(line) + ": "; }

  void start_record(const char* p, const char* end, int64_t line_no) {
    while (p < end && is_blank(static_cast<unsigned char>(*p))) ++p;
    const char* word_end = p;
    while (word_end < end && !std::isspace(static_cast<unsigned char>(*word_end))) ++word_end;
    id_.assign(p, word_end);
    header_line_ = line_no;
    in_record_ = true;
    record_bad_ = false;
    stop_line_ = 0;
    residues_.clear();
    hash_ = kFnvOffset;
  }

  void read_sequence_line(const char* p, const char* end, int64_t line_no) {
    // Fast path: residues written straight into the record buffer with the hash in a local (a byte
    // store may alias anything, so members would be reloaded every iteration).
    const size_t base = residues_.size();
    residues_.resize(base + static_cast<size_t>(end - p));
    uint8_t* out = residues_.data() + base;
    size_t n = 0;
    uint64_t h = hash_;
    const char* c = p;
    for (; c < end; ++c) {
      const auto ch = static_cast<unsigned char>(*c);
      const int8_t id = kResidueIds[ch];
      if (id < 0 || stop_line_ != 0) break;
      out[n++] = static_cast<uint8_t>(id);
      h = (h ^ (ch & 0xDFu)) * kFnvPrime;  // letters only here: & 0xDF uppercases
    }
    hash_ = h;
    residues_.resize(base + n);
    if (c < end) slow_path(p, c, end, line_no);
  }

  // The rest of a line from the first byte that is not a plain residue: '*', blanks, errors.
  void slow_path(const char* line, const char* c, const char* end, int64_t line_no) {
    for (; c < end; ++c) {
      const auto ch = static_cast<unsigned char>(*c);
      const int8_t id = kResidueIds[ch];
      if (id >= 0) {
        if (stop_line_ != 0)
          return fail(where(line_no) + "residue after the '*' at line " + std::to_string(stop_line_) + " in record '" +
                      id_ + "'; '*' may only end a record (or skip such records with --skip-bad-records)");
        residues_.push_back(static_cast<uint8_t>(id));
        hash_ = (hash_ ^ (ch & 0xDFu)) * kFnvPrime;
      } else if (ch == '*') {
        if (stop_line_ != 0)
          return fail(where(line_no) + "second '*' in record '" + id_ +
                    "'; '*' may only end a record (or skip such records with --skip-bad-records)");
        stop_line_ = line_no;
      } else if (!is_blank(ch)) {
        return fail(where(line_no) + "invalid character " + describe_char(ch) + " at column " +
                    std::to_string(c - line + 1) + " in record '" + id_ + "'; sequence lines may hold only " +
                    kValidCodes + "; fix the file, or skip such records with --skip-bad-records "
                    "(DataConfig::skip_bad_records)");
      }
    }
  }

  void finish_record() {
    if (!in_record_) return;
    in_record_ = false;
    if (!record_bad_ && residues_.empty())
      fail(where(header_line_) + "record '" + id_ +
           "' has no residues; remove it, or skip such records with --skip-bad-records (DataConfig::skip_bad_records)");
    if (record_bad_) {
      ++stats_.skipped_records;
      if (stats_.skipped_examples.size() < FastaStats::kMaxExamples) stats_.skipped_examples.push_back(reason_);
      return;
    }
    out_(id_, residues_, hash_);
    ++stats_.records;
    stats_.residues += static_cast<int64_t>(residues_.size());
    for (uint8_t id : residues_) stats_.nucleotide_residues += kNucleotideIds[id];
  }

  // A bad record: an error, or with skip_bad_records a mark that drops the rest of the record.
  void fail(const std::string& message) {
    if (!options_.skip_bad_records) throw std::runtime_error(message);
    record_bad_ = true;
    reason_ = message;
  }

  const std::string& name_;
  const FastaOptions& options_;
  const FastaSink& out_;
  FastaStats& stats_;

  bool in_record_ = false, record_bad_ = false;
  std::string id_, reason_;
  int64_t header_line_ = 0, stop_line_ = 0;
  std::vector<uint8_t> residues_;
  uint64_t hash_ = kFnvOffset;
};

}  // namespace

void parse_fasta(std::string_view content, const std::string& name, const FastaOptions& options, ProteinCorpus& out,
                 FastaStats& stats) {
  // Residues never outnumber the file's bytes: one reservation instead of repeated doubling, whose
  // copies and fresh-page faults dominated the parse time when measured.
  out.reserve_residues(static_cast<size_t>(out.residues()) + content.size());
  const FastaSink sink = [&out](std::string_view id, std::span<const uint8_t> residues, uint64_t hash) {
    out.add(std::string(id), residues, hash);
  };
  if (parse_fasta_chunk(content, 0, name, options, sink, stats) == 0) throw no_records_error(name);
  ++stats.files;
}

std::runtime_error no_records_error(const std::string& name) {
  return std::runtime_error(name + ": no FASTA records (no line starts with '>'); check the file or use --format text");
}

int64_t parse_fasta_chunk(std::string_view content, int64_t line_base, const std::string& name,
                          const FastaOptions& options, const FastaSink& sink, FastaStats& stats) {
  return FastaParser(name, options, sink, stats).parse(content, line_base);
}

ProteinCorpus read_fasta(const std::vector<std::string>& files, const FastaOptions& options, FastaStats* stats) {
  ProteinCorpus corpus;
  FastaStats local;
  for (const std::string& file : files) {
    MappedFile map = open_corpus_file(file, options.cache_dir);
    map.advise_sequential();
    parse_fasta(map.view(), map.name(), options, corpus, local);
  }
  if (stats != nullptr) *stats = local;
  return corpus;
}

}  // namespace pf
