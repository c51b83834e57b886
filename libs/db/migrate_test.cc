#include "libs/db/migrate.h"

#include <soci/soci.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "libs/db/database.h"
#include "libs/testing/db_test_util.h"
#include "libs/testing/status_matchers.h"

namespace certplane::db {
namespace {

using ::certplane::testing::ForEachBackend;
using ::certplane::testing::FreshDatabaseUrl;
using ::certplane::testing::IsOk;
using ::certplane::testing::kAllDialects;
using ::certplane::testing::StatusIs;
using ::certplane::testing::TestDatabaseOptions;
using ::certplane::testing::ValueOrDie;

// Each migration leaves a row in `log`, so applying one twice shows.
std::vector<Migration> Migrations() {
  return {
      {1, "create log",
       "CREATE TABLE log (v INTEGER NOT NULL); INSERT INTO log VALUES (1);",
       "CREATE TABLE log (v INTEGER NOT NULL); INSERT INTO log VALUES (1);"},
      {2, "create hosts",
       "CREATE TABLE hosts (id BIGSERIAL PRIMARY KEY, name TEXT UNIQUE);\n"
       "CREATE INDEX hosts_by_name ON hosts(name);\n"
       "INSERT INTO log VALUES (2);",
       "CREATE TABLE hosts (id INTEGER PRIMARY KEY, name TEXT UNIQUE);\n"
       "CREATE INDEX hosts_by_name ON hosts(name);\n"
       "INSERT INTO log VALUES (2);"},
      {5, "add team",
       "ALTER TABLE hosts ADD COLUMN team TEXT; INSERT INTO log VALUES (5);",
       "ALTER TABLE hosts ADD COLUMN team TEXT; INSERT INTO log VALUES (5);"},
  };
}

std::vector<int> Column(Database& db, const std::string& query) {
  std::vector<int> out;
  REQUIRE_THAT(db.Transact(
                   [&](soci::session& s) {
                     int v = 0;
                     soci::statement st = (s.prepare << query, soci::into(v));
                     st.execute();
                     while (st.fetch()) out.push_back(v);
                     return absl::OkStatus();
                   },
                   TxMode::kReadOnly),
               IsOk());
  return out;
}

TEST_CASE("MigrateAppliesPendingMigrationsOnceAndRecordsThem") {
  ForEachBackend([](Database& db) {
    std::vector<Migration> migrations = Migrations();
    REQUIRE_THAT(Migrate(db, migrations), IsOk());
    CHECK(Column(db, "SELECT v FROM log ORDER BY v") ==
          std::vector<int>{1, 2, 5});
    CHECK(
        Column(db, "SELECT version FROM schema_migrations ORDER BY version") ==
        std::vector<int>{1, 2, 5});
    std::string name, checksum, applied_at;
    REQUIRE_THAT(db.Transact([&](soci::session& s) {
      s << "SELECT name, checksum, CAST(applied_at AS TEXT) "
           "FROM schema_migrations WHERE version = 2",
          soci::into(name), soci::into(checksum), soci::into(applied_at);
      return absl::OkStatus();
    }),
                 IsOk());
    CHECK(name == "create hosts");
    CHECK(checksum == MigrationChecksum(db.dialect() == Dialect::kPostgres
                                            ? migrations[1].postgres_sql
                                            : migrations[1].sqlite_sql));
    CHECK_FALSE(applied_at.empty());

    // Rerun: nothing applied twice.
    REQUIRE_THAT(Migrate(db, migrations), IsOk());
    CHECK(Column(db, "SELECT v FROM log ORDER BY v") ==
          std::vector<int>{1, 2, 5});

    // A later binary adds a migration: only that one runs.
    migrations.push_back({7, "more", "INSERT INTO log VALUES (7);",
                          "INSERT INTO log VALUES (7);"});
    REQUIRE_THAT(Migrate(db, migrations), IsOk());
    CHECK(Column(db, "SELECT v FROM log ORDER BY v") ==
          std::vector<int>{1, 2, 5, 7});
  });
}

TEST_CASE("MigrateRefusesAChangedAppliedMigration") {
  ForEachBackend([](Database& db) {
    std::vector<Migration> migrations = Migrations();
    REQUIRE_THAT(Migrate(db, migrations), IsOk());
    migrations[1].postgres_sql += " -- edited";
    migrations[1].sqlite_sql += " -- edited";
    CHECK_THAT(Migrate(db, migrations),
               StatusIs(absl::StatusCode::kFailedPrecondition,
                        "migration 2 (\"create hosts\") was changed"));
  });
}

TEST_CASE("MigrateRefusesADatabaseNewerThanTheBinary") {
  ForEachBackend([](Database& db) {
    std::vector<Migration> migrations = Migrations();
    REQUIRE_THAT(Migrate(db, migrations), IsOk());
    migrations.pop_back();
    CHECK_THAT(Migrate(db, migrations),
               StatusIs(absl::StatusCode::kFailedPrecondition,
                        "is at version 5 (\"add team\"), newer than the newest "
                        "migration this binary knows (2)"));
  });
}

TEST_CASE("MigrateRefusesAMigrationInsertedBelowAppliedOnes") {
  ForEachBackend([](Database& db) {
    std::vector<Migration> migrations = Migrations();
    REQUIRE_THAT(Migrate(db, migrations), IsOk());
    migrations.insert(migrations.begin() + 2,
                      {3, "late", "SELECT 1", "SELECT 1"});
    CHECK_THAT(Migrate(db, migrations),
               StatusIs(absl::StatusCode::kFailedPrecondition,
                        "migration 3 (\"late\") is not applied"));
  });
}

TEST_CASE("MigrateRejectsVersionsThatDoNotIncrease") {
  ForEachBackend([](Database& db) {
    std::vector<Migration> migrations = Migrations();
    migrations[2].version = 2;
    CHECK_THAT(Migrate(db, migrations),
               StatusIs(absl::StatusCode::kInvalidArgument,
                        "version 2 (\"add team\") follows version 2"));
    migrations = {{0, "zero", "", ""}};
    CHECK_THAT(Migrate(db, migrations),
               StatusIs(absl::StatusCode::kInvalidArgument));
    migrations = {{1, "", "", ""}};
    CHECK_THAT(Migrate(db, migrations),
               StatusIs(absl::StatusCode::kInvalidArgument, "no name"));
    // Nothing was recorded by the refused calls.
    CHECK_THAT(Migrate(db, {}), IsOk());
    CHECK(Column(db, "SELECT COUNT(*) FROM schema_migrations") ==
          std::vector<int>{0});
  });
}

TEST_CASE("FailingMigrationRollsBackCompletelyAndNamesItself") {
  ForEachBackend([](Database& db) {
    std::vector<Migration> migrations = Migrations();
    migrations.push_back({6, "broken",
                          "CREATE TABLE half (x INTEGER); INSERT INTO log "
                          "VALUES (6); SELECT * FROM missing_table;",
                          "CREATE TABLE half (x INTEGER); INSERT INTO log "
                          "VALUES (6); SELECT * FROM missing_table;"});
    CHECK_THAT(Migrate(db, migrations),
               StatusIs(absl::StatusCode::kInternal,
                        "migration 6 (\"broken\") failed"));
    // 1, 2 and 5 committed before 6 failed; nothing of 6 remains.
    CHECK(Column(db, "SELECT v FROM log ORDER BY v") ==
          std::vector<int>{1, 2, 5});
    CHECK(Column(db, "SELECT MAX(version) FROM schema_migrations") ==
          std::vector<int>{5});
    migrations.pop_back();
    CHECK_THAT(Migrate(db, migrations), IsOk());
    // The table from the failed migration does not exist, so it can be made.
    CHECK_THAT(db.Transact([](soci::session& s) {
      s << "CREATE TABLE half (x INTEGER)";
      return absl::OkStatus();
    }),
               IsOk());
  });
}

TEST_CASE("ConcurrentReplicasApplyEachMigrationExactlyOnce") {
  for (Dialect dialect : kAllDialects) {
    INFO("backend: " << DialectName(dialect));
    std::string url = FreshDatabaseUrl(dialect);
    constexpr int kReplicas = 6;
    std::vector<std::unique_ptr<Database>> replicas;
    for (int i = 0; i < kReplicas; ++i) {
      replicas.push_back(
          ValueOrDie(Database::Open(url, TestDatabaseOptions())));
    }
    std::vector<absl::Status> results(kReplicas);
    std::vector<std::thread> threads;
    std::vector<Migration> migrations = Migrations();
    for (int i = 0; i < kReplicas; ++i) {
      threads.emplace_back(
          [&, i]() { results[i] = Migrate(*replicas[i], migrations); });
    }
    for (auto& t : threads) t.join();
    for (const absl::Status& status : results) CHECK_THAT(status, IsOk());
    CHECK(Column(*replicas[0], "SELECT v FROM log ORDER BY v") ==
          std::vector<int>{1, 2, 5});
  }
}

TEST_CASE("ServicesSharingAPostgresDatabaseMigrateIndependently") {
  std::string url = FreshDatabaseUrl(Dialect::kPostgres);
  DatabaseOptions a_options = TestDatabaseOptions();
  a_options.service = "issuance";
  DatabaseOptions b_options = TestDatabaseOptions();
  b_options.service = "inventory";
  auto a = ValueOrDie(Database::Open(url, a_options));
  auto b = ValueOrDie(Database::Open(url, b_options));
  REQUIRE_THAT(Migrate(*a, Migrations()), IsOk());
  std::vector<Migration> one = {Migrations()[0]};
  REQUIRE_THAT(Migrate(*b, one), IsOk());
  CHECK(Column(*a, "SELECT version FROM issuance.schema_migrations") ==
        std::vector<int>{1, 2, 5});
  CHECK(Column(*b, "SELECT version FROM inventory.schema_migrations") ==
        std::vector<int>{1});
}

}  // namespace
}  // namespace certplane::db
