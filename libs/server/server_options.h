// Options for ServerRunner (libs/server/server_runner.h). A plain struct:
// build it directly in tests, or from flags with ServerOptionsFromFlags()
// (libs/server/config.h) in a service's main().
#ifndef CERTPLANE_LIBS_SERVER_SERVER_OPTIONS_H_
#define CERTPLANE_LIBS_SERVER_SERVER_OPTIONS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace certplane::server {

struct ServerOptions {
  // Name of the service binary ("vault"), put on every log line as "app".
  std::string app_name = "certplane";
  // gRPC listening address, host:port. Port 0 picks a free port; read it
  // back with ServerRunner::port().
  std::string listen_address = "127.0.0.1:0";
  // Prometheus exposer address (serves /metrics), host:port; port 0 picks a
  // free port. Empty: no exposer.
  std::string metrics_address;

  // Plaintext gRPC. Development only, and only on loopback addresses.
  bool insecure_plaintext_for_development = false;
  // mTLS (required unless plaintext): PEM files with the server's
  // certificate chain, its private key, and the CA bundle that client
  // certificates must chain to.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  // Whether clients must present a certificate. The gateway's front sets
  // false: people come with tokens over TLS, services with certificates
  // (which are still verified against tls_client_ca_file when presented).
  bool require_client_certificate = true;
  // How often the three TLS files are read again: a renewed certificate
  // (certplane-admin bootstrap renews 30 days before expiry) or CA bundle
  // is served on new connections within two of these, without a restart.
  // From 1 second to 24 hours.
  absl::Duration tls_reload_interval = absl::Minutes(1);

  // On Shutdown(), in-flight RPCs get this long to finish before they are
  // cancelled.
  absl::Duration shutdown_grace_period = absl::Seconds(10);
  // Start() installs SIGTERM/SIGINT handlers (libs/server/shutdown_signal.h)
  // so RunUntilShutdownSignal() can wait for them.
  bool handle_shutdown_signals = true;
};

// INVALID_ARGUMENT, naming the option and what to do, when `options` cannot
// work (missing TLS files without the plaintext flag, plaintext on a
// non-loopback address, a malformed address, a non-positive grace period,
// a TLS reload interval outside 1 s to 24 h).
// Does not touch the files.
absl::Status ValidateServerOptions(const ServerOptions& options);

}  // namespace certplane::server

#endif  // CERTPLANE_LIBS_SERVER_SERVER_OPTIONS_H_
