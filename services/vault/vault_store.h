// Storage for the vault: sealed key records, KEK versions with their
// encryption counts, and the audit trail.
//
// Every mutation takes the audit record of the operation and writes both in
// one transaction: if the audit row cannot be written, the effect does not
// happen either (fail-closed audit). Reads that release something (a
// signature, an export) are audited with AppendAudit before the caller
// returns the result.
//
// The store never sees plaintext key material: KeyRecord holds only the key
// sealed under its data key and the data key wrapped by a KEK.
//
// Thread safety: implementations are safe to call from several threads.
#ifndef CERTPLANE_SERVICES_VAULT_VAULT_STORE_H_
#define CERTPLANE_SERVICES_VAULT_VAULT_STORE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace certplane::db {
class Database;
}  // namespace certplane::db

namespace certplane::vault {

enum class KeyState { kActive, kDestroyed };

struct KeyRecord {
  std::string key_id;   // "k" + 32 lowercase hex characters.
  int64_t version = 1;  // Key material version (bound into the AD).
  std::string owner;
  std::map<std::string, std::string> labels;
  std::string algorithm;  // "RSA", "ECDSA", "Ed25519" (KeyAlgorithmName).
  int bits = 0;
  std::string curve;
  std::string public_key_der;  // SubjectPublicKeyInfo.
  std::string spki_sha256;     // Lowercase hex.
  KeyState state = KeyState::kActive;
  std::string origin;  // "generated" or "imported".
  // AES-256-GCM v1 blob of the PKCS#8 DER key under the DEK; empty once
  // destroyed.
  std::string sealed_key;
  // The DEK wrapped by KEK `kek_version`; empty once destroyed.
  std::string wrapped_dek;
  int kek_version = 0;
  std::string request_id;  // Idempotency key; may be empty.
  absl::Time create_time;
  std::optional<absl::Time> destroy_time;
};

struct AuditRecord {
  absl::Time time;
  std::string identity;   // Caller identity (mTLS subject / SAN).
  std::string operation;  // "GenerateKey", "ExportKey", "RotateKek", ...
  std::string key_id;     // May be empty (RotateKek).
  std::string result;     // "OK" or the canonical code name.
  std::string detail;     // Human-readable; never key material.
  std::string request_id;
};

struct KekVersionRecord {
  int version = 0;
  absl::Time create_time;
  int64_t encryption_count = 0;
  int64_t wrapped_key_count = 0;  // Keys whose DEK is wrapped under it.
};

// A conjunction of exact matches; empty fields match everything.
struct KeyFilter {
  std::string owner;
  std::map<std::string, std::string> labels;
  std::string algorithm;
  std::optional<KeyState> state;
  std::string origin;
};

struct KeyPage {
  std::vector<KeyRecord> keys;  // Ordered by key_id.
  std::string next_page_token;  // Empty at the end.
};

class VaultStore {
 public:
  virtual ~VaultStore() = default;

  // Inserts a new key; counts one encryption under record.kek_version.
  // ALREADY_EXISTS when key_id or a non-empty request_id is taken.
  virtual absl::Status InsertKey(const KeyRecord& record,
                                 const AuditRecord& audit) = 0;

  // NOT_FOUND when absent. Destroyed keys are returned (state kDestroyed).
  virtual absl::StatusOr<KeyRecord> GetKey(absl::string_view key_id) = 0;

  // The key created with `request_id`, if any.
  virtual absl::StatusOr<std::optional<KeyRecord>> FindByRequestId(
      absl::string_view request_id) = 0;

  // page_size in [1, 1000]; page_token from a previous page (opaque).
  // INVALID_ARGUMENT for a malformed token.
  virtual absl::StatusOr<KeyPage> ListKeys(const KeyFilter& filter,
                                           int page_size,
                                           absl::string_view page_token) = 0;

  // Crypto-shredding: clears sealed_key and wrapped_dek, sets state and
  // destroy_time. NOT_FOUND when absent; FAILED_PRECONDITION when already
  // destroyed.
  virtual absl::Status DestroyKey(absl::string_view key_id, absl::Time when,
                                  const AuditRecord& audit) = 0;

  // Rewrap: replaces the wrapped DEK only if the row is still wrapped under
  // `expected_kek_version` (compare-and-set; FAILED_PRECONDITION otherwise),
  // and counts one encryption under `new_kek_version`.
  virtual absl::Status ReplaceWrappedDek(absl::string_view key_id,
                                         int expected_kek_version,
                                         int new_kek_version,
                                         absl::string_view wrapped_dek) = 0;

  // Active keys whose DEK is wrapped under a version below `version`,
  // ordered by key_id, at most `limit`.
  virtual absl::StatusOr<std::vector<KeyRecord>> KeysWrappedBelow(
      int version, int limit) = 0;

  // Records a KEK version (idempotent) with its audit record.
  virtual absl::Status AddKekVersion(int version, absl::Time when,
                                     const AuditRecord& audit) = 0;
  // Known versions ascending, with counts. kEncryptionsOnly leaves
  // wrapped_key_count at 0 and skips counting the keys (a scan of them), for
  // the check made before every new key.
  enum class KekCounts { kWithKeyCounts, kEncryptionsOnly };
  virtual absl::StatusOr<std::vector<KekVersionRecord>> KekVersions(
      KekCounts counts) = 0;
  absl::StatusOr<std::vector<KekVersionRecord>> KekVersions() {
    return KekVersions(KekCounts::kWithKeyCounts);
  }

  // Appends an audit record on its own (for reads and for refused calls).
  virtual absl::Status AppendAudit(const AuditRecord& audit) = 0;
  // The newest `limit` audit records, newest first.
  virtual absl::StatusOr<std::vector<AuditRecord>> RecentAudit(int limit) = 0;
};

// The SOCI implementation over a db::Database (PostgreSQL or SQLite) that
// the caller has already migrated with VaultMigrations().
std::unique_ptr<VaultStore> NewSqlVaultStore(db::Database* database);

}  // namespace certplane::vault

#endif  // CERTPLANE_SERVICES_VAULT_VAULT_STORE_H_
