// Internals of dataset preparation (data/prepared.h): the progress line and a parallel loop.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace pf::prepared_detail {

// "prepare big.txt: encoding 512.0 / 1024.0 MB, 85.3 MB/s, 6 s left" on stderr once a second on a
// terminal (redrawn in place), every 10 s otherwise, and a closing line for a pass that printed any.
class Progress {
 public:
  Progress(bool enabled, std::string what, int64_t total_bytes);
  void stage(const std::string& stage, int64_t total_bytes);  // a new pass (e.g. "hashing", "encoding")
  void add(int64_t bytes);
  void finish();

 private:
  void print(bool last);
  bool enabled_, tty_, printed_ = false;
  std::string what_, stage_;
  int64_t total_ = 0, done_ = 0;
  std::chrono::steady_clock::time_point start_, last_;
};

// Calls fn(i) for i in [0, n) on `threads` threads (the calling one included); rethrows the exception
// of the lowest i that threw, after all have finished.
inline void parallel_for(int64_t n, int threads, const std::function<void(int64_t)>& fn) {
  std::vector<std::exception_ptr> errors(static_cast<size_t>(n));
  std::atomic<int64_t> next{0};
  auto work = [&] {
    for (int64_t i; (i = next.fetch_add(1)) < n;) {
      try {
        fn(i);
      } catch (...) {
        errors[static_cast<size_t>(i)] = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads && t < n; ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace pf::prepared_detail
