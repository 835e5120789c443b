// make-corpus text: blocks of seed lines with word changes (make_corpus.cpp explains the mode).
#include "make_corpus_common.h"

namespace make_corpus {

namespace {

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

}  // namespace

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

}  // namespace make_corpus
