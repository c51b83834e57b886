#include "libs/testing/db_test_util.h"

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "libs/db/database.h"
#include "libs/testing/postgres_fixture.h"

namespace certplane::testing {
namespace {

std::string* g_sqlite_dir = nullptr;

void RemoveSqliteDir() {
  std::error_code ec;
  std::filesystem::remove_all(*g_sqlite_dir, ec);
}

const std::string& SqliteDir() {
  static const std::string* dir = []() {
    std::string tmpl = "/tmp/certplane-sqlite-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr)
      return static_cast<std::string*>(nullptr);
    g_sqlite_dir = new std::string(tmpl);
    std::atexit(RemoveSqliteDir);
    return g_sqlite_dir;
  }();
  if (dir == nullptr) FAIL("cannot create a temporary folder for SQLite files");
  return *dir;
}

int NextId() {
  static std::atomic<int> next{1};
  return next++;
}

}  // namespace

// Declared in postgres_fixture.h; defined here so that the fixture itself
// needs no Catch2 (benchmarks start the same server).
const PostgresServer& SharedPostgres() {
  absl::StatusOr<const PostgresServer*> server = StartSharedPostgres();
  if (!server.ok()) FAIL(server.status().ToString());
  return **server;
}

db::DatabaseOptions TestDatabaseOptions() {
  db::DatabaseOptions options;
  options.service = "test";
  options.acquire_timeout = absl::Seconds(5);
  options.sqlite_busy_timeout = absl::Seconds(5);
  return options;
}

std::string FreshDatabaseUrl(db::Dialect dialect) {
  int id = NextId();
  if (dialect == db::Dialect::kSqlite) {
    return absl::StrCat("sqlite://", SqliteDir(), "/db", id, ".db");
  }
  absl::StatusOr<std::string> url = CreateDatabase(absl::StrCat("t", id));
  if (!url.ok()) FAIL(url.status().ToString());
  return *url;
}

// CREATE DATABASE takes a second or more on a loaded machine, so fresh
// PostgreSQL databases from OpenFreshDatabase() are fresh schemas in one
// database shared by the test process.
const std::string& SharedPostgresDatabaseUrl() {
  static const absl::StatusOr<std::string>* url =
      new absl::StatusOr<std::string>(CreateDatabase("shared"));
  if (!url->ok()) FAIL(url->status().ToString());
  return **url;
}

std::unique_ptr<db::Database> OpenFreshDatabase(db::Dialect dialect,
                                                db::DatabaseOptions options) {
  std::string url;
  if (dialect == db::Dialect::kPostgres) {
    url = SharedPostgresDatabaseUrl();
    options.schema =
        absl::StrCat("t", NextId(), "_", options.service).substr(0, 63);
  } else {
    url = FreshDatabaseUrl(dialect);
  }
  absl::StatusOr<std::unique_ptr<db::Database>> database =
      db::Database::Open(url, std::move(options));
  if (!database.ok()) {
    FAIL("cannot open " << db::DialectName(dialect)
                        << " test database: " << database.status().ToString());
  }
  return *std::move(database);
}

std::unique_ptr<db::Database> OpenSecondConnection(const db::Database& db) {
  db::DatabaseOptions options = TestDatabaseOptions();
  options.service = db.service();
  options.schema = db.schema();
  absl::StatusOr<std::unique_ptr<db::Database>> database =
      db::Database::Open(db.redacted_url(), std::move(options));
  if (!database.ok()) {
    FAIL("cannot open a second connection: " << database.status().ToString());
  }
  return *std::move(database);
}

void ForEachBackend(absl::FunctionRef<void(db::Database&)> body,
                    db::DatabaseOptions options) {
  for (db::Dialect dialect : kAllDialects) {
    INFO("backend: " << db::DialectName(dialect));
    std::unique_ptr<db::Database> database =
        OpenFreshDatabase(dialect, options);
    body(*database);
  }
}

}  // namespace certplane::testing
