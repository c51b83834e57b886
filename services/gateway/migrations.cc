#include "services/gateway/migrations.h"

#include <string>
#include <vector>

#include "absl/strings/str_replace.h"

namespace certplane::gateway {
namespace {

constexpr char kV1[] = R"sql(
CREATE TABLE api_tokens (
  token_id TEXT$C PRIMARY KEY,
  principal TEXT$C NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('user', 'service_account')),
  roles TEXT NOT NULL,
  description TEXT NOT NULL,
  created_by TEXT NOT NULL,
  secret_sha256 TEXT NOT NULL CHECK (length(secret_sha256) = 64),
  create_time_us BIGINT NOT NULL,
  expire_time_us BIGINT NOT NULL,
  revoke_time_us BIGINT
);
CREATE INDEX api_tokens_by_principal ON api_tokens (principal, token_id);

CREATE TABLE audit_entries (
  idx BIGINT PRIMARY KEY CHECK (idx >= 0),
  time_us BIGINT NOT NULL,
  principal TEXT$C NOT NULL,
  method TEXT$C NOT NULL,
  resource TEXT$C NOT NULL,
  request_id TEXT$C NOT NULL,
  phase TEXT NOT NULL,
  code TEXT NOT NULL,
  message TEXT NOT NULL,
  leaf_hash TEXT NOT NULL,
  root_after TEXT NOT NULL
);

CREATE TABLE audit_head (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  size BIGINT NOT NULL,
  compact_range TEXT NOT NULL
);
INSERT INTO audit_head (id, size, compact_range) VALUES (1, 0, '');

CREATE TABLE audit_checkpoints (
  tree_size BIGINT PRIMARY KEY,
  root_hash TEXT NOT NULL,
  time_us BIGINT NOT NULL,
  key_id TEXT NOT NULL,
  signature TEXT NOT NULL
);
)sql";

// Version 2: the hashes of the log's perfect subtrees of level 1 and up
// (level 0, the leaf hashes, are in audit_entries), which proofs read
// instead of every leaf. AppendAudit writes the ones each record completes;
// CompleteAuditNodes fills them in for a log written before this version.
constexpr char kV2[] = R"sql(
CREATE TABLE audit_nodes (
  level INTEGER NOT NULL CHECK (level > 0 AND level < 64),
  idx BIGINT NOT NULL CHECK (idx >= 0),
  hash TEXT NOT NULL,
  PRIMARY KEY (level, idx)
);
)sql";

std::string ForDialect(const char* text, bool postgres) {
  return absl::StrReplaceAll(text, {{"$C", postgres ? " COLLATE \"C\"" : ""}});
}

}  // namespace

absl::Span<const db::Migration> GatewayMigrations() {
  static const auto* const kMigrations = new std::vector<db::Migration>{
      {1, "create api tokens and the audit log", ForDialect(kV1, true),
       ForDialect(kV1, false)},
      {2, "store the audit log's subtree hashes", kV2, kV2},
  };
  return *kMigrations;
}

}  // namespace certplane::gateway
