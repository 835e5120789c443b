#include "train/progress.h"
#include "base/format.h"

#include <unistd.h>

#include <cmath>

namespace pf {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t s = static_cast<int64_t>(std::llround(seconds));
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>((s / 60) % 60), static_cast<long long>(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  return buf;
}

ProgressPrinter::ProgressPrinter(std::FILE* out, int64_t total_steps)
    : ProgressPrinter(out, total_steps, ::isatty(::fileno(out)) == 1) {}

ProgressPrinter::ProgressPrinter(std::FILE* out, int64_t total_steps, bool interactive)
    : out_(out), total_(total_steps), interactive_(interactive) {}

void ProgressPrinter::step(int64_t step, double loss, double lr, double tokens_per_s, double elapsed_s, double eta_s,
                           bool log_line) {
  const auto now = std::chrono::steady_clock::now();
  if (interactive_) {
    if (step != total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
  } else if (!log_line) {
    return;
  }
  char buf[256];
  std::snprintf(buf, sizeof buf, "step %lld/%lld | loss %.4f | lr %.2e | %s tok/s | elapsed %s | ETA %s",
                static_cast<long long>(step), static_cast<long long>(total_), loss, lr,
                human_count(tokens_per_s).c_str(), format_duration(elapsed_s).c_str(), format_duration(eta_s).c_str());
  if (interactive_) {
    std::fprintf(out_, "\r\033[K%s", buf);
    line_showing_ = true;
  } else {
    std::fprintf(out_, "%s\n", buf);
  }
  std::fflush(out_);
}

void ProgressPrinter::message(const std::string& text) {
  if (line_showing_) std::fprintf(out_, "\r\033[K");
  line_showing_ = false;
  last_draw_ = {};
  std::fprintf(out_, "%s\n", text.c_str());
  std::fflush(out_);
}

void ProgressPrinter::finish() {
  if (line_showing_) std::fprintf(out_, "\n");
  line_showing_ = false;
  std::fflush(out_);
}

}  // namespace pf
