// Configuration for certplane service binaries: absl flags, each of which can
// also be set through an environment variable.
//
// Every flag --some_flag can come from CERTPLANE_SOME_FLAG (the flag name in
// upper case, '-' as '_'). Precedence: an explicit command-line flag wins
// over the environment, which wins over the flag's default. A value that does
// not parse fails startup with a message naming the variable and the flag.
//
//   int main(int argc, char** argv) {
//     certplane::server::SetServerFlagDefaults("127.0.0.1:7001",
//                                              "127.0.0.1:9101");
//     certplane::server::ParseCommandLineWithEnvironment(argc, argv);
//     absl::StatusOr<ServerOptions> options = ServerOptionsFromFlags("vault");
//     ...
//   }
//
// Functions here read and write process-global flag state: call them from
// main() before starting threads.
#ifndef CERTPLANE_LIBS_SERVER_CONFIG_H_
#define CERTPLANE_LIBS_SERVER_CONFIG_H_

#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/server/server_options.h"

ABSL_DECLARE_FLAG(std::string, listen_address);
ABSL_DECLARE_FLAG(std::string, metrics_address);
ABSL_DECLARE_FLAG(std::string, tls_cert_file);
ABSL_DECLARE_FLAG(std::string, tls_key_file);
ABSL_DECLARE_FLAG(std::string, tls_client_ca_file);
ABSL_DECLARE_FLAG(absl::Duration, tls_reload_interval);
ABSL_DECLARE_FLAG(bool, insecure_plaintext_for_development);
ABSL_DECLARE_FLAG(absl::Duration, shutdown_grace_period);
ABSL_DECLARE_FLAG(std::string, log_level);

namespace certplane::server {

// "CERTPLANE_" + the flag name upper-cased, '-' replaced by '_'.
std::string EnvironmentVariableForFlag(absl::string_view flag_name);

// Sets every registered flag whose environment variable is set (and
// non-empty). INVALID_ARGUMENT naming the variable and flag when a value does
// not parse. Call before absl::ParseCommandLine so the command line wins.
absl::Status ApplyFlagsFromEnvironment();

// ApplyFlagsFromEnvironment() then absl::ParseCommandLine(); on a bad
// environment value prints the error to stderr and exits with status 2 (as
// absl does for a bad command-line value). Returns the positional arguments.
// In release builds (NDEBUG) it also turns off Abseil's mutex deadlock
// detection, a debugging aid that costs every lock.
std::vector<char*> ParseCommandLineWithEnvironment(int argc, char* argv[]);

// Changes the defaults of --listen_address and --metrics_address for one
// service (each service has its own ports). Call before parsing.
void SetServerFlagDefaults(absl::string_view listen_address,
                           absl::string_view metrics_address);

// ServerOptions from the runtime's flags:
//   --listen_address                    gRPC host:port (port 0: any free port)
//   --metrics_address                   Prometheus /metrics host:port; "" off
//   --tls_cert_file, --tls_key_file     server certificate chain and key (PEM)
//   --tls_client_ca_file                CA bundle that client certs must
//                                       chain to (mTLS, always required)
//   --tls_reload_interval               how often the TLS files are re-read
//   --insecure_plaintext_for_development  no TLS; loopback addresses only
//   --shutdown_grace_period             time in-flight RPCs get on SIGTERM
//   --log_level                         debug, info, warning, error
// Validates them (INVALID_ARGUMENT naming the flag) and sets the log level.
absl::StatusOr<ServerOptions> ServerOptionsFromFlags(
    absl::string_view app_name);

}  // namespace certplane::server

#endif  // CERTPLANE_LIBS_SERVER_CONFIG_H_
