#include "train/signals.h"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>

namespace pf {

namespace {

std::atomic<int> g_signal{0};

extern "C" void on_stop_signal(int sig) {
  if (g_signal.exchange(sig) != 0) {
    const char msg[] = "\nsecond signal: exiting now (the last checkpoint on disk is intact)\n";
    [[maybe_unused]] ssize_t n = ::write(2, msg, sizeof msg - 1);
    ::_exit(130);
  }
}

}  // namespace

void install_stop_handlers() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int stop_signal() {
  return g_signal.load();
}
bool stop_requested() {
  return g_signal.load() != 0;
}
void request_stop(int signal) {
  g_signal.store(signal);
}
void clear_stop_request() {
  g_signal.store(0);
}

const char* signal_name(int signal) {
  if (signal == SIGINT) return "SIGINT";
  if (signal == SIGTERM) return "SIGTERM";
  return "a signal";
}

}  // namespace pf
