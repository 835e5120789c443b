#include "data/text_corpus.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "data/corpus_file.h"

namespace pf {

namespace {

int32_t read_value(const uint8_t* p, int width) {
  switch (width) {
    case 1: return *p;
    case 2: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return v;
    }
    default: {
      uint32_t v;
      std::memcpy(&v, p, 4);
      return static_cast<int32_t>(v);
    }
  }
}

}  // namespace

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
  auto held = std::make_shared<std::vector<int32_t>>(std::move(ids));
  corpus.segs_.push_back({reinterpret_cast<const uint8_t*>(held->data()), 4});
  corpus.starts_.push_back(static_cast<int64_t>(held->size()));
  corpus.keep_.push_back(held);
  if (!bytes.empty()) {
    auto b = std::make_shared<std::vector<int32_t>>(bytes);
    corpus.byte_segs_.push_back({reinterpret_cast<const uint8_t*>(b->data()), 4});
    corpus.byte_starts_.push_back(static_cast<int64_t>(b->size()));
    corpus.keep_.push_back(b);
  }
  return corpus;
}

void TextCorpus::add(MappedFile file) {
  if (encoded_) throw std::logic_error("TextCorpus::add: this corpus holds encoded tokens");
  file.advise_random();  // training reads windows at random offsets; read-ahead would be wasted
  auto f = std::make_shared<const MappedFile>(std::move(file));
  segs_.push_back({reinterpret_cast<const uint8_t*>(f->view().data()), 1});
  starts_.push_back(starts_.back() + static_cast<int64_t>(f->size()));
  files_.push_back(f);
  keep_.push_back(f);
}

void TextCorpus::add_tokens(std::shared_ptr<const MappedFile> file, int64_t offset, int64_t count, TokenWidth w) {
  const auto width = static_cast<int64_t>(w);
  if (offset < 0 || count < 0 || offset + count * width > static_cast<int64_t>(file->size()))
    throw std::out_of_range(file->name() + ": " + std::to_string(count) + " tokens at byte " + std::to_string(offset) +
                            " run past the end of the file (" + std::to_string(file->size()) + " bytes)");
  if (w != TokenWidth::U8) encoded_ = true;
  if (count == 0) return;
  file->advise_random();
  segs_.push_back({reinterpret_cast<const uint8_t*>(file->view().data()) + offset, static_cast<int>(width)});
  starts_.push_back(starts_.back() + count);
  keep_.push_back(std::move(file));
}

void TextCorpus::add_byte_counts(std::shared_ptr<const MappedFile> file, int64_t count, TokenWidth w) {
  if (count * static_cast<int64_t>(w) > static_cast<int64_t>(file->size()))
    throw std::out_of_range(file->name() + ": " + std::to_string(count) + " byte counts run past the end of the file");
  encoded_ = true;
  if (count == 0) return;
  byte_segs_.push_back({reinterpret_cast<const uint8_t*>(file->view().data()), static_cast<int>(w)});
  byte_starts_.push_back(byte_starts_.back() + count);
  keep_.push_back(std::move(file));
}

int64_t TextCorpus::bytes(int64_t offset, int64_t n) const {
  if (offset < 0 || n < 0 || offset + n > size())
    throw std::out_of_range("TextCorpus: range [" + std::to_string(offset) + ", " + std::to_string(offset + n) +
                            ") is outside the corpus of " + std::to_string(size()) + " tokens");
  if (!encoded_) return n;
  if (byte_starts_.back() != size()) return -1;
  std::vector<int32_t> counts(static_cast<size_t>(n));
  copy_from(byte_segs_, byte_starts_, offset, n, counts.data());
  int64_t sum = 0;
  for (int32_t c : counts) sum += c;
  return sum;
}

void TextCorpus::copy_tokens(int64_t offset, int64_t n, int32_t* out) const {
  if (offset < 0 || n < 0 || offset + n > size())
    throw std::out_of_range("TextCorpus: range [" + std::to_string(offset) + ", " + std::to_string(offset + n) +
                            ") is outside the corpus of " + std::to_string(size()) + " tokens");
  copy_from(segs_, starts_, offset, n, out);
}

void TextCorpus::copy_from(const std::vector<Segment>& segs, const std::vector<int64_t>& starts, int64_t offset,
                           int64_t n, int32_t* out) {
  if (n == 0) return;
  // The segment holding `offset`: the last start <= offset.
  auto it = std::upper_bound(starts.begin(), starts.end(), offset);
  auto s = static_cast<size_t>(it - starts.begin()) - 1;
  while (n > 0) {
    const Segment& seg = segs[s];
    const int64_t local = offset - starts[s];
    const int64_t take = std::min<int64_t>(n, starts[s + 1] - offset);
    const uint8_t* p = seg.data + local * seg.width;
    if (seg.width == 1)
      for (int64_t i = 0; i < take; ++i) out[i] = p[i];
    else
      for (int64_t i = 0; i < take; ++i) out[i] = read_value(p + i * seg.width, seg.width);
    out += take;
    offset += take;
    n -= take;
    ++s;
  }
}

}  // namespace pf
