#include "autograd/parallel.h"

#include <Eigen/Core>
#include <stdexcept>
#include <string>


namespace pf {

void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("set_num_threads: thread count must be >= 1, got " + std::to_string(n));
  omp_set_num_threads(n);
  Eigen::setNbThreads(n);
}

int get_num_threads() { return omp_get_max_threads(); }

bool in_parallel_region() { return omp_in_parallel(); }

}  // namespace pf
