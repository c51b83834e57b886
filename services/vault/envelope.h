// Envelope encryption of one private key: what the vault stores instead of
// the key.
//
// Seal() draws a fresh random data key (DEK), seals the key's PKCS#8 DER
// with AES-256-GCM under it (libs/crypto/aead.h, sealed format v1), and
// wraps the DEK with the KEK source's current version. Both the sealed key
// and the wrapped DEK authenticate the same associated data, which binds the
// record's identity:
//
//   "certplane-vault-key|v1|" + N(key_id) + "|" + N(version) + "|" + N(owner)
//
// where N(s) is the decimal byte length of s, ':' and s (a netstring without
// the trailing comma), so no two (key_id, version, owner) tuples share an
// associated data string. A row whose sealed key or wrapped DEK was
// altered, moved to another row, or whose key id, version or owner changed
// does not open: Open() returns DATA_LOSS, never a wrongly decrypted key.
//
// Envelope holds a reference to the KekSource (which must outlive it) and
// no other state; it is thread-safe.
#ifndef CERTPLANE_SERVICES_VAULT_ENVELOPE_H_
#define CERTPLANE_SERVICES_VAULT_ENVELOPE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/crypto/key.h"
#include "services/vault/kek_source.h"
#include "services/vault/vault_store.h"

namespace certplane::vault {

inline constexpr char kKeyAssociatedDataPrefix[] = "certplane-vault-key|v1|";

// The associated data described above.
std::string KeyAssociatedData(absl::string_view key_id, int64_t version,
                              absl::string_view owner);

// What Seal produces; goes into KeyRecord's fields of the same names.
struct SealedKey {
  std::string sealed_key;
  std::string wrapped_dek;
  int kek_version = 0;
};

class Envelope {
 public:
  explicit Envelope(const KekSource& kek) : kek_(kek) {}

  // Seals `key` for the record (key_id, version, owner) under the KEK
  // source's current version. Errors from the KEK source pass through.
  absl::StatusOr<SealedKey> Seal(const crypto::PrivateKey& key,
                                 absl::string_view key_id, int64_t version,
                                 absl::string_view owner) const;

  // Opens record.sealed_key. FAILED_PRECONDITION when the key is destroyed
  // or its KEK version is not available from the source; DATA_LOSS when
  // anything fails to authenticate, or the opened key does not match
  // record.public_key_der.
  absl::StatusOr<crypto::PrivateKey> Open(const KeyRecord& record) const;

  // The record's DEK re-wrapped under `new_kek_version` (the sealed key is
  // unchanged). Same errors as Open().
  absl::StatusOr<std::string> Rewrap(const KeyRecord& record,
                                     int new_kek_version) const;

 private:
  absl::StatusOr<crypto::SecretBytes> UnwrapDek(const KeyRecord& record,
                                                absl::string_view ad) const;

  const KekSource& kek_;
};

}  // namespace certplane::vault

#endif  // CERTPLANE_SERVICES_VAULT_ENVELOPE_H_
