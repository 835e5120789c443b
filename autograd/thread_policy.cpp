// The OpenMP wait policy of the project's programs. Linked into every executable (not the library)
// as an entry of the executable's .preinit_array, which the dynamic loader runs before any shared
// library starts.
//
// libgomp's default lets an idle worker spin for 300,000 iterations before it sleeps. On a machine
// whose cores are shared (two trainings, `ctest -j2`, a build beside a run) the spinning threads
// take the cores from the threads that have work: two B1 trainings at 2 threads on 2 cores each ran
// 7x slower than alone (BENCHMARKS.md, "Threads on shared cores"). A spin count of 1,000 keeps the
// quiet case within 1-3% of the default and two such runs at about 2x their time alone.
//
// libgomp reads its environment once, when it is loaded, and the C library resets the environment
// after the preinit functions run, so setting a variable here would not reach it. Instead, when
// neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT is set, the program starts itself again at once
// (execve of /proc/self/exe, same arguments, the environment plus GOMP_SPINCOUNT=1000), before any
// library or constructor has run. An explicit OMP_WAIT_POLICY or GOMP_SPINCOUNT is left as it is;
// without /proc the program simply runs with libgomp's default.
#include <unistd.h>

#include <alloca.h>
#include <cstring>

namespace {

bool has(char** envp, const char* name) {
  const size_t n = std::strlen(name);
  for (char** e = envp; e != nullptr && *e != nullptr; ++e)
    if (std::strncmp(*e, name, n) == 0 && (*e)[n] == '=') return true;
  return false;
}

void pf_default_omp_wait_policy(int, char** argv, char** envp) {
  if (envp == nullptr || has(envp, "OMP_WAIT_POLICY") || has(envp, "GOMP_SPINCOUNT")) return;
  size_t n = 0;
  while (envp[n] != nullptr) ++n;
  char** env = static_cast<char**>(alloca((n + 2) * sizeof(char*)));
  std::memcpy(env, envp, n * sizeof(char*));
  static char spin[] = "GOMP_SPINCOUNT=1000";
  env[n] = spin;
  env[n + 1] = nullptr;
  execve("/proc/self/exe", argv, env);  // returns only on failure: then run as we are
}

__attribute__((section(".preinit_array"), used)) void (*const pf_preinit_entry)(int, char**, char**) =
    &pf_default_omp_wait_policy;

}  // namespace
