// make-corpus stats: what a corpus holds (make_corpus.cpp explains the mode).
#include "make_corpus_common.h"

namespace make_corpus {

int run_stats(const Options& o) {
  FILE* f = std::fopen(o.stats_file.c_str(), "rb");
  if (!f) die("cannot open " + o.stats_file + ": " + std::strerror(errno));
  std::string fmt = o.format;
  std::vector<char> buf(8u << 20);
  size_t got = std::fread(buf.data(), 1, buf.size(), f);
  if (fmt == "auto") {
    size_t i = 0;
    while (i < got && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t')) ++i;
    fmt = (i < got && buf[i] == '>') ? "fasta" : "text";
  }
  if (fmt != "text" && fmt != "fasta") die("--format must be auto, text or fasta");
  const double t0 = now_s();
  // Streaming line scanner.
  uint64_t bytes = 0, lines = 0, cr = 0, nonascii = 0, max_line = 0, utf8_bad = 0;
  uint64_t records = 0, residues = 0, cur_len = 0, max_seq_line = 0, empty_records = 0;
  std::vector<uint64_t> hist;  // fasta lengths, exact
  std::vector<uint64_t> id_hashes;
  std::string line;  // current line (only kept whole for headers / text novelty)
  bool line_is_header = false, at_line_start = true;
  uint64_t line_len = 0;
  int utf8_pending = 0;
  // Text novelty: seed lines >= 40 characters, hashed.
  std::vector<uint64_t> seed_lines;
  uint64_t long_lines = 0, verbatim = 0;
  const bool novelty = fmt == "text" && !o.seed_files.empty();
  if (novelty) {
    for (const auto& p : o.seed_files) {
      std::string raw = read_file(p);
      size_t i = 0;
      while (i < raw.size()) {
        size_t e = raw.find('\n', i);
        if (e == std::string::npos) e = raw.size();
        std::string_view l(raw.data() + i, e - i);
        if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
        if (l.size() >= 40) seed_lines.push_back(fnv1a(l));
        i = e + 1;
      }
    }
    std::sort(seed_lines.begin(), seed_lines.end());
  }
  auto end_record = [&] {
    if (records == 0) return;
    if (cur_len == 0) ++empty_records;
    if (hist.size() <= cur_len) hist.resize(cur_len + 1, 0);
    ++hist[cur_len];
    residues += cur_len;
  };
  auto end_line = [&] {
    ++lines;
    max_line = std::max(max_line, line_len);
    if (fmt == "fasta") {
      if (line_is_header) {
        end_record();
        ++records;
        cur_len = 0;
        size_t sp = line.find(' ');
        id_hashes.push_back(fnv1a(std::string_view(line).substr(0, sp)));
      } else {
        cur_len += line_len;
        max_seq_line = std::max(max_seq_line, line_len);
      }
    } else if (novelty && line_len >= 40) {
      ++long_lines;
      if (std::binary_search(seed_lines.begin(), seed_lines.end(), fnv1a(line))) ++verbatim;
    }
    line.clear();
    line_len = 0;
    at_line_start = true;
  };
  const bool keep_text = novelty;
  while (got > 0) {
    bytes += got;
    for (size_t i = 0; i < got; ++i) {
      const unsigned char c = (unsigned char)buf[i];
      if (c >= 0x80) {
        ++nonascii;
        if (utf8_pending > 0) --utf8_pending;
        else if ((c & 0xE0) == 0xC0) utf8_pending = 1;
        else if ((c & 0xF0) == 0xE0) utf8_pending = 2;
        else if ((c & 0xF8) == 0xF0) utf8_pending = 3;
        else ++utf8_bad;
      } else if (utf8_pending > 0) {
        ++utf8_bad;
        utf8_pending = 0;
      }
      if (c == '\n') { end_line(); continue; }
      if (c == '\r') { ++cr; continue; }
      if (at_line_start) {
        line_is_header = c == '>';
        at_line_start = false;
      }
      ++line_len;
      if (line_is_header || keep_text) line.push_back((char)c);
    }
    got = std::fread(buf.data(), 1, buf.size(), f);
  }
  if (line_len > 0) end_line();
  end_record();
  std::fclose(f);
  const double el = std::max(now_s() - t0, 1e-9);
  std::printf("file: %s\nformat: %s\nbytes: %llu (%s)\nlines: %llu\nlongest line: %llu\n"
              "CR bytes: %llu\nnon-ASCII bytes: %llu\ninvalid UTF-8 sequences: %llu\n",
              o.stats_file.c_str(), fmt.c_str(), (unsigned long long)bytes, human((double)bytes).c_str(),
              (unsigned long long)lines, (unsigned long long)max_line, (unsigned long long)cr,
              (unsigned long long)nonascii, (unsigned long long)(utf8_bad + (utf8_pending ? 1 : 0)));
  if (fmt == "fasta") {
    std::sort(id_hashes.begin(), id_hashes.end());
    const uint64_t distinct = (uint64_t)(std::unique(id_hashes.begin(), id_hashes.end()) - id_hashes.begin());
    std::printf("records: %llu\nresidues: %llu\ndistinct record ids: %llu%s\nempty records: %llu\n"
                "longest sequence line: %llu\n",
                (unsigned long long)records, (unsigned long long)residues, (unsigned long long)distinct,
                distinct == records ? " (all unique)" : " (DUPLICATES)", (unsigned long long)empty_records,
                (unsigned long long)max_seq_line);
    if (records) {
      auto pct = [&](double q) {
        uint64_t target = std::max<uint64_t>(1, (uint64_t)std::ceil(q * (double)records)), c = 0;
        for (size_t l = 0; l < hist.size(); ++l)
          if ((c += hist[l]) >= target) return (uint64_t)l;
        return (uint64_t)hist.size() - 1;
      };
      std::printf("length: min %llu, p1 %llu, p10 %llu, median %llu, mean %.1f, p90 %llu, p99 %llu, max %llu\n",
                  (unsigned long long)pct(0), (unsigned long long)pct(0.01), (unsigned long long)pct(0.10),
                  (unsigned long long)pct(0.5), (double)residues / (double)records, (unsigned long long)pct(0.9),
                  (unsigned long long)pct(0.99), (unsigned long long)pct(1.0));
      // Log-spaced histogram.
      const uint64_t edges[] = {0, 50, 100, 200, 300, 500, 1000, 2000, 2001, UINT64_MAX};
      std::printf("length histogram:\n");
      for (size_t k = 0; k + 1 < std::size(edges); ++k) {
        uint64_t c = 0;
        for (size_t l = (size_t)edges[k]; l < hist.size() && l < edges[k + 1]; ++l) c += hist[l];
        if (edges[k + 1] == UINT64_MAX)
          std::printf("  [%5llu, inf)  %12llu  %5.1f%%\n", (unsigned long long)edges[k], (unsigned long long)c,
                      100.0 * (double)c / (double)records);
        else
          std::printf("  [%5llu, %5llu)  %12llu  %5.1f%%\n", (unsigned long long)edges[k],
                      (unsigned long long)edges[k + 1], (unsigned long long)c, 100.0 * (double)c / (double)records);
      }
    }
  } else if (novelty) {
    std::printf("lines of >= 40 characters: %llu, verbatim copies of a seed line: %llu (%.1f%%)\n",
                (unsigned long long)long_lines, (unsigned long long)verbatim,
                long_lines ? 100.0 * (double)verbatim / (double)long_lines : 0.0);
  }
  std::printf("scan: %.1f s, %.0f MB/s\n", el, (double)bytes / el / 1e6);
  return 0;
}

}  // namespace make_corpus
