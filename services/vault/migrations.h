// The vault's schema, as versioned migrations for libs/db's Migrate().
//
//   RETURN_IF_ERROR(db::Migrate(*database, VaultMigrations()));
//
// Tables (the same on PostgreSQL and SQLite, up to column types):
//   kek_versions  one row per KEK version, with the number of AES-GCM
//                 encryptions done under it (wraps of data keys).
//   keys          one row per key ever created, keyed by key_id; destroyed
//                 keys keep their metadata but hold no sealed key and no
//                 wrapped data key (a CHECK ties state to that).
//   key_labels    (key_id, name, value), for exact-match label filters.
//   audit         append-only (a trigger refuses UPDATE and DELETE).
//
// Binary columns (public_key_der, sealed_key, wrapped_dek) are BYTEA on
// PostgreSQL. On SQLite they are TEXT holding lowercase hex (checked by a
// CHECK constraint): SOCI 4.0 binds std::string as text, which cannot carry
// arbitrary bytes, and SQLite 3.40 has no unhex() to turn bound hex into a
// BLOB. The store converts at the SQL boundary (decode/encode on PostgreSQL).
// Times are int64 microseconds since the Unix epoch (BIGINT on both, so
// SOCI reads them as 64-bit values).
//
// The returned migrations live for the whole process.
#ifndef CERTPLANE_SERVICES_VAULT_MIGRATIONS_H_
#define CERTPLANE_SERVICES_VAULT_MIGRATIONS_H_

#include "absl/types/span.h"
#include "libs/db/migrate.h"

namespace certplane::vault {

absl::Span<const db::Migration> VaultMigrations();

}  // namespace certplane::vault

#endif  // CERTPLANE_SERVICES_VAULT_MIGRATIONS_H_
