#include "libs/audit/audit_log.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/audit/merkle.h"
#include "libs/crypto/key.h"
#include "libs/testing/status_matchers.h"

namespace certplane::audit {
namespace {

using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;

struct Log {
  std::vector<AuditRecord> records;
  std::vector<Checkpoint> checkpoints;
  std::string public_key_der;
};

// A log of `n` records with a checkpoint signed every `every` records and
// at the end.
Log MakeLog(int n, int every) {
  crypto::PrivateKey key =
      ValueOrDie(crypto::PrivateKey::Generate(crypto::KeyType::kEd25519));
  Log log;
  log.public_key_der = key.public_key().ToDer();
  CompactRange range;
  auto sign = [&] {
    Checkpoint c;
    c.tree_size = range.size();
    c.root = range.Root();
    c.time = absl::FromUnixSeconds(1800000000 + range.size());
    c.signature =
        ValueOrDie(key.Sign(CheckpointText(c.tree_size, c.root, c.time)));
    log.checkpoints.push_back(c);
  };
  for (int i = 0; i < n; ++i) {
    AuditRecord r;
    r.index = i;
    r.time = absl::FromUnixMicros(1800000000000000 + i);
    r.principal = "user:alice";
    r.method = "/certplane.issuance.v1.IssuanceService/ApproveOrder";
    r.resource = absl::StrCat("orders/", i);
    r.request_id = absl::StrCat("req-", i);
    r.phase = i % 2 == 0 ? "attempt" : "result";
    r.code = i % 2 == 0 ? "" : "OK";
    r.leaf_hash = LeafHash(LeafBytes(r));
    range.Append(r.leaf_hash);
    r.root_after = range.Root();
    log.records.push_back(r);
    if ((i + 1) % every == 0) sign();
  }
  if (n % every != 0) sign();
  return log;
}

TEST_CASE("AnUntouchedLogVerifies") {
  Log log = MakeLog(25, 10);
  VerifyReport report =
      ValueOrDie(VerifyLog(log.records, log.checkpoints, log.public_key_der));
  CHECK(report.records == 25);
  CHECK(report.checkpoints == 3);
  CHECK(report.latest_signed_size == 25);
}

TEST_CASE("LeafBytesAreUnambiguous") {
  AuditRecord a;
  a.principal = "ab";
  a.method = "c";
  AuditRecord b;
  b.principal = "a";
  b.method = "bc";
  CHECK(LeafBytes(a) != LeafBytes(b));
}

TEST_CASE("AChangedFieldIsNamedByItsIndex") {
  Log log = MakeLog(25, 10);
  log.records[17].principal = "user:mallory";
  CHECK_THAT(
      VerifyLog(log.records, log.checkpoints, log.public_key_der).status(),
      StatusIs(absl::StatusCode::kDataLoss,
               "audit record 17 does not "
               "match its stored leaf hash"));
}

TEST_CASE("ARewrittenTailIsCaughtByTheNextSignedCheckpoint") {
  Log log = MakeLog(25, 10);
  // Rewrite record 13 and recompute every stored hash after it, as an
  // attacker with write access to the table could; only the signature
  // stands in the way.
  log.records[13].code = "PERMISSION_DENIED";
  CompactRange range;
  for (AuditRecord& r : log.records) {
    r.leaf_hash = LeafHash(LeafBytes(r));
    range.Append(r.leaf_hash);
    r.root_after = range.Root();
  }
  CHECK_THAT(
      VerifyLog(log.records, log.checkpoints, log.public_key_der).status(),
      StatusIs(absl::StatusCode::kDataLoss,
               "audit records 10..19 do not match the checkpoint signed "
               "at tree size 20: the first record after the last good "
               "checkpoint is 10"));
}

TEST_CASE("ForgedOrMissingPiecesAreRefused") {
  Log log = MakeLog(12, 5);
  SECTION("a checkpoint signed by another key") {
    Log other = MakeLog(12, 5);
    CHECK_THAT(
        VerifyLog(log.records, log.checkpoints, other.public_key_der).status(),
        StatusIs(absl::StatusCode::kDataLoss, "not signed by the audit key"));
  }
  SECTION("a removed record") {
    log.records.erase(log.records.begin() + 3);
    CHECK_THAT(
        VerifyLog(log.records, log.checkpoints, log.public_key_der).status(),
        StatusIs(absl::StatusCode::kInvalidArgument));
  }
  SECTION("no checkpoints") {
    CHECK_THAT(VerifyLog(log.records, {}, log.public_key_der).status(),
               StatusIs(absl::StatusCode::kInvalidArgument, "no signed"));
  }
  SECTION("a bad public key") {
    CHECK_THAT(
        VerifyLog(log.records, log.checkpoints, "junk").status(),
        StatusIs(absl::StatusCode::kInvalidArgument, "audit public key"));
  }
}

}  // namespace
}  // namespace certplane::audit
