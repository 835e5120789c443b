// Prepared datasets (data/prepared.h) against independent references: the in-memory FASTA reader and
// split for FASTA, one SentencePiece encode of the whole text for subword text; the same bytes for any
// thread count; every damaged or stale file refused by name.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>
#include <fstream>
#include <set>

#include "base/random.h"
#include "data/data_module.h"
#include "data/fasta.h"
#include "data/prepared.h"
#include "data/split.h"
#include "data/tokenizer.h"
#include "tests/temp_dir.h"

namespace pf {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Wrapped FASTA records of 20..400 residues, about `bytes` long: several 8 MiB preparation chunks.
std::string big_fasta(int64_t bytes, uint64_t seed) {
  static const char* aa = "ACDEFGHIKLMNPQRSTVWYacdefghik";
  Generator g(seed);
  std::string s;
  s.reserve(static_cast<size_t>(bytes + 1000));
  for (int64_t r = 0; static_cast<int64_t>(s.size()) < bytes; ++r) {
    s += ">r" + std::to_string(r) + " some description\n";
    const int64_t n = 20 + static_cast<int64_t>(g.below(381));
    for (int64_t i = 0; i < n; ++i) {
      s += aa[g.below(29)];
      if (i % 60 == 59) s += '\n';
    }
    s += r % 7 == 0 ? "*\n" : "\n";
  }
  return s;
}

// Lines of words: several 1 MiB encoding pieces.
std::string big_text(int64_t bytes, uint64_t seed) {
  static const char* words[] = {"the",   "king",  "shall", "not",    "speak", "of",  "it",   "again", "my",
                                "lord,", "what",  "say",   "you?",   "Then",  "go",  "thou", "hence", "and",
                                "é",     "naïve", "über",  "ça",     "ñ",     "!",   "--",   "\t"};
  Generator g(seed);
  std::string s;
  while (static_cast<int64_t>(s.size()) < bytes) {
    const int64_t n = 1 + static_cast<int64_t>(g.below(14));
    for (int64_t i = 0; i < n; ++i) s += std::string(words[g.below(26)]) + (i + 1 < n ? " " : "\n");
  }
  return s;
}

std::vector<int32_t> all_tokens(const TextCorpus& c) {
  std::vector<int32_t> out(static_cast<size_t>(c.size()));
  c.copy_tokens(0, c.size(), out.data());
  return out;
}

std::vector<std::vector<uint8_t>> records(const ProteinCorpus& c, const std::vector<int64_t>* which = nullptr) {
  std::vector<std::vector<uint8_t>> out;
  const int64_t n = which ? static_cast<int64_t>(which->size()) : c.size();
  for (int64_t i = 0; i < n; ++i) {
    const auto t = c.tokens(which ? (*which)[static_cast<size_t>(i)] : i);
    out.emplace_back(t.begin(), t.end());
  }
  return out;
}

DataConfig config_for(const std::string& file, const std::string& cache) {
  DataConfig c;
  c.train_files = {file};
  c.seq_len = 16;
  c.batch_size = 4;
  c.val_fraction = 0.1;
  c.cache_dir = cache;
  c.progress = false;
  return c;
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

TEST(PreparedFasta, EqualsTheInMemoryReaderAndSplitForAnyThreadCount) {
  TempDir dir;
  const std::string fasta = dir.write("big.fasta", big_fasta(20 << 20, 7));  // three chunks
  FastaStats ref_stats;
  const ProteinCorpus ref = read_fasta({fasta}, {}, &ref_stats);
  const RecordSplit split = split_records(ref, 0.1);
  ASSERT_GT(split.val.size(), 100u);

  std::vector<std::string> fingerprints;
  for (int threads : {1, 3}) {
    DataConfig c = config_for(fasta, dir.path("cache" + std::to_string(threads)));
    c.threads = threads;
    const PreparedDataset d = PreparedDataset::open(prepare_dataset(c));
    EXPECT_EQ(records(*d.proteins(false)), records(ref, &split.train)) << threads << " threads";
    EXPECT_EQ(records(*d.proteins(true)), records(ref, &split.val)) << threads << " threads";
    EXPECT_EQ(d.manifest().stats.records, ref_stats.records);
    EXPECT_EQ(d.manifest().stats.residues, ref_stats.residues);
    EXPECT_EQ(d.manifest().split_rule, "content-hash");
    fingerprints.push_back(hex64(d.manifest().fingerprint));
    for (const char* f : {"train.tokens.000", "train.offsets.000", "val.tokens.000", "val.offsets.000"})
      EXPECT_EQ(file_bytes(dir.path("cache1/datasets/") + fs::path(d.dir()).filename().string() + "/" + f),
                file_bytes(d.dir() + "/" + f))
          << f;
  }
  EXPECT_EQ(fingerprints[0], fingerprints[1]);
}

TEST(PreparedFasta, ErrorsNameTheFileAndLineAsTheWholeFileParserDoes) {
  TempDir dir;
  std::string text = big_fasta(18 << 20, 9);
  const size_t late = text.find("\n>", text.size() - 4096);  // a bad residue in the last chunk
  text.insert(late, "J1");
  const std::string fasta = dir.write("bad.fasta", text);
  const std::string expected = message_of([&] { read_fasta({fasta}, {}); });
  ASSERT_TRUE(contains(expected, "bad.fasta:")) << expected;
  DataConfig c = config_for(fasta, dir.path("cache"));
  c.threads = 2;
  EXPECT_EQ(message_of([&] { prepare_dataset(c); }), expected);
  for (const auto& e : fs::directory_iterator(dir.path("cache/datasets")))
    EXPECT_EQ(e.path().extension(), ".lock") << "only the lock file may stay: " << e.path();
  // Skipping bad records: the same count and the same first reasons as the whole-file reader.
  c.skip_bad_records = true;
  FastaOptions skip;
  skip.skip_bad_records = true;
  FastaStats ref;
  read_fasta({fasta}, skip, &ref);
  const PreparedDataset d = PreparedDataset::open(prepare_dataset(c));
  EXPECT_EQ(d.manifest().stats.skipped_records, 1);
  EXPECT_EQ(d.manifest().stats.skipped_examples, ref.skipped_examples);
}

TEST(PreparedText, SentencePieceTokensEqualOneEncodeOfTheWholeTextForAnyThreadCount) {
  TempDir dir;
  const std::string text = big_text(3 << 20, 3);  // three encoding pieces
  const auto model = SentencePieceModel::train(text.substr(0, 200000), {.vocab_size = 300, .model_type = SentencePieceType::Bpe});
  const std::string model_file = dir.write("m.model", model->proto());
  const std::string corpus = dir.write("big.txt", text);
  const TextSplit split = split_text(static_cast<int64_t>(text.size()), 0.1);
  std::vector<int32_t> train_ids, val_ids, val_bytes;
  model->encode(std::string_view(text).substr(0, static_cast<size_t>(split.train.end)), train_ids);
  model->encode(std::string_view(text).substr(static_cast<size_t>(split.val.begin)), val_ids, &val_bytes);
  std::set<std::string> fingerprints;
  for (int threads : {1, 4}) {
    DataConfig c = config_for(corpus, dir.path("cache" + std::to_string(threads)));
    c.tokenizer.kind = TokenizerKind::SentencePiece;
    c.tokenizer.model = model_file;
    c.threads = threads;
    const PreparedDataset d = PreparedDataset::open(prepare_dataset(c));
    EXPECT_EQ(all_tokens(*d.text(false)), train_ids) << threads << " threads";
    EXPECT_EQ(all_tokens(*d.text(true)), val_ids) << threads << " threads";
    int64_t sum = 0;
    for (int32_t b : val_bytes) sum += b;
    EXPECT_EQ(d.text(true)->bytes(0, d.text(true)->size()), sum);
    EXPECT_EQ(d.text(true)->bytes(5, 3), val_bytes[5] + val_bytes[6] + val_bytes[7]);
    EXPECT_EQ(d.manifest().train.width, TokenWidth::U16);
    fingerprints.insert(hex64(d.manifest().fingerprint));
  }
  EXPECT_EQ(fingerprints.size(), 1u);
}

// encode_words (word by word, with a cache) against one encode of the same text.
TEST(PreparedText, WordByWordEncodingEqualsTheWholeTextEncoding) {
  const std::string text = big_text(300000, 11) + "  two  spaces, \ttab \n\n lead ▁ odd  \xE2\x96\x81 end ";
  const auto model = SentencePieceModel::train(text, {.vocab_size = 400, .model_type = SentencePieceType::Bpe});
  ASSERT_TRUE(model->splits_at_spaces());
  const auto unigram = SentencePieceModel::train(text, {.vocab_size = 330, .model_type = SentencePieceType::Unigram});
  ASSERT_TRUE(unigram->splits_at_spaces());
  for (const auto& m : {model, unigram}) {
    SentencePieceModel::WordCache cache;
    for (int round = 0; round < 2; ++round) {  // the second time from the cache
      std::vector<int32_t> a, ab, b, bb;
      m->encode(text, a, &ab);
      for (size_t pos = 0; pos < text.size();) {
        const size_t end = encode_piece_end(text, pos);
        m->encode_words(std::string_view(text).substr(pos, end - pos), b, &bb, cache);
        pos = end;
      }
      EXPECT_EQ(a, b);
      EXPECT_EQ(ab, bb);
    }
  }
}

TEST(PreparedText, TheTokenizerIsTrainedOnABoundedSeededSample) {
  TempDir dir;
  const std::string corpus = dir.write("t.txt", big_text(3 << 20, 5));
  DataConfig c = config_for(corpus, dir.path("cache"));
  c.tokenizer.kind = TokenizerKind::SentencePiece;
  c.tokenizer.vocab_size = 400;
  c.tokenizer.sample_bytes = 1 << 20;
  const PreparedDataset a = PreparedDataset::open(prepare_dataset(c));
  EXPECT_GT(a.manifest().sample_bytes, 900 << 10);
  EXPECT_LE(a.manifest().sample_bytes, 1 << 20);
  EXPECT_TRUE(contains(a.manifest().tokenizer_origin, "MiB sample of the training split")) << a.manifest().tokenizer_origin;
  c.tokenizer.sample_seed = 2;  // another sample: another model, another dataset
  const PreparedDataset b = PreparedDataset::open(prepare_dataset(c));
  EXPECT_NE(a.dir(), b.dir());
  EXPECT_NE(a.manifest().tokenizer_hash, b.manifest().tokenizer_hash);
  c.tokenizer.sample_seed = 1;  // the first one again: reused, not prepared
  PreparedInfo info;
  EXPECT_EQ(prepare_dataset(c, "", &info), a.dir());
  EXPECT_TRUE(info.reused);
}

TEST(PreparedText, BytesAreReadInPlaceAndAnEditedSourceIsNeverTrainedOnSilently) {
  TempDir dir;
  const std::string corpus = dir.write("b.txt", big_text(200000, 1));
  DataConfig c = config_for(corpus, dir.path("cache"));
  DataModule first(c);
  EXPECT_TRUE(first.dataset_summary().find("prepared") == 0) << first.dataset_summary();
  const std::string prepared_dir = first.prepared().dir;
  EXPECT_FALSE(fs::exists(prepared_dir + "/train.tokens.000"));  // no copy of the text
  first.next_train_batch();
  const DataCursor cursor = first.cursor();
  // One byte changed, the size kept: a new dataset, and the old cursor is refused naming the file.
  std::string text = file_bytes(corpus);
  text[1000] = text[1000] == 'a' ? 'b' : 'a';
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a new modification time
  dir.write("b.txt", text);
  DataModule second(c);
  EXPECT_NE(second.prepared().dir, prepared_dir);
  const std::string why = message_of([&] { second.restore(cursor); });
  EXPECT_TRUE(contains(why, "b.txt") && contains(why, "changed")) << why;
  // The stale dataset that read the old bytes in place refuses to open.
  const std::string stale = message_of([&] { PreparedDataset::open(prepared_dir); });
  EXPECT_TRUE(contains(stale, corpus) && contains(stale, "changed")) << stale;
}

TEST(PreparedDatasetFiles, TruncatedEditedOrMissingShardsAreRefusedByName) {
  TempDir dir;
  const std::string fasta = dir.write("p.fasta", big_fasta(300000, 4));
  DataConfig c = config_for(fasta, dir.path("cache"));
  const std::string d = prepare_dataset(c);
  ASSERT_NO_THROW(PreparedDataset::open(d));
  const std::string shard = d + "/train.tokens.000";
  const std::string good = file_bytes(shard);
  std::string edited = good;
  edited[edited.size() / 2] ^= 1;
  std::ofstream(shard, std::ios::binary | std::ios::trunc) << edited;
  std::string why = message_of([&] { PreparedDataset::open(d); });
  EXPECT_TRUE(contains(why, shard) && contains(why, "checksum")) << why;
  std::ofstream(shard, std::ios::binary | std::ios::trunc) << good.substr(0, good.size() - 1);
  why = message_of([&] { PreparedDataset::open(d); });
  EXPECT_TRUE(contains(why, shard) && contains(why, "truncated")) << why;
  fs::remove(shard);
  why = message_of([&] { PreparedDataset::open(d); });
  EXPECT_TRUE(contains(why, shard) && contains(why, "missing")) << why;
  std::ofstream(shard, std::ios::binary | std::ios::trunc) << good;
  // A damaged manifest: named, with what to do.
  std::string manifest = file_bytes(d + "/manifest.json");
  manifest.replace(manifest.find("\"kind\""), 6, "\"kinx\"");
  std::ofstream(d + "/manifest.json", std::ios::binary | std::ios::trunc) << manifest;
  why = message_of([&] { PreparedDataset::open(d); });
  EXPECT_TRUE(contains(why, d + "/manifest.json") && contains(why, "'kind'")) << why;
}

TEST(PreparedDatasetFiles, AKilledPreparationLeavesNothingTrustedAndIsCleanedUp) {
  TempDir dir;
  const std::string fasta = dir.write("k.fasta", big_fasta(100000, 5));
  DataConfig c = config_for(fasta, dir.path("cache"));
  const std::string d = prepare_dataset(c);
  // What a kill -9 in the middle leaves: a temporary directory with shards and no manifest, and no
  // finished directory.
  fs::rename(d, d + ".tmp-999999");
  fs::remove(d + ".tmp-999999/manifest.json");
  EXPECT_EQ(cached_dataset(c), "");
  PreparedInfo info;
  EXPECT_EQ(prepare_dataset(c, "", &info), d);
  EXPECT_FALSE(info.reused);
  EXPECT_FALSE(fs::exists(d + ".tmp-999999"));
  EXPECT_TRUE(fs::exists(d + "/manifest.json"));
}

TEST(PreparedDataModule, ACursorOfAnotherDatasetOrAnOldVersionIsRefused) {
  TempDir dir;
  DataModule a(config_for(dir.write("a.fasta", big_fasta(50000, 1)), dir.path("cache")));
  DataModule b(config_for(dir.write("b.fasta", big_fasta(50000, 2)), dir.path("cache")));
  a.next_train_batch();
  DataCursor c = a.cursor();
  EXPECT_EQ(c.dataset, a.fingerprint());
  EXPECT_TRUE(contains(message_of([&] { b.restore(c); }), "content fingerprint")) << message_of([&] { b.restore(c); });
  c.dataset = 0;  // a cursor of the format before prepared datasets
  EXPECT_TRUE(contains(message_of([&] { a.restore(c); }), "version 1"));
}

TEST(IndexPermutation, IsABijectionAndDependsOnTheSeed) {
  for (uint64_t n : {1u, 2u, 3u, 17u, 1000u, 4097u}) {
    const IndexPermutation p(n, 42);
    std::vector<int> seen(n, 0);
    for (uint64_t i = 0; i < n; ++i) ++seen[p(i)];
    EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), static_cast<long>(n)) << n;
  }
  const IndexPermutation a(1000, 1), b(1000, 2);
  int same = 0;
  for (uint64_t i = 0; i < 1000; ++i) same += a(i) == b(i);
  EXPECT_LT(same, 20);
  int fixed = 0;
  for (uint64_t i = 0; i < 1000; ++i) fixed += a(i) == i;
  EXPECT_LT(fixed, 20);
}

}  // namespace
}  // namespace pf
