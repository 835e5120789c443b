// Preparing a text corpus (data/prepared.h): the byte split, a SentencePiece model trained on a
// bounded sample, and the tokens encoded in parallel pieces written in order.
#include <sys/stat.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>

#include "base/atomic_file.h"
#include "base/random.h"
#include "data/corpus_file.h"
#include "data/prepare_util.h"
#include "data/prepared.h"
#include "data/split.h"
#include "data/tokenizer.h"

namespace pf::prepared_detail {

namespace {

namespace fs = std::filesystem;

using MapPtr = std::shared_ptr<const MappedFile>;

// A byte range of one mapped file.
struct Span {
  MapPtr map;
  int64_t begin = 0, end = 0;
  std::string_view text() const { return map->view().substr(static_cast<size_t>(begin), static_cast<size_t>(end - begin)); }
};


// XXH3-64 of a mapped file, reading it once and dropping its pages behind the read.
uint64_t hash_map(const MappedFile& map, Progress& progress) {
  XXH3_state_t* s = XXH3_createState();
  XXH3_64bits_reset(s);
  constexpr size_t kBlock = size_t{16} << 20;
  for (size_t off = 0; off < map.size(); off += kBlock) {
    const size_t n = std::min(kBlock, map.size() - off);
    XXH3_64bits_update(s, map.view().data() + off, n);
    map.release_pages(off, n);
    progress.add(static_cast<int64_t>(n));
  }
  const uint64_t h = XXH3_64bits_digest(s);
  XXH3_freeState(s);
  return h;
}

// The parts of [begin, end) of the files laid end to end.
std::vector<Span> spans_of(const std::vector<MapPtr>& maps, int64_t begin, int64_t end) {
  std::vector<Span> out;
  int64_t start = 0;
  for (const MapPtr& m : maps) {
    const int64_t stop = start + static_cast<int64_t>(m->size());
    const int64_t b = std::max(start, begin), e = std::min(stop, end);
    if (b < e) out.push_back({m, b - start, e - start});
    start = stop;
  }
  return out;
}

int64_t total_bytes(const std::vector<Span>& spans) {
  int64_t n = 0;
  for (const Span& s : spans) n += s.end - s.begin;
  return n;
}

// A stratified sample of whole lines: `budget` bytes in blocks of 256 KiB, one drawn at a seeded
// offset in each of budget / 256 KiB equal strata of the text (all of it when it is not larger).
std::string sample_text(const std::vector<Span>& spans, int64_t budget, uint64_t seed) {
  std::string out;
  const int64_t total = total_bytes(spans);
  if (total <= budget) {
    for (const Span& s : spans) out.append(s.text());
    return out;
  }
  constexpr int64_t kBlock = 256 << 10;
  const int64_t blocks = std::max<int64_t>(1, budget / kBlock);
  const int64_t stratum = total / blocks;
  Generator rng(seed);
  out.reserve(static_cast<size_t>(budget));
  for (int64_t i = 0; i < blocks; ++i) {
    int64_t at = i * stratum + static_cast<int64_t>(rng.below(static_cast<uint64_t>(std::max<int64_t>(1, stratum - kBlock))));
    for (const Span& s : spans) {  // the span holding `at`
      const int64_t len = s.end - s.begin;
      if (at >= len) {
        at -= len;
        continue;
      }
      const std::string_view block = s.text().substr(static_cast<size_t>(at), static_cast<size_t>(kBlock));
      const size_t nl = block.find('\n');
      const size_t first = at == 0 ? 0 : (nl == std::string_view::npos ? block.size() : nl + 1);  // whole lines
      const size_t last = block.rfind('\n');
      if (last != std::string_view::npos && last + 1 > first) out.append(block.substr(first, last + 1 - first));
      break;
    }
  }
  return out;
}

std::string mib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

std::shared_ptr<const SentencePieceModel> make_model(const DataConfig& c, const std::vector<Span>& train, Manifest& m) {
  if (!c.tokenizer.proto.empty()) {
    m.tokenizer_origin = "from the checkpoint";
    return SentencePieceModel::from_bytes(c.tokenizer.proto, "the checkpoint's tokenizer");
  }
  if (!c.tokenizer.model.empty()) {
    m.tokenizer_origin = c.tokenizer.model;
    return SentencePieceModel::from_file(c.tokenizer.model);
  }
  const std::string sample = sample_text(train, c.tokenizer.sample_bytes, c.tokenizer.sample_seed);
  if (sample.empty())
    throw std::invalid_argument("--vocab-size: there is no training text to train the SentencePiece model on");
  m.sample_bytes = static_cast<int64_t>(sample.size());
  m.tokenizer_origin = std::string(enum_name(c.tokenizer.type)) + ", trained on " +
                       (m.sample_bytes == total_bytes(train) ? std::string("the training split")
                                                             : "a " + mib(m.sample_bytes) + " sample of the training split");
  if (c.progress) std::fprintf(stderr, "prepare: training the tokenizer (%s)\n", m.tokenizer_origin.c_str());
  return SentencePieceModel::train(sample, {.vocab_size = c.tokenizer.vocab_size, .model_type = c.tokenizer.type});
}

// Encodes the spans piece by piece (encode_piece_end), `threads` pieces at a time and in order.
void encode_spans(const SentencePieceModel& model, const std::vector<Span>& spans, ShardWriter& tokens,
                  ShardWriter* bytes, int threads, Progress& progress) {
  struct Piece {
    std::string_view text;
    std::vector<int32_t> ids, bytes;
  };
  int64_t carry = 0;  // bytes of pieces that encoded to nothing: given to the next token
  for (const Span& span : spans) {
    const std::string_view text = span.text();
    size_t pos = 0, released = 0;
    while (pos < text.size()) {
      std::vector<Piece> round;
      while (pos < text.size() && static_cast<int>(round.size()) < threads * 8) {
        const size_t end = encode_piece_end(text, pos);
        round.push_back({text.substr(pos, end - pos), {}, {}});
        pos = end;
      }
      span.map->will_need(static_cast<size_t>(span.begin) + pos, size_t{32} << 20);  // the next round's text
      parallel_for(static_cast<int64_t>(round.size()), threads, [&](int64_t i) {
        Piece& p = round[static_cast<size_t>(i)];
        thread_local SentencePieceModel::WordCache cache;
        thread_local uint64_t cache_model = 0;  // the hash of the model the cache holds words of
        if (cache_model != model.hash()) cache.map.clear(), cache_model = model.hash();
        model.encode_words(p.text, p.ids, bytes ? &p.bytes : nullptr, cache);
      });
      for (Piece& p : round) {
        if (bytes && p.ids.empty()) carry += static_cast<int64_t>(p.text.size());
        if (bytes && !p.ids.empty() && carry > 0) {
          p.bytes[0] += static_cast<int32_t>(carry);
          carry = 0;
        }
        tokens.append(std::span<const int32_t>(p.ids));
        if (bytes) bytes->append(std::span<const int32_t>(p.bytes));
        progress.add(static_cast<int64_t>(p.text.size()));
      }
      span.map->release_pages(static_cast<size_t>(span.begin) + released, pos - released);
      released = pos;
    }
  }
}

void copy_spans(const std::vector<Span>& spans, ShardWriter& out, Progress& progress) {
  constexpr int64_t kBlock = int64_t{16} << 20;
  for (const Span& s : spans)
    for (int64_t at = s.begin; at < s.end; at += kBlock) {
      const int64_t n = std::min(kBlock, s.end - at);
      const auto* p = reinterpret_cast<const uint8_t*>(s.map->view().data()) + at;
      out.append(std::span<const uint8_t>(p, static_cast<size_t>(n)));
      s.map->release_pages(static_cast<size_t>(at), static_cast<size_t>(n));
      progress.add(n);
    }
}

}  // namespace

void prepare_text(const DataConfig& c, const std::vector<std::string>& train_paths,
                  const std::vector<std::string>& val_paths, const std::string& tmp, bool in_place, Manifest& m) {
  m.kind = "text";
  std::vector<MapPtr> train_maps, val_maps;
  int64_t train_total = 0, val_total = 0;
  for (const std::string& f : train_paths) {
    train_maps.push_back(std::make_shared<const MappedFile>(open_corpus_file(f, c.cache_dir)));
    m.sources.push_back(identify_source(f));
    train_total += static_cast<int64_t>(train_maps.back()->size());
  }
  for (const std::string& f : val_paths) {
    val_maps.push_back(std::make_shared<const MappedFile>(open_corpus_file(f, c.cache_dir)));
    m.val_sources.push_back(identify_source(f));
    val_total += static_cast<int64_t>(val_maps.back()->size());
  }
  const int threads = worker_threads(c.threads);
  const std::string what = fs::path(train_paths.empty() ? val_paths[0] : train_paths[0]).filename().string();
  Progress progress(c.progress, what, train_total + val_total);
  progress.stage("hashing", train_total + val_total);
  for (size_t i = 0; i < train_maps.size(); ++i) m.sources[i].xxh3 = hash_map(*train_maps[i], progress);
  for (size_t i = 0; i < val_maps.size(); ++i) m.val_sources[i].xxh3 = hash_map(*val_maps[i], progress);

  // The split: validation files, else the tail of the training bytes.
  TextRange train_range{0, train_total}, val_range{0, 0};
  std::vector<Span> val_spans;
  if (!val_maps.empty()) {
    m.split_rule = "val-files";
    val_spans = spans_of(val_maps, 0, val_total);
  } else if (c.val_fraction > 0.0 && !c.eval_only) {
    m.split_rule = "tail";
    m.val_fraction = c.val_fraction;
    const TextSplit split = split_text(train_total, c.val_fraction);
    train_range = split.train;
    val_range = split.val;
    if (c.tokenizer.sentencepiece())  // the held-out tail starts at a UTF-8 character boundary
      for (std::vector<Span> at; val_range.begin < val_range.end; ++val_range.begin, ++train_range.end) {
        at = spans_of(train_maps, val_range.begin, val_range.begin + 1);
        if ((static_cast<unsigned char>(at[0].text()[0]) & 0xC0) != 0x80) break;
      }
    val_spans = spans_of(train_maps, val_range.begin, val_range.end);
  } else {
    m.split_rule = "none";
  }
  const std::vector<Span> train_spans = spans_of(train_maps, train_range.begin, train_range.end);
  m.has_val = !val_spans.empty() || !val_maps.empty();
  m.train.text_bytes = total_bytes(train_spans);
  m.val.text_bytes = total_bytes(val_spans);
  if (!c.eval_only && m.train.text_bytes == 0)
    throw std::invalid_argument("text: the training files (--data) are empty; give a non-empty corpus");

  if (!c.tokenizer.sentencepiece()) {
    m.tokenizer = enum_name(TokenizerKind::Bytes);
    for (auto [part, spans] : {std::pair{&m.train, &train_spans}, std::pair{&m.val, static_cast<const std::vector<Span>*>(&val_spans)}}) {
      part->width = TokenWidth::U8;
      part->token_count = total_bytes(*spans);
      if (in_place) {
        for (const Span& s : *spans) part->ranges.push_back({s.map->path(), s.begin, s.end});
      } else {
        progress.stage("copying", part->token_count);
        ShardWriter w(tmp, part == &m.train ? "train.tokens" : "val.tokens", TokenWidth::U8, int64_t{1} << 30);
        copy_spans(*spans, w, progress);
        part->tokens = w.finish();
      }
    }
    progress.finish();
    return;
  }
  const auto model = make_model(c, train_spans, m);
  if (c.tokenizer.vocab_size > 0 && c.tokenizer.vocab_size != model->size())
    throw std::invalid_argument("--vocab-size " + std::to_string(c.tokenizer.vocab_size) + ": the tokenizer model (" +
                                m.tokenizer_origin + ") has " + std::to_string(model->size()) +
                                " pieces; drop --vocab-size or give the model's size");
  write_file_atomic(tmp + "/tokenizer.model", model->proto());
  m.tokenizer = enum_name(TokenizerKind::SentencePiece);
  m.tokenizer_hash = model->hash_hex();
  m.pieces = model->size();
  const TokenWidth width = width_for(static_cast<uint64_t>(model->size() - 1));
  progress.stage("encoding", m.train.text_bytes + m.val.text_bytes);
  ShardWriter train_tokens(tmp, "train.tokens", width, int64_t{1} << 28);
  encode_spans(*model, train_spans, train_tokens, nullptr, threads, progress);
  m.train.tokens = train_tokens.finish();
  m.train.token_count = train_tokens.count();
  m.train.width = m.val.width = width;
  ShardWriter val_tokens(tmp, "val.tokens", width, int64_t{1} << 28);
  ShardWriter val_bytes(tmp, "val.bytes", TokenWidth::U32, int64_t{1} << 28);
  encode_spans(*model, val_spans, val_tokens, &val_bytes, threads, progress);
  m.val.tokens = val_tokens.finish();
  m.val.token_count = val_tokens.count();
  m.val.bytes = val_bytes.finish();
  m.val.bytes_width = TokenWidth::U32;
  progress.finish();
  if (!c.eval_only && m.train.token_count < 1)
    throw std::invalid_argument("text: the training part encodes to no token; give more text");
}

}  // namespace pf::prepared_detail
