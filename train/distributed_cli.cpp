#include "train/distributed_cli.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "distributed/comm.h"

namespace pf {

namespace {
std::FILE* g_errors = nullptr;
}

void quiet_unless_root() {
  if (dist::rank() == 0 || g_errors != nullptr) return;
  std::fflush(stdout);
  std::fflush(stderr);
  const int saved = ::dup(2);
  if (saved >= 0) g_errors = ::fdopen(saved, "w");
  // Unbuffered, as stderr: a rank's error must be out before an MPI_Abort ends the job.
  if (g_errors != nullptr) std::setvbuf(g_errors, nullptr, _IONBF, 0);
  const int null = ::open("/dev/null", O_WRONLY);
  if (null >= 0) {
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::close(null);
  }
}

std::FILE* error_stream() {
  return g_errors != nullptr ? g_errors : stderr;
}

std::string rank_prefix() {
  return dist::size() > 1 ? dist::who() + ": " : "";
}

int default_threads_per_rank() {
  if (dist::size() == 1) return 0;
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, hw / std::max(1, dist::local_size()));
}

std::string parallel_summary(long long batch_size, int threads) {
  if (dist::size() == 1)
    return dist::built_with_mpi() ? "one process (start with mpirun -np N for data parallel)"
                                  : "one process (built without MPI: no data parallel)";
  const long long n = dist::size();
  std::string rows = batch_size % n == 0 ? std::to_string(batch_size / n)
                                         : std::to_string(batch_size / n) + "-" + std::to_string(batch_size / n + 1);
  return "data parallel: " + std::to_string(n) + " ranks (" + std::to_string(dist::local_size()) +
         " on this host) x " + std::to_string(threads) + (threads == 1 ? " thread" : " threads") + ", " +
         dist::library_version() + "; --batch-size " + std::to_string(batch_size) + " = " + rows +
         " rows per rank";
}

std::string parallel_help() {
  if (!dist::built_with_mpi())
    return "Data parallel: this build has no MPI (CMake did not find it, or PF_USE_MPI=OFF); it runs as one "
           "process.";
  return "Data parallel: mpirun -np N performer-train ... trains one model on N processes (--batch-size is the "
         "global batch, split over the ranks; --threads 0 shares each host's cores among its ranks). See README, "
         "\"Training on several machines\".";
}

}  // namespace pf
