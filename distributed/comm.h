// dist: the processes of a data-parallel job, over MPI (Open MPI on Debian: libopenmpi-dev).
//
// One process per rank, started by `mpirun -np N program ...` (or a hostfile, or a batch scheduler);
// every rank runs the same program. Started without mpirun, a program is one rank of a job of one (MPI
// is not even initialized), and every collective below returns at once with the caller's own data. A build without MPI (CMake did
// not find it, or PF_USE_MPI=OFF) is always that job of one: built_with_mpi() says which.
//
//   int main(int argc, char** argv) {
//     pf::dist::Session mpi(&argc, &argv);      // MPI_Init ... MPI_Finalize
//     std::vector<float> g = ...;
//     pf::dist::allreduce_sum(g.data(), g.size()); // every rank now holds the sum over ranks
//   }
//
// Every call that fails throws pf::dist::Error, whose message names the rank ("rank 1 of 4:
// MPI_Allreduce failed: ..."); MPI's own error handler is replaced so that a failure is reported
// rather than aborting silently. A rank that dies makes mpirun end the whole job.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace pf::dist {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Whether this build can run several ranks (CMake found MPI).
bool built_with_mpi();
// "Open MPI v4.1.4 ..." or "none (built without MPI: one process only)".
std::string library_version();

// MPI_Init (threads: MPI_THREAD_FUNNELED; only the thread that called init talks to MPI) when the
// process was started by an MPI launcher (launched_by_mpi()). Without one it does nothing: the
// process is a job of one rank and MPI is never started (no daemon, no shared-memory files), so a
// program run by hand behaves exactly as a build without MPI. Calling it twice is harmless. A build
// without MPI started by mpirun with several processes throws Error (each would run alone).
void init(int* argc, char*** argv);
// The environment of an MPI launcher is present (mpirun / mpiexec of Open MPI or MPICH, srun).
bool launched_by_mpi();
// MPI_Finalize if init started MPI; collective: every rank must call it.
void finalize();
// Ends every rank of the job at once with this exit code (MPI_Abort); for errors that only some ranks
// see, where a clean finalize would leave the others waiting in a collective forever.
[[noreturn]] void abort(int code);

// RAII form of init / finalize.
class Session {
 public:
  Session(int* argc, char*** argv) { init(argc, argv); }
  ~Session() { finalize(); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
};

int rank();        // 0 .. size() - 1 (0 before init)
int size();        // ranks in the job (1 before init, without mpirun or without MPI)
int local_size();  // ranks of this job on this host (shared memory), for sizing thread pools
// "rank 1 of 4" (messages).
std::string who();

// In-place sums over every rank, elementwise; every rank gets the same result. n may exceed INT_MAX
// (sent in pieces). With one rank: nothing to do.
void allreduce_sum(float* data, int64_t n);
void allreduce_sum(double* data, int64_t n);
double sum(double value);
int64_t max(int64_t value);
// True on every rank if the flag is true on any rank.
bool any(bool flag);

// Copies root's bytes to every rank (the buffers must have the same size everywhere).
void broadcast(void* data, int64_t bytes, int root = 0);
// Root's string to every rank (any size; the others' contents are replaced).
void broadcast(std::string& s, int root = 0);
// Every rank's string, in rank order, on root; the other ranks get an empty vector.
std::vector<std::string> gather(const std::string& s, int root = 0);
void barrier();

}  // namespace pf::dist
