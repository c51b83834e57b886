// The inventory's schema, as versioned migrations for libs/db's Migrate().
//
//   CERTPLANE_RETURN_IF_ERROR(db::Migrate(*database, InventoryMigrations()));
//
// Tables (the same on PostgreSQL and SQLite, up to column types):
//   counters                  (name, value); the row 'revision' numbers the
//                             change feed. Every writing transaction bumps it
//                             once, last, so writers take revisions in commit
//                             order (the row lock serializes them on
//                             PostgreSQL; SQLite has one writer).
//   certificates              one row per managed certificate: metadata, the
//                             soft-delete flag, etag, request_id (unique when
//                             non-empty), and copies of the current version's
//                             indexed facts (common_name, issuer, not_after,
//                             key, status, has_key, ...) so that filters,
//                             orderings and stats read one table.
//   certificate_sans          the current version's SAN values, with each
//                             value reversed (by character) in value_rev so a
//                             suffix match ("*.example.com") is an indexable
//                             prefix match on value_rev.
//   certificate_tags          (certificate_id, key, value).
//   certificate_environments  (certificate_id, environment).
//   certificate_versions      every version: DER, status, the facts needed to
//                             rebuild CertificateFacts, chain, key name,
//                             origin, revocation; sha256_hex is UNIQUE.
//   ca_certificates           CA certificates kept for completing chains,
//                             keyed by SHA-256, indexed by subject DN.
//   changes                   the change feed, keyed by revision.
//
// A certificate without a version stores not_after_us = INT64_MAX and
// not_before_us = INT64_MIN (so they sort last, resp. first, and every
// index stays on NOT NULL columns) and status ''.
//
// Indexes serve the common List shapes at millions of rows: the default
// order (not_after_us, certificate_id, then key_algorithm and deleted, which
// a walk tests on the index entry); owner and issuer filters in that
// order; common_name / display_name / key_bits / create_time orders and
// lookups; SHA-256 and serial lookups; tag (key, value), environment and SAN
// (value, value_rev) lookups that List turns into semi-joins. On PostgreSQL
// the text columns that are compared, ordered or LIKE-matched use
// COLLATE "C": bytewise order (as on SQLite) and 'prefix%' LIKE patterns
// that use the B-tree.
//
// Binary columns (der) are BYTEA on PostgreSQL and lowercase-hex TEXT on
// SQLite (SOCI 4.0 binds std::string as text). Booleans are INTEGER 0/1 on
// both. Times are int64 microseconds since the Unix epoch (BIGINT).
//
// The returned migrations live for the whole process.
#ifndef CERTPLANE_SERVICES_INVENTORY_MIGRATIONS_H_
#define CERTPLANE_SERVICES_INVENTORY_MIGRATIONS_H_

#include "absl/types/span.h"
#include "libs/db/migrate.h"

namespace certplane::inventory {

absl::Span<const db::Migration> InventoryMigrations();

}  // namespace certplane::inventory

#endif  // CERTPLANE_SERVICES_INVENTORY_MIGRATIONS_H_
