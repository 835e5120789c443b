#include <gtest/gtest.h>

#include <filesystem>

#include "data/corpus_file.h"
#include "data/text_corpus.h"
#include "temp_dir.h"

namespace pf {
namespace {

using test::TempDir;

std::vector<int32_t> read_all(const TextCorpus& c) {
  std::vector<int32_t> out(static_cast<size_t>(c.size()));
  c.copy_tokens(0, c.size(), out.data());
  return out;
}

std::vector<int32_t> as_ids(const std::string& s) {
  std::vector<int32_t> out;
  for (unsigned char ch : s) out.push_back(ch);
  return out;
}

int count_files(const std::filesystem::path& dir) {
  int n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

TEST(TextCorpus, IsMemoryMappedAndReadsEveryByte) {
  TempDir dir;
  std::string content = "hello\r\nworld\n";
  for (int b = 0; b < 256; ++b) content.push_back(static_cast<char>(b));  // any byte is text
  const std::string path = dir.write("a.txt", content);
  const TextCorpus c = TextCorpus::open({path}, "");
  ASSERT_EQ(c.num_files(), 1);
  EXPECT_TRUE(c.file(0).is_mapped());
  EXPECT_EQ(c.file(0).path(), path);  // the file itself is mapped: nothing copied into memory
  EXPECT_EQ(c.size(), static_cast<int64_t>(content.size()));
  EXPECT_EQ(read_all(c), as_ids(content));
  EXPECT_EQ(c.file(0).view().data()[0], 'h');
}

TEST(TextCorpus, SeveralFilesReadAsOneStream) {
  TempDir dir;
  const TextCorpus c =
      TextCorpus::open({dir.write("a.txt", "abc"), dir.write("b.txt", "de"), dir.write("c.txt", "fgh")}, "");
  EXPECT_EQ(c.size(), 8);
  std::vector<int32_t> window(4);
  c.copy_tokens(2, 4, window.data());  // crosses a.txt -> b.txt -> c.txt
  EXPECT_EQ(window, as_ids("cdef"));
  EXPECT_THROW(c.copy_tokens(6, 3, window.data()), std::out_of_range);
}

TEST(TextCorpus, GzipIsDecompressedOnceToTheCacheDir) {
  TempDir dir;
  const std::string content(100000, 'x');
  const std::string gz = dir.write_gz("big.txt.gz", content + "tail");
  const std::string cache = dir.path("cache");
  {
    const TextCorpus c = TextCorpus::open({gz}, cache);
    EXPECT_EQ(c.size(), 100004);
    EXPECT_EQ(c.file(0).name(), gz);  // messages cite the user's file
    EXPECT_NE(c.file(0).path(), gz);  // the map is of the cache
    std::vector<int32_t> tail(4);
    c.copy_tokens(100000, 4, tail.data());
    EXPECT_EQ(tail, as_ids("tail"));
  }
  ASSERT_EQ(count_files(cache), 1);
  const auto cached = std::filesystem::directory_iterator(cache)->path();
  const auto stamp = std::filesystem::last_write_time(cached);
  const TextCorpus again = TextCorpus::open({gz}, cache);  // reuses, does not rewrite
  EXPECT_EQ(again.size(), 100004);
  EXPECT_EQ(count_files(cache), 1);
  EXPECT_EQ(std::filesystem::last_write_time(cached), stamp);
  EXPECT_EQ(cached.string(), gzip_cache_path(gz, cache));
}

TEST(TextCorpus, GzipCacheGoesNextToTheGzWithoutACacheDir) {
  TempDir dir;
  const std::string gz = dir.write_gz("t.txt.gz", "abc");
  const std::string cache = gzip_cache_path(gz, "");
  EXPECT_EQ(std::filesystem::path(cache).parent_path(), dir.dir());
  EXPECT_EQ(TextCorpus::open({gz}, "").size(), 3);
  EXPECT_TRUE(std::filesystem::exists(cache));
}

TEST(TextCorpus, EmptyFileIsAnErrorNamingTheFile) {
  TempDir dir;
  const std::string path = dir.write("empty.txt", "");
  try {
    TextCorpus::open({path}, "");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": file is empty"), std::string::npos) << e.what();
  }
}

TEST(TextCorpus, EmptyGzipIsAnErrorNamingTheGz) {
  TempDir dir;
  const std::string gz = dir.write_gz("empty.txt.gz", "");
  try {
    TextCorpus::open({gz}, dir.path("cache"));
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(gz + ": file is empty"), std::string::npos) << e.what();
  }
}

TEST(TextCorpus, MissingFileIsAnErrorNamingTheFile) {
  TempDir dir;
  const std::string path = dir.path("missing.txt");
  try {
    TextCorpus::open({path}, "");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": cannot open"), std::string::npos) << e.what();
  }
}

TEST(TextCorpus, TruncatedGzipIsAnErrorAndLeavesNoCache) {
  TempDir dir;
  std::string noise;
  for (int i = 0; i < 20000; ++i) noise.push_back(static_cast<char>('a' + (i * 7919) % 26));
  const std::string whole = dir.write_gz("whole.gz", noise);
  std::string bytes;
  {
    std::ifstream in(whole, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::string cut = dir.write("cut.txt.gz", bytes.substr(0, bytes.size() / 2));
  const std::string cache = dir.path("cache");
  try {
    TextCorpus::open({cut}, cache);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(cut), std::string::npos) << e.what();
  }
  EXPECT_EQ(count_files(cache), 0);
}

}  // namespace
}  // namespace pf
