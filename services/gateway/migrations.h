// The gateway's schema migrations (PostgreSQL and SQLite).
//
// Tables: api_tokens (one row per token; the secret only as its SHA-256),
// audit_entries (the audit log, one row per record with its leaf hash and
// the tree root after it), audit_head (one row: the log's size and its
// compact range, locked by every append) and audit_checkpoints (signed tree
// heads). Hashes are lowercase hex TEXT; times are int64 microseconds since
// the Unix epoch.
#ifndef CERTPLANE_SERVICES_GATEWAY_MIGRATIONS_H_
#define CERTPLANE_SERVICES_GATEWAY_MIGRATIONS_H_

#include "absl/types/span.h"
#include "libs/db/migrate.h"

namespace certplane::gateway {

absl::Span<const db::Migration> GatewayMigrations();

}  // namespace certplane::gateway

#endif  // CERTPLANE_SERVICES_GATEWAY_MIGRATIONS_H_
