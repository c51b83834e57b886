#include "services/vault/sql_vault_store.h"

#include <soci/soci.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "libs/db/database.h"
#include "libs/db/migrate.h"
#include "libs/testing/db_test_util.h"
#include "libs/testing/status_matchers.h"
#include "services/vault/migrations.h"
#include "services/vault/vault_store.h"

namespace certplane::vault {
namespace {

using ::certplane::testing::ForEachBackend;
using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;
using Code = ::absl::StatusCode;

const absl::Time kT0 = absl::FromUnixMicros(1700000000123456);

std::string KeyId(int n) {
  return absl::StrCat("k", std::string(16, '0'),
                      absl::Hex(n, absl::kZeroPad16));
}

// Bytes with NUL, high bit and text-like parts, distinct per key.
std::string Bytes(absl::string_view tag, int n) {
  return absl::StrCat(std::string("\x00\xff\x80\x01", 4), tag, n,
                      std::string("\x00", 1));
}

KeyRecord MakeKey(int n) {
  KeyRecord r;
  r.key_id = KeyId(n);
  r.version = 1;
  r.owner = "team-a";
  r.labels = {{"env", "prod"}};
  r.algorithm = "ECDSA";
  r.curve = "P-256";
  r.public_key_der = Bytes("spki", n);
  r.spki_sha256 = absl::StrCat("ab", n);
  r.origin = "generated";
  r.sealed_key = Bytes("sealed", n);
  r.wrapped_dek = Bytes("dek", n);
  r.kek_version = 1;
  r.create_time = kT0 + absl::Seconds(n);
  return r;
}

AuditRecord Audit(absl::string_view op, absl::string_view key_id,
                  absl::string_view detail = "") {
  return {.time = kT0,
          .identity = "spiffe://certplane/test",
          .operation = std::string(op),
          .key_id = std::string(key_id),
          .result = "OK",
          .detail = std::string(detail),
          .request_id = "req"};
}

// A migrated database with KEK version 1 recorded.
std::unique_ptr<VaultStore> NewStore(db::Database& db) {
  REQUIRE_THAT(db::Migrate(db, VaultMigrations()), IsOk());
  std::unique_ptr<VaultStore> store = NewSqlVaultStore(&db);
  REQUIRE_THAT(store->AddKekVersion(1, kT0, Audit("AddKekVersion", "")),
               IsOk());
  return store;
}

absl::Status Exec(db::Database& db, const std::string& sql) {
  return db.Transact([&](soci::session& s) {
    s << sql;
    return absl::OkStatus();
  });
}

int64_t EncryptionCount(VaultStore& store, int version) {
  for (const KekVersionRecord& v : ValueOrDie(store.KekVersions())) {
    if (v.version == version) return v.encryption_count;
  }
  FAIL("no KEK version " << version);
  return -1;
}

std::vector<std::string> Ids(const std::vector<KeyRecord>& keys) {
  std::vector<std::string> ids;
  for (const KeyRecord& k : keys) ids.push_back(k.key_id);
  return ids;
}

// Every key matching `filter`, following page tokens.
std::vector<std::string> ListAll(VaultStore& store, const KeyFilter& filter,
                                 int page_size) {
  std::vector<std::string> ids;
  std::string token;
  for (int pages = 0; pages < 100; ++pages) {
    KeyPage page = ValueOrDie(store.ListKeys(filter, page_size, token));
    CHECK(static_cast<int>(page.keys.size()) <= page_size);
    for (const KeyRecord& k : page.keys) ids.push_back(k.key_id);
    if (page.next_page_token.empty()) return ids;
    token = page.next_page_token;
  }
  FAIL("pagination did not end");
  return ids;
}

TEST_CASE("InsertedKeyReadsBackWithEveryFieldAndBinaryBytesIntact") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    KeyRecord r = MakeKey(7);
    r.labels = {{"env", "prod"}, {"team", "payments"}, {"empty", ""}};
    r.algorithm = "RSA";
    r.bits = 3072;
    r.curve = "";
    r.origin = "imported";
    r.request_id = "req-7";
    std::string all_bytes;
    for (int i = 0; i < 256; ++i) all_bytes.push_back(static_cast<char>(i));
    r.sealed_key = all_bytes;
    REQUIRE_THAT(store->InsertKey(r, Audit("ImportKey", r.key_id)), IsOk());

    KeyRecord got = ValueOrDie(store->GetKey(r.key_id));
    CHECK(got.key_id == r.key_id);
    CHECK(got.version == 1);
    CHECK(got.owner == "team-a");
    CHECK(got.labels == r.labels);
    CHECK(got.algorithm == "RSA");
    CHECK(got.bits == 3072);
    CHECK(got.curve.empty());
    CHECK(got.public_key_der == r.public_key_der);
    CHECK(got.spki_sha256 == r.spki_sha256);
    CHECK(got.state == KeyState::kActive);
    CHECK(got.origin == "imported");
    CHECK(got.sealed_key == all_bytes);
    CHECK(got.wrapped_dek == r.wrapped_dek);
    CHECK(got.kek_version == 1);
    CHECK(got.request_id == "req-7");
    CHECK(got.create_time == r.create_time);
    CHECK_FALSE(got.destroy_time.has_value());

    std::optional<KeyRecord> by_request =
        ValueOrDie(store->FindByRequestId("req-7"));
    REQUIRE(by_request.has_value());
    CHECK(by_request->key_id == r.key_id);
    CHECK(by_request->labels == r.labels);
    CHECK_FALSE(ValueOrDie(store->FindByRequestId("req-8")).has_value());
    CHECK_THAT(store->FindByRequestId(""),
               StatusIs(Code::kInvalidArgument, "request id"));
  });
}

TEST_CASE("UnknownKeyIsNotFoundAndMalformedIdIsInvalidArgument") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    CHECK_THAT(store->GetKey(KeyId(1)), StatusIs(Code::kNotFound, KeyId(1)));
    CHECK_THAT(store->GetKey("k123"),
               StatusIs(Code::kInvalidArgument, "malformed"));
    CHECK_THAT(store->GetKey(absl::StrCat("K", KeyId(1).substr(1))),
               StatusIs(Code::kInvalidArgument, "malformed"));
  });
}

TEST_CASE("DuplicateKeyIdOrRequestIdIsAlreadyExistsAndChangesNothing") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    KeyRecord a = MakeKey(1);
    a.request_id = "req-1";
    REQUIRE_THAT(store->InsertKey(a, Audit("GenerateKey", a.key_id)), IsOk());

    KeyRecord same_id = MakeKey(1);
    same_id.owner = "team-b";
    CHECK_THAT(store->InsertKey(same_id, Audit("GenerateKey", a.key_id)),
               StatusIs(Code::kAlreadyExists, KeyId(1)));
    KeyRecord same_request = MakeKey(2);
    same_request.request_id = "req-1";
    CHECK_THAT(store->InsertKey(same_request, Audit("GenerateKey", "")),
               StatusIs(Code::kAlreadyExists, "req-1"));
    CHECK_THAT(store->GetKey(KeyId(2)), StatusIs(Code::kNotFound));
    CHECK(ValueOrDie(store->GetKey(KeyId(1))).owner == "team-a");
    CHECK(EncryptionCount(*store, 1) == 1);
    CHECK(ValueOrDie(store->RecentAudit(100)).size() == 2);

    // Empty request ids never collide.
    REQUIRE_THAT(store->InsertKey(MakeKey(3), Audit("GenerateKey", "")),
                 IsOk());
    REQUIRE_THAT(store->InsertKey(MakeKey(4), Audit("GenerateKey", "")),
                 IsOk());
  });
}

TEST_CASE("InsertKeyRejectsIncompleteRecordsBeforeWriting") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    struct Case {
      const char* name;
      void (*mutate)(KeyRecord&);
      const char* message;
    };
    const Case cases[] = {
        {"bad id", [](KeyRecord& r) { r.key_id = "key-1"; }, "malformed"},
        {"no owner", [](KeyRecord& r) { r.owner.clear(); }, "owner"},
        {"no algorithm", [](KeyRecord& r) { r.algorithm.clear(); },
         "algorithm"},
        {"no public key", [](KeyRecord& r) { r.public_key_der.clear(); },
         "public key"},
        {"no sealed key", [](KeyRecord& r) { r.sealed_key.clear(); },
         "sealed key"},
        {"no wrapped dek", [](KeyRecord& r) { r.wrapped_dek.clear(); },
         "wrapped data key"},
        {"destroyed", [](KeyRecord& r) { r.state = KeyState::kDestroyed; },
         "active"},
        {"version 0", [](KeyRecord& r) { r.version = 0; }, "version"},
        {"kek 0", [](KeyRecord& r) { r.kek_version = 0; }, "KEK version"},
        {"no origin", [](KeyRecord& r) { r.origin.clear(); }, "origin"},
        {"empty label", [](KeyRecord& r) { r.labels[""] = "x"; }, "label"},
    };
    for (const Case& c : cases) {
      INFO(c.name);
      KeyRecord r = MakeKey(1);
      c.mutate(r);
      CHECK_THAT(store->InsertKey(r, Audit("GenerateKey", r.key_id)),
                 StatusIs(Code::kInvalidArgument, c.message));
    }
    AuditRecord no_op = Audit("", KeyId(1));
    CHECK_THAT(store->InsertKey(MakeKey(1), no_op),
               StatusIs(Code::kInvalidArgument, "operation"));
    CHECK_THAT(store->GetKey(KeyId(1)), StatusIs(Code::kNotFound));
    CHECK(EncryptionCount(*store, 1) == 0);
  });
}

TEST_CASE("InsertKeyCountsOneEncryptionAndNeedsARecordedKekVersion") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    REQUIRE_THAT(store->InsertKey(MakeKey(1), Audit("GenerateKey", "")),
                 IsOk());
    REQUIRE_THAT(store->InsertKey(MakeKey(2), Audit("GenerateKey", "")),
                 IsOk());
    CHECK(EncryptionCount(*store, 1) == 2);

    KeyRecord r = MakeKey(3);
    r.kek_version = 2;
    CHECK_THAT(store->InsertKey(r, Audit("GenerateKey", r.key_id)),
               StatusIs(Code::kFailedPrecondition, "KEK version 2"));
    CHECK_THAT(store->GetKey(KeyId(3)), StatusIs(Code::kNotFound));

    REQUIRE_THAT(store->AddKekVersion(2, kT0, Audit("RotateKek", "")), IsOk());
    REQUIRE_THAT(store->InsertKey(r, Audit("GenerateKey", r.key_id)), IsOk());
    CHECK(EncryptionCount(*store, 1) == 2);
    CHECK(EncryptionCount(*store, 2) == 1);
  });
}

TEST_CASE("AddKekVersionIsIdempotentAndKekVersionsCountWrappedKeys") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    REQUIRE_THAT(
        store->AddKekVersion(3, kT0 + absl::Seconds(3), Audit("RotateKek", "")),
        IsOk());
    REQUIRE_THAT(
        store->AddKekVersion(2, kT0 + absl::Seconds(2), Audit("RotateKek", "")),
        IsOk());
    REQUIRE_THAT(store->AddKekVersion(2, kT0 + absl::Seconds(99),
                                      Audit("RotateKek", "")),
                 IsOk());
    CHECK_THAT(store->AddKekVersion(0, kT0, Audit("RotateKek", "")),
               StatusIs(Code::kInvalidArgument, "KEK version 0"));
    for (int n = 1; n <= 3; ++n) {
      REQUIRE_THAT(store->InsertKey(MakeKey(n), Audit("GenerateKey", "")),
                   IsOk());
    }
    REQUIRE_THAT(store->ReplaceWrappedDek(KeyId(1), 1, 3, "rewrapped"), IsOk());
    REQUIRE_THAT(store->DestroyKey(KeyId(2), kT0, Audit("DeleteKey", "")),
                 IsOk());

    std::vector<KekVersionRecord> v = ValueOrDie(store->KekVersions());
    REQUIRE(v.size() == 3);
    CHECK(v[0].version == 1);
    CHECK(v[0].create_time == kT0);
    CHECK(v[0].encryption_count == 3);
    CHECK(v[0].wrapped_key_count == 1);  // key 3; key 2 is destroyed
    CHECK(v[1].version == 2);
    CHECK(v[1].create_time == kT0 + absl::Seconds(2));
    CHECK(v[1].encryption_count == 0);
    CHECK(v[1].wrapped_key_count == 0);
    CHECK(v[2].version == 3);
    CHECK(v[2].encryption_count == 1);
    CHECK(v[2].wrapped_key_count == 1);
  });
}

TEST_CASE("DestroyKeyShredsMaterialKeepsMetadataAndRefusesTwice") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    KeyRecord r = MakeKey(1);
    r.request_id = "req-1";
    REQUIRE_THAT(store->InsertKey(r, Audit("GenerateKey", r.key_id)), IsOk());
    const absl::Time when = kT0 + absl::Hours(1) + absl::Microseconds(7);
    REQUIRE_THAT(store->DestroyKey(r.key_id, when, Audit("DeleteKey", "")),
                 IsOk());

    KeyRecord got = ValueOrDie(store->GetKey(r.key_id));
    CHECK(got.state == KeyState::kDestroyed);
    CHECK(got.sealed_key.empty());
    CHECK(got.wrapped_dek.empty());
    REQUIRE(got.destroy_time.has_value());
    CHECK(*got.destroy_time == when);
    CHECK(got.owner == r.owner);
    CHECK(got.labels == r.labels);
    CHECK(got.public_key_der == r.public_key_der);
    CHECK(got.create_time == r.create_time);
    CHECK(ValueOrDie(store->FindByRequestId("req-1")).has_value());

    CHECK_THAT(store->DestroyKey(r.key_id, when, Audit("DeleteKey", "")),
               StatusIs(Code::kFailedPrecondition, "already destroyed"));
    CHECK_THAT(store->DestroyKey(KeyId(2), when, Audit("DeleteKey", "")),
               StatusIs(Code::kNotFound, KeyId(2)));
    CHECK_THAT(store->DestroyKey("nope", when, Audit("DeleteKey", "")),
               StatusIs(Code::kInvalidArgument, "malformed"));
    // The id stays taken: a destroyed key is never silently recreated.
    CHECK_THAT(store->InsertKey(r, Audit("GenerateKey", r.key_id)),
               StatusIs(Code::kAlreadyExists));
  });
}

TEST_CASE("ListKeysPagesThroughEveryFilterInKeyIdOrder") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    // 20 keys: owner alternates, algorithm cycles through 3, env label on
    // even keys, every fifth imported, keys 3 and 4 destroyed.
    const char* algorithms[] = {"RSA", "ECDSA", "Ed25519"};
    std::map<std::string, KeyRecord> all;
    for (int n = 20; n >= 1; --n) {  // inserted out of order
      KeyRecord r = MakeKey(n);
      r.owner = n % 2 == 0 ? "team-a" : "team-b";
      r.algorithm = algorithms[n % 3];
      r.labels.clear();
      if (n % 2 == 0) r.labels["env"] = "prod";
      if (n % 4 == 0) r.labels["tier"] = "gold";
      if (n % 2 == 1) r.labels["env"] = "staging";
      r.origin = n % 5 == 0 ? "imported" : "generated";
      REQUIRE_THAT(store->InsertKey(r, Audit("GenerateKey", r.key_id)), IsOk());
      all[r.key_id] = r;
    }
    for (int n : {3, 4}) {
      REQUIRE_THAT(store->DestroyKey(KeyId(n), kT0, Audit("DeleteKey", "")),
                   IsOk());
      all[KeyId(n)].state = KeyState::kDestroyed;
    }
    auto expect = [&](const KeyFilter& f) {
      std::vector<std::string> ids;
      for (const auto& [id, r] : all) {
        if (!f.owner.empty() && r.owner != f.owner) continue;
        if (!f.algorithm.empty() && r.algorithm != f.algorithm) continue;
        if (!f.origin.empty() && r.origin != f.origin) continue;
        if (f.state.has_value() && r.state != *f.state) continue;
        bool labels_match = true;
        for (const auto& [name, value] : f.labels) {
          auto it = r.labels.find(name);
          if (it == r.labels.end() || it->second != value) labels_match = false;
        }
        if (labels_match) ids.push_back(id);
      }
      return ids;
    };
    std::vector<KeyFilter> filters(8);
    filters[1].owner = "team-a";
    filters[2].labels = {{"env", "prod"}};
    filters[3].labels = {{"env", "prod"}, {"tier", "gold"}};
    filters[4].algorithm = "ECDSA";
    filters[5].state = KeyState::kDestroyed;
    filters[6].origin = "imported";
    filters[7].owner = "team-b";
    filters[7].labels = {{"env", "prod"}};  // matches nothing
    for (size_t i = 0; i < filters.size(); ++i) {
      for (int page_size : {1, 3, 7, 1000}) {
        INFO("filter " << i << " page size " << page_size);
        CHECK(ListAll(*store, filters[i], page_size) == expect(filters[i]));
      }
    }
    CHECK(expect(filters[0]).size() == 20);
    CHECK(expect(filters[7]).empty());

    // Pages carry metadata and labels; destroyed keys no material.
    KeyPage page = ValueOrDie(store->ListKeys(filters[5], 10, ""));
    REQUIRE(Ids(page.keys) == std::vector<std::string>{KeyId(3), KeyId(4)});
    CHECK(page.keys[1].labels == all[KeyId(4)].labels);
    CHECK(page.keys[1].sealed_key.empty());
    CHECK(page.next_page_token.empty());
  });
}

TEST_CASE("ListKeysRefusesBadPageTokensAndSizes") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    for (int n = 1; n <= 3; ++n) {
      REQUIRE_THAT(store->InsertKey(MakeKey(n), Audit("GenerateKey", "")),
                   IsOk());
    }
    KeyFilter owner_a;
    owner_a.owner = "team-a";
    KeyPage first = ValueOrDie(store->ListKeys(owner_a, 2, ""));
    REQUIRE(first.keys.size() == 2);
    REQUIRE_FALSE(first.next_page_token.empty());
    KeyPage second =
        ValueOrDie(store->ListKeys(owner_a, 2, first.next_page_token));
    CHECK(Ids(second.keys) == std::vector<std::string>{KeyId(3)});

    KeyFilter other = owner_a;
    other.labels["env"] = "prod";
    CHECK_THAT(store->ListKeys(other, 2, first.next_page_token),
               StatusIs(Code::kInvalidArgument, "different filter"));
    CHECK_THAT(store->ListKeys(KeyFilter(), 2, first.next_page_token),
               StatusIs(Code::kInvalidArgument, "different filter"));
    CHECK_THAT(store->ListKeys(owner_a, 2, "not a token!"),
               StatusIs(Code::kInvalidArgument, "page token"));
    CHECK_THAT(store->ListKeys(owner_a, 2, absl::WebSafeBase64Escape("v1|x|y")),
               StatusIs(Code::kInvalidArgument, "page token"));
    std::string tampered = first.next_page_token;
    tampered[tampered.size() / 2] ^= 1;
    CHECK_THAT(store->ListKeys(owner_a, 2, tampered),
               StatusIs(Code::kInvalidArgument, "page token"));
    CHECK_THAT(store->ListKeys(owner_a, 0, ""),
               StatusIs(Code::kInvalidArgument, "page size 0"));
    CHECK_THAT(store->ListKeys(owner_a, kMaxVaultPageSize + 1, ""),
               StatusIs(Code::kInvalidArgument, "page size"));
  });
}

TEST_CASE("ReplaceWrappedDekIsCompareAndSetOnKekVersion") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    REQUIRE_THAT(store->AddKekVersion(2, kT0, Audit("RotateKek", "")), IsOk());
    REQUIRE_THAT(store->InsertKey(MakeKey(1), Audit("GenerateKey", "")),
                 IsOk());
    const std::string rewrapped = Bytes("rewrapped", 1);
    REQUIRE_THAT(store->ReplaceWrappedDek(KeyId(1), 1, 2, rewrapped), IsOk());
    KeyRecord got = ValueOrDie(store->GetKey(KeyId(1)));
    CHECK(got.kek_version == 2);
    CHECK(got.wrapped_dek == rewrapped);
    CHECK(got.sealed_key == MakeKey(1).sealed_key);
    CHECK(EncryptionCount(*store, 2) == 1);

    // A second rewrap from the old version lost the race.
    CHECK_THAT(store->ReplaceWrappedDek(KeyId(1), 1, 2, "other"),
               StatusIs(Code::kFailedPrecondition, "KEK version 2"));
    CHECK(ValueOrDie(store->GetKey(KeyId(1))).wrapped_dek == rewrapped);
    CHECK(EncryptionCount(*store, 2) == 1);

    CHECK_THAT(store->ReplaceWrappedDek(KeyId(1), 2, 5, "other"),
               StatusIs(Code::kFailedPrecondition, "KEK version 5"));
    CHECK(ValueOrDie(store->GetKey(KeyId(1))).kek_version == 2);
    CHECK_THAT(store->ReplaceWrappedDek(KeyId(9), 1, 2, "other"),
               StatusIs(Code::kNotFound, KeyId(9)));
    CHECK_THAT(store->ReplaceWrappedDek(KeyId(1), 2, 2, ""),
               StatusIs(Code::kInvalidArgument, "empty"));

    REQUIRE_THAT(store->DestroyKey(KeyId(1), kT0, Audit("DeleteKey", "")),
                 IsOk());
    CHECK_THAT(store->ReplaceWrappedDek(KeyId(1), 2, 2, "other"),
               StatusIs(Code::kFailedPrecondition, "destroyed"));
    CHECK(ValueOrDie(store->GetKey(KeyId(1))).wrapped_dek.empty());
  });
}

TEST_CASE("ConcurrentRewrapsOfOneKeyLetExactlyOneWin") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    REQUIRE_THAT(store->AddKekVersion(2, kT0, Audit("RotateKek", "")), IsOk());
    REQUIRE_THAT(store->InsertKey(MakeKey(1), Audit("GenerateKey", "")),
                 IsOk());
    constexpr int kThreads = 6;
    std::vector<absl::Status> results(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        results[i] =
            store->ReplaceWrappedDek(KeyId(1), 1, 2, Bytes("rewrapped", i));
      });
    }
    for (std::thread& t : threads) t.join();
    int ok = 0;
    int winner = -1;
    for (int i = 0; i < kThreads; ++i) {
      INFO(results[i]);
      if (results[i].ok()) {
        ++ok;
        winner = i;
      } else {
        CHECK(results[i].code() == Code::kFailedPrecondition);
      }
    }
    REQUIRE(ok == 1);
    CHECK(ValueOrDie(store->GetKey(KeyId(1))).wrapped_dek ==
          Bytes("rewrapped", winner));
    CHECK(EncryptionCount(*store, 2) == 1);
  });
}

TEST_CASE("KeysWrappedBelowListsActiveKeysUnderOlderKekVersions") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    REQUIRE_THAT(store->AddKekVersion(2, kT0, Audit("RotateKek", "")), IsOk());
    for (int n = 5; n >= 1; --n) {
      REQUIRE_THAT(store->InsertKey(MakeKey(n), Audit("GenerateKey", "")),
                   IsOk());
    }
    REQUIRE_THAT(store->ReplaceWrappedDek(KeyId(2), 1, 2, "w"), IsOk());
    REQUIRE_THAT(store->DestroyKey(KeyId(4), kT0, Audit("DeleteKey", "")),
                 IsOk());

    CHECK(Ids(ValueOrDie(store->KeysWrappedBelow(2, 100))) ==
          std::vector<std::string>{KeyId(1), KeyId(3), KeyId(5)});
    CHECK(Ids(ValueOrDie(store->KeysWrappedBelow(2, 2))) ==
          std::vector<std::string>{KeyId(1), KeyId(3)});
    CHECK(ValueOrDie(store->KeysWrappedBelow(1, 100)).empty());
    CHECK(ValueOrDie(store->KeysWrappedBelow(3, 100)).size() == 4);
    std::vector<KeyRecord> rows = ValueOrDie(store->KeysWrappedBelow(2, 1));
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].wrapped_dek == MakeKey(1).wrapped_dek);
    CHECK(rows[0].labels == MakeKey(1).labels);
    CHECK_THAT(store->KeysWrappedBelow(2, 0),
               StatusIs(Code::kInvalidArgument, "limit 0"));
  });
}

TEST_CASE("RecentAuditReturnsNewestFirstWithEveryField") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);  // writes one AddKekVersion record
    AuditRecord denied = {.time = kT0 + absl::Microseconds(5),
                          .identity = "spiffe://certplane/agent",
                          .operation = "ExportKey",
                          .key_id = KeyId(1),
                          .result = "PERMISSION_DENIED",
                          .detail = "identity may not export",
                          .request_id = "req-9"};
    REQUIRE_THAT(store->AppendAudit(denied), IsOk());
    // The same time again: order is insertion order, not time.
    REQUIRE_THAT(store->AppendAudit(Audit("Sign", KeyId(2))), IsOk());

    std::vector<AuditRecord> recent = ValueOrDie(store->RecentAudit(10));
    REQUIRE(recent.size() == 3);
    CHECK(recent[0].operation == "Sign");
    CHECK(recent[1].operation == "ExportKey");
    CHECK(recent[1].time == denied.time);
    CHECK(recent[1].identity == denied.identity);
    CHECK(recent[1].key_id == denied.key_id);
    CHECK(recent[1].result == denied.result);
    CHECK(recent[1].detail == denied.detail);
    CHECK(recent[1].request_id == denied.request_id);
    CHECK(recent[2].operation == "AddKekVersion");
    CHECK(ValueOrDie(store->RecentAudit(1)).size() == 1);
    CHECK_THAT(store->RecentAudit(0),
               StatusIs(Code::kInvalidArgument, "limit 0"));
    CHECK_THAT(store->RecentAudit(kMaxVaultAuditLimit + 1),
               StatusIs(Code::kInvalidArgument, "limit"));
    AuditRecord no_result = Audit("Sign", "");
    no_result.result.clear();
    CHECK_THAT(store->AppendAudit(no_result),
               StatusIs(Code::kInvalidArgument, "no result"));
  });
}

TEST_CASE("AuditTableIsAppendOnly") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    CHECK_THAT(Exec(db, "UPDATE audit SET detail = 'rewritten'"),
               StatusIs(Code::kInternal, "append-only"));
    CHECK_THAT(Exec(db, "DELETE FROM audit"),
               StatusIs(Code::kInternal, "append-only"));
    CHECK(ValueOrDie(store->RecentAudit(10)).size() == 1);
  });
}

TEST_CASE("MutationsFailAndLeaveNoTraceWhenTheAuditRecordCannotBeWritten") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    REQUIRE_THAT(store->InsertKey(MakeKey(1), Audit("GenerateKey", "")),
                 IsOk());
    REQUIRE_THAT(Exec(db, "ALTER TABLE audit RENAME TO audit_gone"), IsOk());

    CHECK_THAT(store->InsertKey(MakeKey(2), Audit("GenerateKey", KeyId(2))),
               StatusIs(Code::kInternal, "audit"));
    CHECK_THAT(store->DestroyKey(KeyId(1), kT0, Audit("DeleteKey", KeyId(1))),
               StatusIs(Code::kInternal, "audit"));
    CHECK_THAT(store->AddKekVersion(2, kT0, Audit("RotateKek", "")),
               StatusIs(Code::kInternal, "audit"));
    CHECK_THAT(store->AppendAudit(Audit("Sign", KeyId(1))),
               StatusIs(Code::kInternal, "audit"));

    REQUIRE_THAT(Exec(db, "ALTER TABLE audit_gone RENAME TO audit"), IsOk());
    CHECK_THAT(store->GetKey(KeyId(2)), StatusIs(Code::kNotFound));
    KeyRecord still = ValueOrDie(store->GetKey(KeyId(1)));
    CHECK(still.state == KeyState::kActive);
    CHECK(still.sealed_key == MakeKey(1).sealed_key);
    std::vector<KekVersionRecord> versions = ValueOrDie(store->KekVersions());
    REQUIRE(versions.size() == 1);
    CHECK(versions[0].encryption_count == 1);
    CHECK(ValueOrDie(store->RecentAudit(10)).size() == 2);

    // With the table back, the same calls go through.
    REQUIRE_THAT(store->InsertKey(MakeKey(2), Audit("GenerateKey", "")),
                 IsOk());
    REQUIRE_THAT(store->DestroyKey(KeyId(1), kT0, Audit("DeleteKey", "")),
                 IsOk());
  });
}

// Every cell of `table`, as text.
std::multiset<std::string> Cells(db::Database& db, const std::string& table,
                                 const std::string& columns) {
  std::multiset<std::string> cells;
  REQUIRE_THAT(db.Transact(
                   [&](soci::session& s) {
                     soci::rowset<soci::row> rows =
                         (s.prepare << "SELECT " + columns + " FROM " + table);
                     for (const soci::row& row : rows) {
                       for (size_t i = 0; i < row.size(); ++i) {
                         if (row.get_indicator(i) == soci::i_null) {
                           cells.insert("NULL");
                           continue;
                         }
                         switch (row.get_properties(i).get_data_type()) {
                           case soci::dt_string:
                             cells.insert(row.get<std::string>(i));
                             break;
                           case soci::dt_integer:
                             cells.insert(absl::StrCat(row.get<int>(i)));
                             break;
                           case soci::dt_long_long:
                             cells.insert(absl::StrCat(row.get<long long>(i)));
                             break;
                           default:
                             FAIL("unexpected column type in " << table);
                         }
                       }
                     }
                     return absl::OkStatus();
                   },
                   db::TxMode::kReadOnly),
               IsOk());
  return cells;
}

TEST_CASE("KeyAndAuditTablesHoldExactlyWhatWasGiven") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    KeyRecord r = MakeKey(1);
    r.request_id = "req-1";
    REQUIRE_THAT(store->InsertKey(r, Audit("GenerateKey", r.key_id, "ok")),
                 IsOk());
    const bool pg = db.dialect() == db::Dialect::kPostgres;
    auto hex = [&](absl::string_view bytes) {
      return absl::BytesToHexString(bytes);
    };
    auto bytes_col = [&](absl::string_view c) {
      return pg ? absl::StrCat("encode(", c, ", 'hex')") : std::string(c);
    };

    // Every column of the row, binary ones as hex, checked one by one.
    std::multiset<std::string> keys = Cells(
        db, "keys",
        absl::StrCat("key_id, version, owner, algorithm, bits, curve, ",
                     bytes_col("public_key_der"),
                     ", spki_sha256, state, "
                     "origin, ",
                     bytes_col("sealed_key"), ", ", bytes_col("wrapped_dek"),
                     ", kek_version, request_id, create_time_us, "
                     "destroy_time_us"));
    std::multiset<std::string> want_keys = {
        r.key_id,
        "1",
        "team-a",
        "ECDSA",
        "0",
        "P-256",
        hex(r.public_key_der),
        r.spki_sha256,
        "active",
        "generated",
        hex(r.sealed_key),
        hex(r.wrapped_dek),
        "1",
        "req-1",
        absl::StrCat(absl::ToUnixMicros(r.create_time)),
        "NULL"};
    CHECK(keys == want_keys);
    CHECK(Cells(db, "key_labels", "key_id, name, value") ==
          std::multiset<std::string>{r.key_id, "env", "prod"});
    CHECK(Cells(db, "audit",
                "time_us, identity, operation, key_id, result, detail, "
                "request_id") ==
          std::multiset<std::string>{
              // AddKekVersion from NewStore, then GenerateKey.
              absl::StrCat(absl::ToUnixMicros(kT0)), "spiffe://certplane/test",
              "AddKekVersion", "", "OK", "", "req",
              absl::StrCat(absl::ToUnixMicros(kT0)), "spiffe://certplane/test",
              "GenerateKey", r.key_id, "OK", "ok", "req"});

    // And no column beyond those: SELECT * has exactly that many cells.
    CHECK(Cells(db, "keys", "*").size() == want_keys.size());
    CHECK(Cells(db, "key_labels", "*").size() == 3);
    CHECK(Cells(db, "audit", "*").size() == 2 * 8);  // with the id column
  });
}

}  // namespace
}  // namespace certplane::vault
