#include "data/text_corpus.h"

#include <algorithm>
#include <stdexcept>

#include "data/corpus_file.h"

namespace pf {

TextCorpus TextCorpus::open(const std::vector<std::string>& files, const std::string& cache_dir) {
  TextCorpus corpus;
  for (const std::string& f : files) corpus.add(open_corpus_file(f, cache_dir));
  return corpus;
}

TextCorpus TextCorpus::from_tokens(std::vector<int32_t> ids, const std::vector<int32_t>& bytes) {
  if (!bytes.empty() && bytes.size() != ids.size())
    throw std::invalid_argument("TextCorpus::from_tokens: " + std::to_string(bytes.size()) + " byte counts for " +
                                std::to_string(ids.size()) + " tokens");
  TextCorpus corpus;
  corpus.encoded_ = true;
  corpus.ids_ = std::move(ids);
  if (!bytes.empty()) {
    corpus.byte_prefix_.reserve(bytes.size() + 1);
    corpus.byte_prefix_.push_back(0);
    for (int32_t b : bytes) corpus.byte_prefix_.push_back(corpus.byte_prefix_.back() + b);
  }
  return corpus;
}

int64_t TextCorpus::bytes(int64_t offset, int64_t n) const {
  if (offset < 0 || n < 0 || offset + n > size())
    throw std::out_of_range("TextCorpus: range [" + std::to_string(offset) + ", " + std::to_string(offset + n) +
                            ") is outside the corpus of " + std::to_string(size()) + " tokens");
  if (!encoded_) return n;
  if (byte_prefix_.empty()) return -1;
  return byte_prefix_[static_cast<size_t>(offset + n)] - byte_prefix_[static_cast<size_t>(offset)];
}

void TextCorpus::add(MappedFile file) {
  if (encoded_) throw std::logic_error("TextCorpus::add: this corpus holds encoded tokens");
  file.advise_random();  // training reads windows at random offsets; read-ahead would be wasted
  starts_.push_back(starts_.back() + static_cast<int64_t>(file.size()));
  files_.push_back(std::move(file));
}

void TextCorpus::copy_tokens(int64_t offset, int64_t n, int32_t* out) const {
  if (offset < 0 || n < 0 || offset + n > size())
    throw std::out_of_range("TextCorpus: range [" + std::to_string(offset) + ", " + std::to_string(offset + n) +
                            ") is outside the corpus of " + std::to_string(size()) + " bytes");
  if (encoded_) {
    std::copy(ids_.begin() + offset, ids_.begin() + offset + n, out);
    return;
  }
  // The file holding `offset`: the last start <= offset.
  auto it = std::upper_bound(starts_.begin(), starts_.end(), offset);
  auto f = static_cast<size_t>(it - starts_.begin()) - 1;
  while (n > 0) {
    const std::string_view bytes = files_[f].view();
    const auto local = static_cast<size_t>(offset - starts_[f]);
    const auto take = std::min<int64_t>(n, static_cast<int64_t>(bytes.size() - local));
    for (int64_t i = 0; i < take; ++i) out[i] = static_cast<unsigned char>(bytes[local + static_cast<size_t>(i)]);
    out += take;
    offset += take;
    n -= take;
    ++f;
  }
}

}  // namespace pf
