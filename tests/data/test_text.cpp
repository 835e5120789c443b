#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "data/corpus_file.h"
#include "data/text_corpus.h"
#include "tests/temp_dir.h"

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

// Sets an environment variable for one scope and restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = std::getenv(name);
    had_ = old != nullptr;
    if (had_) old_ = old;
    if (value != nullptr)
      ::setenv(name, value, 1);
    else
      ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (had_)
      ::setenv(name_.c_str(), old_.c_str(), 1);
    else
      ::unsetenv(name_.c_str());
  }

 private:
  std::string name_, old_;
  bool had_ = false;
};

// Without a cache_dir the cache goes to the user's cache directory, never next to the .gz (which may
// be a system directory that is writable only because the program runs as root).
TEST(TextCorpus, GzipCacheGoesToTheUserCacheDirWithoutACacheDir) {
  TempDir dir;
  const ScopedEnv xdg("XDG_CACHE_HOME", dir.path("xdg").c_str());
  std::filesystem::create_directory(dir.path("data"));
  const std::string gz = dir.write_gz("data/t.txt.gz", "abc");
  const std::string cache = gzip_cache_path(gz, "");
  EXPECT_EQ(std::filesystem::path(cache).parent_path(), std::filesystem::path(dir.path("xdg/performer-cpp")));
  EXPECT_EQ(TextCorpus::open({gz}, "").size(), 3);
  EXPECT_TRUE(std::filesystem::exists(cache));
  EXPECT_EQ(count_files(dir.path("data")), 1);  // only the .gz: nothing written next to it
  EXPECT_EQ(user_cache_dir(), dir.path("xdg/performer-cpp"));
}

TEST(TextCorpus, UserCacheDirFallsBackToHomeDotCache) {
  TempDir dir;
  const ScopedEnv xdg("XDG_CACHE_HOME", nullptr);
  const ScopedEnv home("HOME", dir.path("home").c_str());
  EXPECT_EQ(user_cache_dir(), dir.path("home/.cache/performer-cpp"));
  const ScopedEnv relative("XDG_CACHE_HOME", "relative/dir");  // not absolute: ignored, as the spec says
  EXPECT_EQ(user_cache_dir(), dir.path("home/.cache/performer-cpp"));
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
