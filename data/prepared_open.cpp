// Opening a prepared dataset (data/prepared.h): every shard's size and checksum checked, then mapped.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "base/atomic_file.h"
#include "data/prepare_util.h"
#include "data/prepared.h"
#include "data/tokenizer.h"

namespace pf {

namespace prepared_detail {

Progress::Progress(bool enabled, std::string what, int64_t total_bytes)
    : enabled_(enabled), tty_(::isatty(2) != 0), what_(std::move(what)), total_(total_bytes) {
  start_ = last_ = std::chrono::steady_clock::now();
}

void Progress::stage(const std::string& stage, int64_t total_bytes) {
  finish();
  stage_ = stage;
  total_ = total_bytes;
  done_ = 0;
  start_ = last_ = std::chrono::steady_clock::now();
}

void Progress::add(int64_t bytes) {
  done_ += bytes;
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_ >= std::chrono::seconds(tty_ ? 1 : 10)) {
    last_ = now;
    printed_ = true;
    print(false);
  }
}

void Progress::finish() {
  if (enabled_ && printed_) print(true);  // a closing line only for a pass that showed progress
  stage_.clear();
  printed_ = false;
}

void Progress::print(bool last) {
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double mb = static_cast<double>(done_) / 1e6, total = static_cast<double>(total_) / 1e6;
  const double rate = s > 0 ? mb / s : 0.0;
  char eta[48] = "";
  if (!last && rate > 0 && total > mb) std::snprintf(eta, sizeof eta, ", %.0f s left", (total - mb) / rate);
  std::fprintf(stderr, "%sprepare %s: %s %.1f / %.1f MB, %.1f MB/s%s%s", tty_ && !last ? "\r" : "", what_.c_str(),
               stage_.c_str(), mb, total, rate, last ? (", " + std::to_string(static_cast<int>(s + 0.5)) + " s").c_str() : eta,
               tty_ && !last ? "   " : "\n");
  if (tty_ && last) std::fprintf(stderr, "\r");
  std::fflush(stderr);
}

}  // namespace prepared_detail

namespace {

namespace fs = std::filesystem;
using MapPtr = std::shared_ptr<const MappedFile>;

struct Check {
  std::string path;
  const ShardInfo* shard;
  int64_t width;
};

// Sizes first (cheap, names a truncated file at once), then every checksum in parallel.
void verify_shards(const std::vector<Check>& checks, int threads) {
  for (const Check& c : checks) {
    struct stat st {};
    if (::stat(c.path.c_str(), &st) != 0)
      throw std::runtime_error(c.path + ": missing from the prepared dataset; delete its directory to prepare it again");
    if (st.st_size != c.shard->count * c.width)
      throw std::runtime_error(c.path + ": " + std::to_string(st.st_size) + " bytes where the manifest says " +
                               std::to_string(c.shard->count * c.width) +
                               " (truncated or replaced); delete the dataset directory to prepare it again");
  }
  prepared_detail::parallel_for(static_cast<int64_t>(checks.size()), prepared_detail::worker_threads(threads),
                                [&](int64_t i) {
                                  const Check& c = checks[static_cast<size_t>(i)];
                                  if (hash_file(c.path) != c.shard->xxh3)
                                    throw std::runtime_error(c.path + ": checksum mismatch (the file was edited or "
                                                             "damaged); delete the dataset directory to prepare it again");
                                });
}

MapPtr map_shard(const std::string& dir, const ShardInfo& s) {
  if (s.count == 0) return nullptr;
  return std::make_shared<const MappedFile>(MappedFile::open(dir + "/" + s.file));
}

std::shared_ptr<const TextCorpus> text_part(const std::string& dir, const PreparedPart& p, std::vector<MapPtr>& maps) {
  auto corpus = std::make_shared<TextCorpus>();
  for (const ShardInfo& s : p.tokens)
    if (MapPtr map = map_shard(dir, s)) {
      corpus->add_tokens(map, 0, s.count, p.width);
      maps.push_back(map);
    }
  for (const SourceRange& r : p.ranges) {
    auto map = std::make_shared<const MappedFile>(MappedFile::open(r.path));
    corpus->add_tokens(map, r.begin, r.end - r.begin, p.width);
    maps.push_back(map);
  }
  for (const ShardInfo& s : p.bytes)
    if (MapPtr map = map_shard(dir, s)) {
      corpus->add_byte_counts(map, s.count, p.bytes_width);
      maps.push_back(map);
    }
  if (corpus->size() != p.token_count)
    throw std::runtime_error(dir + "/" + kManifestName + ": the parts hold " + std::to_string(corpus->size()) +
                             " tokens where the manifest says " + std::to_string(p.token_count));
  return corpus;
}

std::shared_ptr<const ProteinCorpus> protein_part(const std::string& dir, const PreparedPart& p,
                                                  std::vector<MapPtr>& all) {
  if (p.tokens.size() != 1 || p.offsets.size() != 1 || p.offsets[0].count != p.records + 1)
    throw std::runtime_error(dir + "/" + kManifestName + ": a FASTA part needs one token file and one offset file");
  struct Maps {
    MapPtr tokens, offsets;
  };
  auto maps = std::make_shared<Maps>();
  maps->offsets = map_shard(dir, p.offsets[0]);
  maps->tokens = map_shard(dir, p.tokens[0]);
  const auto* offsets = reinterpret_cast<const int64_t*>(maps->offsets->view().data());
  const uint8_t* tokens = maps->tokens ? reinterpret_cast<const uint8_t*>(maps->tokens->view().data()) : nullptr;
  maps->tokens ? maps->tokens->advise_random() : void();
  // The checksum vouches for every offset; the ends are checked so that no record reads out of bounds.
  if (offsets[0] != 0 || offsets[p.records] != p.token_count)
    throw std::runtime_error(dir + "/" + p.offsets[0].file + ": offsets do not cover the tokens");
  maps->offsets->advise_random();
  all.push_back(maps->offsets);
  if (maps->tokens) all.push_back(maps->tokens);
  return std::make_shared<const ProteinCorpus>(ProteinCorpus::mapped(tokens, offsets, p.records, maps));
}

}  // namespace

PreparedDataset PreparedDataset::open(const std::string& dir, int threads) {
  PreparedDataset d;
  d.dir_ = dir;
  const std::string manifest_path = dir + "/" + kManifestName;
  if (!fs::exists(manifest_path))
    throw std::runtime_error(dir + ": not a prepared dataset (no " + kManifestName +
                             "; an unfinished preparation never has one): prepare it with performer-prepare");
  d.manifest_ = parse_manifest(read_file_bytes(manifest_path), manifest_path);
  const Manifest& m = d.manifest_;
  std::vector<Check> checks;
  for (const PreparedPart* p : {&m.train, &m.val}) {
    for (const ShardInfo& s : p->tokens) checks.push_back({dir + "/" + s.file, &s, static_cast<int64_t>(p->width)});
    for (const ShardInfo& s : p->offsets) checks.push_back({dir + "/" + s.file, &s, 8});
    for (const ShardInfo& s : p->bytes) checks.push_back({dir + "/" + s.file, &s, static_cast<int64_t>(p->bytes_width)});
  }
  verify_shards(checks, threads);
  // Sources read in place must be the bytes that were hashed: same size and modification time.
  for (const auto* list : {&m.sources, &m.val_sources})
    for (const SourceFile& s : *list) {
      if (m.train.ranges.empty() && m.val.ranges.empty()) break;
      struct stat st {};
      const bool same = ::stat(s.path.c_str(), &st) == 0 && st.st_size == s.size &&
                        prepared_detail::mtime_ns(st) == s.mtime_ns;
      if (!same)
        throw std::runtime_error(s.path + ": changed (or moved) since the dataset in " + dir +
                                 " was prepared from it; that dataset reads it in place and cannot be used");
    }
  if (m.tokenizer == enum_name(TokenizerKind::SentencePiece)) {
    const std::string path = dir + "/tokenizer.model";
    d.tokenizer_ = SentencePieceModel::from_bytes(read_file_bytes(path), path);
    if (d.tokenizer_->hash_hex() != m.tokenizer_hash)
      throw std::runtime_error(path + ": not the tokenizer the manifest names (fnv1a64 " + m.tokenizer_hash +
                               "); delete the dataset directory to prepare it again");
  }
  if (m.kind == "fasta") {
    d.prot_train_ = protein_part(dir, m.train, d.maps_);
    if (m.has_val) d.prot_val_ = protein_part(dir, m.val, d.maps_);
  } else {
    d.text_train_ = text_part(dir, m.train, d.maps_);
    if (m.has_val) d.text_val_ = text_part(dir, m.val, d.maps_);
  }
  return d;
}

void PreparedDataset::release_pages() const {
  for (const auto& map : maps_) map->release_pages(0, map->size());
}

}  // namespace pf
