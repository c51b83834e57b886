#include "libs/server/shutdown_signal.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/base/call_once.h"
#include "absl/strings/str_cat.h"

namespace certplane::server {
namespace {

// Written once under g_once before any handler is installed; only read after.
int g_pipe[2] = {-1, -1};
absl::once_flag g_once;
absl::Status* g_install_status = nullptr;

void NotifyPipe(int value) {
  // Only async-signal-safe calls here.
  int saved_errno = errno;
  unsigned char byte = static_cast<unsigned char>(value);
  ssize_t ignored = ::write(g_pipe[1], &byte, 1);
  (void)ignored;  // A full pipe already holds a pending wake-up.
  errno = saved_errno;
}

extern "C" void HandleShutdownSignal(int signal_number) {
  NotifyPipe(signal_number);
}

absl::Status Install() {
  if (::pipe2(g_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(
        absl::StrCat("pipe2 for shutdown signals failed: ", strerror(errno)));
  }
  int flags = ::fcntl(g_pipe[1], F_GETFL);
  if (flags < 0 || ::fcntl(g_pipe[1], F_SETFL, flags | O_NONBLOCK) != 0) {
    return absl::InternalError(absl::StrCat(
        "fcntl(O_NONBLOCK) on the shutdown pipe failed: ", strerror(errno)));
  }
  struct sigaction action;
  std::memset(&action, 0, sizeof(action));
  action.sa_handler = HandleShutdownSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (int signal_number : {SIGTERM, SIGINT}) {
    if (::sigaction(signal_number, &action, nullptr) != 0) {
      return absl::InternalError(absl::StrCat("sigaction(",
                                              strsignal(signal_number),
                                              ") failed: ", strerror(errno)));
    }
  }
  struct sigaction ignore;
  std::memset(&ignore, 0, sizeof(ignore));
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  if (::sigaction(SIGPIPE, &ignore, nullptr) != 0) {
    return absl::InternalError(
        absl::StrCat("sigaction(SIGPIPE, SIG_IGN) failed: ", strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status InstallShutdownSignalHandlers() {
  absl::call_once(g_once,
                  [] { g_install_status = new absl::Status(Install()); });
  return *g_install_status;
}

int WaitForShutdownSignal() {
  if (absl::Status status = InstallShutdownSignalHandlers(); !status.ok()) {
    return -1;
  }
  while (true) {
    unsigned char byte = 0;
    ssize_t n = ::read(g_pipe[0], &byte, 1);
    if (n == 1) return byte;
    if (n < 0 && errno == EINTR) continue;
    return -1;
  }
}

void RequestShutdown() {
  if (InstallShutdownSignalHandlers().ok()) NotifyPipe(0);
}

}  // namespace certplane::server
