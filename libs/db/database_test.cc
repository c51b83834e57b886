#include "libs/db/database.h"

#include <soci/soci.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "libs/db/query.h"
#include "libs/db/sql_params.h"
#include "libs/testing/db_test_util.h"
#include "libs/testing/postgres_fixture.h"
#include "libs/testing/status_matchers.h"

namespace certplane::db {
namespace {

using ::certplane::testing::ForEachBackend;
using ::certplane::testing::FreshDatabaseUrl;
using ::certplane::testing::IsOk;
using ::certplane::testing::OpenFreshDatabase;
using ::certplane::testing::StatusIs;
using ::certplane::testing::TestDatabaseOptions;
using ::certplane::testing::ValueOrDie;

absl::Status Exec(Database& db, const std::string& sql) {
  return db.Transact([&](soci::session& s) {
    s << sql;
    return absl::OkStatus();
  });
}

int Count(Database& db, const std::string& table) {
  int n = -1;
  REQUIRE_THAT(db.Transact(
                   [&](soci::session& s) {
                     s << "SELECT COUNT(*) FROM " + table, soci::into(n);
                     return absl::OkStatus();
                   },
                   TxMode::kReadOnly),
               IsOk());
  return n;
}

TEST_CASE("OpensBothBackendsAndReportsDialect") {
  auto sqlite = OpenFreshDatabase(Dialect::kSqlite);
  CHECK(sqlite->dialect() == Dialect::kSqlite);
  CHECK(sqlite->ClaimLockClause().empty());
  auto postgres = OpenFreshDatabase(Dialect::kPostgres);
  CHECK(postgres->dialect() == Dialect::kPostgres);
  CHECK(postgres->ClaimLockClause() == " FOR UPDATE SKIP LOCKED");
  CHECK(postgres->service() == "test");
}

TEST_CASE("SqliteSessionsUseWalAndForeignKeys") {
  auto db = OpenFreshDatabase(Dialect::kSqlite);
  std::string mode;
  int fk = 0;
  REQUIRE_THAT(db->Transact([&](soci::session& s) {
    s << "PRAGMA journal_mode", soci::into(mode);
    s << "PRAGMA foreign_keys", soci::into(fk);
    return absl::OkStatus();
  }),
               IsOk());
  CHECK(mode == "wal");
  CHECK(fk == 1);
}

TEST_CASE("InMemorySqliteKeepsDataAcrossTransactions") {
  auto db =
      ValueOrDie(Database::Open("sqlite::memory:", TestDatabaseOptions()));
  REQUIRE_THAT(Exec(*db, "CREATE TABLE t (x INTEGER)"), IsOk());
  REQUIRE_THAT(Exec(*db, "INSERT INTO t VALUES (1)"), IsOk());
  CHECK(Count(*db, "t") == 1);
}

TEST_CASE("PostgresTablesLiveInTheServiceSchema") {
  std::string url = FreshDatabaseUrl(Dialect::kPostgres);
  DatabaseOptions inventory = TestDatabaseOptions();
  inventory.service = "inventory";
  DatabaseOptions vault = TestDatabaseOptions();
  vault.service = "vault";
  auto a = ValueOrDie(Database::Open(url, inventory));
  auto b = ValueOrDie(Database::Open(url, vault));
  REQUIRE_THAT(Exec(*a, "CREATE TABLE items (x INTEGER)"), IsOk());
  REQUIRE_THAT(Exec(*b, "CREATE TABLE items (x INTEGER)"), IsOk());
  REQUIRE_THAT(Exec(*a, "INSERT INTO items VALUES (1)"), IsOk());
  CHECK(Count(*a, "inventory.items") == 1);
  CHECK(Count(*b, "items") == 0);
}

TEST_CASE("OpenRejectsBadUrlsAndServiceNames") {
  CHECK_THAT(
      Database::Open("mysql://root:hunter2@localhost/x", TestDatabaseOptions()),
      StatusIs(absl::StatusCode::kInvalidArgument, "mysql"));
  DatabaseOptions bad = TestDatabaseOptions();
  bad.service = "Bad-Name";
  CHECK_THAT(Database::Open("sqlite::memory:", bad),
             StatusIs(absl::StatusCode::kInvalidArgument, "Bad-Name"));
  bad.service = "";
  CHECK_THAT(Database::Open("sqlite::memory:", bad),
             StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_CASE("UnreachableDatabaseIsUnavailableWithoutThePassword") {
  absl::StatusOr<std::unique_ptr<Database>> pg = Database::Open(
      "postgresql://svc:hunter2@/x?host=/nonexistent-certplane-dir&port=1",
      TestDatabaseOptions());
  CHECK_THAT(pg, StatusIs(absl::StatusCode::kUnavailable, "svc:***@"));
  CHECK_FALSE(absl::StrContains(pg.status().message(), "hunter2"));
  CHECK_THAT(Database::Open("sqlite:///nonexistent-certplane-dir/x.db",
                            TestDatabaseOptions()),
             StatusIs(absl::StatusCode::kUnavailable, "nonexistent"));
}

TEST_CASE("PasswordsWithUrlSpecialCharactersNeverAppearInErrors") {
  for (const std::string password :
       {"hun#ter2", "p/ss?wd", "hunter%zz2", "a@b", "s3cr%41t"}) {
    INFO("password: " << password);
    for (const std::string& url :
         {absl::StrCat("postgresql://svc:", password,
                       "@/x?host=/nonexistent-certplane-dir&port=1"),
          absl::StrCat("postgresql://svc:", password, "@127.0.0.1:1/x"),
          absl::StrCat("postgresql://svc@/x?host=/nonexistent-certplane-dir&"
                       "password=",
                       password)}) {
      absl::StatusOr<std::unique_ptr<Database>> db =
          Database::Open(url, TestDatabaseOptions());
      REQUIRE_FALSE(db.ok());
      CHECK_FALSE(absl::StrContains(db.status().message(), password));
      if (password == "s3cr%41t") {  // percent-decoded as well
        CHECK_FALSE(absl::StrContains(db.status().message(), "s3crAt"));
      }
    }
  }
}

TEST_CASE("RedactedUrlOfAnOpenDatabaseHidesThePassword") {
  // The test server trusts every local connection, so any password works.
  const testing::PostgresServer& server = testing::SharedPostgres();
  std::string base = FreshDatabaseUrl(Dialect::kPostgres);
  std::string prefix = absl::StrCat("postgresql://", server.user, "@");
  REQUIRE(absl::StartsWith(base, prefix));
  for (const std::string password : {"hun#ter2", "q?w%3Fe#r", "p%40ss"}) {
    INFO("password: " << password);
    std::string url = absl::StrCat("postgresql://", server.user, ":", password,
                                   "@", base.substr(prefix.size()));
    auto db = ValueOrDie(Database::Open(url, TestDatabaseOptions()));
    CHECK_FALSE(absl::StrContains(db->redacted_url(), password));
    CHECK(absl::StrContains(db->redacted_url(), ":***@"));
    // An error quoting the password (percent-decoded) is scrubbed too.
    absl::Status status = db->Transact([&](soci::session& s) {
      std::string quoted = password == "p%40ss" ? "p@ss" : password;
      s << "SELECT * FROM \"" + quoted + "\"";
      return absl::OkStatus();
    });
    CHECK(status.code() == absl::StatusCode::kInternal);
    CHECK_FALSE(absl::StrContains(status.message(), password));
    CHECK_FALSE(absl::StrContains(status.message(), "p@ss"));
  }
}

std::string Setting(Database& db, const std::string& name) {
  std::string value;
  REQUIRE_THAT(db.Transact(
                   [&](soci::session& s) {
                     s << "SELECT current_setting('" + name + "')",
                         soci::into(value);
                     return absl::OkStatus();
                   },
                   TxMode::kReadOnly),
               IsOk());
  return value;
}

TEST_CASE("PostgresSessionsPlanForSsdUnlessTheDatabaseSetsRandomPageCost") {
  std::string url = FreshDatabaseUrl(Dialect::kPostgres);
  auto db = ValueOrDie(Database::Open(url, TestDatabaseOptions()));
  CHECK(Setting(*db, "random_page_cost") == "1.1");

  // A value the database sets is kept (new sessions read it at connect).
  std::string name;
  REQUIRE_THAT(db->Transact([&](soci::session& s) {
    s << "SELECT current_database()", soci::into(name);
    return absl::OkStatus();
  }),
               IsOk());
  REQUIRE_THAT(Exec(*db, absl::StrCat("ALTER DATABASE \"", name,
                                      "\" SET random_page_cost = 3")),
               IsOk());
  auto tuned = ValueOrDie(Database::Open(url, TestDatabaseOptions()));
  CHECK(Setting(*tuned, "random_page_cost") == "3");
}

TEST_CASE("LeastPrivilegeRoleOwningItsSchemaCanOpen") {
  const testing::PostgresServer& server = testing::SharedPostgres();
  std::string url = FreshDatabaseUrl(Dialect::kPostgres);
  DatabaseOptions admin_options = TestDatabaseOptions();
  admin_options.service = "admin";
  auto admin = ValueOrDie(Database::Open(url, admin_options));
  // New roles get no CREATE on the database (PUBLIC has only CONNECT, TEMP).
  REQUIRE_THAT(Exec(*admin, "CREATE ROLE certplane_limited LOGIN"), IsOk());
  REQUIRE_THAT(
      Exec(*admin, "CREATE SCHEMA inventory AUTHORIZATION certplane_limited"),
      IsOk());
  std::string prefix = absl::StrCat("postgresql://", server.user, "@");
  REQUIRE(absl::StartsWith(url, prefix));
  std::string limited_url = absl::StrCat("postgresql://certplane_limited@",
                                         url.substr(prefix.size()));

  DatabaseOptions inventory = TestDatabaseOptions();
  inventory.service = "inventory";
  auto db = ValueOrDie(Database::Open(limited_url, inventory));
  REQUIRE_THAT(Exec(*db, "CREATE TABLE items (x INTEGER)"), IsOk());
  CHECK(Count(*admin, "inventory.items") == 0);

  DatabaseOptions billing = TestDatabaseOptions();
  billing.service = "billing";
  CHECK_THAT(Database::Open(limited_url, billing),
             StatusIs(absl::StatusCode::kFailedPrecondition,
                      "schema \"billing\" does not exist"));
}

TEST_CASE("TransactCommitsOnOkAndRollsBackOnErrorOrException") {
  ForEachBackend([](Database& db) {
    REQUIRE_THAT(Exec(db, "CREATE TABLE t (x INTEGER)"), IsOk());
    REQUIRE_THAT(Exec(db, "INSERT INTO t VALUES (1)"), IsOk());
    CHECK(Count(db, "t") == 1);

    CHECK_THAT(db.Transact([](soci::session& s) {
      s << "INSERT INTO t VALUES (2)";
      return absl::NotFoundError("host h1 not found");
    }),
               StatusIs(absl::StatusCode::kNotFound, "host h1"));
    CHECK(Count(db, "t") == 1);

    CHECK_THAT(db.Transact([](soci::session& s) -> absl::Status {
      s << "INSERT INTO t VALUES (3)";
      throw std::runtime_error("boom in the body");
    }),
               StatusIs(absl::StatusCode::kInternal, "boom in the body"));
    CHECK(Count(db, "t") == 1);

    CHECK_THAT(db.Transact([](soci::session& s) {
      s << "INSERT INTO t VALUES (4)";
      s << "SELECT * FROM no_such_table";
      return absl::OkStatus();
    }),
               StatusIs(absl::StatusCode::kInternal, "no_such_table"));
    CHECK(Count(db, "t") == 1);
  });
}

TEST_CASE("ConstraintViolationsMapToSpecificCodes") {
  ForEachBackend([](Database& db) {
    REQUIRE_THAT(Exec(db, "CREATE TABLE team (id INTEGER PRIMARY KEY)"),
                 IsOk());
    REQUIRE_THAT(Exec(db,
                      "CREATE TABLE host (name TEXT UNIQUE NOT NULL, "
                      "team_id INTEGER REFERENCES team(id))"),
                 IsOk());
    REQUIRE_THAT(Exec(db, "INSERT INTO team VALUES (1)"), IsOk());
    REQUIRE_THAT(Exec(db, "INSERT INTO host VALUES ('a', 1)"), IsOk());
    CHECK_THAT(Exec(db, "INSERT INTO host VALUES ('a', 1)"),
               StatusIs(absl::StatusCode::kAlreadyExists));
    CHECK_THAT(Exec(db, "INSERT INTO host VALUES ('b', 99)"),
               StatusIs(absl::StatusCode::kFailedPrecondition));
    CHECK(Count(db, "host") == 1);
  });
}

TEST_CASE("ReadOnlyTransactionRefusesWritesOnBothBackends") {
  DatabaseOptions options = TestDatabaseOptions();
  options.pool_size = 1;  // the read-write transaction reuses the session
  ForEachBackend(
      [](Database& db) {
        REQUIRE_THAT(Exec(db, "CREATE TABLE t (x INTEGER)"), IsOk());
        absl::Status status = db.Transact(
            [](soci::session& s) {
              s << "INSERT INTO t VALUES (1)";
              return absl::OkStatus();
            },
            TxMode::kReadOnly);
        CHECK(status.code() == absl::StatusCode::kInternal);
        CHECK((absl::StrContains(status.message(), "read-only") ||
               absl::StrContains(status.message(), "readonly")));
        CHECK(Count(db, "t") == 0);
        // Read-only mode ends with the transaction.
        CHECK_THAT(Exec(db, "INSERT INTO t VALUES (2)"), IsOk());
        CHECK(Count(db, "t") == 1);
      },
      options);
}

TEST_CASE("SwallowedStatementFailureFollowsEachBackendsDocumentedSemantics") {
  ForEachBackend([](Database& db) {
    REQUIRE_THAT(Exec(db, "CREATE TABLE t (x INTEGER PRIMARY KEY)"), IsOk());
    bool caught = false;
    absl::Status status = db.Transact([&](soci::session& s) {
      s << "INSERT INTO t VALUES (1)";
      try {
        s << "INSERT INTO t VALUES (1)";
      } catch (const soci::soci_error&) {
        caught = true;  // swallowed: the body still returns OK
      }
      return absl::OkStatus();
    });
    CHECK(caught);
    if (db.dialect() == Dialect::kPostgres) {
      // The duplicate aborted the whole transaction; nothing was saved.
      CHECK_THAT(status, StatusIs(absl::StatusCode::kAborted,
                                  "aborted by an earlier failed statement"));
      CHECK(Count(db, "t") == 0);
    } else {
      // Only the failed statement was undone; the first insert is kept.
      CHECK_THAT(status, IsOk());
      CHECK(Count(db, "t") == 1);
    }
    CHECK_THAT(Exec(db, "INSERT INTO t VALUES (2)"), IsOk());
  });
}

TEST_CASE("PoolExhaustionIsUnavailableAfterTheAcquireTimeout") {
  ForEachBackend(
      [](Database& db) {
        absl::Notification holding, release;
        std::thread holder([&]() {
          CHECK_THAT(db.Transact(
                         [&](soci::session&) {
                           holding.Notify();
                           release.WaitForNotification();
                           return absl::OkStatus();
                         },
                         TxMode::kReadOnly),
                     IsOk());
        });
        holding.WaitForNotification();
        absl::Time start = absl::Now();
        absl::Status status = db.Transact(
            [](soci::session&) { return absl::OkStatus(); }, TxMode::kReadOnly);
        absl::Duration waited = absl::Now() - start;
        release.Notify();
        holder.join();
        CHECK_THAT(status, StatusIs(absl::StatusCode::kUnavailable, "busy"));
        CHECK(waited >= absl::Milliseconds(200));
        CHECK(waited < absl::Seconds(3));
        // The session is usable again once returned.
        CHECK_THAT(db.Transact([](soci::session&) { return absl::OkStatus(); }),
                   IsOk());
      },
      [] {
        DatabaseOptions options = TestDatabaseOptions();
        options.pool_size = 1;
        options.acquire_timeout = absl::Milliseconds(200);
        return options;
      }());
}

TEST_CASE("LockedSqliteDatabaseIsUnavailableAfterBusyTimeoutAndRetries") {
  std::string url = FreshDatabaseUrl(Dialect::kSqlite);
  DatabaseOptions options = TestDatabaseOptions();
  options.sqlite_busy_timeout = absl::Milliseconds(100);
  options.max_retries = 1;
  auto writer = ValueOrDie(Database::Open(url, options));
  auto other = ValueOrDie(Database::Open(url, options));
  REQUIRE_THAT(Exec(*writer, "CREATE TABLE t (x INTEGER)"), IsOk());
  absl::Notification holding, release;
  std::thread holder([&]() {
    CHECK_THAT(writer->Transact([&](soci::session& s) {
      s << "INSERT INTO t VALUES (1)";
      holding.Notify();
      release.WaitForNotification();
      return absl::OkStatus();
    }),
               IsOk());
  });
  holding.WaitForNotification();
  int attempts = 0;
  absl::Status status = other->Transact([&](soci::session& s) {
    ++attempts;
    s << "INSERT INTO t VALUES (2)";
    return absl::OkStatus();
  });
  // Readers are not blocked by the writer in WAL mode.
  CHECK(Count(*other, "t") == 0);
  release.Notify();
  holder.join();
  CHECK_THAT(status, StatusIs(absl::StatusCode::kUnavailable, "locked"));
  CHECK(attempts == 0);  // BEGIN IMMEDIATE failed before the body ran
  CHECK_THAT(Exec(*other, "INSERT INTO t VALUES (2)"), IsOk());
  CHECK(Count(*other, "t") == 2);
}

TEST_CASE("SerializationFailureIsRetriedThenAborted") {
  auto db = OpenFreshDatabase(Dialect::kPostgres);
  const std::string fail =
      "DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; "
      "END $$";
  int attempts = 0;
  CHECK_THAT(db->Transact([&](soci::session& s) {
    if (++attempts <= 2) s << fail;
    return absl::OkStatus();
  }),
             IsOk());
  CHECK(attempts == 3);

  attempts = 0;
  CHECK_THAT(db->Transact([&](soci::session& s) {
    ++attempts;
    s << fail;
    return absl::OkStatus();
  }),
             StatusIs(absl::StatusCode::kAborted, "conflict"));
  CHECK(attempts == TestDatabaseOptions().max_retries + 1);
}

TEST_CASE("DroppedPostgresConnectionIsReopenedAndRetried") {
  DatabaseOptions options = TestDatabaseOptions();
  options.pool_size = 1;
  auto db = OpenFreshDatabase(Dialect::kPostgres, options);
  int attempts = 0;
  CHECK_THAT(db->Transact([&](soci::session& s) {
    if (++attempts == 1) s << "SELECT pg_terminate_backend(pg_backend_pid())";
    return absl::OkStatus();
  }),
             IsOk());
  CHECK(attempts == 2);

  options.max_retries = 0;
  auto no_retry = OpenFreshDatabase(Dialect::kPostgres, options);
  CHECK_THAT(no_retry->Transact([&](soci::session& s) {
    s << "SELECT pg_terminate_backend(pg_backend_pid())";
    return absl::OkStatus();
  }),
             StatusIs(absl::StatusCode::kUnavailable));
  CHECK_THAT(
      no_retry->Transact([](soci::session&) { return absl::OkStatus(); }),
      IsOk());
}

TEST_CASE("ConcurrentWorkQueueClaimsNeverShareARow") {
  ForEachBackend([](Database& db) {
    REQUIRE_THAT(Exec(db,
                      "CREATE TABLE jobs (id INTEGER PRIMARY KEY, "
                      "owner INTEGER NOT NULL DEFAULT 0)"),
                 IsOk());
    constexpr int kJobs = 60;
    REQUIRE_THAT(db.Transact([&](soci::session& s) {
      for (int i = 1; i <= kJobs; ++i)
        s << "INSERT INTO jobs(id) VALUES (:i)", soci::use(i);
      return absl::OkStatus();
    }),
                 IsOk());
    const std::string claim =
        "SELECT id FROM jobs WHERE owner = 0 ORDER BY id LIMIT 1" +
        std::string(db.ClaimLockClause());
    std::vector<std::vector<int>> claimed(2);
    std::atomic<int> errors{0};
    std::vector<std::thread> workers;
    for (int w = 0; w < 2; ++w) {
      workers.emplace_back([&, w]() {
        for (;;) {
          int id = 0;
          soci::indicator ind = soci::i_null;
          absl::Status status = db.Transact([&](soci::session& s) {
            ind = soci::i_null;
            s << claim, soci::into(id, ind);
            if (!s.got_data()) return absl::OkStatus();
            int owner = w + 1;
            s << "UPDATE jobs SET owner = :o WHERE id = :id", soci::use(owner),
                soci::use(id);
            return absl::OkStatus();
          });
          if (!status.ok()) {
            ++errors;
            return;
          }
          if (ind == soci::i_null) return;
          claimed[w].push_back(id);
        }
      });
    }
    for (auto& t : workers) t.join();
    CHECK(errors == 0);
    std::set<int> all;
    for (const auto& ids : claimed)
      for (int id : ids) CHECK(all.insert(id).second);
    CHECK(all.size() == kJobs);
  });
}

TEST_CASE("SkipLockedClaimTakesTheNextRowWithoutWaiting") {
  auto db = OpenFreshDatabase(Dialect::kPostgres);
  REQUIRE_THAT(Exec(*db, "CREATE TABLE jobs (id INTEGER PRIMARY KEY)"), IsOk());
  REQUIRE_THAT(Exec(*db, "INSERT INTO jobs VALUES (1), (2)"), IsOk());
  const std::string claim = "SELECT id FROM jobs ORDER BY id LIMIT 1" +
                            std::string(db->ClaimLockClause());
  absl::Notification locked, release;
  int first = 0;
  std::thread holder([&]() {
    CHECK_THAT(db->Transact([&](soci::session& s) {
      s << claim, soci::into(first);
      locked.Notify();
      release.WaitForNotification();
      return absl::OkStatus();
    }),
               IsOk());
  });
  locked.WaitForNotification();
  int second = 0;
  CHECK_THAT(db->Transact([&](soci::session& s) {
    s << "SET LOCAL lock_timeout = '2s'";
    s << claim, soci::into(second);
    return absl::OkStatus();
  }),
             IsOk());
  release.Notify();
  holder.join();
  CHECK(first == 1);
  CHECK(second == 2);
}

TEST_CASE("ReusedStatementsRunAgainWithNewValuesAfterErrorsAndEarlyStops") {
  for (Dialect dialect : testing::kAllDialects) {
    INFO("backend: " << DialectName(dialect));
    auto db = OpenFreshDatabase(dialect);
    REQUIRE_THAT(db->Transact([&](soci::session& s) {
      s << "CREATE TABLE hosts (name TEXT PRIMARY KEY, team TEXT NOT NULL)";
      return absl::OkStatus();
    }),
                 IsOk());
    const std::string insert = "INSERT INTO hosts(name, team) VALUES (";
    auto add = [&](const std::string& name, const std::string& team) {
      return db->Transact([&](soci::session& s) {
        SqlParams p;
        std::string sql =
            absl::StrCat(insert, p.Add(name), ", ", p.Add(team), ")");
        const long long changed = ExecuteWithParams(s, sql, p);  // May throw.
        CHECK(changed == 1);
        return absl::OkStatus();
      });
    };
    for (int i = 0; i < 6; ++i) {
      REQUIRE_THAT(add(absl::StrCat("h", i), i % 2 == 0 ? "web" : "db"),
                   IsOk());
    }
    // A unique violation, then the same statement again.
    CHECK_THAT(add("h0", "web"), StatusIs(absl::StatusCode::kAlreadyExists));
    REQUIRE_THAT(add("h6", "web"), IsOk());

    struct Row {
      std::string name;
      void Exchange(soci::statement& st) { st.exchange(soci::into(name)); }
    };
    // The same SELECT text with other values, and one stopped after a row.
    auto names = [&](const std::string& team, int stop_after,
                     const std::string& also = "") {
      std::vector<std::string> out;
      REQUIRE_THAT(db->Transact(
                       [&](soci::session& s) {
                         SqlParams p;
                         Row row;
                         return RunQuery(
                             s,
                             "SELECT name FROM hosts WHERE team = " +
                                 p.Add(team) + also + " ORDER BY name",
                             p, row, [&]() -> absl::Status {
                               out.push_back(row.name);
                               if (static_cast<int>(out.size()) == stop_after) {
                                 return absl::CancelledError("enough");
                               }
                               return absl::OkStatus();
                             });
                       },
                       TxMode::kReadOnly),
                   StatusIs(stop_after > 0 ? absl::StatusCode::kCancelled
                                           : absl::StatusCode::kOk));
      return out;
    };
    for (int round = 0; round < 3; ++round) {
      CHECK(names("web", 0) ==
            std::vector<std::string>{"h0", "h2", "h4", "h6"});
      CHECK(names("db", 1) == std::vector<std::string>{"h1"});
      CHECK(names("db", 0) == std::vector<std::string>{"h1", "h3", "h5"});
      // A write after a stopped read on the same session commits.
      REQUIRE_THAT(add(absl::StrCat("x", round), "ops"), IsOk());
    }
    // More distinct statements than a session keeps.
    for (int i = 0; i < 300; ++i) {
      CHECK(names("web", 0, absl::StrCat(" AND length(name) > ", -i)).size() ==
            4);
    }
    CHECK(Count(*db, "hosts") == 10);
  }
}

}  // namespace
}  // namespace certplane::db
