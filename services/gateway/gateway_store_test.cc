// The gateway store's audit log on SQLite and PostgreSQL: proofs read from
// the stored subtree hashes agree with proofs from every leaf, and a log
// written before subtrees were stored gets them at start.
#include "services/gateway/gateway_store.h"

#include <soci/soci.h>

#include <bit>
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/audit/audit_log.h"
#include "libs/audit/merkle.h"
#include "libs/db/database.h"
#include "libs/db/migrate.h"
#include "libs/testing/db_test_util.h"
#include "libs/testing/status_matchers.h"
#include "services/gateway/migrations.h"

namespace certplane::gateway {
namespace {

using ::certplane::testing::ForEachBackend;
using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;

// Appends `n` records; returns their leaf hashes.
std::vector<std::string> AppendRecords(GatewayStore& store, int n) {
  std::vector<std::string> leaves;
  for (int i = 0; i < n; ++i) {
    audit::AuditRecord record;
    record.time = absl::Now();
    record.principal = absl::StrCat("user:u", i);
    record.method =
        "/certplane.inventory.v1.InventoryService/UpdateCertificate";
    record.phase = "result";
    record.code = "OK";
    leaves.push_back(ValueOrDie(store.AppendAudit(record)).leaf_hash);
  }
  return leaves;
}

// Every inclusion and consistency proof of every tree size up to the log's,
// through ReadSubtrees, against the same proofs from the leaves.
void CheckEveryProof(GatewayStore& store,
                     const std::vector<std::string>& leaves) {
  REQUIRE_THAT(
      store.ReadSubtrees([&](audit::SubtreeHashes subtree) -> absl::Status {
        for (uint64_t size = 1; size <= leaves.size(); ++size) {
          for (uint64_t i = 0; i < size; ++i) {
            INFO("inclusion of " << i << " in " << size);
            CHECK(ValueOrDie(audit::InclusionProof(subtree, i, size)) ==
                  ValueOrDie(audit::InclusionProof(leaves, i, size)));
          }
          INFO("consistency with " << size);
          for (uint64_t first = 1; first <= size; ++first) {
            CHECK(ValueOrDie(audit::ConsistencyProof(subtree, first, size)) ==
                  ValueOrDie(audit::ConsistencyProof(leaves, first, size)));
          }
        }
        return absl::OkStatus();
      }),
      IsOk());
}

absl::Status Exec(db::Database& db, const std::string& statement) {
  return db.Transact([&](soci::session& sql) -> absl::Status {
    sql << statement;
    return absl::OkStatus();
  });
}

TEST_CASE("ProofsReadStoredSubtreesAndAnOlderLogGetsThemAtStart") {
  ForEachBackend([](db::Database& db) {
    REQUIRE_THAT(db::Migrate(db, GatewayMigrations()), IsOk());
    std::unique_ptr<GatewayStore> store = NewSqlGatewayStore(db);
    // Nothing to complete in an empty log.
    CHECK(ValueOrDie(store->CompleteAuditNodes()) == 0);

    const int kRecords = 37;
    std::vector<std::string> leaves = AppendRecords(*store, kRecords);
    CheckEveryProof(*store, leaves);
    // Every subtree was stored as its record was appended.
    CHECK(ValueOrDie(store->CompleteAuditNodes()) == 0);

    // Beyond the log, and a missing subtree, are errors that say so.
    CHECK_THAT(
        store->ReadSubtrees([](audit::SubtreeHashes subtree) {
          return subtree(0, kRecords).status();
        }),
        StatusIs(absl::StatusCode::kOutOfRange,
                 "audit subtree 0/37 (level/index) is beyond the log's 37"));
    // A subtree the table lacks (a record appended by an older gateway
    // during a rolling upgrade) is hashed from the leaves under it.
    REQUIRE_THAT(
        Exec(db, "DELETE FROM audit_nodes WHERE level = 2 AND idx = 1"),
        IsOk());
    REQUIRE_THAT(Exec(db, "DELETE FROM audit_nodes WHERE level = 5"), IsOk());
    CheckEveryProof(*store, leaves);
    // A missing record cannot be made up: with the level 1 and 2 subtrees
    // above it gone too, every proof that covers it needs it.
    REQUIRE_THAT(Exec(db, "DELETE FROM audit_nodes WHERE level <= 3"), IsOk());
    REQUIRE_THAT(Exec(db, "UPDATE audit_entries SET idx = 1000 WHERE idx = 9"),
                 IsOk());
    CHECK_THAT(store->ReadSubtrees([](audit::SubtreeHashes subtree) {
      return audit::InclusionProof(subtree, 0, 16).status();
    }),
               StatusIs(absl::StatusCode::kDataLoss,
                        "audit record 9 is missing from the log"));
    REQUIRE_THAT(Exec(db, "UPDATE audit_entries SET idx = 9 WHERE idx = 1000"),
                 IsOk());

    // A log from before subtrees were stored: they are all added at start.
    REQUIRE_THAT(Exec(db, "DELETE FROM audit_nodes"), IsOk());
    CHECK(ValueOrDie(store->CompleteAuditNodes()) ==
          kRecords - std::popcount(static_cast<unsigned>(kRecords)));
    CheckEveryProof(*store, leaves);
    // The log goes on from there.
    std::vector<std::string> more = AppendRecords(*store, 5);
    leaves.insert(leaves.end(), more.begin(), more.end());
    CheckEveryProof(*store, leaves);

    // Proofs read the stored rows: a changed one is what a proof gets (the
    // service checks proofs against the recorded roots, gateway_test).
    const std::string zeros(64, '0');
    REQUIRE_THAT(Exec(db, absl::StrCat("UPDATE audit_nodes SET hash = '", zeros,
                                       "' WHERE level = 1 AND idx = 0")),
                 IsOk());
    CHECK_THAT(store->ReadSubtrees([](audit::SubtreeHashes subtree) {
      absl::StatusOr<std::string> hash = subtree(1, 0);
      if (!hash.ok()) return hash.status();
      return *hash == std::string(32, '\0')
                 ? absl::OkStatus()
                 : absl::InternalError("not the stored row");
    }),
               IsOk());
    REQUIRE_THAT(Exec(db, "DELETE FROM audit_nodes"), IsOk());
    REQUIRE(ValueOrDie(store->CompleteAuditNodes()) > 0);

    // 42 records: the peaks are 5/0, 3/4 and 1/20. A changed peak is found
    // at start without a count mismatch, and rewritten from the leaves.
    REQUIRE(leaves.size() == 42);
    REQUIRE_THAT(Exec(db, absl::StrCat("UPDATE audit_nodes SET hash = '", zeros,
                                       "' WHERE level = 3 AND idx = 4")),
                 IsOk());
    CHECK(ValueOrDie(store->CompleteAuditNodes()) ==
          leaves.size() - std::popcount(leaves.size()));
    CheckEveryProof(*store, leaves);

    // A row beyond the log's end (put there by hand) does not block the
    // append that completes it, and a start removes the rest.
    REQUIRE_THAT(
        Exec(db, absl::StrCat("INSERT INTO audit_nodes (level, idx, hash) "
                              "VALUES (1, 21, '",
                              zeros, "'), (1, 500, '", zeros, "')")),
        IsOk());
    more = AppendRecords(*store, 2);
    leaves.insert(leaves.end(), more.begin(), more.end());
    CheckEveryProof(*store, leaves);
    CHECK(ValueOrDie(store->CompleteAuditNodes()) > 0);
    long long stray = -1;
    REQUIRE_THAT(db.Transact([&](soci::session& sql) -> absl::Status {
      sql << "SELECT COUNT(*) FROM audit_nodes WHERE idx = 500",
          soci::into(stray);
      return absl::OkStatus();
    }),
                 IsOk());
    CHECK(stray == 0);
    CHECK(ValueOrDie(store->CompleteAuditNodes()) == 0);
    CheckEveryProof(*store, leaves);

    // Leaf hashes that no longer add up to the log's head are not hidden
    // behind rebuilt subtrees.
    REQUIRE_THAT(Exec(db, "DELETE FROM audit_nodes"), IsOk());
    REQUIRE_THAT(
        Exec(db, absl::StrCat("UPDATE audit_entries SET leaf_hash = '",
                              std::string(64, '0'), "' WHERE idx = 3")),
        IsOk());
    CHECK_THAT(store->CompleteAuditNodes().status(),
               StatusIs(absl::StatusCode::kDataLoss,
                        "leaf hashes do not add up to the root it recorded at "
                        "44 records"));
  });
}

}  // namespace
}  // namespace certplane::gateway
