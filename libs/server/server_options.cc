#include "libs/server/server_options.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "libs/server/internal/address.h"

namespace certplane::server {

absl::Status ValidateServerOptions(const ServerOptions& options) {
  absl::StatusOr<internal::HostPort> listen =
      internal::ParseHostPort(options.listen_address);
  if (!listen.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen_address: ", listen.status().message()));
  }
  if (!options.metrics_address.empty()) {
    absl::StatusOr<internal::HostPort> metrics =
        internal::ParseHostPort(options.metrics_address);
    if (!metrics.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--metrics_address: ", metrics.status().message()));
    }
  }
  if (options.shutdown_grace_period <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--shutdown_grace_period must be positive, got ",
                     absl::FormatDuration(options.shutdown_grace_period)));
  }
  if (options.insecure_plaintext_for_development) {
    if (!internal::IsLoopbackHost(listen->host)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--insecure_plaintext_for_development serves only loopback "
          "addresses, but --listen_address is \"",
          options.listen_address,
          "\"; use 127.0.0.1 or [::1], or configure TLS"));
    }
    return absl::OkStatus();
  }
  if (options.tls_reload_interval < absl::Seconds(1) ||
      options.tls_reload_interval > absl::Hours(24)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls_reload_interval must be from 1s to 24h, got ",
                     absl::FormatDuration(options.tls_reload_interval)));
  }
  struct Required {
    const char* flag;
    const std::string& value;
  };
  for (const Required& required :
       {Required{"--tls_cert_file", options.tls_cert_file},
        Required{"--tls_key_file", options.tls_key_file},
        Required{"--tls_client_ca_file", options.tls_client_ca_file}}) {
    if (required.value.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          required.flag,
          " is required: certplane services serve mutual TLS; set "
          "--tls_cert_file, --tls_key_file and --tls_client_ca_file, or "
          "--insecure_plaintext_for_development for a local loopback-only "
          "development server"));
    }
  }
  return absl::OkStatus();
}

}  // namespace certplane::server
