// manifest.json of a prepared dataset (data/prepared.h), read and written with nlohmann::json.
#include <xxhash.h>

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "data/prepared.h"

namespace pf {

using nlohmann::json;

namespace {

json shards_json(const std::vector<ShardInfo>& shards) {
  json a = json::array();
  for (const ShardInfo& s : shards) a.push_back({{"file", s.file}, {"count", s.count}, {"xxh3", hex64(s.xxh3)}});
  return a;
}

json part_json(const PreparedPart& p) {
  json ranges = json::array();
  for (const SourceRange& r : p.ranges) ranges.push_back({{"path", r.path}, {"begin", r.begin}, {"end", r.end}});
  return {{"width", width_name(p.width)}, {"tokens", shards_json(p.tokens)}, {"ranges", ranges},
          {"offsets", shards_json(p.offsets)}, {"bytes_width", width_name(p.bytes_width)},
          {"bytes", shards_json(p.bytes)}, {"token_count", p.token_count}, {"records", p.records},
          {"text_bytes", p.text_bytes}};
}

json sources_json(const std::vector<SourceFile>& sources) {
  json a = json::array();
  for (const SourceFile& s : sources)
    a.push_back({{"path", s.path}, {"size", s.size}, {"mtime_ns", s.mtime_ns}, {"xxh3", hex64(s.xxh3)}});
  return a;
}

// Reading: every field is required and typed; a missing or mistyped one names the manifest and key.
struct Reader {
  const std::string& file;
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(file + ": " + what + "; the prepared dataset is damaged: delete its directory to prepare it again");
  }
  const json& at(const json& j, const char* key) const {
    if (!j.is_object() || !j.contains(key)) fail(std::string("missing field '") + key + "'");
    return j.at(key);
  }
  template <class T>
  T get(const json& j, const char* key) const {
    try {
      return at(j, key).get<T>();
    } catch (const json::exception&) {
      fail(std::string("field '") + key + "' has the wrong type");
    }
  }
  uint64_t hex(const json& j, const char* key) const {
    try {
      return parse_hex64(get<std::string>(j, key), std::string("field '") + key + "'");
    } catch (const std::invalid_argument& e) {
      fail(e.what());
    }
  }
  TokenWidth width(const json& j, const char* key) const {
    try {
      return parse_width(get<std::string>(j, key), std::string("field '") + key + "'");
    } catch (const std::invalid_argument& e) {
      fail(e.what());
    }
  }
  std::vector<ShardInfo> shards(const json& j, const char* key) const {
    std::vector<ShardInfo> out;
    const json& a = at(j, key);
    if (!a.is_array()) fail(std::string("field '") + key + "' is not a list");
    for (const json& s : a) {
      ShardInfo info{get<std::string>(s, "file"), get<int64_t>(s, "count"), hex(s, "xxh3")};
      if (info.file.empty() || info.file.find('/') != std::string::npos || info.file[0] == '.')
        fail("shard name '" + info.file + "' is not a plain file name");
      if (info.count < 0) fail("shard " + info.file + " has a negative count");
      out.push_back(info);
    }
    return out;
  }
  PreparedPart part(const json& j) const {
    PreparedPart p;
    p.width = width(j, "width");
    p.tokens = shards(j, "tokens");
    const json& ranges = at(j, "ranges");
    if (!ranges.is_array()) fail("field 'ranges' is not a list");
    for (const json& r : ranges)
      p.ranges.push_back({get<std::string>(r, "path"), get<int64_t>(r, "begin"), get<int64_t>(r, "end")});
    p.offsets = shards(j, "offsets");
    p.bytes_width = width(j, "bytes_width");
    p.bytes = shards(j, "bytes");
    p.token_count = get<int64_t>(j, "token_count");
    p.records = get<int64_t>(j, "records");
    p.text_bytes = get<int64_t>(j, "text_bytes");
    return p;
  }
  std::vector<SourceFile> sources(const json& j, const char* key) const {
    std::vector<SourceFile> out;
    for (const json& s : at(j, key))
      out.push_back({get<std::string>(s, "path"), get<int64_t>(s, "size"), get<int64_t>(s, "mtime_ns"), hex(s, "xxh3")});
    return out;
  }
};

}  // namespace

std::string manifest_json(const Manifest& m) {
  const json stats = {{"files", m.stats.files},
                      {"records", m.stats.records},
                      {"skipped_records", m.stats.skipped_records},
                      {"residues", m.stats.residues},
                      {"nucleotide_residues", m.stats.nucleotide_residues},
                      {"skipped_examples", m.stats.skipped_examples}};
  json j = {{"format", "performer-prepared-dataset"},
            {"version", m.version},
            {"kind", m.kind},
            {"sources", sources_json(m.sources)},
            {"val_sources", sources_json(m.val_sources)},
            {"tokenizer", m.tokenizer},
            {"tokenizer_origin", m.tokenizer_origin},
            {"tokenizer_fnv1a64", m.tokenizer_hash},
            {"pieces", m.pieces},
            {"tokenizer_sample_bytes", m.sample_bytes},
            {"split_rule", m.split_rule},
            {"val_fraction", m.val_fraction},
            {"skip_bad_records", m.skip_bad_records},
            {"fasta_stats", stats},
            {"train", part_json(m.train)},
            {"has_val", m.has_val},
            {"val", part_json(m.val)},
            {"key", m.key},
            {"fingerprint", hex64(m.fingerprint)},
            {"prepare_seconds", m.prepare_seconds}};
  return j.dump(1) + "\n";
}

Manifest parse_manifest(const std::string& text, const std::string& file) {
  const Reader r{file};
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    r.fail(std::string("not valid JSON (") + e.what() + ")");
  }
  if (r.get<std::string>(j, "format") != "performer-prepared-dataset") r.fail("not a prepared-dataset manifest");
  Manifest m;
  m.version = r.get<int>(j, "version");
  if (m.version != kPreparedVersion)
    throw std::runtime_error(file + ": prepared-dataset format version " + std::to_string(m.version) +
                             "; this build reads version " + std::to_string(kPreparedVersion) +
                             ": prepare the corpus again (performer-prepare, or delete the directory)");
  m.kind = r.get<std::string>(j, "kind");
  if (m.kind != "text" && m.kind != "fasta") r.fail("unknown kind '" + m.kind + "'");
  m.sources = r.sources(j, "sources");
  m.val_sources = r.sources(j, "val_sources");
  m.tokenizer = r.get<std::string>(j, "tokenizer");
  m.tokenizer_origin = r.get<std::string>(j, "tokenizer_origin");
  m.tokenizer_hash = r.get<std::string>(j, "tokenizer_fnv1a64");
  m.pieces = r.get<int64_t>(j, "pieces");
  m.sample_bytes = r.get<int64_t>(j, "tokenizer_sample_bytes");
  m.split_rule = r.get<std::string>(j, "split_rule");
  m.val_fraction = r.get<double>(j, "val_fraction");
  m.skip_bad_records = r.get<bool>(j, "skip_bad_records");
  const json& s = r.at(j, "fasta_stats");
  m.stats.files = r.get<int64_t>(s, "files");
  m.stats.records = r.get<int64_t>(s, "records");
  m.stats.skipped_records = r.get<int64_t>(s, "skipped_records");
  m.stats.residues = r.get<int64_t>(s, "residues");
  m.stats.nucleotide_residues = r.get<int64_t>(s, "nucleotide_residues");
  m.stats.skipped_examples = r.get<std::vector<std::string>>(s, "skipped_examples");
  m.train = r.part(r.at(j, "train"));
  m.has_val = r.get<bool>(j, "has_val");
  m.val = r.part(r.at(j, "val"));
  m.key = r.get<std::string>(j, "key");
  m.fingerprint = r.hex(j, "fingerprint");
  m.prepare_seconds = r.get<double>(j, "prepare_seconds");
  if (content_fingerprint(m) != m.fingerprint) r.fail("the fingerprint does not match the manifest's content");
  return m;
}

uint64_t content_fingerprint(const Manifest& m) {
  // Everything that decides the token streams, nothing about paths or times: a dataset prepared again
  // from the same bytes with the same settings has the same fingerprint.
  json j = {{"kind", m.kind},
            {"tokenizer", m.tokenizer},
            {"tokenizer_fnv1a64", m.tokenizer_hash},
            {"split_rule", m.split_rule},
            {"val_fraction", m.val_fraction},
            {"has_val", m.has_val}};
  for (const PreparedPart* p : {&m.train, &m.val}) {
    json q = {{"width", width_name(p->width)}, {"count", p->token_count}, {"records", p->records}};
    for (const auto* list : {&p->tokens, &p->offsets, &p->bytes})
      for (const ShardInfo& s : *list) q["shards"].push_back({s.count, hex64(s.xxh3)});
    for (const SourceRange& r : p->ranges) q["ranges"].push_back({r.begin, r.end});
    j["parts"].push_back(q);
  }
  for (const auto* list : {&m.sources, &m.val_sources})
    for (const SourceFile& s : *list) j["sources"].push_back({s.size, hex64(s.xxh3)});
  const std::string text = j.dump();
  return XXH3_64bits(text.data(), text.size());
}

}  // namespace pf
