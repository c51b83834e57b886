// The issuance service's plain HTTP listener for relying parties: each
// internal CA's CRL at /crl/<issuer id>.crl (application/pkix-crl, DER) and
// its issuing CA certificate at /ca/<issuer id>.crt (application/pkix-cert,
// DER), the URLs put into every certificate's CRL distribution point and
// AIA. Plain HTTP on purpose: CRLs and CA certificates are signed public
// data, and RFC 5280 clients fetch them over http.
//
// Only GET and HEAD; anything else is 405, unknown paths 404, a CA whose CRL
// cannot be made right now 503. Connections are served by
// libs/server/http_listener.h (limits and timeouts there); at most
// `max_connections` at once.
// Thread-safe; Stop() is idempotent.
#ifndef CERTPLANE_SERVICES_ISSUANCE_CRL_HTTP_SERVER_H_
#define CERTPLANE_SERVICES_ISSUANCE_CRL_HTTP_SERVER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/issuance/order_workflow.h"

namespace certplane::issuance {

struct CrlHttpOptions {
  std::string listen_address = "127.0.0.1:0";  // host:port; port 0: any.
  int max_connections = 16;
};

class CrlHttpServer {
 public:
  // Serves the CAs in `issuers` (borrowed; must outlive the server).
  static absl::StatusOr<std::unique_ptr<CrlHttpServer>> Start(
      const IssuerMap& issuers, Clock clock, CrlHttpOptions options);
  ~CrlHttpServer();

  int port() const;
  void Stop();

 private:
  struct Impl;
  explicit CrlHttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace certplane::issuance

#endif  // CERTPLANE_SERVICES_ISSUANCE_CRL_HTTP_SERVER_H_
