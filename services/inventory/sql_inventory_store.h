// The SOCI implementation of InventoryStore (NewSqlInventoryStore in
// inventory_store.h), over PostgreSQL or SQLite through libs/db. The
// database must already be migrated with InventoryMigrations().
//
// What it promises beyond InventoryStore:
//  - Every mutation writes its rows and its change rows in one
//    Database::Transact. The revisions for a transaction's changes are taken
//    last, with one UPDATE of the counter row, so revisions are gapless and
//    commit in order.
//  - ImportBatch reads the batch's existing SHA-256s and targets with a few
//    IN queries and writes with multi-row INSERTs (chunked well below the
//    backends' parameter limits), so a batch of ~1,000 items costs a
//    handful of statements. An item with text the database cannot store (a
//    NUL byte, invalid UTF-8) fails alone (kFailed). A batch that raced a
//    concurrent import of the same certificate (unique violation) is re-run,
//    so the later one reports kAlreadyPresent.
//  - Malformed input is INVALID_ARGUMENT naming the field, checked before
//    any SQL runs: certificate ids ("c" + 32 lowercase hex digits), SHA-256
//    fingerprints (64 lowercase hex digits), empty DER, unknown source or
//    status names, page sizes outside [1, kMaxInventoryPageSize], limits.
//  - List filters compile through libs/aip with every value bound as a
//    parameter. String fields compare bytewise and case-sensitively on both
//    backends; `field:prefix*` and `san:*.suffix` are index range scans
//    (suffixes through the reversed SAN column), `field:*middle*` a pattern
//    match. `status`, `days_to_expiry`, `not_before` and `not_after` match
//    only certificates that have a current version.
//  - Page tokens are bound to the filter, order_by and show_deleted they
//    were issued for (INVALID_ARGUMENT otherwise).
//  - Stats count certificates without a version in `total`, by_owner,
//    by_environment and by_source only (they have no issuer, key, status or
//    expiry).
//  - No SOCI or standard exception escapes; database failures come back as
//    the codes documented in libs/db/database.h.
//
// Thread safety: thread-safe; the Database is borrowed and must outlive the
// store.
#ifndef CERTPLANE_SERVICES_INVENTORY_SQL_INVENTORY_STORE_H_
#define CERTPLANE_SERVICES_INVENTORY_SQL_INVENTORY_STORE_H_

#include <cstdint>

#include "services/inventory/inventory_store.h"

namespace certplane::inventory {

// Largest page size of ListCertificates and ListVersions.
inline constexpr int kMaxInventoryPageSize = 1000;
// ListCertificates counts matches exactly up to this many; beyond it,
// total_size is kInventoryTotalSizeCap + 1.
inline constexpr int64_t kInventoryTotalSizeCap = 1000;
// Largest `limit` ChangesAfter accepts.
inline constexpr int kMaxInventoryChangesLimit = 10000;

}  // namespace certplane::inventory

#endif  // CERTPLANE_SERVICES_INVENTORY_SQL_INVENTORY_STORE_H_
