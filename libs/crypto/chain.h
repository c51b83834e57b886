// Certificate chains: putting a bag of certificates in order (leaf ->
// intermediates -> root) and verifying a presented chain against trust roots
// at a chosen time, with errors that name the certificate at fault.
//
// All functions are pure: they keep no state and are safe to call from
// several threads at once. TrustStore is an immutable, copyable value.
#ifndef CERTPLANE_LIBS_CRYPTO_CHAIN_H_
#define CERTPLANE_LIBS_CRYPTO_CHAIN_H_

#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "libs/crypto/certificate.h"

namespace certplane::crypto {

// A bag of certificates put in issuing order.
struct OrderedChain {
  // Leaf first, then each certificate's issuer; ends with the root when the
  // bag held it.
  std::vector<Certificate> certificates;
  // The last certificate is self-signed (a root, or a self-signed leaf).
  bool root_included = false;
  // The bag (duplicates dropped, unrelated certificates ignored) was not
  // already in this order.
  bool was_reordered = false;
  // Certificates in the bag that are not on the leaf's path, in bag order.
  std::vector<Certificate> unrelated;
};

// Orders an unordered bag (any order, duplicates allowed). "Issued by" means
// the issuer name matches and the issuer's key verifies the signature. The
// leaf is the one certificate that issues no other certificate in the bag;
// when several do, the only non-CA among them is the leaf and the rest are
// unrelated. Errors (INVALID_ARGUMENT): an empty bag; more than
// kMaxChainCertificates certificates (ordering is quadratic in signature
// checks); two or more leaves that are not CAs (naming them); several
// candidate CA ends and no leaf.
inline constexpr size_t kMaxChainCertificates = 100;
absl::StatusOr<OrderedChain> OrderChain(std::vector<Certificate> bag);

// The certificates a verification trusts. Usually self-signed roots; an
// intermediate may also be a trust anchor (the chain then stops there).
class TrustStore {
 public:
  // Duplicates are dropped. An empty list is INVALID_ARGUMENT.
  static absl::StatusOr<TrustStore> Create(std::vector<Certificate> roots);

  const std::vector<Certificate>& roots() const { return roots_; }
  // True when `certificate` itself (byte for byte) is in the store.
  bool Contains(const Certificate& certificate) const;

 private:
  explicit TrustStore(std::vector<Certificate> roots)
      : roots_(std::move(roots)) {}
  std::vector<Certificate> roots_;
};

// Verifies a presented chain (leaf first, as a TLS server sends it; the root
// may be included or left out) against `roots` at time `at`, and, when
// `hostname` is set, that the leaf matches it (Certificate::MatchesHostname).
// The library's path validation (X509_verify_cert) has the last word;
// certplane's own checks before it name what is wrong:
//   INVALID_ARGUMENT
//     - empty chain;
//     - misordered: "certificate 2 'CN=x' is not the issuer of certificate 1
//       'CN=y' ... the issuer is certificate 3" (reported even when a valid
//       path could be built from the same certificates);
//     - incomplete: "no issuer found for 'CN=leaf' (issuer 'CN=Int CA') ...";
//     - mismatched: a certificate with the right name whose key does not
//       verify the signature;
//     - untrusted root: a self-signed certificate not in `roots`;
//     - hostname mismatch, naming the leaf's names;
//     - anything else X509_verify_cert rejects (for example an intermediate
//       that is not a CA), naming the certificate and the library's reason.
//   FAILED_PRECONDITION
//     - a certificate on the path (root included) expired before `at` or is
//       not yet valid at `at`, with its notAfter / notBefore.
// Extended key usage is not checked here (policy is elsewhere).
absl::Status VerifyChain(absl::Span<const Certificate> presented,
                         const TrustStore& roots, absl::Time at,
                         std::optional<absl::string_view> hostname = {});

}  // namespace certplane::crypto

#endif  // CERTPLANE_LIBS_CRYPTO_CHAIN_H_
