#include "distributed/comm.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#ifdef PF_HAVE_MPI
#include <mpi.h>
#endif

namespace pf::dist {

namespace {

bool g_started = false;  // this process called MPI_Init (and must finalize)
int g_rank = 0;
int g_size = 1;
int g_local_size = 1;

// The largest piece one MPI call is given (counts are int).
constexpr int64_t kMaxPiece = int64_t{1} << 30;

#ifdef PF_HAVE_MPI
void check(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) len = std::snprintf(text, sizeof text, "error code %d", code);
  throw Error(who() + ": " + what + " failed: " + std::string(text, static_cast<size_t>(len)));
}
#endif

}  // namespace

bool launched_by_mpi() {
  // Open MPI's mpirun, MPICH / Hydra and Slurm (PMI, PMIx) set these in every process they start.
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(name) != nullptr) return true;
  return false;
}

bool built_with_mpi() {
#ifdef PF_HAVE_MPI
  return true;
#else
  return false;
#endif
}

std::string library_version() {
#ifdef PF_HAVE_MPI
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  if (MPI_Get_library_version(text, &len) != MPI_SUCCESS) return "MPI";
  std::string s(text, static_cast<size_t>(len));
  const size_t nl = s.find_first_of(",\n");
  return nl == std::string::npos ? s : s.substr(0, nl);
#else
  return "none (built without MPI: one process only)";
#endif
}

void init(int* argc, char*** argv) {
#ifdef PF_HAVE_MPI
  int already = 0;
  MPI_Initialized(&already);
  if (!already && !launched_by_mpi()) return;  // a plain process: one rank, MPI never started
  if (!already) {
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      throw Error("MPI_Init_thread failed (is the process started by a working mpirun?)");
    g_started = true;
  }
  // Report failures to the caller (an exception naming the rank) instead of aborting in MPI.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  check(MPI_Comm_rank(MPI_COMM_WORLD, &g_rank), "MPI_Comm_rank");
  check(MPI_Comm_size(MPI_COMM_WORLD, &g_size), "MPI_Comm_size");
  MPI_Comm local;
  check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_rank, MPI_INFO_NULL, &local),
        "MPI_Comm_split_type");
  check(MPI_Comm_size(local, &g_local_size), "MPI_Comm_size (host)");
  MPI_Comm_free(&local);
#else
  (void)argc;
  (void)argv;
  // Started by mpirun with several processes, each would train alone: refuse.
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
    const char* v = std::getenv(name);
    if (v != nullptr && std::atoi(v) > 1)
      throw Error(std::string("started by an MPI launcher with ") + v +
                  " processes, but this build has no MPI (CMake did not find it, or PF_USE_MPI=OFF): each process "
                  "would run alone. Install libopenmpi-dev and openmpi-bin and rebuild, or run one process.");
  }
#endif
}

void finalize() {
#ifdef PF_HAVE_MPI
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (g_started && !finalized) MPI_Finalize();
  g_started = false;
#endif
}

void abort(int code) {
  std::fflush(nullptr);  // what this rank printed goes out before the job ends
#ifdef PF_HAVE_MPI
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized && g_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::exit(code);
}

int rank() {
  return g_rank;
}
int size() {
  return g_size;
}
int local_size() {
  return g_local_size;
}
std::string who() {
  return "rank " + std::to_string(g_rank) + " of " + std::to_string(g_size);
}

void allreduce_sum(float* data, int64_t n) {
#ifdef PF_HAVE_MPI
  if (g_size == 1) return;
  for (int64_t off = 0; off < n; off += kMaxPiece)
    check(MPI_Allreduce(MPI_IN_PLACE, data + off, static_cast<int>(std::min(kMaxPiece, n - off)), MPI_FLOAT, MPI_SUM,
                        MPI_COMM_WORLD),
          "MPI_Allreduce (float sum)");
#else
  (void)data;
  (void)n;
#endif
}

void allreduce_sum(double* data, int64_t n) {
#ifdef PF_HAVE_MPI
  if (g_size == 1) return;
  for (int64_t off = 0; off < n; off += kMaxPiece)
    check(MPI_Allreduce(MPI_IN_PLACE, data + off, static_cast<int>(std::min(kMaxPiece, n - off)), MPI_DOUBLE,
                        MPI_SUM, MPI_COMM_WORLD),
          "MPI_Allreduce (double sum)");
#else
  (void)data;
  (void)n;
#endif
}

double sum(double value) {
  allreduce_sum(&value, 1);
  return value;
}

int64_t max(int64_t value) {
#ifdef PF_HAVE_MPI
  if (g_size == 1) return value;
  long long v = value;
  check(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_LONG_LONG, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce (max)");
  return v;
#else
  return value;
#endif
}

bool any(bool flag) {
  return max(flag ? 1 : 0) != 0;
}

void broadcast(void* data, int64_t bytes, int root) {
#ifdef PF_HAVE_MPI
  if (g_size == 1) return;
  char* p = static_cast<char*>(data);
  for (int64_t off = 0; off < bytes; off += kMaxPiece)
    check(MPI_Bcast(p + off, static_cast<int>(std::min(kMaxPiece, bytes - off)), MPI_BYTE, root, MPI_COMM_WORLD),
          "MPI_Bcast");
#else
  (void)data;
  (void)bytes;
  (void)root;
#endif
}

void broadcast(std::string& s, int root) {
  if (g_size == 1) return;
  int64_t n = static_cast<int64_t>(s.size());
  broadcast(&n, sizeof n, root);
  s.resize(static_cast<size_t>(n));
  broadcast(s.data(), n, root);
}

std::vector<std::string> gather(const std::string& s, int root) {
#ifdef PF_HAVE_MPI
  if (g_size == 1) return {s};
  if (s.size() > static_cast<size_t>(INT_MAX)) throw Error(who() + ": gather of a string over 2 GB");
  const int n = static_cast<int>(s.size());
  std::vector<int> sizes(g_rank == root ? static_cast<size_t>(g_size) : 0);
  check(MPI_Gather(&n, 1, MPI_INT, sizes.data(), 1, MPI_INT, root, MPI_COMM_WORLD), "MPI_Gather (sizes)");
  std::vector<int> offsets(sizes.size());
  std::string all;
  if (g_rank == root) {
    int64_t total = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      offsets[i] = static_cast<int>(total);
      total += sizes[i];
    }
    if (total > INT_MAX) throw Error(who() + ": gather of more than 2 GB");
    all.resize(static_cast<size_t>(total));
  }
  check(MPI_Gatherv(s.data(), n, MPI_BYTE, all.data(), sizes.data(), offsets.data(), MPI_BYTE, root, MPI_COMM_WORLD),
        "MPI_Gatherv");
  std::vector<std::string> out;
  for (size_t i = 0; i < sizes.size(); ++i) out.push_back(all.substr(static_cast<size_t>(offsets[i]), static_cast<size_t>(sizes[i])));
  return out;
#else
  (void)root;
  return {s};
#endif
}

void barrier() {
#ifdef PF_HAVE_MPI
  if (g_size == 1) return;
  check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
#endif
}

}  // namespace pf::dist
