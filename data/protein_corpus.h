// ProteinCorpus: protein records held in memory as protein-vocabulary token ids, one byte per residue.
//
// Records are stored end to end in one array with an offset table, so a corpus costs about one byte
// per residue plus its ids (the 20k-record benchmark file: ~9 MB). Each record also keeps an FNV-1a
// hash of its (uppercased) residue letters, which decides its train/validation side (data/split.h).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace pf {

class ProteinCorpus {
 public:
  int64_t size() const { return static_cast<int64_t>(ids_.size()); }  // records
  int64_t residues() const { return static_cast<int64_t>(tokens_.size()); }
  int64_t length(int64_t i) const { return offsets_[static_cast<size_t>(i) + 1] - offsets_[static_cast<size_t>(i)]; }
  // Token ids of record i (residues only; begin/end tokens are added by the batcher).
  std::span<const uint8_t> tokens(int64_t i) const {
    return {tokens_.data() + offsets_[static_cast<size_t>(i)], static_cast<size_t>(length(i))};
  }
  const std::string& id(int64_t i) const { return ids_[static_cast<size_t>(i)]; }
  uint64_t content_hash(int64_t i) const { return hashes_[static_cast<size_t>(i)]; }

  void add(std::string id, std::span<const uint8_t> tokens, uint64_t content_hash) {
    tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
    offsets_.push_back(static_cast<int64_t>(tokens_.size()));
    ids_.push_back(std::move(id));
    hashes_.push_back(content_hash);
  }
  void reserve_residues(size_t n) { tokens_.reserve(n); }

 private:
  std::vector<uint8_t> tokens_;         // all records' residues, end to end
  std::vector<int64_t> offsets_ = {0};  // record i is tokens_[offsets_[i], offsets_[i+1])
  std::vector<std::string> ids_;
  std::vector<uint64_t> hashes_;
};

}  // namespace pf
