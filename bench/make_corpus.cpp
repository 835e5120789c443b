// make-corpus: large, deterministic benchmark corpora from small real seed files (issue 27;
// bench/data_scale.sh and bench/README_data.md).
//
//   make-corpus text  --seed-files A.txt B.txt ... --bytes 1G  --out big.txt   [--seed 1]
//   make-corpus fasta --seed-files P.fasta ...     --bytes 10G --out big.fasta [--seed 1]
//                     [--min-len 50] [--max-len 2000] [--len-median 300] [--len-sigma 0.75]
//                     [--line-width 60|0] [--mutation-rate 0.05]
//   make-corpus stats FILE [--format auto|text|fasta] [--seed-files ...]
//
// text:  blocks of 100-500 consecutive lines, each from a random seed book (chosen in proportion
//        to its size) at a random line, with light word-level changes: each word (a run of ASCII
//        letters) is replaced, with probability --swap-rate, by a word drawn from the seeds' word
//        occurrences (so by frequency), keeping the original's capitalization pattern; with
//        probability --case-rate a word's capitalization is changed (Capitalized, lower or UPPER).
//        Every other byte is copied, so ASCII / UTF-8 seeds give ASCII / UTF-8 output; CR is
//        dropped (LF lines). Blocks are separated by one empty line.
// fasta: UniRef50-shaped records. Length: log-normal (median --len-median, sigma --len-sigma),
//        redrawn until it lies in [--min-len, --max-len]. Residues: crops of random seed proteins
//        (half of the records start at a protein's first residue), concatenated with further
//        random crops until the length is reached, then point mutations (each residue, with
//        probability --mutation-rate, replaced by a residue drawn from the seeds' composition).
//        Header: >UniRef50_<accession> <seed description> n=<cluster size> Tax=<seed organism>
//        TaxID=<number> RepID=<accession>_<seed mnemonic suffix>; accessions are unique
//        (a bijection of the record number). Sequences wrapped at --line-width (0 = one line).
// stats: bytes, lines / records, the length distribution, id uniqueness, line widths; with
//        --seed-files (text) also the share of long output lines that are verbatim seed lines.
//
// Sizes: a number with an optional suffix K, M, G or T, powers of 1024 (1G = 1,073,741,824
// bytes; KiB, MiB, GiB, TiB are accepted too). The output never exceeds --bytes: it ends at the
// last whole line (text) or whole record (fasta) that fits, so it is at most one line / record
// short of it. --out - writes to stdout (e.g. `| gzip -1 > big.txt.gz`), and an existing device or
// pipe is written as it is; otherwise the file is written under a temporary name and renamed when
// complete, so a killed run leaves no file of the final name. The same --seed, seed files and options give the same bytes.
//
// Standard library only; one thread; output built in a 16 MiB buffer, written with fwrite in
// 4 MiB+ blocks.

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

namespace {

std::string g_partial;  // the temporary output file, removed when the run fails

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "make-corpus: %s\n", msg.c_str());
  if (!g_partial.empty()) std::remove(g_partial.c_str());
  std::exit(1);
}

// ---------------------------------------------------------------- random numbers (portable)

uint64_t splitmix64(uint64_t& s) {
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

uint64_t parse_size(const std::string& s) {
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

const char* kUsage =
    "usage:\n"
    "  make-corpus text  --seed-files A.txt [B.txt ...] --bytes SIZE --out FILE|- [--seed N]\n"
    "                    [--swap-rate 0.10] [--case-rate 0.02] [--block-lines 100 500]\n"
    "  make-corpus fasta --seed-files P.fasta [...] --bytes SIZE --out FILE|- [--seed N]\n"
    "                    [--min-len 50] [--max-len 2000] [--len-median 300] [--len-sigma 0.75]\n"
    "                    [--line-width 60] [--mutation-rate 0.05]\n"
    "  make-corpus stats FILE [--format auto|text|fasta] [--seed-files A.txt ...]\n"
    "SIZE: number with optional K, M, G, T suffix (powers of 1024). --quiet: no progress.\n";

Options parse_args(int argc, char** argv) {
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

std::string read_file(const std::string& path) {
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

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string human(double bytes) {
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

// ---------------------------------------------------------------- text

enum : uint8_t { kOther = 0, kLower = 1, kUpper = 2 };
std::array<uint8_t, 256> make_class() {
  std::array<uint8_t, 256> c{};
  for (int ch = 'a'; ch <= 'z'; ++ch) c[ch] = kLower;
  for (int ch = 'A'; ch <= 'Z'; ++ch) c[ch] = kUpper;
  return c;
}
const std::array<uint8_t, 256> kClass = make_class();

struct Book {
  std::string name;
  std::string text;                       // CR removed
  std::vector<uint32_t> line_start;       // offsets; line i = [line_start[i], line_start[i+1]-1)
};

void copy_case(char* dst, const char* src, size_t n, int pattern) {
  // pattern 0 = lower, 1 = Capitalized, 2 = UPPER
  for (size_t i = 0; i < n; ++i) {
    char c = src[i];
    bool up = pattern == 2 || (pattern == 1 && i == 0);
    if (up) c = (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
    else c = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    dst[i] = c;
  }
}

int case_pattern(const char* w, size_t n) {
  if (kClass[(uint8_t)w[0]] != kUpper) return 0;
  if (n > 1) {
    bool all_up = true;
    for (size_t i = 1; i < n; ++i) all_up &= kClass[(uint8_t)w[i]] == kUpper;
    if (all_up) return 2;
  }
  return 1;
}

int run_text(const Options& o) {
  std::vector<Book> books;
  std::vector<std::string_view> words;  // every word occurrence (frequency-weighted draws)
  uint64_t seed_bytes = 0;
  for (const auto& p : o.seed_files) {
    Book b;
    b.name = p;
    std::string raw = read_file(p);
    seed_bytes += raw.size();
    b.text.reserve(raw.size() + 1);
    for (char c : raw)
      if (c != '\r') b.text.push_back(c);
    if (b.text.empty()) continue;
    if (b.text.back() != '\n') b.text.push_back('\n');
    if (b.text.size() > UINT32_MAX) die(p + ": seed files must be under 4 GiB");
    b.line_start.push_back(0);
    for (size_t i = 0; i < b.text.size(); ++i)
      if (b.text[i] == '\n') b.line_start.push_back((uint32_t)(i + 1));
    books.push_back(std::move(b));
  }
  if (books.empty()) die("the seed files are empty");
  for (const auto& b : books) {
    const char* s = b.text.data();
    size_t n = b.text.size(), i = 0;
    while (i < n) {
      if (kClass[(uint8_t)s[i]] == kOther) { ++i; continue; }
      size_t j = i;
      while (j < n && kClass[(uint8_t)s[j]] != kOther) ++j;
      words.emplace_back(s + i, j - i);
      i = j;
    }
  }
  if (words.empty()) die("the seed files contain no words");
  // Replacement words: a table of 64K word occurrences drawn (by frequency) from the seeds, in
  // 16-byte slots (length + up to 15 letters) so that the table stays in cache (~1 MiB).
  constexpr size_t kTable = 1u << 16;
  struct Slot { uint8_t len; char c[15]; };
  std::vector<Slot> table(kTable);
  {
    Rng trng(o.seed ^ 0x766f636162000000ull);
    for (auto& sl : table) {
      std::string_view w;
      for (int tries = 0; tries < 1000; ++tries) {
        w = words[(size_t)trng.below(words.size())];
        if (w.size() <= 15) break;
      }
      if (w.size() > 15) w = w.substr(0, 15);
      sl.len = (uint8_t)w.size();
      std::memcpy(sl.c, w.data(), w.size());
    }
  }
  // Books drawn in proportion to their size.
  std::vector<uint64_t> cum;
  uint64_t tot = 0;
  for (const auto& b : books) cum.push_back(tot += b.text.size());
  if (!o.quiet)
    std::fprintf(stderr, "make-corpus text: %zu seed files (%s), %zu word occurrences; target %s, seed %llu\n",
                 books.size(), human((double)seed_bytes).c_str(), words.size(), human((double)o.bytes).c_str(),
                 (unsigned long long)o.seed);

  Rng rng(o.seed ^ 0x7465787400000000ull);
  Output out(o.out, o.bytes, o.quiet);
  // Changes happen at word-level events placed at geometric gaps in bytes (so the bytes between
  // two events are one memcpy): the byte rate is chosen so that a fraction swap_rate + case_rate
  // of the words is changed on average; an event changes the word that starts at or after it.
  const double density = (double)words.size() / (double)tot;  // words per byte in the seeds
  const double ev_rate = std::min(1.0, (o.swap_rate + o.case_rate) * density);
  const GapTable gaps(ev_rate);
  const uint64_t swap_thr =
      o.swap_rate + o.case_rate > 0
          ? (uint64_t)(o.swap_rate / (o.swap_rate + o.case_rate) * 18446744073709551615.0)
          : 0;
  uint64_t lines = 0, blocks = 0, swaps = 0, recases = 0;
  uint64_t gap = gaps(rng);  // bytes until the next event (carried across blocks)
  bool full = false;
  while (!full) {
    const uint64_t r = rng.below(tot);
    const size_t bi = (size_t)(std::upper_bound(cum.begin(), cum.end(), r) - cum.begin());
    const Book& b = books[bi];
    const size_t nlines = b.line_start.size() - 1;
    const size_t want = (size_t)(o.min_block_lines + rng.below((uint64_t)(o.max_block_lines - o.min_block_lines + 1)));
    const size_t first = (size_t)rng.below(nlines);
    const size_t last = std::min(nlines, first + want);
    const char* s = b.text.data();
    size_t pos = b.line_start[first];
    const size_t end = b.line_start[last];
    out.begin();
    // Worst case growth: every event turns a 1-letter word into 15 letters.
    char* d = out.reserve((end - pos) * 16 + 64);
    while (pos < end) {
      if (gap >= end - pos) {
        std::memcpy(d, s + pos, end - pos);
        d += end - pos;
        gap -= end - pos;
        pos = end;
        break;
      }
      // Copy up to the event, then on to the start of the next word.
      size_t ev = pos + (size_t)gap;
      while (ev < end && kClass[(uint8_t)s[ev]] != kOther) ++ev;  // rest of the current word
      while (ev < end && kClass[(uint8_t)s[ev]] == kOther) ++ev;  // separators
      std::memcpy(d, s + pos, ev - pos);
      d += ev - pos;
      pos = ev;
      if (pos < end) {
        size_t we = pos + 1;
        while (we < end && kClass[(uint8_t)s[we]] != kOther) ++we;
        const size_t wl = we - pos;
        const uint64_t u = rng.next();
        const int pat = case_pattern(s + pos, wl);
        // A contraction's tail ("don't", "'s") stays as it is.
        const bool tail = pos >= 2 && s[pos - 1] == '\'' && kClass[(uint8_t)s[pos - 2]] != kOther;
        if (tail) {
          std::memcpy(d, s + pos, wl);
          d += wl;
        } else if (u < swap_thr) {
          const Slot& w = table[(size_t)(u & (kTable - 1))];
          copy_case(d, w.c, w.len, pat);
          d += w.len;
          ++swaps;
        } else {  // a capitalization pattern other than the word's own
          copy_case(d, s + pos, wl, (pat + 1 + (int)((u >> 20) & 1)) % 3);
          d += wl;
          ++recases;
        }
        pos = we;
      }
      gap = gaps(rng);
    }
    *d++ = '\n';  // block separator: one empty line
    out.used = (size_t)(d - out.buf.data());
    if (!out.commit_lines()) full = true;
    lines += (uint64_t)std::count(out.buf.data() + out.mark, out.buf.data() + out.used, '\n');
    if (!full) ++blocks;
    if (out.used >= Output::kFlush) out.flush();
  }
  out.close();
  double el = std::max(now_s() - out.t0, 1e-9);
  std::fprintf(stderr,
               "make-corpus text: wrote %s: %llu bytes (%s), %llu lines, %llu blocks, %llu words swapped, "
               "%llu recased; %.1f s, %.0f MB/s\n",
               o.out.c_str(), (unsigned long long)out.written, human((double)out.written).c_str(),
               (unsigned long long)lines, (unsigned long long)blocks, (unsigned long long)swaps,
               (unsigned long long)recases, el, (double)out.written / el / 1e6);
  return 0;
}

// ---------------------------------------------------------------- fasta

struct SeedProtein {
  uint32_t off, len;      // into the residue pool
  uint32_t desc, org;     // indices into descs / orgs
};
struct Organism {
  std::string name, mnemonic;
  uint32_t taxid;
};

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (char c : s) h = (h ^ (uint8_t)c) * 1099511628211ull;
  return h;
}

// "tr|ACC|NAME_SUFFIX Description OS=Organism name GN=x PE=4 SV=1" -> description, organism, suffix.
void parse_header(std::string_view h, std::string& desc, std::string& org, std::string& mnemonic) {
  size_t sp = h.find(' ');
  std::string_view id = h.substr(0, sp);
  std::string_view rest = sp == std::string_view::npos ? std::string_view() : h.substr(sp + 1);
  size_t us = id.rfind('_');
  mnemonic = us == std::string_view::npos ? "UNKNOWN" : std::string(id.substr(us + 1));
  if (mnemonic.empty() || mnemonic.find('|') != std::string::npos) mnemonic = "UNKNOWN";
  size_t os = rest.find(" OS=");
  auto end_of_field = [&](size_t from) {
    size_t e = rest.size();
    for (const char* k : {" OX=", " GN=", " PE=", " SV=", " Split="}) {
      size_t p = rest.find(k, from);
      if (p != std::string_view::npos) e = std::min(e, p);
    }
    return e;
  };
  if (os == std::string_view::npos) {
    desc = std::string(rest.substr(0, end_of_field(0)));
    org = "unknown organism";
  } else {
    desc = std::string(rest.substr(0, os));
    size_t e = end_of_field(os + 4);
    org = std::string(rest.substr(os + 4, e - (os + 4)));
  }
  while (!desc.empty() && desc.back() == ' ') desc.pop_back();
  while (!org.empty() && org.back() == ' ') org.pop_back();
  if (desc.empty()) desc = "Uncharacterized protein";
  if (org.empty()) org = "unknown organism";
}

// Record number -> 10-character UniProt-style accession "A0A" + 7 base-36 characters, through a
// bijection of Z / 36^7 (multiplication by a unit, plus an offset), so ids are unique for up to
// 36^7 (78 billion) records and look random.
constexpr uint64_t kAccSpace = 78364164096ull;  // 36^7
void accession(uint64_t idx, uint64_t salt, char* out10) {
  const uint64_t mul = 0x2545F491ull;  // odd and not a multiple of 3: a unit mod 2^k * 3^k
  uint64_t x = (uint64_t)(((__uint128_t)(idx % kAccSpace) * mul + salt) % kAccSpace);
  static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  out10[0] = 'A';
  out10[1] = '0';
  out10[2] = 'A';
  for (int i = 9; i >= 3; --i) {
    out10[i] = digits[x % 36];
    x /= 36;
  }
}

int run_fasta(const Options& o) {
  std::string pool;  // all seed residues, concatenated
  std::vector<SeedProtein> prots;
  std::vector<std::string> descs;
  std::vector<Organism> orgs;
  {
    auto intern = [](std::vector<std::string>& v, std::string s) {
      v.push_back(std::move(s));
      return (uint32_t)(v.size() - 1);
    };
    std::string d, g, m;
    uint64_t seed_bytes = 0;
    for (const auto& p : o.seed_files) {
      std::string raw = read_file(p);
      seed_bytes += raw.size();
      size_t i = 0, n = raw.size();
      bool in_rec = false;
      SeedProtein cur{};
      auto finish = [&] {
        if (in_rec) {
          cur.len = (uint32_t)(pool.size() - cur.off);
          if (cur.len > 0) prots.push_back(cur);
        }
      };
      while (i < n) {
        size_t e = raw.find('\n', i);
        if (e == std::string::npos) e = n;
        std::string_view line(raw.data() + i, e - i);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (!line.empty() && line[0] == '>') {
          finish();
          parse_header(line.substr(1), d, g, m);
          cur = SeedProtein{};
          cur.off = (uint32_t)pool.size();
          cur.desc = intern(descs, d);
          Organism org{g, m, 0};
          // TaxID: the seeds' OX= is absent in UniProt's mmseqs2 sample; derive a stable number.
          org.taxid = (uint32_t)(1000 + fnv1a(g) % 2000000);
          orgs.push_back(std::move(org));
          cur.org = (uint32_t)(orgs.size() - 1);
          in_rec = true;
        } else if (in_rec) {
          for (char c : line) {
            if (c >= 'a' && c <= 'z') c = (char)(c - 32);
            if (c >= 'A' && c <= 'Z') pool.push_back(c);
          }
        }
        i = e + 1;
      }
      finish();
      if (pool.size() > UINT32_MAX / 2) die("seed FASTA too large (keep it under 2 G residues)");
    }
    if (prots.empty()) die("no FASTA records with residues in the seed files");
    if (!o.quiet)
      std::fprintf(stderr, "make-corpus fasta: %zu seed proteins, %zu residues (%s of seed files); target %s, seed %llu\n",
                   prots.size(), pool.size(), human((double)seed_bytes).c_str(), human((double)o.bytes).c_str(),
                   (unsigned long long)o.seed);
  }

  Rng rng(o.seed ^ 0x6661737461000000ull);
  uint64_t salt_state = o.seed;
  const uint64_t salt = splitmix64(salt_state) % kAccSpace;
  Output out(o.out, o.bytes, o.quiet);
  const double mu = std::log(o.len_median);
  const GapTable gaps(o.mutation_rate);
  // Replacement residues: 64K draws from the pool (its composition), small enough for the cache.
  std::vector<char> composition(1u << 16);
  for (auto& c : composition) c = pool[(size_t)rng.below(pool.size())];
  std::vector<uint64_t> hist((size_t)o.max_len + 1, 0);
  std::string seq;
  seq.reserve((size_t)o.max_len + 16);
  uint64_t records = 0, residues = 0, mutations = 0, pieces = 0;
  uint64_t next_mut = gaps(rng);  // residues until the next mutation (across records)
  const size_t W = o.line_width > 0 ? (size_t)o.line_width : SIZE_MAX;
  char acc[10];
  for (;;) {
    // Length: log-normal, redrawn until within [min_len, max_len].
    int len;
    for (int tries = 0;; ++tries) {
      double l = std::exp(mu + o.len_sigma * rng.normal());
      if (l >= o.min_len && l < o.max_len + 1) { len = (int)l; break; }
      if (tries > 1000) { len = std::clamp((int)l, o.min_len, o.max_len); break; }
    }
    // Residues: crops of random seed proteins, concatenated.
    seq.clear();
    bool first_piece = true;
    while ((int)seq.size() < len) {
      const SeedProtein& p = prots[(size_t)rng.below(prots.size())];
      uint32_t start = 0;
      if (!(first_piece && (rng.next() & 1))) start = (uint32_t)rng.below(p.len);
      size_t take = std::min<size_t>(p.len - start, (size_t)len - seq.size());
      seq.append(pool, p.off + start, take);
      first_piece = false;
      ++pieces;
    }
    // Point mutations at geometric gaps (composition of the pool).
    while (next_mut < (uint64_t)len) {
      const uint64_t u = rng.next();
      seq[(size_t)next_mut] = composition[(size_t)(u >> 48)];
      ++mutations;
      next_mut += 1 + gaps.q[(size_t)(u & 0xFFFF)];
    }
    next_mut -= (uint64_t)len;
    // Header, from a random seed record's annotation (not necessarily the one cropped).
    const SeedProtein& ann = prots[(size_t)rng.below(prots.size())];
    const std::string& desc = descs[ann.desc];
    const Organism& org = orgs[ann.org];
    // Cluster size n: heavy-tailed, most clusters small.
    const double pareto = std::exp(-std::log(std::max(rng.uniform(), 1e-12)) * 0.9);  // >= 1, tail ~ x^-1.1
    const uint64_t ncl = std::min<uint64_t>(50000, (uint64_t)pareto);
    accession(records, salt, acc);
    out.begin();
    char* d = out.reserve(256 + desc.size() + 2 * org.name.size() + org.mnemonic.size() + (size_t)len +
                          (size_t)len / std::max<size_t>(1, std::min<size_t>(W, (size_t)len)) + 2);
    char* const d0 = d;
    std::memcpy(d, ">UniRef50_", 10); d += 10;
    std::memcpy(d, acc, 10); d += 10;
    *d++ = ' ';
    std::memcpy(d, desc.data(), desc.size()); d += desc.size();
    d += std::sprintf(d, " n=%llu Tax=", (unsigned long long)ncl);
    std::memcpy(d, org.name.data(), org.name.size()); d += org.name.size();
    d += std::sprintf(d, " TaxID=%u RepID=", org.taxid);
    std::memcpy(d, acc, 10); d += 10;
    *d++ = '_';
    std::memcpy(d, org.mnemonic.data(), org.mnemonic.size()); d += org.mnemonic.size();
    *d++ = '\n';
    for (size_t i = 0; i < (size_t)len; i += W) {
      size_t k = std::min(W, (size_t)len - i);
      std::memcpy(d, seq.data() + i, k);
      d += k;
      *d++ = '\n';
    }
    out.used += (size_t)(d - d0);
    if (!out.commit()) break;
    ++records;
    residues += (uint64_t)len;
    ++hist[(size_t)len];
  }
  out.close();
  double el = std::max(now_s() - out.t0, 1e-9);
  std::fprintf(stderr,
               "make-corpus fasta: wrote %s: %llu bytes (%s), %llu records, %llu residues, %llu seed crops, "
               "%llu point mutations; %.1f s, %.0f MB/s\n",
               o.out.c_str(), (unsigned long long)out.written, human((double)out.written).c_str(),
               (unsigned long long)records, (unsigned long long)residues, (unsigned long long)pieces,
               (unsigned long long)mutations, el, (double)out.written / el / 1e6);
  // Length summary.
  auto pct = [&](double q) {
    uint64_t target = (uint64_t)std::ceil(q * (double)records), c = 0;
    for (size_t l = 0; l < hist.size(); ++l)
      if ((c += hist[l]) >= std::max<uint64_t>(target, 1)) return (int)l;
    return o.max_len;
  };
  if (records)
    std::fprintf(stderr, "make-corpus fasta: length min %d p10 %d median %d mean %.1f p90 %d p99 %d max %d\n", pct(0),
                 pct(0.10), pct(0.5), (double)residues / (double)records, pct(0.90), pct(0.99), pct(1.0));
  return 0;
}

// ---------------------------------------------------------------- stats

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

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse_args(argc, argv);
  if (o.mode == "text") return run_text(o);
  if (o.mode == "fasta") return run_fasta(o);
  return run_stats(o);
}
