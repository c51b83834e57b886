// Test-only: builds keys and certificate hierarchies (root -> intermediate ->
// leaf) with libs/crypto's own issuing code, so tests never ship fixed keys.
// Not for production use: CA keys are plain in-memory PrivateKeys.
#ifndef CERTPLANE_LIBS_CRYPTO_TESTING_TEST_PKI_H_
#define CERTPLANE_LIBS_CRYPTO_TESTING_TEST_PKI_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "libs/crypto/certificate.h"
#include "libs/crypto/key.h"

namespace certplane::crypto::testing {

struct TestCertOptions {
  std::string common_name = "test";
  std::vector<SubjectAltName> sans;  // Leaves: defaults to DNS:<common_name>.
  KeyType key_type = KeyType::kEcdsaP256;
  absl::Time not_before = absl::Now() - absl::Hours(1);
  absl::Time not_after = absl::Now() + absl::Hours(24 * 90);
};

// A certificate with its private key.
struct TestIdentity {
  Certificate cert;
  PrivateKey key;
};

// Self-signed CA (basicConstraints CA:TRUE, keyCertSign|cRLSign).
absl::StatusOr<TestIdentity> MakeRootCa(const TestCertOptions& options);
// CA signed by `issuer`.
absl::StatusOr<TestIdentity> MakeIntermediateCa(const TestIdentity& issuer,
                                                const TestCertOptions& options);
// TLS server leaf (serverAuth, digitalSignature) signed by `issuer`.
absl::StatusOr<TestIdentity> MakeLeaf(const TestIdentity& issuer,
                                      const TestCertOptions& options);

// A root, an intermediate and a leaf for `leaf_options`.
struct TestChain {
  TestIdentity root;
  TestIdentity intermediate;
  TestIdentity leaf;
};
absl::StatusOr<TestChain> MakeChain(const TestCertOptions& leaf_options);

}  // namespace certplane::crypto::testing

#endif  // CERTPLANE_LIBS_CRYPTO_TESTING_TEST_PKI_H_
