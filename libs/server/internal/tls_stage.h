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
// pass the checks: the chain and the CA bundle are CERTIFICATE blocks that
// parse, and the key is an unencrypted private key that belongs to the
// chain's first certificate. A failed check keeps the last good files in
// service and is logged. The private key is not written to a file again
// (memfd pages can still be swapped like any memory), and a killed process
// leaves nothing behind. A renewed file reaches new connections within two
// intervals (the stage and gRPC's watcher poll separately).
//
// Thread-safe. Stages are shared process-wide by file paths and error
// names and live until the process ends; each provider (one per server or
// channel) is a gRPC watcher thread of its own, so channels are meant to
// be made at startup, not per call.
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
// The stage and the provider re-read every `interval` (clamped to 1 s to
// 24 h; the first caller's is kept for the stage). For files already
// staged, a read that fails its checks (a renewal caught between its key
// and its certificate) is logged and the last good files are used.
// FAILED_PRECONDITION when /proc/self/fd cannot be read.
absl::StatusOr<
    std::shared_ptr<grpc::experimental::CertificateProviderInterface>>
WatchTlsFiles(const TlsFiles& files, absl::Duration interval);

}  // namespace certplane::server::internal

#endif  // CERTPLANE_LIBS_SERVER_INTERNAL_TLS_STAGE_H_
