// Key-encryption keys (KEKs) for the vault's envelope encryption.
//
// Every private key in the vault is sealed under its own random data key
// (DEK); the DEK is wrapped by a KEK, and only the wrapped DEK is stored. A
// KekSource holds the versioned KEKs and performs wrap/unwrap; where the KEK
// comes from is chosen by configuration:
//
//   file:/etc/certplane/vault-kek      a key file (development, tests)
//   env:CERTPLANE_VAULT_KEK            an environment variable
//   pkcs11:module=/usr/lib/softhsm/libsofthsm2.so;token=certplane;pin-env=VAR
//                                      a PKCS#11 token: the KEK never leaves it
//
// Wrapped DEKs bind `associated_data` (the vault passes the key id, key
// version and owner), so a wrapped DEK moved to another row does not unwrap.
//
// Thread safety: implementations are safe to call from several threads.
#ifndef CERTPLANE_SERVICES_VAULT_KEK_SOURCE_H_
#define CERTPLANE_SERVICES_VAULT_KEK_SOURCE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/crypto/secret_bytes.h"

namespace certplane::vault {

class KekSource {
 public:
  virtual ~KekSource() = default;

  // "file:/path", "env:NAME", "pkcs11:token=..." without secrets, for logs
  // and KekStatus.
  virtual std::string Describe() const = 0;

  // The KEK versions this source can use, ascending; never empty. The last
  // one is the current version, used for every new wrap.
  virtual absl::StatusOr<std::vector<int>> Versions() const = 0;

  // Wraps `dek` under KEK `version` (AES-256-GCM, or the token's equivalent),
  // binding `associated_data`. FAILED_PRECONDITION for a version the source
  // does not have.
  virtual absl::StatusOr<std::string> Wrap(
      int version, const crypto::SecretBytes& dek,
      absl::string_view associated_data) const = 0;

  // Inverse of Wrap. DATA_LOSS when `wrapped` or `associated_data` was
  // altered (or another version's KEK is used); FAILED_PRECONDITION for a
  // version the source does not have.
  virtual absl::StatusOr<crypto::SecretBytes> Unwrap(
      int version, absl::string_view wrapped,
      absl::string_view associated_data) const = 0;
};

// An optional ability: sources that can create a new KEK version themselves
// (a key file, a PKCS#11 token). Rotation with other sources is done by the
// operator adding a version to the source and restarting.
class RotatableKekSource {
 public:
  virtual ~RotatableKekSource() = default;
  // Creates the next version and returns its number. Durable before it
  // returns (a crash afterwards never loses the new KEK).
  virtual absl::StatusOr<int> CreateVersion() = 0;
};

// The associated data every source authenticates with a wrapped DEK: the KEK
// version as 4 big-endian bytes, then the caller's `associated_data`. Binding
// the version means a DEK wrapped under v1 never unwraps as v2, even if both
// versions held the same key.
std::string KekAssociatedData(int version, absl::string_view associated_data);

// Builds the source named by `spec` (see the top of this file).
// INVALID_ARGUMENT naming the problem for a malformed spec or unknown kind;
// FAILED_PRECONDITION when the key material is missing or malformed.
absl::StatusOr<std::unique_ptr<KekSource>> CreateKekSource(
    absl::string_view spec);

}  // namespace certplane::vault

#endif  // CERTPLANE_SERVICES_VAULT_KEK_SOURCE_H_
