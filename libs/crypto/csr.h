// Certificate signing requests (PKCS#10, RFC 2986): building and signing
// them, parsing, signature verification, and checking them against an
// issuance policy (CA/Browser Forum Baseline Requirements key rules, SAN
// syntax, wildcard rules).
//
// CertificateRequest is an immutable, copyable value; everything is parsed
// once at creation, so instances are safe to use from several threads at
// once. The functions here hold no state and are thread-safe.
#ifndef CERTPLANE_LIBS_CRYPTO_CSR_H_
#define CERTPLANE_LIBS_CRYPTO_CSR_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/call_once.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/crypto/certificate.h"
#include "libs/crypto/key.h"

namespace certplane::crypto {

struct CsrOptions {
  DistinguishedName subject;  // May be empty when `sans` is not.
  std::vector<SubjectAltName> sans;
};

class CertificateRequest {
 public:
  // Exactly one DER CertificationRequest; trailing bytes are
  // INVALID_ARGUMENT. Parsing does not verify the signature (see
  // VerifySignature).
  static absl::StatusOr<CertificateRequest> FromDer(absl::string_view der);
  // The first "CERTIFICATE REQUEST" (or "NEW CERTIFICATE REQUEST") PEM block.
  static absl::StatusOr<CertificateRequest> FromPem(absl::string_view pem);

  const std::string& der() const { return der_; }
  std::string ToPem() const;

  const DistinguishedName& subject() const { return subject_; }
  // The requested SANs (from the extensionRequest attribute). Name forms
  // other than DNS, IP, email and URI are counted in unsupported_san_count().
  const std::vector<SubjectAltName>& sans() const { return sans_; }
  int unsupported_san_count() const { return unsupported_san_count_; }
  const PublicKey& public_key() const { return public_key_; }
  // "sha256WithRSAEncryption", "ecdsa-with-SHA256", "ED25519", ... or the
  // dotted OID when the library does not know the algorithm.
  const std::string& signature_algorithm() const {
    return signature_algorithm_;
  }

  // OK when the CSR is signed by the private half of public_key();
  // INVALID_ARGUMENT "CSR signature does not verify" otherwise.
  absl::Status VerifySignature() const;

  bool operator==(const CertificateRequest& other) const {
    return der_ == other.der_;
  }

 private:
  CertificateRequest(std::string der, DistinguishedName subject,
                     std::vector<SubjectAltName> sans, int unsupported_sans,
                     PublicKey public_key, std::string signature_algorithm)
      : der_(std::move(der)),
        subject_(std::move(subject)),
        sans_(std::move(sans)),
        unsupported_san_count_(unsupported_sans),
        public_key_(std::move(public_key)),
        signature_algorithm_(std::move(signature_algorithm)),
        verified_(std::make_shared<Verified>()) {}

  absl::Status CheckSignature() const;

  struct Verified {
    absl::once_flag once;
    absl::Status status;
  };

  std::string der_;
  DistinguishedName subject_;
  std::vector<SubjectAltName> sans_;
  int unsupported_san_count_ = 0;
  PublicKey public_key_;
  std::string signature_algorithm_;
  std::shared_ptr<Verified> verified_;  // VerifySignature's answer.
};

// Builds a CSR for `key` and signs it: RSA with SHA-256, P-256 with SHA-256,
// P-384 with SHA-384, P-521 with SHA-512, Ed25519 pure. Each SAN must pass
// ValidateSan; IPs are given in text form ("192.0.2.1", "2001:db8::1").
// INVALID_ARGUMENT names the bad attribute or SAN.
absl::StatusOr<CertificateRequest> CreateCsr(const PrivateKey& key,
                                             const CsrOptions& options);

// What an issuing CA accepts in a CSR.
struct CsrPolicy {
  // Apply the CA/B Forum Baseline Requirements (publicly trusted TLS): no
  // Ed25519 keys, no single-label DNS names, no IP addresses from reserved
  // ranges.
  bool public_trust = true;
  bool allow_wildcards = true;
  bool allow_ip_sans = true;
  bool allow_email_sans = false;
  bool allow_uri_sans = false;
  size_t max_sans = 100;
};

// SAN syntax only (no policy):
//   DNS:   LDH labels of 1..63 characters, total <= 253, no empty labels, no
//          trailing dot, not an IPv4 address; a wildcard only as the whole
//          left-most label followed by at least two labels ("*.example.com").
//   IP:    IPv4 dotted quad or IPv6 text.
//   email: local@domain, domain as for DNS (no wildcard).
//   URI:   scheme ":" rest, no spaces or control characters, no '*'.
// INVALID_ARGUMENT naming the SAN and what is wrong.
absl::Status ValidateSan(const SubjectAltName& san);

// INVALID_ARGUMENT "CN rule: ..." when `subject` has more than one common
// name (the Baseline Requirements allow one).
absl::Status CheckSingleCommonName(const DistinguishedName& subject);

// All of the policy rules, first failure reported: key (RSA >= 2048 bits and
// a multiple of 8, at most 8192, public exponent odd, >= 3 (>= 65537 with
// public_trust) and < 2^256; ECDSA only P-256/P-384/P-521 with named
// curves; Ed25519 only without public_trust), SAN syntax and allowed types,
// wildcards, at least one SAN and at most max_sans, no duplicates, at most one
// CN, equal (if present) to one of the SANs, and the CSR signature.
// INVALID_ARGUMENT naming the rule and the offending value.
absl::Status CheckCsrPolicy(const CertificateRequest& csr,
                            const CsrPolicy& policy);

namespace internal {
// For libs/crypto internals (issue.cc): DER encodings of a Name and of the
// GeneralNames value of a subjectAltName extension. INVALID_ARGUMENT for an
// attribute or SAN that cannot be encoded.
absl::StatusOr<std::string> EncodeDistinguishedName(
    const DistinguishedName& name);
absl::StatusOr<std::string> EncodeSubjectAltNames(
    const std::vector<SubjectAltName>& sans);
}  // namespace internal

}  // namespace certplane::crypto

#endif  // CERTPLANE_LIBS_CRYPTO_CSR_H_
