// A certplane-style service binary serving only the test echo service, built
// from the runtime exactly as real services are. The runtime tests start it
// as a child process (graceful SIGTERM shutdown, flags from the environment).
//
// Prints "port <n>" on stdout once serving and "slow call started" when a
// handler with delay_ms > 0 begins.
#include <cstdio>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "libs/server/config.h"
#include "libs/server/server_runner.h"
#include "libs/server/testing/echo_service.h"

namespace {

absl::Status Run() {
  absl::StatusOr<certplane::server::ServerOptions> options =
      certplane::server::ServerOptionsFromFlags("echo");
  if (!options.ok()) return options.status();
  certplane::server::ServerRunner runner(*options);
  certplane::server::testing::EchoServiceImpl service([] {
    std::printf("slow call started\n");
    std::fflush(stdout);
  });
  absl::Status status = runner.AddService(
      &service, certplane::testing::v1::EchoService::service_full_name());
  if (!status.ok()) return status;
  if (status = runner.Start(); !status.ok()) return status;
  std::printf("port %d\n", runner.port());
  std::fflush(stdout);
  return runner.RunUntilShutdownSignal();
}

}  // namespace

int main(int argc, char** argv) {
  certplane::server::ParseCommandLineWithEnvironment(argc, argv);
  absl::Status status = Run();
  if (!status.ok()) {
    std::fprintf(stderr, "echo: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
