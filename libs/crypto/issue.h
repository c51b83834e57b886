// Issuing X.509 v3 certificates and v2 CRLs for certplane's internal CA.
//
// The CA private key may live elsewhere (the vault service only offers "sign
// these bytes"), so signing goes through the Signer interface: IssueCertificate
// builds the TBSCertificate, asks the Signer to sign its DER, assembles the
// certificate and checks the result with the signer's public key before
// returning it.
//
// Certificates get a 128-bit random serial, SKI (SHA-1 of the subject public
// key, RFC 5280 section 4.2.1.2 method 1), AKI (the issuer's SKI), SANs
// (critical when the subject is empty), critical key usage and basic
// constraints, EKU, CRL distribution points, AIA and certificate policies as
// the profile says.
//
// The functions are thread-safe. PrivateKeySigner borrows its key: the key
// must outlive the signer. Signer implementations must be safe to call from
// several threads at once if they are shared.
#ifndef CERTPLANE_LIBS_CRYPTO_ISSUE_H_
#define CERTPLANE_LIBS_CRYPTO_ISSUE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/crypto/certificate.h"
#include "libs/crypto/csr.h"
#include "libs/crypto/key.h"

namespace certplane::crypto {

// Signs the DER TBSCertificate with the CA key.
class Signer {
 public:
  virtual ~Signer() = default;
  virtual PublicKey public_key() const = 0;
  // RSA PKCS#1 v1.5 or ECDSA (DER signature) over `digest` ("sha256",
  // "sha384", "sha512") of `data`; Ed25519 signs `data` itself and ignores
  // `digest`.
  virtual absl::StatusOr<std::string> Sign(absl::string_view data,
                                           absl::string_view digest) const = 0;
};

// A Signer over an in-memory key (tests, bootstrap). Borrows `key`.
class PrivateKeySigner final : public Signer {
 public:
  explicit PrivateKeySigner(const PrivateKey& key) : key_(&key) {}
  PublicKey public_key() const override { return key_->public_key(); }
  absl::StatusOr<std::string> Sign(absl::string_view data,
                                   absl::string_view digest) const override;

 private:
  const PrivateKey* key_;
};

// What goes into a certificate besides its subject and key.
struct CertificateProfile {
  absl::Time not_before;
  absl::Time not_after;  // Must be after not_before.
  bool is_ca = false;
  int path_length = -1;  // CA only; -1: no pathLenConstraint.
  // "digitalSignature", "nonRepudiation" (or "contentCommitment"),
  // "keyEncipherment", "dataEncipherment", "keyAgreement", "keyCertSign",
  // "cRLSign", "encipherOnly", "decipherOnly". Empty: no key usage extension.
  std::vector<std::string> key_usage;
  // "serverAuth", "clientAuth", "codeSigning", "emailProtection",
  // "timeStamping", "OCSPSigning", or a dotted OID. Empty: no EKU extension.
  std::vector<std::string> extended_key_usage;
  std::vector<std::string> crl_distribution_points;  // URIs.
  std::vector<std::string> ocsp_urls;                // AIA id-ad-ocsp.
  std::vector<std::string> ca_issuer_urls;           // AIA id-ad-caIssuers.
  std::vector<CertificatePolicy> policies;  // Dotted OIDs, optional CPS URIs.
};

// Who the certificate is for.
struct IssueRequest {
  DistinguishedName subject;
  PublicKey public_key;
  std::vector<SubjectAltName> sans;
};

// The subject, key and SANs of `csr` after verifying its signature
// (INVALID_ARGUMENT "CSR signature does not verify"). Policy is not checked
// here; see CheckCsrPolicy.
absl::StatusOr<IssueRequest> IssueRequestFromCsr(const CertificateRequest& csr);

// The signature algorithm used for certificates signed by `key`:
// RSA -> sha256WithRSAEncryption, P-256 -> ecdsa-with-SHA256, P-384 ->
// ecdsa-with-SHA384, P-521 -> ecdsa-with-SHA512, Ed25519 -> ED25519.
// INVALID_ARGUMENT for other keys.
absl::StatusOr<std::string> SignatureAlgorithmFor(const PublicKey& key);

// Issues a certificate. `issuer` == nullptr makes it self-signed (the
// signer's key must then be request.public_key); otherwise the issuer must be
// a CA whose key usage allows keyCertSign and whose key is the signer's.
// INVALID_ARGUMENT names a bad profile, request or issuer; a signer failure
// is passed through; a signature that does not verify is INTERNAL.
absl::StatusOr<Certificate> IssueCertificate(const IssueRequest& request,
                                             const CertificateProfile& profile,
                                             const Certificate* issuer,
                                             const Signer& signer);

// One revoked certificate in a CRL.
struct RevokedCertificate {
  std::string serial_hex;  // As CertificateInfo::serial_hex; 1-40 digits.
  absl::Time revocation_time;
  // RFC 5280 reason: "unspecified" (no reasonCode entry, as RFC 5280
  // recommends), "keyCompromise", "cACompromise", "affiliationChanged",
  // "superseded", "cessationOfOperation", "certificateHold",
  // "privilegeWithdrawn", "aACompromise".
  std::string reason = "unspecified";
};

struct CrlRequest {
  int64_t crl_number = 0;  // cRLNumber; must grow with every CRL (>= 0).
  absl::Time this_update;
  absl::Time next_update;  // After this_update.
  std::vector<RevokedCertificate> revoked;
};

// The RFC 5280 reason code of `reason` (above), or -1.
int CrlReasonCode(absl::string_view reason);

// Issues a v2 CRL (DER) for `issuer` with cRLNumber, authorityKeyIdentifier
// (the issuer's SKI) and a reasonCode per entry. The signer's key must be
// the issuer's and the issuer a CA whose key usage (when present) allows
// cRLSign. INVALID_ARGUMENT names a bad request or issuer; a signature that
// does not verify is INTERNAL.
absl::StatusOr<std::string> IssueCrl(const CrlRequest& request,
                                     const Certificate& issuer,
                                     const Signer& signer);

}  // namespace certplane::crypto

#endif  // CERTPLANE_LIBS_CRYPTO_ISSUE_H_
