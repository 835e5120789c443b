// The programs' OpenMP wait policy (autograd/thread_policy.cpp): set before libgomp starts, only when
// the user has not chosen one. Each case runs this test binary again with a controlled environment
// and reads what the child saw.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <omp.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

extern char** environ;

namespace {

// Runs this binary's Report test in a child with exactly `env`; returns what it printed.
std::string child_sees(std::vector<std::string> env) {
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return "readlink failed";
  exe[n] = '\0';
  env.push_back("PF_THREAD_POLICY_CHILD=1");
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string filter = "--gtest_filter=ThreadPolicy.Report";
  std::array<char*, 3> argv{exe, filter.data(), nullptr};
  int fds[2];
  if (pipe(fds) != 0) return "pipe failed";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&fa, fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, exe, &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (rc != 0) return "spawn failed";
  std::string out;
  char buf[512];
  ssize_t r;
  while ((r = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(r));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  const size_t b = out.find("POLICY["), e = out.find(']', b);
  if (b == std::string::npos || e == std::string::npos) return "no report: " + out;
  // What libgomp itself took (omp_display_env), after what the environment says.
  const size_t g = out.find("GOMP_SPINCOUNT = '");
  const std::string gomp = g == std::string::npos ? "?" : out.substr(g + 18, out.find('\'', g + 18) - g - 18);
  return out.substr(b + 7, e - b - 7) + " gomp=" + gomp;
}

TEST(ThreadPolicy, Report) {
  if (std::getenv("PF_THREAD_POLICY_CHILD") == nullptr) GTEST_SKIP() << "only run as the child of the tests below";
  const char* spin = std::getenv("GOMP_SPINCOUNT");
  const char* wait = std::getenv("OMP_WAIT_POLICY");
  std::printf("POLICY[spin=%s wait=%s]\n", spin ? spin : "-", wait ? wait : "-");
  std::fflush(stdout);
  omp_display_env(1);
}

TEST(ThreadPolicy, ProgramsSpinBrieflyUnlessTheUserChose) {
  EXPECT_EQ(child_sees({}), "spin=1000 wait=- gomp=1000");
  EXPECT_EQ(child_sees({"GOMP_SPINCOUNT=300000"}), "spin=300000 wait=- gomp=300000");
  EXPECT_EQ(child_sees({"OMP_WAIT_POLICY=active"}).substr(0, 18), "spin=- wait=active");
}

}  // namespace
