// Versioned schema migrations for one service's database.
//
// Each service keeps an ordered list of migrations, each with SQL for both
// dialects, and calls Migrate() at startup:
//
//   constexpr ... kMigrations[] = {
//       {1, "create hosts", "CREATE TABLE hosts(...);", "CREATE TABLE ..."},
//       {2, "index hosts by team", "...", "..."},
//   };
//   RETURN_IF_ERROR(Migrate(*db, kMigrations));
//
// What Migrate() promises:
//  - Pending migrations are applied in version order, each in its own
//    transaction together with its row in schema_migrations(version, name,
//    applied_at, checksum), which lives in the service's schema (PostgreSQL)
//    or file (SQLite). A migration either applies completely or not at all.
//  - Running it again is a no-op.
//  - Several replicas may call it at once: on PostgreSQL every migration
//    transaction first takes pg_advisory_xact_lock(<hash of the schema>),
//    on SQLite it is a BEGIN IMMEDIATE transaction; either way exactly one
//    replica applies each migration and the others see it recorded.
//  - INVALID_ARGUMENT if versions are not positive and strictly increasing,
//    or a name is empty.
//  - FAILED_PRECONDITION, naming the version, if an applied migration's SQL
//    changed since (checksum mismatch), if the database records a version
//    newer than this binary knows (an older binary must not touch a newer
//    schema), or if a migration is missing below the applied ones.
//
// SQL: each migration's SQL may hold several ';'-separated statements. It
// runs through the backend's native multi-statement execution (libpq PQexec,
// sqlite3_exec) inside the migration's transaction, so it must not contain
// BEGIN/COMMIT or statements PostgreSQL refuses inside a transaction (CREATE
// INDEX CONCURRENTLY, VACUUM). The checksum is FNV-1a 64 over the SQL of the
// dialect in use, so fixing one dialect's SQL does not disturb the other.
//
// Thread safety: Migrate() may run concurrently from any number of threads
// and processes.
#ifndef CERTPLANE_LIBS_DB_MIGRATE_H_
#define CERTPLANE_LIBS_DB_MIGRATE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "libs/db/database.h"

namespace certplane::db {

struct Migration {
  int version;
  std::string name;
  std::string postgres_sql;
  std::string sqlite_sql;
};

absl::Status Migrate(Database& db, absl::Span<const Migration> migrations);

// The checksum recorded for `sql` (16 lowercase hex digits).
std::string MigrationChecksum(const std::string& sql);

}  // namespace certplane::db

#endif  // CERTPLANE_LIBS_DB_MIGRATE_H_
