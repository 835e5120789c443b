// base/atomic_file.h: a write replaces the whole file or nothing, and leaves no temporary behind.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "base/atomic_file.h"

namespace pf {
namespace {

namespace fs = std::filesystem;

class AtomicFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("pf_atomic_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add);
    fs::remove_all(dir_);
  }
  fs::path dir_;
};

TEST_F(AtomicFile, WritesAndReplacesWithoutLeavingTemporaries) {
  const std::string path = (dir_ / "f.bin").string();
  write_file_atomic(path, "first");
  EXPECT_EQ(read_file_bytes(path), "first");
  write_file_atomic(path, std::string(100000, 'x'));
  EXPECT_EQ(read_file_bytes(path), std::string(100000, 'x'));
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir_)) {
    ++entries;
    EXPECT_FALSE(is_atomic_temp_name(e.path().filename().string())) << e.path();
  }
  EXPECT_EQ(entries, 1);
  EXPECT_TRUE(is_atomic_temp_name(fs::path(atomic_temp_path(path)).filename().string()));
}

TEST_F(AtomicFile, AFailedWriteNamesThePath) {
  const std::string missing = (dir_ / "no" / "such" / "f.bin").string();
  try {
    write_file_atomic(missing, "x");
    FAIL() << "wrote into a missing directory";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
}

// (The disk-full case is tested end to end in tests/train, TrainFaultTest.)
TEST_F(AtomicFile, AFailedReplaceKeepsTheOldFile) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  const std::string path = (dir_ / "kept.bin").string();
  write_file_atomic(path, "old");
  fs::permissions(dir_, fs::perms::owner_write, fs::perm_options::remove);
  EXPECT_THROW(write_file_atomic(path, "new"), std::runtime_error);
  fs::permissions(dir_, fs::perms::owner_write, fs::perm_options::add);
  EXPECT_EQ(read_file_bytes(path), "old");
}

TEST_F(AtomicFile, ReadingAMissingFileNamesIt) {
  const std::string path = (dir_ / "absent").string();
  try {
    read_file_bytes(path);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace pf
