// Helpers for store tests that must pass on both PostgreSQL and SQLite.
//
//   TEST_CASE("InsertsHost") {
//     certplane::testing::ForEachBackend([](certplane::db::Database& db) {
//       REQUIRE_THAT(db::Migrate(db, kMigrations), IsOk());
//       ...
//     });
//   }
//
// or, with a Catch2 generator (each backend a separate run of the test):
//
//   auto dialect = GENERATE(from_range(certplane::testing::kAllDialects));
//   auto db = certplane::testing::OpenFreshDatabase(dialect);
//
// Every call gives a new, empty database: a fresh SQLite file in this
// process's temporary folder (removed at exit), or, on the shared throwaway
// PostgreSQL server (libs/testing/postgres_fixture.h), a fresh schema
// ("t<n>_<service>", set as DatabaseOptions::schema) in a database shared
// by the test process, because CREATE DATABASE is slow. Use
// FreshDatabaseUrl() when a test needs a whole database (several services,
// or several Database objects on the same data).
// Nothing skips: when PostgreSQL cannot start, the test fails with the
// reason. Thread-safe.
#ifndef CERTPLANE_LIBS_TESTING_DB_TEST_UTIL_H_
#define CERTPLANE_LIBS_TESTING_DB_TEST_UTIL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "libs/db/database.h"

namespace certplane::testing {

inline const std::vector<db::Dialect> kAllDialects = {db::Dialect::kSqlite,
                                                      db::Dialect::kPostgres};

// Default options for test databases: service "test", short timeouts.
db::DatabaseOptions TestDatabaseOptions();

// URL of a new, empty database for `dialect`. FAILs the test on error.
std::string FreshDatabaseUrl(db::Dialect dialect);

// Opens a new, empty database (see above). FAILs the test on error.
std::unique_ptr<db::Database> OpenFreshDatabase(
    db::Dialect dialect, db::DatabaseOptions options = TestDatabaseOptions());

// A second Database over the same database (and schema) as `db`, as another
// replica of a service would open it. Test databases have no passwords, so
// the redacted URL is the URL. FAILs the test on error.
std::unique_ptr<db::Database> OpenSecondConnection(const db::Database& db);

// Runs `body` once per backend (SQLite, then PostgreSQL), each time with a
// new, empty database; Catch2 messages name the backend.
void ForEachBackend(absl::FunctionRef<void(db::Database&)> body,
                    db::DatabaseOptions options = TestDatabaseOptions());

}  // namespace certplane::testing

#endif  // CERTPLANE_LIBS_TESTING_DB_TEST_UTIL_H_
