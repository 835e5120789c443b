// Preparing FASTA corpora (data/prepared.h): files cut into chunks at record starts, chunks parsed in
// parallel, each record's side decided by its content hash, both sides written in file order.
#include <sys/stat.h>
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "data/corpus_file.h"
#include "data/prepare_util.h"
#include "data/prepared.h"
#include "data/split.h"

namespace pf::prepared_detail {

namespace {

namespace fs = std::filesystem;

constexpr size_t kChunk = size_t{8} << 20;  // bytes of FASTA per parallel work item

// One chunk's parse: the records of each side, end to end, and their lengths.
struct ChunkResult {
  std::string_view text;
  int64_t line_base = 0, lines = 0, headers = 0;
  std::vector<uint8_t> residues[2];  // [0] train, [1] validation
  std::vector<int64_t> lengths[2];
  FastaStats stats;
  uint64_t xxh3 = 0;
};

// Chunk boundaries: every kChunk bytes, moved forward to the next line that starts with '>'.
std::vector<std::string_view> cut_chunks(std::string_view text) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.size();
    if (text.size() - pos > kChunk) {
      const size_t at = text.find("\n>", pos + kChunk);
      end = at == std::string_view::npos ? text.size() : at + 1;
    }
    out.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

struct PartWriter {
  ShardWriter tokens, offsets;
  int64_t next = 0;
  PartWriter(const std::string& dir, const char* stem)
      : tokens(dir, std::string(stem) + ".tokens", TokenWidth::U8, int64_t{1} << 62),
        offsets(dir, std::string(stem) + ".offsets", TokenWidth::I64, int64_t{1} << 62) {
    const int64_t zero = 0;
    offsets.append(std::span<const int64_t>(&zero, 1));
  }
  void add(const std::vector<uint8_t>& residues, const std::vector<int64_t>& lengths) {
    tokens.append(std::span<const uint8_t>(residues));
    std::vector<int64_t> ends(lengths.size());
    for (size_t i = 0; i < lengths.size(); ++i) ends[i] = next += lengths[i];
    offsets.append(std::span<const int64_t>(ends));
  }
  void finish(PreparedPart& part) {
    part.width = TokenWidth::U8;
    part.records = offsets.count() - 1;
    part.token_count = tokens.count();
    part.text_bytes = tokens.count();
    part.tokens = tokens.finish();
    part.offsets = offsets.finish();
  }
};

void merge_stats(FastaStats& into, const FastaStats& s) {
  into.records += s.records;
  into.skipped_records += s.skipped_records;
  into.residues += s.residues;
  into.nucleotide_residues += s.nucleotide_residues;
  for (const std::string& e : s.skipped_examples)
    if (into.skipped_examples.size() < FastaStats::kMaxExamples) into.skipped_examples.push_back(e);
}

// Parses one file into the writers. side: -1 = by content hash (val_fraction), 0 = all train, 1 = all val.
// first_trains: the file's first record trains whatever its hash (the every-record-is-validation case).
uint64_t prepare_file(const DataConfig& c, const std::string& path, int side, bool first_trains, PartWriter* parts[2],
                      FastaStats& stats, int threads, Progress& progress) {
  const MappedFile map = open_corpus_file(path, c.cache_dir);
  map.advise_sequential();
  FastaOptions options;
  options.skip_bad_records = c.skip_bad_records;
  const std::vector<std::string_view> chunks = cut_chunks(map.view());
  std::vector<uint64_t> chunk_hashes;
  int64_t lines = 0, headers = 0;
  bool first = first_trains;
  const size_t per_round = static_cast<size_t>(threads) * 2;
  auto prefetch = [&](size_t from) {  // a later round's bytes, read by the kernel while this one is parsed
    if (from >= chunks.size()) return;
    const size_t to = std::min(chunks.size(), from + per_round) - 1;
    const auto begin = static_cast<size_t>(chunks[from].data() - map.view().data());
    map.will_need(begin, static_cast<size_t>(chunks[to].data() + chunks[to].size() - chunks[from].data()));
  };
  prefetch(0);
  prefetch(per_round);
  for (size_t at = 0; at < chunks.size(); at += per_round) {
    prefetch(at + 2 * per_round);  // two rounds ahead: the disk works while both threads parse
    std::vector<ChunkResult> round(std::min(chunks.size() - at, per_round));
    const auto n = static_cast<int64_t>(round.size());
    parallel_for(n, threads, [&](int64_t i) {  // line counts first: messages cite the file's line numbers
      ChunkResult& r = round[static_cast<size_t>(i)];
      r.text = chunks[at + static_cast<size_t>(i)];
      r.lines = static_cast<int64_t>(std::count(r.text.begin(), r.text.end(), '\n'));
      r.xxh3 = XXH3_64bits(r.text.data(), r.text.size());
    });
    for (ChunkResult& r : round) {
      r.line_base = lines;
      lines += r.lines;
    }
    parallel_for(n, threads, [&](int64_t i) {
      ChunkResult& r = round[static_cast<size_t>(i)];
      const FastaSink sink = [&](std::string_view, std::span<const uint8_t> residues, uint64_t hash) {
        const int s = side >= 0 ? side : (is_validation(hash, c.val_fraction) ? 1 : 0);
        r.residues[s].insert(r.residues[s].end(), residues.begin(), residues.end());
        r.lengths[s].push_back(static_cast<int64_t>(residues.size()));
      };
      r.headers = parse_fasta_chunk(r.text, r.line_base, map.name(), options, sink, r.stats);
    });
    for (ChunkResult& r : round) {
      if (first && r.lengths[0].empty() && !r.lengths[1].empty()) {  // move the file's first record to training
        const int64_t len = r.lengths[1].front();
        r.residues[0].assign(r.residues[1].begin(), r.residues[1].begin() + len);
        r.lengths[0].push_back(len);
        r.residues[1].erase(r.residues[1].begin(), r.residues[1].begin() + len);
        r.lengths[1].erase(r.lengths[1].begin());
      }
      if (!r.lengths[0].empty() || !r.lengths[1].empty()) first = false;
      for (int s = 0; s < 2; ++s)
        if (!r.lengths[s].empty()) parts[s]->add(r.residues[s], r.lengths[s]);
      merge_stats(stats, r.stats);
      headers += r.headers;
      chunk_hashes.push_back(r.xxh3);
      map.release_pages(static_cast<size_t>(r.text.data() - map.view().data()), r.text.size());
      progress.add(static_cast<int64_t>(r.text.size()));
    }
  }
  if (headers == 0) throw no_records_error(map.name());
  ++stats.files;
  return XXH3_64bits(chunk_hashes.data(), chunk_hashes.size() * sizeof(uint64_t));
}


}  // namespace

void prepare_fasta(const DataConfig& c, const std::vector<std::string>& train_paths,
                   const std::vector<std::string>& val_paths, const std::string& tmp, Manifest& m) {
  if (c.tokenizer.sentencepiece()) {
    const std::vector<std::string>& files = c.eval_only ? c.val_files : c.train_files;
    throw std::invalid_argument("--tokenizer " + std::string(enum_name(c.tokenizer.kind)) + " applies to text corpora, but " +
                                (files.empty() ? std::string("the data") : files[0]) +
                                " is FASTA, which is read with the protein vocabulary (give --format text to read it "
                                "as text)");
  }
  m.kind = "fasta";
  m.tokenizer = "protein";
  const bool by_hash = val_paths.empty() && c.val_fraction > 0.0 && !c.eval_only;
  m.split_rule = !val_paths.empty() ? "val-files" : by_hash ? "content-hash" : "none";
  m.val_fraction = by_hash ? c.val_fraction : 0.0;
  int64_t total = 0;
  for (const auto* list : {&train_paths, &val_paths})
    for (const std::string& f : *list) {
      struct stat st {};
      if (::stat(f.c_str(), &st) == 0) total += static_cast<int64_t>(st.st_size);
    }
  const int threads = worker_threads(c.threads);
  const std::string what = fs::path(train_paths.empty() ? val_paths[0] : train_paths[0]).filename().string();
  for (bool first_trains : {false, true}) {
    Progress progress(c.progress, what, total);
    progress.stage("parsing", total);
    PartWriter train(tmp, "train"), val(tmp, "val");
    PartWriter* parts[2] = {&train, &val};
    m.stats = FastaStats{};
    m.sources.clear();
    m.val_sources.clear();
    for (const std::string& f : train_paths) {
      const uint64_t h = prepare_file(c, f, by_hash ? -1 : 0, first_trains && &f == &train_paths[0], parts, m.stats,
                                      threads, progress);
      m.sources.push_back(identify_source(f));
      m.sources.back().xxh3 = h;
    }
    for (const std::string& f : val_paths) {
      const uint64_t h = prepare_file(c, f, 1, false, parts, m.stats, threads, progress);
      m.val_sources.push_back(identify_source(f));
      m.val_sources.back().xxh3 = h;
    }
    train.finish(m.train);
    val.finish(m.val);
    progress.finish();
    m.has_val = m.val.records > 0 || !val_paths.empty();
    // Every record fell on the validation side (a corpus of a few records): the first one trains.
    if (c.eval_only || m.train.records > 0 || !by_hash || first_trains) break;
  }
  if (!c.eval_only && m.train.records == 0)
    throw std::invalid_argument("fasta: no training records (all were skipped as malformed); give more sequences");
}

}  // namespace pf::prepared_detail
