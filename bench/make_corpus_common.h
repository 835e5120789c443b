// make-corpus's shared pieces (make_corpus.cpp explains the tool): errors, the portable random
// numbers, the options, file reading and the buffered output with its byte budget.
#pragma once

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>


namespace make_corpus {


inline std::string g_partial;  // the temporary output file, removed when the run fails

[[noreturn]] inline void die(const std::string& msg) {
  std::fprintf(stderr, "make-corpus: %s\n", msg.c_str());
  if (!g_partial.empty()) std::remove(g_partial.c_str());
  std::exit(1);
}

// ---------------------------------------------------------------- random numbers (portable)

inline uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// xoshiro256**; our own uniform / normal draws (std:: distributions differ between libraries).
struct Rng {
  uint64_t s[4];
  explicit Rng(uint64_t seed) {
    uint64_t x = seed;
    for (auto& v : s) v = splitmix64(x);
  }
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t next() {
    const uint64_t r = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
  }
  // Uniform in [0, n) (Lemire's multiply-shift; the tiny bias is irrelevant here).
  uint64_t below(uint64_t n) { return (uint64_t)(((__uint128_t)next() * n) >> 64); }
  double uniform() { return (double)(next() >> 11) * 0x1.0p-53; }
  double normal() {  // Box-Muller, one value per call
    double u1 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * uniform());
  }
};

// Geometric gaps (failures before the next success of a Bernoulli(p) process) from a table of
// 65,536 quantiles: one random draw and one load instead of a log() per event. The distribution
// is the geometric one discretized at u = (i + 1/2) / 65536, so its tail is cut at about
// 11 / p; p = 0 gives "never".
struct GapTable {
  std::vector<uint64_t> q;
  explicit GapTable(double p) : q(1u << 16) {
    for (size_t i = 0; i < q.size(); ++i) {
      if (p <= 0) { q[i] = UINT64_MAX / 4; continue; }
      if (p >= 1) { q[i] = 0; continue; }
      const double u = ((double)i + 0.5) / (double)q.size();
      q[i] = (uint64_t)std::floor(std::log(u) / std::log1p(-p));
    }
  }
  uint64_t operator()(Rng& rng) const { return q[(size_t)(rng.next() >> 48)]; }
};

// ---------------------------------------------------------------- options

inline uint64_t parse_size(const std::string& s) {
  if (s.empty()) die("empty size");
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s.c_str(), &end);
  if (errno || end == s.c_str() || v < 0) die("bad size '" + s + "'");
  std::string suf(end);
  for (auto& c : suf) c = (char)std::toupper((unsigned char)c);
  double mult = 1;
  if (suf.empty() || suf == "B") mult = 1;
  else if (suf == "K" || suf == "KIB") mult = 1024.0;
  else if (suf == "M" || suf == "MIB") mult = 1024.0 * 1024;
  else if (suf == "G" || suf == "GIB") mult = 1024.0 * 1024 * 1024;
  else if (suf == "T" || suf == "TIB") mult = 1024.0 * 1024 * 1024 * 1024;
  else die("bad size suffix in '" + s + "' (K, M, G, T = powers of 1024)");
  return (uint64_t)std::llround(v * mult);
}

struct Options {
  std::string mode;
  std::vector<std::string> seed_files;
  std::string out;
  std::string format = "auto";  // stats
  std::string stats_file;
  uint64_t bytes = 0;
  uint64_t seed = 1;
  // text
  double swap_rate = 0.10, case_rate = 0.02;
  int min_block_lines = 100, max_block_lines = 500;
  // fasta
  int min_len = 50, max_len = 2000, line_width = 60;
  double len_median = 300, len_sigma = 0.75, mutation_rate = 0.05;
  bool quiet = false;
};

inline const char* kUsage =
    "usage:\n"
    "  make-corpus text  --seed-files A.txt [B.txt ...] --bytes SIZE --out FILE|- [--seed N]\n"
    "                    [--swap-rate 0.10] [--case-rate 0.02] [--block-lines 100 500]\n"
    "  make-corpus fasta --seed-files P.fasta [...] --bytes SIZE --out FILE|- [--seed N]\n"
    "                    [--min-len 50] [--max-len 2000] [--len-median 300] [--len-sigma 0.75]\n"
    "                    [--line-width 60] [--mutation-rate 0.05]\n"
    "  make-corpus stats FILE [--format auto|text|fasta] [--seed-files A.txt ...]\n"
    "SIZE: number with optional K, M, G, T suffix (powers of 1024). --quiet: no progress.\n";

inline Options parse_args(int argc, char** argv) {
  Options o;
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    std::exit(argc < 2 ? 2 : 0);
  }
  o.mode = argv[1];
  if (o.mode != "text" && o.mode != "fasta" && o.mode != "stats")
    die(std::string("unknown mode '") + argv[1] + "'\n" + kUsage);
  auto need = [&](int& i) -> std::string {
    if (i + 1 >= argc) die(std::string("missing value after ") + argv[i]);
    return argv[++i];
  };
  auto num = [&](int& i) -> double {
    std::string flag = argv[i], v = need(i);
    char* end = nullptr;
    double d = std::strtod(v.c_str(), &end);
    if (end == v.c_str() || *end) die("bad number '" + v + "' for " + flag);
    return d;
  };
  bool have_bytes = false;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--seed-files") {
      while (i + 1 < argc && std::strncmp(argv[i + 1], "--", 2) != 0) o.seed_files.push_back(argv[++i]);
    } else if (a == "--bytes") {
      o.bytes = parse_size(need(i));
      have_bytes = true;
    } else if (a == "--out") o.out = need(i);
    else if (a == "--seed") o.seed = (uint64_t)num(i);
    else if (a == "--swap-rate") o.swap_rate = num(i);
    else if (a == "--case-rate") o.case_rate = num(i);
    else if (a == "--block-lines") {
      o.min_block_lines = (int)num(i);
      o.max_block_lines = (int)num(i);
    } else if (a == "--min-len") o.min_len = (int)num(i);
    else if (a == "--max-len") o.max_len = (int)num(i);
    else if (a == "--len-median") o.len_median = num(i);
    else if (a == "--len-sigma") o.len_sigma = num(i);
    else if (a == "--line-width") o.line_width = (int)num(i);
    else if (a == "--mutation-rate") o.mutation_rate = num(i);
    else if (a == "--format") o.format = need(i);
    else if (a == "--quiet") o.quiet = true;
    else if (o.mode == "stats" && a.rfind("--", 0) != 0 && o.stats_file.empty()) o.stats_file = a;
    else die("unknown argument '" + a + "'\n" + kUsage);
  }
  if (o.mode == "stats") {
    if (o.stats_file.empty()) die("stats: which file?");
    return o;
  }
  if (o.seed_files.empty()) die("--seed-files is required");
  if (!have_bytes) die("--bytes is required");
  if (o.out.empty()) die("--out is required (a file, or - for stdout)");
  if (o.swap_rate < 0 || o.swap_rate > 1 || o.case_rate < 0 || o.case_rate > 1) die("rates must be in [0, 1]");
  if (o.min_block_lines < 1 || o.max_block_lines < o.min_block_lines) die("bad --block-lines");
  if (o.min_len < 1 || o.max_len < o.min_len) die("need 1 <= --min-len <= --max-len");
  if (o.line_width < 0) die("--line-width must be >= 0");
  if (o.len_median <= 0 || o.len_sigma < 0) die("bad --len-median / --len-sigma");
  if (o.mutation_rate < 0 || o.mutation_rate > 1) die("--mutation-rate must be in [0, 1]");
  return o;
}

inline std::string read_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) die("cannot open " + path + ": " + std::strerror(errno));
  std::string s;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  if (std::ferror(f)) die("cannot read " + path + ": " + std::strerror(errno));
  std::fclose(f);
  return s;
}

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

inline std::string human(double bytes) {
  char b[64];
  if (bytes >= 1024.0 * 1024 * 1024) std::snprintf(b, sizeof b, "%.2f GiB", bytes / (1024.0 * 1024 * 1024));
  else if (bytes >= 1024.0 * 1024) std::snprintf(b, sizeof b, "%.2f MiB", bytes / (1024.0 * 1024));
  else std::snprintf(b, sizeof b, "%.0f B", bytes);
  return b;
}

// ---------------------------------------------------------------- output

// Buffered writer. The generator appends one line / record at a time to `buf`; commit() checks
// that it still fits under the byte budget (else it is dropped and generation stops) and
// flushes when the buffer holds 4 MiB or more.
struct Output {
  std::string path, tmp_path;
  FILE* f = nullptr;
  std::vector<char> buf;
  size_t used = 0;        // bytes in buf
  size_t mark = 0;        // start of the unit being built
  uint64_t written = 0;   // bytes flushed
  uint64_t budget = 0;
  double t0 = now_s(), last_report = 0;
  bool quiet = false;
  static constexpr size_t kFlush = 4u << 20;

  Output(const std::string& p, uint64_t b, bool q) : path(p), budget(b), quiet(q) {
    buf.resize(16u << 20);
    struct stat st{};
    if (path == "-") {
      f = stdout;
    } else if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
      // A device or a pipe (/dev/null, a FIFO): written as it is, never replaced by a rename.
      f = std::fopen(path.c_str(), "wb");
      if (!f) die("cannot open " + path + ": " + std::strerror(errno));
    } else {
      tmp_path = path + ".tmp." + std::to_string((long)getpid());
      f = std::fopen(tmp_path.c_str(), "wb");
      if (!f) die("cannot create " + tmp_path + ": " + std::strerror(errno));
      g_partial = tmp_path;
    }
  }
  uint64_t total() const { return written + used; }
  // Room for n more bytes of the current unit.
  char* reserve(size_t n) {
    if (used + n > buf.size()) buf.resize(std::max(buf.size() * 2, used + n));
    return buf.data() + used;
  }
  void begin() { mark = used; }
  // The unit [mark, used) is complete: keep it if it fits, else drop it and return false.
  // Text: keep the unit [mark, used), or, if it does not fit, its longest prefix of whole lines
  // that does (then return false). Does not flush (the caller counts lines first).
  bool commit_lines() {
    if (written + used <= budget) return true;
    const size_t room = (size_t)(budget - written);  // >= mark
    size_t cut = mark;
    for (size_t i = std::min(room, used); i > mark; --i)
      if (buf[i - 1] == '\n') { cut = i; break; }
    used = cut;
    return false;
  }
  bool commit() {
    if (written + used > budget) {
      used = mark;
      return false;
    }
    if (used >= kFlush) flush();
    return true;
  }
  void flush() {
    if (used && std::fwrite(buf.data(), 1, used, f) != used)
      die("write to " + (tmp_path.empty() ? path : tmp_path) + " failed: " + std::strerror(errno));
    written += used;
    used = mark = 0;
    progress(false);
  }
  void progress(bool final) {
    if (quiet) return;
    double t = now_s();
    if (!final && t - last_report < 5.0) return;
    last_report = t;
    double el = std::max(t - t0, 1e-9);
    std::fprintf(stderr, "make-corpus: %s of %s, %.0f MB/s, %.1f s\n", human((double)written).c_str(),
                 human((double)budget).c_str(), (double)written / el / 1e6, el);
  }
  void close() {
    flush();
    if (f == stdout) {
      if (std::fflush(f) != 0) die(std::string("write to stdout failed: ") + std::strerror(errno));
      return;
    }
    if (std::fclose(f) != 0)
      die("closing " + (tmp_path.empty() ? path : tmp_path) + " failed: " + std::strerror(errno));
    if (tmp_path.empty()) return;
    if (std::rename(tmp_path.c_str(), path.c_str()) != 0)
      die("cannot rename " + tmp_path + " to " + path + ": " + std::strerror(errno));
    g_partial.clear();
  }
};


// FNV-1a of s (record ids: accessions in fasta, uniqueness in stats).
inline uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (char c : s) h = (h ^ (uint8_t)c) * 1099511628211ull;
  return h;
}

// The three modes (make_corpus_text.cpp, make_corpus_fasta.cpp, make_corpus_stats.cpp).
int run_text(const Options& o);
int run_fasta(const Options& o);
int run_stats(const Options& o);

}  // namespace make_corpus
