// State dicts on disk: exact round trip through a file into a fresh model; files of the wrong
// kind, version or content are rejected with an error naming the file.
#include <gtest/gtest.h>

#include <cereal/archives/binary.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "autograd/serialize.h"
#include "base/file_header.h"
#include "nn/attention.h"
#include "nn/layer_norm.h"
#include "nn/state_io.h"
#include "nn_test_util.h"

using namespace pf;

namespace {

class Tiny : public Module {
 public:
  explicit Tiny(uint64_t seed) {
    Generator gen(seed);
    attn = register_module("attn", std::make_shared<MultiheadAttention>(8, 2, true, gen));
    ln = register_module("ln", std::make_shared<LayerNorm>(8));
    proj = register_buffer("proj", Tensor::randn({4, 8}, gen));
  }
  std::shared_ptr<MultiheadAttention> attn;
  std::shared_ptr<LayerNorm> ln;
  Var proj;
};

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "/pf_state_io_" + name;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

std::string load_error(const std::string& path) {
  try {
    load_state_dict_file(path);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(loaded)";
}

}  // namespace

TEST(StateIo, StateDictRoundTripsExactlyThroughAFile) {
  Tiny a(1), b(2);
  a.ln->gain.value().data()[3] = -0.f;
  const std::string path = temp_path("model.bin");
  save_state_dict(a.state_dict(), path);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  StateDict loaded = load_state_dict_file(path);
  EXPECT_EQ(loaded.size(), a.state_dict().size());
  b.load_state_dict(loaded);
  for (auto& [name, t] : a.state_dict()) EXPECT_TRUE(test::bitwise_equal(b.state_dict().at(name), t)) << name;
  EXPECT_TRUE(test::bitwise_equal(b.proj.value(), a.proj.value()));
  std::remove(path.c_str());
}

TEST(StateIo, RejectsFilesOfTheWrongKindOrVersion) {
  // Random bytes.
  const std::string random_path = temp_path("random.bin");
  Generator gen(3);
  std::string noise(256, '\0');
  for (char& c : noise) c = static_cast<char>(gen.below(256));
  write_bytes(random_path, noise);
  std::string e = load_error(random_path);
  EXPECT_NE(e.find(random_path), std::string::npos) << e;
  EXPECT_NE(e.find("not a performer-cpp state_dict file"), std::string::npos) << e;

  // An optimizer file given to the state-dict loader.
  const std::string opt_path = temp_path("optimizer.bin");
  Var w(Tensor::ones({2}), true);
  SGD sgd({{"w", w}}, {.lr = 0.1f});
  save_optimizer_state(sgd, opt_path);
  e = load_error(opt_path);
  EXPECT_NE(e.find(opt_path), std::string::npos) << e;
  EXPECT_NE(e.find("is a 'optimizer' file, expected a 'state_dict' file"), std::string::npos) << e;

  // A state-dict file given to the optimizer loader.
  const std::string sd_path = temp_path("sd.bin");
  save_state_dict(Tiny(1).state_dict(), sd_path);
  try {
    load_optimizer_state(sgd, sd_path);
    FAIL();
  } catch (const std::runtime_error& ex) {
    EXPECT_NE(std::string(ex.what()).find("is a 'state_dict' file, expected a 'optimizer' file"), std::string::npos);
  }

  // A newer version.
  const std::string v2_path = temp_path("v2.bin");
  {
    std::ofstream out(v2_path, std::ios::binary);
    cereal::BinaryOutputArchive ar(out);
    write_file_header(ar, kStateDictKind, kStateDictVersion + 1);
    ar(uint64_t{0});
  }
  e = load_error(v2_path);
  EXPECT_NE(e.find(v2_path), std::string::npos) << e;
  EXPECT_NE(e.find("version 2"), std::string::npos) << e;

  // Truncated, and missing.
  std::stringstream full;
  save_state_dict(Tiny(1).state_dict(), full);
  const std::string trunc_path = temp_path("trunc.bin");
  write_bytes(trunc_path, full.str().substr(0, full.str().size() - 10));
  e = load_error(trunc_path);
  EXPECT_NE(e.find("corrupt or truncated"), std::string::npos) << e;
  e = load_error(temp_path("does_not_exist.bin"));
  EXPECT_NE(e.find("cannot open"), std::string::npos) << e;

  for (const auto& p : {random_path, opt_path, sd_path, v2_path, trunc_path}) std::remove(p.c_str());
}

// ---- failed writes (issue 16): nn's files go through the one atomic-write helper
// (base/atomic_file.h). A write that fails (here: the file-size limit, EFBIG, set in a forked
// child so the test process is unaffected) throws naming the file and the system error, leaves the
// previous file intact and no temporary file behind.

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace {

std::vector<std::string> dir_entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(StateIo, FailedWriteThrowsNamesTheFileAndLeavesNoTemporaryFile) {
  const std::string dir = temp_path("efbig_dir");
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/model.sd";
  Tiny a(1), b(2);
  save_state_dict(a.state_dict(), path);
  const std::string before = [&] {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }();
  const std::string msg_path = dir + "/../pf_state_io_efbig_msg";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);  // write() then fails with EFBIG instead of killing the process
    struct rlimit limit = {static_cast<rlim_t>(before.size() / 2), static_cast<rlim_t>(before.size() / 2)};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    int code = 1;
    std::string message = "no exception";
    try {
      save_state_dict(b.state_dict(), path);
    } catch (const std::runtime_error& e) {
      message = e.what();
      code = 0;
    }
    FILE* f = std::fopen(msg_path.c_str(), "w");  // short: fits the limit
    if (f) std::fputs(message.c_str(), f), std::fclose(f);
    ::_exit(code);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "the child was killed (signal " << WTERMSIG(status) << ")";
  std::ifstream in(msg_path);
  std::string message((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove(msg_path);
  EXPECT_EQ(WEXITSTATUS(status), 0) << message;
  EXPECT_NE(message.find(path), std::string::npos) << message;   // names the file
  EXPECT_NE(message.find(std::strerror(EFBIG)), std::string::npos) << message;  // and the system error
  EXPECT_EQ(dir_entries(dir), std::vector<std::string>{"model.sd"}) << "a temporary file was left behind";
  StateDict loaded = load_state_dict_file(path);  // the previous file is intact
  for (const auto& [name, t] : a.state_dict()) EXPECT_EQ(max_abs_diff(loaded.at(name), t), 0.0f) << name;
  std::filesystem::remove_all(dir);
}
}  // namespace
