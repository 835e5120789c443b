// Progress on stderr: one line rewritten in place (\r) when stderr is a terminal, plain lines
// otherwise (logs, CI), e.g.
//   step 120/600 | loss 2.8123 | lr 1.9e-03 | 21.4k tok/s | elapsed 0:41 | ETA 2:45
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace pf {

// "0:41", "12:05", "1:02:09".
std::string format_duration(double seconds);

class ProgressPrinter {
 public:
  // interactive: rewrite one line with \r (default: whether `out` is a terminal).
  ProgressPrinter(std::FILE* out, int64_t total_steps);
  ProgressPrinter(std::FILE* out, int64_t total_steps, bool interactive);

  // A step finished. Interactive: redraws the line (at most ~10 times a second, and always at the
  // last step). Otherwise prints a line when `log_line` is true.
  void step(int64_t step, double loss, double lr, double tokens_per_s, double elapsed_s, double eta_s, bool log_line);
  // A message on its own line (the progress line, if any, is cleared first and redrawn by the next step).
  void message(const std::string& text);
  // Ends the progress line (a newline if one is showing).
  void finish();
  bool interactive() const { return interactive_; }

 private:
  std::FILE* out_;
  int64_t total_;
  bool interactive_;
  bool line_showing_ = false;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace pf
