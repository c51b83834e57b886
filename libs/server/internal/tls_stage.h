// A service's TLS files as gRPC's credential reloading reads them, checked
// before gRPC sees them. Internal to libs/server.
//
// gRPC's file watcher (Debian's gRPC 1.51) re-reads a key, a certificate
// chain and a CA bundle every interval and installs whatever it finds: a
// half-written file, a file that is no longer PEM, or a new key read
// before its new certificate is moved into place makes every later
// handshake fail. So the watcher is pointed at a stage instead: two
// in-memory files (memfd) behind fixed /proc/self/fd paths, one holding
// the key and the chain together (so both change in one step) and one the
// CA bundle. A stage re-reads the configured files every interval and
// replaces the in-memory files whole (dup3) only when they changed and
// pass the checks: every block parses, the key belongs to the chain's
// first certificate, and the CA bundle holds a certificate. A failed check
// keeps the last good files in service and is logged. The private key
// never touches the disk again, and a killed process leaves nothing behind.
//
// Thread-safe. Stages are shared process-wide by file paths (a service's
// server and its outgoing channels use one) and live until the process
// ends.
#ifndef CERTPLANE_LIBS_SERVER_INTERNAL_TLS_STAGE_H_
#define CERTPLANE_LIBS_SERVER_INTERNAL_TLS_STAGE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace grpc::experimental {
class CertificateProviderInterface;
}  // namespace grpc::experimental

namespace certplane::server::internal {

struct TlsFiles {
  // PEM files, and the names to call them in errors (flags).
  std::string cert_file;
  std::string key_file;
  std::string ca_file;
  std::string cert_name = "--tls_cert_file";
  std::string key_name = "--tls_key_file";
  std::string ca_name = "--tls_client_ca_file";
};

// A certificate provider for gRPC's TLS credentials over the stage of
// `files`, created (and checked) on first use: NOT_FOUND/PERMISSION_DENIED
// naming an unreadable file, INVALID_ARGUMENT naming a file that does not
// hold what it should or a key that does not belong to the certificate.
// The stage and the provider re-read every `interval` (1 s to 24 h; the
// first caller's interval is kept for the stage).
absl::StatusOr<
    std::shared_ptr<grpc::experimental::CertificateProviderInterface>>
WatchTlsFiles(const TlsFiles& files, absl::Duration interval);

}  // namespace certplane::server::internal

#endif  // CERTPLANE_LIBS_SERVER_INTERNAL_TLS_STAGE_H_
