// SIGINT / SIGTERM as a request to stop cleanly: the training loop finishes the current step, writes
// a checkpoint and exits. A second signal while stopping ends the process at once (exit code 130);
// checkpoints are written atomically, so even that never leaves a broken file.
#pragma once

namespace pf {

// Installs the handlers (idempotent).
void install_stop_handlers();
// The signal that asked to stop (SIGINT or SIGTERM), or 0.
int stop_signal();
bool stop_requested();
// Asks to stop as if `signal` had arrived (tests, embedding applications).
void request_stop(int signal);
void clear_stop_request();
// "SIGINT", "SIGTERM", or "a signal" for any other.
const char* signal_name(int signal);

}  // namespace pf
