// performer-train under mpirun: what the command-line programs do differently on the ranks of a job.
#pragma once

#include <cstdio>
#include <string>

namespace pf {

// Rank 0 prints everything; the other ranks print errors only: their stdout and stderr are sent to
// /dev/null and error_stream() is the original stderr (one process: stderr).
void quiet_unless_root();
std::FILE* error_stream();
// "" for one process, else "rank 1 of 4: " (error messages of ranks other than 0).
std::string rank_prefix();

// --threads 0 under mpirun: the host's hardware threads shared among the job's ranks on that host
// (at least 1). One process: 0 (all cores, as before).
int default_threads_per_rank();

// The banner's line about the job, e.g. "data parallel: 2 ranks (2 on this host) x 1 thread, Open MPI
// v4.1.4; --batch-size 8 = 4 rows per rank" or "one process (built without MPI)".
std::string parallel_summary(long long batch_size, int threads);
// The --help footer: how to run on several processes, or that this build cannot.
std::string parallel_help();

}  // namespace pf
