// make-corpus fasta: UniRef50-shaped records from seed proteins (make_corpus.cpp explains the mode).
#include "make_corpus_common.h"

namespace make_corpus {

namespace {

struct SeedProtein {
  uint32_t off, len;      // into the residue pool
  uint32_t desc, org;     // indices into descs / orgs
};
struct Organism {
  std::string name, mnemonic;
  uint32_t taxid;
};

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

}  // namespace

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

}  // namespace make_corpus
