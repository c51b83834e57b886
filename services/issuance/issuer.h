// The one interface the order workflow uses to get a certificate from a CA,
// so that new kinds of CA (ACME, commercial CA APIs) plug in without
// touching the workflow. Chosen per issuer by the configuration
// (IssuerConfig.type).
//
// Submit is called by the worker once the order's key and CSR are ready
// (KEY_READY). An issuer that signs at once returns the certificate; one
// that needs a person (EXTERNAL_UPLOAD) returns no certificate and the order
// waits in AWAITING_CERTIFICATE for an upload. Errors: INVALID_ARGUMENT,
// FAILED_PRECONDITION and PERMISSION_DENIED mean the CA refuses the request
// for good (the order FAILS with the message); anything else is an outage
// and the worker retries later with backoff.
//
// Implementations must be thread-safe: several workers submit at once.
#ifndef CERTPLANE_SERVICES_ISSUANCE_ISSUER_H_
#define CERTPLANE_SERVICES_ISSUANCE_ISSUER_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "certplane/issuance/v1/issuance.pb.h"
#include "libs/crypto/certificate.h"

namespace certplane::issuance {

// One order's request to a CA.
struct CaSubmission {
  std::string order_id;
  std::string csr_pem;
  v1::Profile profile;
  int validity_days = 0;  // Resolved by the order plan; > 0.
  absl::Time now;
};

struct IssuedCertificate {
  crypto::Certificate leaf;
  // The CA certificates from the issuing one up to the root.
  std::vector<crypto::Certificate> chain;
};

struct CrlSnapshot {
  std::string der;
  int64_t crl_number = 0;
  absl::Time this_update;
  absl::Time next_update;
  int revoked_count = 0;
};

class Issuer {
 public:
  virtual ~Issuer() = default;

  // What ListIssuers/GetIssuer show.
  virtual const v1::Issuer& description() const = 0;

  // nullopt: the certificate comes later by upload.
  virtual absl::StatusOr<std::optional<IssuedCertificate>> Submit(
      const CaSubmission& submission) = 0;

  // Revocation and CRLs, for issuers that publish them. Default:
  // FAILED_PRECONDITION naming the issuer.
  virtual absl::StatusOr<CrlSnapshot> Revoke(
      const std::string& serial_hex, const std::string& reason,
      const std::string& certificate_version, absl::Time now);
  virtual absl::StatusOr<CrlSnapshot> CurrentCrl(absl::Time now);
  // Whether `certificate_der` was issued by this issuer (revocation checks
  // the version belongs to it).
  virtual bool Issued(absl::string_view certificate_der) const;
  // The DER of the CA certificate that signs this issuer's certificates
  // (served at /ca/<id>.crt), or "" when it is not ours to serve.
  virtual std::string IssuingCertificateDer() const { return ""; }
};

// EXTERNAL_UPLOAD: Submit returns no certificate; the order waits for an
// upload (checked by the service against the order's key and SANs).
class UploadIssuer final : public Issuer {
 public:
  explicit UploadIssuer(v1::Issuer description)
      : description_(std::move(description)) {}
  const v1::Issuer& description() const override { return description_; }
  absl::StatusOr<std::optional<IssuedCertificate>> Submit(
      const CaSubmission&) override {
    return std::nullopt;
  }

 private:
  v1::Issuer description_;
};

}  // namespace certplane::issuance

#endif  // CERTPLANE_SERVICES_ISSUANCE_ISSUER_H_
