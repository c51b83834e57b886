// Storage for the inventory: managed certificates, their versions, the CA
// certificates kept for completing chains, and the change feed.
//
// The store is the only code that knows the schema. It never parses
// certificates: callers hand it the DER together with CertificateFacts (the
// fields it indexes for filters and stats), extracted once by libs/crypto.
// It never sees key material either; a version only names its vault key.
//
// The change feed: every mutation appends its change rows in the same
// transaction, numbered from a counter row that the transaction updates, so
// writers take revisions in commit order. Once a transaction that took
// revision N has committed, every revision below N has committed too (or
// was never taken): a follower that has read up to N never misses a change
// by resuming from N.
//
// Times are stored as int64 microseconds since the Unix epoch.
//
// Thread safety: implementations are safe to call from several threads.
#ifndef CERTPLANE_SERVICES_INVENTORY_INVENTORY_STORE_H_
#define CERTPLANE_SERVICES_INVENTORY_INVENTORY_STORE_H_

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

namespace certplane::inventory {

// Lowercase names as stored; the service maps them to proto enums.
//   source:  "issued", "imported", "discovered"
//   status:  "active", "superseded", "revoked" (EXPIRED is computed from
//            not_after when reading an active version)

// What the store indexes about one X.509 certificate.
struct CertificateFacts {
  std::string sha256_hex;   // Lowercase hex over the DER; unique per version.
  std::string subject_dn;   // RFC 4514-like, as CertificateInfo prints it.
  std::string common_name;  // Subject CN; may be empty.
  std::string issuer_dn;
  std::string issuer_cn;
  std::string serial_hex;
  int64_t not_before_us = 0;
  int64_t not_after_us = 0;
  std::string key_algorithm;  // "RSA", "ECDSA", "Ed25519", ...
  int key_bits = 0;
  std::string key_curve;  // "P-256", ...; empty for RSA.
  std::string signature_algorithm;
  // SAN values as people type them: DNS names, IP addresses, emails, URIs.
  std::vector<std::string> sans;
  std::string subject_key_id_hex;    // May be empty.
  std::string authority_key_id_hex;  // May be empty.
  bool is_ca = false;
  bool self_signed = false;
};

struct VersionRecord {
  std::string certificate_id;
  int64_t version = 0;  // Assigned by the store (1, 2, ...).
  std::string status;   // "active", "superseded", "revoked".
  std::string der;
  CertificateFacts facts;
  // Serialized common.v1.CertificateDetails of `der`, made once when the
  // version is written so that reads need not parse the certificate
  // (opaque to the store). Empty: readers parse `der`.
  std::string details;
  // SHA-256 hex of the chain's CA certificates, issuer first; each is in
  // the CA table.
  std::vector<std::string> chain_sha256;
  bool chain_complete = false;
  std::string key_name;  // Vault "keys/{id}"; empty when none.
  std::string origin;
  absl::Time create_time;
  std::optional<absl::Time> revoke_time;
  std::string revocation_reason;
};

struct CertificateRecord {
  std::string certificate_id;  // "c" + 32 lowercase hex; made by the store.
  std::string display_name;
  std::string owner;
  std::vector<std::string> environments;  // Sorted, unique.
  std::map<std::string, std::string> tags;
  std::string source;  // "issued", "imported", "discovered".
  // Serialized inventory.v1.DesiredState (opaque to the store); may be empty.
  std::string desired;
  bool auto_renew = false;
  int renew_before_days = 0;
  bool reuse_key = false;
  int64_t current_version = 0;  // 0: no version yet.
  int64_t version_count = 0;
  absl::Time create_time;
  absl::Time update_time;
  std::optional<absl::Time> delete_time;
  std::string etag;        // Changes on every update; made by the store.
  std::string request_id;  // Idempotency key of CreateCertificate.
  // Filled by reads when current_version > 0.
  std::optional<VersionRecord> current;
};

struct CaCertificateRecord {
  std::string sha256_hex;
  std::string der;
  CertificateFacts facts;
  absl::Time create_time;
};

// Change kinds as stored: "certificate_created", "certificate_updated",
// "certificate_deleted", "version_added", "version_revoked",
// "ca_certificate_added".
struct ChangeRecord {
  int64_t revision = 0;  // Assigned by the store.
  std::string kind;
  std::string certificate_id;  // For ca_certificate_added: the CA's SHA-256.
  int64_t version = 0;         // For version changes.
  absl::Time time;
  std::string actor;
  std::vector<std::string> changed_fields;
  // The certificate's current version after the change, when it has one.
  std::optional<int64_t> not_after_us;
  std::string sha256_hex;
};

// One leaf of an import batch.
struct ImportItem {
  std::string der;
  CertificateFacts facts;
  std::string details;                    // As VersionRecord::details.
  std::vector<std::string> chain_sha256;  // Each in `ca_certificates` or
                                          // already stored.
  bool chain_complete = false;
  std::string key_name;  // Empty when the input had no matching key.
  std::string origin;
  // Metadata for a new managed certificate.
  std::string display_name;
  std::string owner;
  std::vector<std::string> environments;
  std::map<std::string, std::string> tags;
  std::string source = "imported";
  // Add as a new version of this certificate instead of creating one.
  std::string target_certificate_id;
};

enum class ImportItemOutcome { kImported, kAlreadyPresent, kFailed };

struct ImportItemResult {
  ImportItemOutcome outcome = ImportItemOutcome::kFailed;
  std::string certificate_id;
  int64_t version = 0;
  // kAlreadyPresent only: the stored version had no key and the item
  // brought one, which is now recorded.
  bool key_added = false;
  // The stored version's key (kAlreadyPresent: the one it already had).
  std::string key_name;
  // kFailed: why (e.g. "target certificate c... not found").
  std::string error;
};

struct ImportBatchResult {
  std::vector<ImportItemResult> items;      // One per ImportItem, in order.
  std::vector<bool> ca_certificates_added;  // One per CA certificate.
};

struct ListQuery {
  std::string filter;    // AIP-160; see inventory.proto for the fields.
  std::string order_by;  // AIP-132; default "not_after".
  int page_size = 50;    // 1..1000.
  std::string page_token;
  bool show_deleted = false;
  absl::Time now;  // For days_to_expiry and EXPIRED.
};

struct CertificatePage {
  std::vector<CertificateRecord> certificates;  // With `current`.
  std::string next_page_token;                  // Empty at the end.
  int64_t total_size = 0;
};

struct VersionPage {
  std::vector<VersionRecord> versions;  // Newest first.
  std::string next_page_token;
};

// Metadata changes; only fields named in `fields` are applied. Field names:
// "display_name", "owner", "environments", "tags", "desired", "auto_renew",
// "renew_before_days", "reuse_key".
struct MetadataUpdate {
  std::vector<std::string> fields;
  CertificateRecord values;
  std::string expected_etag;  // Empty: no check.
};

struct StatsCount {
  std::string key;
  int64_t count = 0;
};

struct StatsRecord {
  int64_t total = 0;
  std::vector<StatsCount> by_status;  // "ACTIVE", "EXPIRED", ...
  std::vector<StatsCount> by_issuer;  // Top 50 by count, then "(other)".
  std::vector<StatsCount> by_key;     // "RSA 2048", "ECDSA P-256", ...
  std::vector<StatsCount> by_signature_algorithm;
  std::vector<StatsCount> by_owner;
  std::vector<StatsCount> by_environment;
  std::vector<StatsCount> by_source;  // "ISSUED", ...
  // "expired", "<=7d", "<=30d", "<=60d", "<=90d", ">90d", in that order,
  // all six present.
  std::vector<StatsCount> by_expiry;
  int64_t weak_key_count = 0;        // RSA < 2048 bits.
  int64_t weak_signature_count = 0;  // SHA-1 or MD5 signatures.
};

class InventoryStore {
 public:
  virtual ~InventoryStore() = default;

  // Stores the CA certificates (idempotent by SHA-256) and then each item in
  // one transaction, with their change rows. An item whose SHA-256 is
  // already stored as a version is kAlreadyPresent (and records key_name if
  // the stored version had none); an item whose target does not exist (or
  // is deleted) is kFailed without affecting the others. A new certificate
  // gets version 1 as current; a target gets a new current version and its
  // previous current one becomes "superseded". The whole batch fails only
  // when the database does (then nothing is stored).
  virtual absl::StatusOr<ImportBatchResult> ImportBatch(
      const std::vector<CaCertificateRecord>& ca_certificates,
      const std::vector<ImportItem>& items, absl::string_view actor,
      absl::Time now) = 0;

  // Creates a managed certificate without versions. With a non-empty
  // request_id that was used before, returns the certificate created then.
  virtual absl::StatusOr<CertificateRecord> CreateCertificate(
      const CertificateRecord& record, absl::string_view actor,
      absl::Time now) = 0;

  // Adds a version (new current; previous current becomes superseded).
  // NOT_FOUND for an unknown certificate; FAILED_PRECONDITION when it is
  // deleted; ALREADY_EXISTS when the SHA-256 is already a version.
  virtual absl::StatusOr<VersionRecord> AddVersion(
      absl::string_view certificate_id, const VersionRecord& version,
      absl::string_view actor, absl::Time now) = 0;

  // NOT_FOUND when absent. Deleted certificates are returned (delete_time).
  virtual absl::StatusOr<CertificateRecord> GetCertificate(
      absl::string_view certificate_id) = 0;

  // The version with this SHA-256 fingerprint, if stored.
  virtual absl::StatusOr<std::optional<VersionRecord>> FindVersionBySha256(
      absl::string_view sha256_hex) = 0;

  // INVALID_ARGUMENT for a bad filter, order_by, page size or token.
  virtual absl::StatusOr<CertificatePage> ListCertificates(
      const ListQuery& query) = 0;

  virtual absl::StatusOr<VersionPage> ListVersions(
      absl::string_view certificate_id, int page_size,
      absl::string_view page_token) = 0;

  virtual absl::StatusOr<VersionRecord> GetVersion(
      absl::string_view certificate_id, int64_t version) = 0;

  // ABORTED when expected_etag is set and differs; FAILED_PRECONDITION for a
  // deleted certificate; INVALID_ARGUMENT for an unknown field name.
  // Records a certificate_updated change naming the fields that changed (no
  // change and no new etag when nothing differs).
  virtual absl::StatusOr<CertificateRecord> UpdateMetadata(
      absl::string_view certificate_id, const MetadataUpdate& update,
      absl::string_view actor, absl::Time now) = 0;

  // Soft delete. ABORTED on an etag mismatch; FAILED_PRECONDITION when
  // already deleted.
  virtual absl::StatusOr<CertificateRecord> DeleteCertificate(
      absl::string_view certificate_id, absl::string_view expected_etag,
      absl::string_view actor, absl::Time now) = 0;

  // FAILED_PRECONDITION when already revoked.
  virtual absl::StatusOr<VersionRecord> RevokeVersion(
      absl::string_view certificate_id, int64_t version,
      absl::string_view reason, absl::Time revoke_time, absl::string_view actor,
      absl::Time now) = 0;

  // CA certificates whose subject DN is `subject_dn`.
  virtual absl::StatusOr<std::vector<CaCertificateRecord>> FindCaBySubject(
      absl::string_view subject_dn) = 0;
  virtual absl::StatusOr<CaCertificateRecord> GetCaCertificate(
      absl::string_view sha256_hex) = 0;

  // Counts over non-deleted certificates matching `filter` (the List
  // filter), as of `now`.
  virtual absl::StatusOr<StatsRecord> Stats(absl::string_view filter,
                                            absl::Time now) = 0;

  // Changes with revision > after_revision, ascending, at most `limit`.
  virtual absl::StatusOr<std::vector<ChangeRecord>> ChangesAfter(
      int64_t after_revision, int limit) = 0;
  // The highest committed revision (0 when none).
  virtual absl::StatusOr<int64_t> LatestRevision() = 0;
};

// The SOCI implementation over a db::Database (PostgreSQL or SQLite) that
// the caller has already migrated with InventoryMigrations().
std::unique_ptr<InventoryStore> NewSqlInventoryStore(db::Database* database);

}  // namespace certplane::inventory

#endif  // CERTPLANE_SERVICES_INVENTORY_INVENTORY_STORE_H_
