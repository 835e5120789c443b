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

void TextCorpus::add(MappedFile file) {
  file.advise_random();  // training reads windows at random offsets; read-ahead would be wasted
  starts_.push_back(starts_.back() + static_cast<int64_t>(file.size()));
  files_.push_back(std::move(file));
}

void TextCorpus::copy_tokens(int64_t offset, int64_t n, int32_t* out) const {
  if (offset < 0 || n < 0 || offset + n > size())
    throw std::out_of_range("TextCorpus: range [" + std::to_string(offset) + ", " + std::to_string(offset + n) +
                            ") is outside the corpus of " + std::to_string(size()) + " bytes");
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
