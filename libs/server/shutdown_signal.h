// SIGTERM/SIGINT handling for graceful shutdown, async-signal-safe.
//
// The handlers only write the signal number to a non-blocking self-pipe;
// all shutdown work happens in the thread blocked in
// WaitForShutdownSignal(). Signals are process-wide, so this state is too.
//
// Thread-safe. Installing twice is harmless.
#ifndef CERTPLANE_LIBS_SERVER_SHUTDOWN_SIGNAL_H_
#define CERTPLANE_LIBS_SERVER_SHUTDOWN_SIGNAL_H_

#include "absl/status/status.h"

namespace certplane::server {

// Installs the SIGTERM and SIGINT handlers (and ignores SIGPIPE).
// INTERNAL naming the failed call if the pipe or sigaction fails.
absl::Status InstallShutdownSignalHandlers();

// Blocks until SIGTERM/SIGINT arrives (after the handlers are installed) or
// RequestShutdown() is called. Returns the signal number, or 0 for
// RequestShutdown(). Each event wakes one waiter.
int WaitForShutdownSignal();

// Wakes WaitForShutdownSignal() as a signal would, from any thread.
void RequestShutdown();

}  // namespace certplane::server

#endif  // CERTPLANE_LIBS_SERVER_SHUTDOWN_SIGNAL_H_
