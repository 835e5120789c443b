// FASTA reading: headers, wrapped or one-line sequences, and every malformation reported by file and
// line.
//
// Accepted: '>' header lines (the record id is the first whitespace-delimited word after '>'),
// sequences on one line or wrapped over many, blank lines anywhere, CRLF or LF line ends, lowercase
// residues (stored uppercase), spaces or tabs inside sequence lines, one terminal '*' per record
// (dropped), a missing final newline, gzip input (see data/corpus_file.h), several files in a row.
//
// Errors (std::runtime_error, message "<file>:<line>: what; what to do"):
//   - a record with no residues;
//   - a character that is not an amino-acid code (named, with its column);
//   - residues after a '*' (a '*' must end its record);
//   - sequence data before the first header (always an error: the file is probably not FASTA);
//   - a file with no records at all (always an error).
// With skip_bad_records (performer-train --skip-bad-records) the first three skip the offending record instead; the number skipped and
// the first few reasons come back in FastaStats so the run can report them.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "data/protein_corpus.h"

namespace pf {

struct FastaOptions {
  bool skip_bad_records = false;
  std::string cache_dir;  // for .gz inputs, see data/corpus_file.h
};

struct FastaStats {
  int64_t files = 0;
  int64_t records = 0;  // kept
  int64_t skipped_records = 0;
  int64_t residues = 0;                       // kept
  int64_t nucleotide_residues = 0;            // kept residues that are A, C, G, T, U or N
  // True when nearly all residues (>= 90%) are nucleotide letters: the file is most likely DNA or RNA,
  // which the protein vocabulary reads as the amino acids Ala, Cys, Gly, Thr, Sec and Asn (proteins
  // have about 25% of these letters).
  bool looks_like_nucleotides() const { return residues > 0 && nucleotide_residues * 10 >= residues * 9; }
  std::vector<std::string> skipped_examples;  // the first kMaxExamples reasons, for the log
  static constexpr size_t kMaxExamples = 5;
};

// Parses one file's content, appending records to `out`; `name` is the file to cite in messages.
void parse_fasta(std::string_view content, const std::string& name, const FastaOptions& options, ProteinCorpus& out,
                 FastaStats& stats);

// Where a chunk's records go: (id, residue token ids, content hash of the uppercased letters).
using FastaSink = std::function<void(std::string_view id, std::span<const uint8_t> residues, uint64_t hash)>;

// Parses part of a file that starts at a line start and ends at a record boundary (the end of the
// file, or just before a line starting with '>'); line_base = lines of the file before it, so that
// messages cite the file's own line numbers. Returns the number of header lines seen. Files are
// counted and "no records" is reported by the caller (no_records_error).
int64_t parse_fasta_chunk(std::string_view content, int64_t line_base, const std::string& name,
                          const FastaOptions& options, const FastaSink& sink, FastaStats& stats);
std::runtime_error no_records_error(const std::string& name);

// Opens (maps, decompressing .gz once) and parses several files in order.
ProteinCorpus read_fasta(const std::vector<std::string>& files, const FastaOptions& options,
                         FastaStats* stats = nullptr);

}  // namespace pf
