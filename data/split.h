// Deterministic train/validation splits.
//
// Sequences: a record is validation when its content hash, whitened by mix64 and read as a number
// u in [0, 1), is below val_fraction. The hash covers only the residues (uppercased), never the id or
// the position in the file, so exact duplicate sequences always land on the same side (no leakage of
// memorized duplicates into validation), and the split does not move when files are reordered or
// records added. The validation share is val_fraction in expectation, not exactly. Exception: when
// every record would be validation (a corpus of a few records), the first one trains instead.
// Text: the last val_fraction of the byte stream (rounded down to whole bytes) is validation, so the
// held-out text is contiguous and never overlaps a training window.
#pragma once

#include <cstdint>
#include <vector>

#include "data/protein_corpus.h"
#include "data/text_corpus.h"

namespace pf {

bool is_validation(uint64_t content_hash, double val_fraction);

struct RecordSplit {
  std::vector<int64_t> train, val;  // record indices, in file order
};
RecordSplit split_records(const ProteinCorpus& corpus, double val_fraction);

struct TextSplit {
  TextRange train, val;
};
TextSplit split_text(int64_t size, double val_fraction);

}  // namespace pf
