// ProteinCorpus: protein records as protein-vocabulary token ids, one byte per residue.
//
// Records are stored end to end in one array with an offset table, so a corpus costs about one byte
// per residue plus eight per record. Two forms:
//   - in memory (add(): read_fasta, tests): each record also keeps its id and an FNV-1a hash of its
//     (uppercased) residue letters, which decides its train/validation side (data/split.h);
//   - mapped (mapped(): a prepared dataset's part, data/prepared.h): residues and offsets are read
//     from memory-mapped shards, nothing per record is held in memory; ids and hashes are not kept
//     (the side was decided when the dataset was prepared).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace pf {

class ProteinCorpus {
 public:
  ProteinCorpus() { sync(); }
  ProteinCorpus(const ProteinCorpus& o) : tokens_(o.tokens_), offsets_(o.offsets_), ids_(o.ids_), hashes_(o.hashes_), keep_(o.keep_) {
    if (o.keep_) {
      tok_ = o.tok_, off_ = o.off_, n_ = o.n_;
    } else {
      sync();
    }
  }
  ProteinCorpus(ProteinCorpus&& o) noexcept { *this = std::move(o); }
  ProteinCorpus& operator=(ProteinCorpus&& o) noexcept {
    tokens_ = std::move(o.tokens_), offsets_ = std::move(o.offsets_), ids_ = std::move(o.ids_);
    hashes_ = std::move(o.hashes_), keep_ = std::move(o.keep_);
    if (keep_) {
      tok_ = o.tok_, off_ = o.off_, n_ = o.n_;
    } else {
      sync();
    }
    return *this;
  }

  // A corpus over mapped memory: n records, offsets[0..n] into tokens; `keep` holds the maps alive.
  static ProteinCorpus mapped(const uint8_t* tokens, const int64_t* offsets, int64_t n, std::shared_ptr<const void> keep) {
    ProteinCorpus c;
    c.keep_ = std::move(keep);
    c.tok_ = tokens, c.off_ = offsets, c.n_ = n;
    return c;
  }

  int64_t size() const { return n_; }  // records
  int64_t residues() const { return off_[n_] - off_[0]; }
  int64_t length(int64_t i) const { return off_[i + 1] - off_[i]; }
  // Token ids of record i (residues only; begin/end tokens are added by the batcher).
  std::span<const uint8_t> tokens(int64_t i) const { return {tok_ + off_[i], static_cast<size_t>(length(i))}; }
  // In-memory corpora only (std::logic_error for a mapped one).
  const std::string& id(int64_t i) const { return ids_.at(static_cast<size_t>(checked(i))); }
  uint64_t content_hash(int64_t i) const { return hashes_.at(static_cast<size_t>(checked(i))); }

  void add(std::string id, std::span<const uint8_t> tokens, uint64_t content_hash) {
    if (keep_) throw std::logic_error("ProteinCorpus::add: a mapped corpus is read-only");
    tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
    offsets_.push_back(static_cast<int64_t>(tokens_.size()));
    ids_.push_back(std::move(id));
    hashes_.push_back(content_hash);
    sync();
  }
  void reserve_residues(size_t n) {
    tokens_.reserve(n);
    sync();
  }

 private:
  void sync() {
    tok_ = tokens_.data(), off_ = offsets_.data(), n_ = static_cast<int64_t>(offsets_.size()) - 1;
  }
  int64_t checked(int64_t i) const {
    if (keep_) throw std::logic_error("ProteinCorpus: a mapped corpus keeps no record ids or hashes");
    return i;
  }

  std::vector<uint8_t> tokens_;         // in memory: all records' residues, end to end
  std::vector<int64_t> offsets_ = {0};  // record i is tokens_[offsets_[i], offsets_[i+1])
  std::vector<std::string> ids_;
  std::vector<uint64_t> hashes_;
  std::shared_ptr<const void> keep_;  // mapped: the maps behind tok_ and off_
  const uint8_t* tok_ = nullptr;
  const int64_t* off_ = nullptr;
  int64_t n_ = 0;
};

}  // namespace pf
