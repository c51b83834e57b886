// The gateway's storage: API tokens and the audit log (records, the log's
// head and signed checkpoints). One SOCI implementation over PostgreSQL and
// SQLite (sql_gateway_store.cc; schema in migrations.h).
//
// Token secrets are never stored: a token row holds the hex SHA-256 of the
// whole token string. The audit log is append-only through this interface:
// AppendAudit assigns the next index and computes the record's leaf hash and
// the tree root after it in the same transaction that stores it, with the
// log's head row locked, so concurrent appends (in one process or many)
// produce one dense, consistent tree.
//
// Errors: NOT_FOUND for a missing token, UNAVAILABLE when the database is
// down, DATA_LOSS when stored hashes are malformed, INTERNAL otherwise.
// Thread-safe.
#ifndef CERTPLANE_SERVICES_GATEWAY_GATEWAY_STORE_H_
#define CERTPLANE_SERVICES_GATEWAY_GATEWAY_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/audit/audit_log.h"
#include "libs/audit/merkle.h"

namespace certplane::db {
class Database;
}  // namespace certplane::db

namespace certplane::gateway {

struct TokenRecord {
  std::string id;  // 16 lowercase hex digits.
  std::string principal;
  std::string kind;   // "user" or "service_account".
  std::string roles;  // "role:team" entries joined with ",".
  std::string description;
  std::string created_by;
  std::string secret_sha256;  // Hex SHA-256 of the token string.
  absl::Time create_time;
  absl::Time expire_time;
  std::optional<absl::Time> revoke_time;
};

struct TokenListOptions {
  std::string principal;  // Empty: every principal.
  bool show_inactive = false;
  absl::Time now;
  int page_size = 100;
  std::string after_id;  // Page start (exclusive).
};

class GatewayStore {
 public:
  virtual ~GatewayStore() = default;

  // ALREADY_EXISTS on an id collision.
  virtual absl::Status InsertToken(const TokenRecord& token) = 0;
  virtual absl::StatusOr<TokenRecord> GetToken(absl::string_view id) = 0;
  // At most page_size + 1 rows in id order (the extra row tells the caller
  // there is another page).
  virtual absl::StatusOr<std::vector<TokenRecord>> ListTokens(
      const TokenListOptions& options) = 0;
  // Sets revoke_time if not set yet; returns the token as stored.
  virtual absl::StatusOr<TokenRecord> RevokeToken(absl::string_view id,
                                                  absl::Time time) = 0;
  virtual absl::StatusOr<int64_t> CountTokens() = 0;

  // Appends `record` (index and hashes are assigned here) and returns it as
  // stored.
  virtual absl::StatusOr<audit::AuditRecord> AppendAudit(
      audit::AuditRecord record) = 0;
  // Records from `start_index` in index order, at most `limit`, that match
  // the AIP-160 `filter` (INVALID_ARGUMENT naming a bad one).
  virtual absl::StatusOr<std::vector<audit::AuditRecord>> ListAudit(
      uint64_t start_index, int limit, absl::string_view filter) = 0;
  virtual absl::StatusOr<uint64_t> AuditSize() = 0;
  // Runs `read` in one read-only transaction with the hashes of the log's
  // perfect subtrees (level 0: the records' leaf hashes). A subtree that was
  // not stored is hashed from the leaves under it; a missing leaf is
  // DATA_LOSS, a subtree beyond the log's end OUT_OF_RANGE, and a read
  // past 65,536 stored hashes (a proof over many subtrees an older gateway
  // did not store) UNAVAILABLE. The hashes are returned as stored: callers
  // check what they build against RootAt.
  virtual absl::Status ReadSubtrees(
      absl::FunctionRef<absl::Status(audit::SubtreeHashes)> read) = 0;
  // Run once at start. When the number of stored subtrees or one of the
  // log's peaks (the subtrees its head keeps) disagrees with the log,
  // rewrites every subtree from the leaf hashes, 10,000 records a
  // transaction (appends go on meanwhile), removes rows beyond the log's
  // end, and returns how many it wrote; otherwise returns 0 after
  // O(log n) reads. DATA_LOSS when the leaf hashes do not add up to the
  // root the log recorded.
  virtual absl::StatusOr<uint64_t> CompleteAuditNodes() = 0;
  // The root after record size-1 as the log stored it (the empty tree's
  // hash for 0); OUT_OF_RANGE beyond the log.
  virtual absl::StatusOr<std::string> RootAt(uint64_t size) = 0;

  // Idempotent by tree size (a second checkpoint of the same size is
  // ignored).
  virtual absl::Status InsertCheckpoint(const audit::Checkpoint& c) = 0;
  virtual absl::StatusOr<std::vector<audit::Checkpoint>> ListCheckpoints() = 0;
  virtual absl::StatusOr<std::optional<audit::Checkpoint>>
  LatestCheckpoint() = 0;
};

// The store over `db` (not owned), whose migrations (migrations.h) must
// have been applied.
std::unique_ptr<GatewayStore> NewSqlGatewayStore(db::Database& db);

}  // namespace certplane::gateway

#endif  // CERTPLANE_SERVICES_GATEWAY_GATEWAY_STORE_H_
