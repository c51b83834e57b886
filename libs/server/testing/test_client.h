// Test-only clients for the runtime tests: grpc.health.v1 Check and
// reflection ListServices through a generic stub, a plain-socket HTTP GET,
// and a child process with a pipe on its stdout.
#ifndef CERTPLANE_LIBS_SERVER_TESTING_TEST_CLIENT_H_
#define CERTPLANE_LIBS_SERVER_TESTING_TEST_CLIENT_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "certplane/testing/v1/grpc_wire.pb.h"
#include "grpcpp/channel.h"

namespace certplane::server::testing {

// grpc.health.v1.Health/Check for `service` ("" for the whole server).
absl::StatusOr<certplane::testing::v1::WireHealthCheckResponse::ServingStatus>
CheckHealth(const std::shared_ptr<grpc::Channel>& channel,
            const std::string& service);

// grpc.reflection.v1alpha.ServerReflection list_services.
absl::StatusOr<std::vector<std::string>> ListServicesByReflection(
    const std::shared_ptr<grpc::Channel>& channel);

// GET http://127.0.0.1:<port><path> over a plain socket (HTTP/1.0); the
// whole response, status line and headers included.
absl::StatusOr<std::string> HttpGet(int port, const std::string& path);

// A child process whose stdout is a pipe to the test. Kills it (SIGKILL) on
// destruction if it is still running.
class ChildProcess {
 public:
  // Starts `path` with `args` and the current environment plus `env`
  // ("NAME=value" entries).
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(
      const std::string& path, const std::vector<std::string>& args,
      const std::vector<std::string>& env);
  ~ChildProcess();

  // The next line of stdout (without "\n"); DEADLINE_EXCEEDED or
  // OUT_OF_RANGE (EOF).
  absl::StatusOr<std::string> ReadLine(absl::Duration timeout);
  absl::Status Signal(int signal_number);
  // The exit code; "killed by signal N" is INTERNAL; DEADLINE_EXCEEDED when
  // still running after `timeout`.
  absl::StatusOr<int> WaitForExit(absl::Duration timeout);
  pid_t pid() const { return pid_; }

 private:
  ChildProcess(pid_t pid, int stdout_fd) : pid_(pid), stdout_fd_(stdout_fd) {}
  pid_t pid_;
  int stdout_fd_;
  std::string buffered_;
  bool exited_ = false;
};

// What a command printed (stdout and stderr, in order) and its exit code.
struct CommandResult {
  int exit_code = 0;
  std::string output;
};

// Runs `command` with /bin/sh -c, stderr folded into stdout, and waits for
// it to exit; DEADLINE_EXCEEDED (and the command killed) if it is still
// running after `timeout`. For checking what a binary refuses and says.
absl::StatusOr<CommandResult> RunShellCommand(const std::string& command,
                                              absl::Duration timeout);

}  // namespace certplane::server::testing

#endif  // CERTPLANE_LIBS_SERVER_TESTING_TEST_CLIENT_H_
