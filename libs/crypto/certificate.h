// X.509 certificates: parsing into a complete description, hostname matching
// (RFC 6125) and key matching.
//
// Certificate is an immutable, copyable value (copies share the underlying
// object by reference count) and safe to use from several threads at once.
#ifndef CERTPLANE_LIBS_CRYPTO_CERTIFICATE_H_
#define CERTPLANE_LIBS_CRYPTO_CERTIFICATE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/crypto/handles.h"
#include "libs/crypto/key.h"

namespace certplane::crypto {

// One attribute of a distinguished name, in certificate order.
struct NameAttribute {
  std::string type;   // Short name when known ("CN", "O", "OU", "C", "L",
                      // "ST", "emailAddress", ...), else the dotted OID.
  std::string oid;    // Dotted OID, always set.
  std::string value;  // UTF-8.
  bool operator==(const NameAttribute&) const = default;
};

struct DistinguishedName {
  std::vector<NameAttribute> attributes;
  // RFC 2253-style one-line form, most significant last ("CN=a,O=b,C=US").
  std::string ToString() const;
  // First value of `type` (short name), or "".
  std::string Get(absl::string_view type) const;
  bool operator==(const DistinguishedName&) const = default;
};

enum class SanType { kDns, kIp, kEmail, kUri };
absl::string_view SanTypeName(SanType type);  // "DNS", "IP", "email", "URI"

struct SubjectAltName {
  SanType type;
  std::string value;  // IPs in text form ("192.0.2.1", "2001:db8::1").
  bool operator==(const SubjectAltName&) const = default;
};

struct CertificatePolicy {
  std::string oid;
  std::vector<std::string> cps_uris;
};

// Everything certplane shows about a certificate.
struct CertificateInfo {
  int version = 0;         // 1..3 (X.509 version, not the raw field).
  std::string serial_hex;  // Lowercase hex, no leading zeros.
  DistinguishedName subject;
  DistinguishedName issuer;
  absl::Time not_before;
  absl::Time not_after;
  std::vector<SubjectAltName> sans;
  KeyInfo key;
  std::string signature_algorithm;  // "sha256WithRSAEncryption",
                                    // "ecdsa-with-SHA256", "ED25519", ...
  // Basic constraints.
  bool has_basic_constraints = false;
  bool is_ca = false;
  int path_length = -1;  // -1: no limit / absent.
  // Key usage names ("digitalSignature", "keyEncipherment", "keyCertSign",
  // "cRLSign", ...) and extended key usage (short names like "serverAuth",
  // "clientAuth", or dotted OIDs).
  std::vector<std::string> key_usage;
  std::vector<std::string> extended_key_usage;
  std::string subject_key_id_hex;
  std::string authority_key_id_hex;
  std::vector<std::string> ocsp_urls;
  std::vector<std::string> ca_issuer_urls;
  std::vector<std::string> crl_distribution_points;
  std::vector<CertificatePolicy> policies;
  int sct_count = 0;  // Embedded SCTs (RFC 6962).
  std::string sha1_fingerprint_hex;
  std::string sha256_fingerprint_hex;
  std::string spki_sha256_hex;
  bool self_signed = false;  // Subject == issuer and the signature
                             // verifies with its own key.
};

// The PEM ("CERTIFICATE") of DER bytes, and the lowercase hex SHA-256 of
// any bytes (a certificate's DER gives its sha256_fingerprint_hex), without
// parsing them: for certificates already parsed and checked once, since
// parsing costs a key decode.
std::string CertificateDerToPem(absl::string_view der);
std::string Sha256Hex(absl::string_view data);

class Certificate {
 public:
  // Exactly one DER certificate; trailing bytes are INVALID_ARGUMENT.
  static absl::StatusOr<Certificate> FromDer(absl::string_view der);
  // The first "CERTIFICATE" PEM block in `pem`. For many blocks and other
  // formats, see formats.h.
  static absl::StatusOr<Certificate> FromPem(absl::string_view pem);

  Certificate(const Certificate& other);
  Certificate& operator=(const Certificate& other);
  Certificate(Certificate&&) noexcept = default;
  Certificate& operator=(Certificate&&) noexcept = default;
  ~Certificate() = default;

  const std::string& der() const { return der_; }
  std::string ToPem() const;

  // The complete description (parsing is done once, at creation, so this
  // never fails for a Certificate that exists; the StatusOr is kept so
  // callers need not change if parsing ever becomes lazy).
  absl::StatusOr<CertificateInfo> Describe() const;
  // The same description by reference, for libs/crypto internals and callers
  // that only read a field or two.
  const CertificateInfo& info() const { return *info_; }

  PublicKey public_key() const;
  std::string Sha256Fingerprint() const;  // Raw 32 bytes over the DER.

  // RFC 6125 (as profiled by the CA/B Forum): DNS SANs only when any SAN is
  // present, a wildcard only as the whole left-most label, case-insensitive;
  // IP addresses match IP SANs only. CN is used only when the certificate has
  // no subjectAltName extension at all (not even an unreadable one).
  // Details: one trailing dot on the host or the name is ignored; "*" matches
  // exactly one non-empty label and only when at least two labels follow it
  // ("*.example.com", never "*.com", "f*.example.com" or "a.*.example.com");
  // IPv6 hosts may be given with or without brackets; an empty or malformed
  // host matches nothing.
  bool MatchesHostname(absl::string_view host) const;

  // OK when `key` is the private half of this certificate's public key;
  // INVALID_ARGUMENT "private key does not match certificate" otherwise.
  absl::Status CheckKeyMatches(const PrivateKey& key) const;

  // True when `issuer`'s subject equals this certificate's issuer and its key
  // verifies this certificate's signature.
  bool IsIssuedBy(const Certificate& issuer) const;

  // For libs/crypto internals. Adopt refuses (INVALID_ARGUMENT) certificates
  // whose public key is unreadable or uses explicit EC curve parameters, and
  // certificates that cannot be described.
  x509_st* native() const { return x509_.get(); }
  static absl::StatusOr<Certificate> Adopt(X509Handle x509);

  bool operator==(const Certificate& other) const { return der_ == other.der_; }

 private:
  Certificate(X509Handle x509, std::string der,
              std::shared_ptr<const CertificateInfo> info)
      : x509_(std::move(x509)), der_(std::move(der)), info_(std::move(info)) {}
  // Builds the description (x509_describe.cc).
  static absl::StatusOr<CertificateInfo> Parse(x509_st* x509,
                                               absl::string_view der);
  X509Handle x509_;
  std::string der_;
  std::shared_ptr<const CertificateInfo> info_;
};

}  // namespace certplane::crypto

#endif  // CERTPLANE_LIBS_CRYPTO_CERTIFICATE_H_
