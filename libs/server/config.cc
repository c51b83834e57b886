#include "libs/server/config.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "libs/server/json_log.h"

ABSL_FLAG(std::string, listen_address, "127.0.0.1:0",
          "gRPC listening address, host:port (port 0: any free port).");
ABSL_FLAG(std::string, metrics_address, "",
          "Prometheus /metrics listening address, host:port; empty disables "
          "the exposer.");
ABSL_FLAG(std::string, tls_cert_file, "",
          "PEM file with the server certificate chain (leaf first).");
ABSL_FLAG(std::string, tls_key_file, "",
          "PEM file with the server's private key.");
ABSL_FLAG(std::string, tls_client_ca_file, "",
          "PEM CA bundle that client certificates must chain to (mTLS).");
ABSL_FLAG(absl::Duration, tls_reload_interval, absl::Minutes(1),
          "How often the TLS files are read again, so that a renewed "
          "certificate is served without a restart (1s to 24h).");
ABSL_FLAG(bool, insecure_plaintext_for_development, false,
          "Serve plaintext gRPC on a loopback address. Development only.");
ABSL_FLAG(absl::Duration, shutdown_grace_period, absl::Seconds(10),
          "How long in-flight RPCs may run after SIGTERM before they are "
          "cancelled.");
ABSL_FLAG(std::string, log_level, "info",
          "Minimum log level: debug, info, warning or error.");

namespace certplane::server {

std::string EnvironmentVariableForFlag(absl::string_view flag_name) {
  return absl::StrCat("CERTPLANE_", absl::AsciiStrToUpper(absl::StrReplaceAll(
                                        flag_name, {{"-", "_"}})));
}

absl::Status ApplyFlagsFromEnvironment() {
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (flag->IsRetired()) continue;
    const std::string variable = EnvironmentVariableForFlag(name);
    const char* value = std::getenv(variable.c_str());
    if (value == nullptr || *value == '\0') continue;
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "environment variable ", variable, "=\"", value,
          "\" is not a valid value for flag --", name, ": ", error));
    }
  }
  return absl::OkStatus();
}

std::vector<char*> ParseCommandLineWithEnvironment(int argc, char* argv[]) {
#ifdef NDEBUG
  // Abseil's mutex deadlock detection (on in Debian's build) keeps a lock
  // graph on every Lock(): a debugging aid that costs every RPC. Tests,
  // which do not come through here, keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  if (absl::Status status = ApplyFlagsFromEnvironment(); !status.ok()) {
    std::fprintf(stderr, "%s: %s\n", argc > 0 ? argv[0] : "certplane",
                 std::string(status.message()).c_str());
    std::exit(2);
  }
  return absl::ParseCommandLine(argc, argv);
}

void SetServerFlagDefaults(absl::string_view listen_address,
                           absl::string_view metrics_address) {
  absl::SetFlag(&FLAGS_listen_address, std::string(listen_address));
  absl::SetFlag(&FLAGS_metrics_address, std::string(metrics_address));
}

absl::StatusOr<ServerOptions> ServerOptionsFromFlags(
    absl::string_view app_name) {
  ServerOptions options;
  options.app_name = std::string(app_name);
  options.listen_address = absl::GetFlag(FLAGS_listen_address);
  options.metrics_address = absl::GetFlag(FLAGS_metrics_address);
  options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  options.tls_key_file = absl::GetFlag(FLAGS_tls_key_file);
  options.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca_file);
  options.tls_reload_interval = absl::GetFlag(FLAGS_tls_reload_interval);
  options.insecure_plaintext_for_development =
      absl::GetFlag(FLAGS_insecure_plaintext_for_development);
  options.shutdown_grace_period = absl::GetFlag(FLAGS_shutdown_grace_period);

  const std::string level_name = absl::GetFlag(FLAGS_log_level);
  log::Level level;
  if (!log::ParseLevel(level_name, &level)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--log_level=\"", level_name,
                     "\" is not one of debug, info, warning, error"));
  }
  if (absl::Status status = ValidateServerOptions(options); !status.ok()) {
    return status;
  }
  log::SetMinimumLevel(level);
  return options;
}

}  // namespace certplane::server
