#include "data/split.h"

#include "base/random.h"

namespace pf {

bool is_validation(uint64_t content_hash, double val_fraction) {
  const double u = static_cast<double>(mix64(content_hash) >> 11) * 0x1.0p-53;
  return u < val_fraction;
}

RecordSplit split_records(const ProteinCorpus& corpus, double val_fraction) {
  RecordSplit split;
  for (int64_t i = 0; i < corpus.size(); ++i)
    (is_validation(corpus.content_hash(i), val_fraction) ? split.val : split.train).push_back(i);
  // A tiny corpus whose records all hash into validation would leave nothing to train on: the first
  // validation record trains instead (a corpus of one record then has no validation).
  if (split.train.empty() && !split.val.empty()) {
    split.train.push_back(split.val.front());
    split.val.erase(split.val.begin());
  }
  return split;
}

TextSplit split_text(int64_t size, double val_fraction) {
  const auto val = static_cast<int64_t>(static_cast<double>(size) * val_fraction);
  return {TextRange{0, size - val}, TextRange{size - val, size}};
}

}  // namespace pf
