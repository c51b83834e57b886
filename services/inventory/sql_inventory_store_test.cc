#include "services/inventory/sql_inventory_store.h"

#include <soci/soci.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "libs/db/database.h"
#include "libs/db/migrate.h"
#include "libs/testing/db_test_util.h"
#include "libs/testing/status_matchers.h"
#include "services/inventory/inventory_store.h"
#include "services/inventory/migrations.h"

namespace certplane::inventory {
namespace {

using ::certplane::testing::ForEachBackend;
using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;
using Code = ::absl::StatusCode;

const absl::Time kNow = absl::FromUnixSeconds(1800000000);
constexpr char kActor[] = "user:test";

absl::Time Days(double n) { return kNow + absl::Hours(24 * n); }
int64_t DaysUs(double n) { return absl::ToUnixMicros(Days(n)); }

std::string Sha(int n) {
  return absl::StrCat(std::string(48, 'a'), absl::Hex(n, absl::kZeroPad16));
}

// DER stand-in: every byte value, then a per-certificate tag.
std::string Der(int n) {
  std::string der;
  for (int i = 0; i < 256; ++i) der.push_back(static_cast<char>(i));
  absl::StrAppend(&der, "cert-", n, std::string("\x00\xff", 2));
  return der;
}

CertificateFacts Facts(int n) {
  CertificateFacts f;
  f.sha256_hex = Sha(n);
  f.common_name = absl::StrCat("host", n, ".example.com");
  f.subject_dn = absl::StrCat("CN=", f.common_name);
  f.issuer_cn = "Test CA";
  f.issuer_dn = "CN=Test CA,O=Test";
  f.serial_hex = absl::StrCat("0", n);
  f.not_before_us = DaysUs(-30);
  f.not_after_us = DaysUs(60);
  f.key_algorithm = "ECDSA";
  f.key_bits = 256;
  f.key_curve = "P-256";
  f.signature_algorithm = "ecdsa-with-SHA256";
  f.sans = {f.common_name};
  f.subject_key_id_hex = absl::StrCat("5c", n);
  f.authority_key_id_hex = "a1";
  return f;
}

ImportItem Item(int n) {
  ImportItem item;
  item.der = Der(n);
  item.facts = Facts(n);
  item.origin = absl::StrCat("file", n, ".pem");
  item.owner = "team";
  return item;
}

CaCertificateRecord Ca(int n) {
  CaCertificateRecord ca;
  ca.sha256_hex = Sha(100000 + n);
  ca.der = Der(100000 + n);
  ca.facts = Facts(100000 + n);
  ca.facts.subject_dn = absl::StrCat("CN=CA ", n);
  ca.facts.is_ca = true;
  ca.facts.self_signed = n == 0;
  return ca;
}

std::unique_ptr<InventoryStore> NewStore(db::Database& db) {
  REQUIRE_THAT(db::Migrate(db, InventoryMigrations()), IsOk());
  return NewSqlInventoryStore(&db);
}

ImportBatchResult Import(InventoryStore& store, std::vector<ImportItem> items,
                         std::vector<CaCertificateRecord> cas = {}) {
  return ValueOrDie(store.ImportBatch(cas, items, kActor, kNow));
}

std::vector<ChangeRecord> AllChanges(InventoryStore& store) {
  return ValueOrDie(store.ChangesAfter(0, kMaxInventoryChangesLimit));
}

// Every certificate the query matches, following page tokens.
std::vector<CertificateRecord> ListAll(InventoryStore& store, ListQuery query) {
  std::vector<CertificateRecord> out;
  for (int pages = 0; pages < 1000; ++pages) {
    CertificatePage page = ValueOrDie(store.ListCertificates(query));
    CHECK(static_cast<int>(page.certificates.size()) <= query.page_size);
    for (CertificateRecord& r : page.certificates) out.push_back(std::move(r));
    if (page.next_page_token.empty()) return out;
    query.page_token = page.next_page_token;
  }
  FAIL("pagination did not end");
  return out;
}

std::set<std::string> Names(InventoryStore& store, const std::string& filter,
                            bool show_deleted = false) {
  ListQuery q;
  q.filter = filter;
  q.page_size = 2;
  q.now = kNow;
  q.show_deleted = show_deleted;
  std::set<std::string> names;
  for (const CertificateRecord& r : ListAll(store, q)) {
    CHECK(names.insert(r.display_name).second);
  }
  return names;
}

void CheckFactsEqual(const CertificateFacts& a, const CertificateFacts& b) {
  CHECK(a.sha256_hex == b.sha256_hex);
  CHECK(a.subject_dn == b.subject_dn);
  CHECK(a.common_name == b.common_name);
  CHECK(a.issuer_dn == b.issuer_dn);
  CHECK(a.issuer_cn == b.issuer_cn);
  CHECK(a.serial_hex == b.serial_hex);
  CHECK(a.not_before_us == b.not_before_us);
  CHECK(a.not_after_us == b.not_after_us);
  CHECK(a.key_algorithm == b.key_algorithm);
  CHECK(a.key_bits == b.key_bits);
  CHECK(a.key_curve == b.key_curve);
  CHECK(a.signature_algorithm == b.signature_algorithm);
  CHECK(a.sans == b.sans);
  CHECK(a.subject_key_id_hex == b.subject_key_id_hex);
  CHECK(a.authority_key_id_hex == b.authority_key_id_hex);
  CHECK(a.is_ca == b.is_ca);
  CHECK(a.self_signed == b.self_signed);
}

TEST_CASE("ImportBatchStoresNewCertificatesWithEveryFieldAndBinaryDer") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    ImportItem item = Item(1);
    item.facts.sans = {"host1.example.com", "10.0.0.1", "ops@example.com",
                       "spiffe://x/y", "h\xc3\xa9llo.example"};
    item.chain_sha256 = {Ca(1).sha256_hex, Ca(0).sha256_hex};
    item.chain_complete = true;
    item.key_name = "keys/k1";
    item.details = std::string("\x0a\x00\xff details", 11);
    item.display_name = "pay";
    item.owner = "payments";
    item.environments = {"prod", "canary"};
    item.tags = {{"team", "pay"}, {"empty", ""}};
    item.source = "discovered";
    ImportItem plain = Item(2);

    ImportBatchResult result = Import(*store, {item, plain}, {Ca(0), Ca(1)});
    REQUIRE(result.items.size() == 2);
    CHECK(result.ca_certificates_added == std::vector<bool>{true, true});
    for (const ImportItemResult& r : result.items) {
      CHECK(r.outcome == ImportItemOutcome::kImported);
      CHECK(r.version == 1);
      CHECK(r.certificate_id.size() == 33);
      CHECK(r.certificate_id[0] == 'c');
    }
    CHECK(result.items[0].key_name == "keys/k1");
    CHECK(result.items[0].certificate_id != result.items[1].certificate_id);

    CertificateRecord got =
        ValueOrDie(store->GetCertificate(result.items[0].certificate_id));
    CHECK(got.display_name == "pay");
    CHECK(got.owner == "payments");
    CHECK(got.environments == std::vector<std::string>{"canary", "prod"});
    CHECK(got.tags == item.tags);
    CHECK(got.source == "discovered");
    CHECK(got.current_version == 1);
    CHECK(got.version_count == 1);
    CHECK(got.create_time == kNow);
    CHECK(got.update_time == kNow);
    CHECK_FALSE(got.delete_time.has_value());
    CHECK_FALSE(got.etag.empty());
    REQUIRE(got.current.has_value());
    const VersionRecord& v = *got.current;
    CHECK(v.certificate_id == got.certificate_id);
    CHECK(v.version == 1);
    CHECK(v.status == "active");
    CHECK(v.der == item.der);
    CHECK(v.details == item.details);
    CheckFactsEqual(v.facts, item.facts);
    CHECK(v.chain_sha256 == item.chain_sha256);
    CHECK(v.chain_complete);
    CHECK(v.key_name == "keys/k1");
    CHECK(v.origin == "file1.pem");
    CHECK(v.create_time == kNow);
    CHECK_FALSE(v.revoke_time.has_value());

    // Display name defaults to the common name; source to "imported".
    CertificateRecord other =
        ValueOrDie(store->GetCertificate(result.items[1].certificate_id));
    CHECK(other.display_name == "host2.example.com");
    CHECK(other.source == "imported");
    CHECK(other.environments.empty());
    CHECK(other.tags.empty());

    std::optional<VersionRecord> by_sha =
        ValueOrDie(store->FindVersionBySha256(Sha(2)));
    REQUIRE(by_sha.has_value());
    CHECK(by_sha->certificate_id == other.certificate_id);
    CHECK(by_sha->der == Der(2));
    CHECK(by_sha->details.empty());
    CHECK_FALSE(ValueOrDie(store->FindVersionBySha256(Sha(3))).has_value());
    CHECK_THAT(store->FindVersionBySha256("xyz"),
               StatusIs(Code::kInvalidArgument, "SHA-256"));

    VersionRecord v1 = ValueOrDie(store->GetVersion(other.certificate_id, 1));
    CHECK(v1.der == Der(2));
    CHECK_THAT(store->GetVersion(other.certificate_id, 2),
               StatusIs(Code::kNotFound));
    CHECK_THAT(store->GetCertificate(absl::StrCat("c", std::string(32, '0'))),
               StatusIs(Code::kNotFound));
    CHECK_THAT(store->GetCertificate("nope"),
               StatusIs(Code::kInvalidArgument, "certificate id"));

    // Changes: two CA certificates, then created + version_added each.
    std::vector<ChangeRecord> changes = AllChanges(*store);
    REQUIRE(changes.size() == 6);
    CHECK(changes[0].kind == "ca_certificate_added");
    CHECK(changes[0].certificate_id == Ca(0).sha256_hex);
    CHECK(changes[2].kind == "certificate_created");
    CHECK(changes[3].kind == "version_added");
    CHECK(changes[3].certificate_id == got.certificate_id);
    CHECK(changes[3].version == 1);
    CHECK(changes[3].actor == kActor);
    CHECK(changes[3].time == kNow);
    CHECK(changes[3].not_after_us == item.facts.not_after_us);
    CHECK(changes[3].sha256_hex == Sha(1));
    for (size_t i = 0; i < changes.size(); ++i) {
      CHECK(changes[i].revision == static_cast<int64_t>(i + 1));
    }
    CHECK(ValueOrDie(store->LatestRevision()) == 6);
  });
}

TEST_CASE("ImportBatchReportsDuplicatesAndRecordsKeysTheStoreLacked") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    ImportBatchResult first = Import(*store, {Item(1)});
    const std::string id1 = first.items[0].certificate_id;
    CHECK(first.items[0].key_name.empty());
    const std::string etag = ValueOrDie(store->GetCertificate(id1)).etag;
    const int64_t revision = ValueOrDie(store->LatestRevision());

    // Already stored, without and then with a key.
    ImportBatchResult again = Import(*store, {Item(1)});
    CHECK(again.items[0].outcome == ImportItemOutcome::kAlreadyPresent);
    CHECK(again.items[0].certificate_id == id1);
    CHECK(again.items[0].version == 1);
    CHECK_FALSE(again.items[0].key_added);
    CHECK(ValueOrDie(store->LatestRevision()) == revision);

    ImportItem keyed = Item(1);
    keyed.key_name = "keys/k1";
    ImportBatchResult with_key = Import(*store, {keyed});
    CHECK(with_key.items[0].outcome == ImportItemOutcome::kAlreadyPresent);
    CHECK(with_key.items[0].key_added);
    CHECK(with_key.items[0].key_name == "keys/k1");
    CertificateRecord got = ValueOrDie(store->GetCertificate(id1));
    CHECK(got.current->key_name == "keys/k1");
    CHECK(got.etag == etag);
    CHECK(Names(*store, "has_key = true") ==
          std::set<std::string>{"host1.example.com"});
    std::vector<ChangeRecord> changes = AllChanges(*store);
    CHECK(changes.back().kind == "certificate_updated");
    CHECK(changes.back().changed_fields ==
          std::vector<std::string>{"key_name"});

    // Another key later does not replace the first.
    keyed.key_name = "keys/k2";
    ImportBatchResult other_key = Import(*store, {keyed});
    CHECK_FALSE(other_key.items[0].key_added);
    CHECK(other_key.items[0].key_name == "keys/k1");

    // Duplicates within one batch: the second is already present, and may
    // bring the key the first lacked.
    ImportItem b = Item(2);
    ImportItem b_keyed = Item(2);
    b_keyed.key_name = "keys/k2";
    ImportBatchResult dup = Import(*store, {b, Item(3), b_keyed, b});
    CHECK(dup.items[0].outcome == ImportItemOutcome::kImported);
    CHECK(dup.items[1].outcome == ImportItemOutcome::kImported);
    CHECK(dup.items[2].outcome == ImportItemOutcome::kAlreadyPresent);
    CHECK(dup.items[2].certificate_id == dup.items[0].certificate_id);
    CHECK(dup.items[2].key_added);
    CHECK(dup.items[3].outcome == ImportItemOutcome::kAlreadyPresent);
    CHECK_FALSE(dup.items[3].key_added);
    CHECK(dup.items[0].key_name == "keys/k2");
    CHECK(ValueOrDie(store->GetCertificate(dup.items[0].certificate_id))
              .current->key_name == "keys/k2");
    CHECK(Names(*store, "").size() == 3);
  });
}

TEST_CASE("ImportBatchAddsVersionsToTargetsAndFailsBadItemsAlone") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    ImportItem first = Item(1);
    first.key_name = "keys/k1";
    const std::string id = Import(*store, {first}).items[0].certificate_id;
    const std::string gone = Import(*store, {Item(9)}).items[0].certificate_id;
    REQUIRE_THAT(store->DeleteCertificate(gone, "", kActor, kNow), IsOk());
    const std::string etag = ValueOrDie(store->GetCertificate(id)).etag;

    ImportItem renewal = Item(2);
    renewal.target_certificate_id = id;
    renewal.facts.sans = {"renewed.example.com"};
    ImportItem unknown = Item(3);
    unknown.target_certificate_id = absl::StrCat("c", std::string(32, 'f'));
    ImportItem deleted = Item(4);
    deleted.target_certificate_id = gone;
    ImportItem bad_text = Item(5);
    bad_text.facts.common_name = std::string("nul\0byte", 8);
    ImportItem bad_utf8 = Item(6);
    bad_utf8.facts.sans = {"\xff\xfe"};
    ImportItem second_renewal = Item(7);
    second_renewal.target_certificate_id = id;

    ImportBatchResult r = Import(*store, {renewal, unknown, Item(8), deleted,
                                          bad_text, bad_utf8, second_renewal});
    CHECK(r.items[0].outcome == ImportItemOutcome::kImported);
    CHECK(r.items[0].certificate_id == id);
    CHECK(r.items[0].version == 2);
    CHECK(r.items[1].outcome == ImportItemOutcome::kFailed);
    CHECK_THAT(r.items[1].error, Catch::Contains("not found"));
    CHECK(r.items[2].outcome == ImportItemOutcome::kImported);
    CHECK(r.items[3].outcome == ImportItemOutcome::kFailed);
    CHECK_THAT(r.items[3].error, Catch::Contains("deleted"));
    CHECK(r.items[4].outcome == ImportItemOutcome::kFailed);
    CHECK_THAT(r.items[4].error, Catch::Contains("common_name"));
    CHECK(r.items[5].outcome == ImportItemOutcome::kFailed);
    CHECK(r.items[6].outcome == ImportItemOutcome::kImported);
    CHECK(r.items[6].version == 3);

    CertificateRecord got = ValueOrDie(store->GetCertificate(id));
    CHECK(got.current_version == 3);
    CHECK(got.version_count == 3);
    CHECK(got.etag != etag);
    CHECK(got.current->facts.sha256_hex == Sha(7));
    CHECK(got.current->status == "active");
    CHECK(ValueOrDie(store->GetVersion(id, 1)).status == "superseded");
    CHECK(ValueOrDie(store->GetVersion(id, 2)).status == "superseded");
    // The current version's facts drive filters; the old SANs are gone.
    CHECK(Names(*store, "san = \"renewed.example.com\"").empty());
    CHECK(Names(*store, "san = \"host7.example.com\"") ==
          std::set<std::string>{"host1.example.com"});
    CHECK(Names(*store, "has_key = true").empty());
    CHECK_FALSE(ValueOrDie(store->FindVersionBySha256(Sha(3))).has_value());
    CHECK_FALSE(ValueOrDie(store->FindVersionBySha256(Sha(5))).has_value());

    // Caller mistakes fail the whole call.
    ImportItem no_der = Item(10);
    no_der.der.clear();
    CHECK_THAT(store->ImportBatch({}, {no_der}, kActor, kNow),
               StatusIs(Code::kInvalidArgument, "items[0].der"));
    ImportItem bad_sha = Item(10);
    bad_sha.facts.sha256_hex = "ABC";
    CHECK_THAT(store->ImportBatch({}, {Item(11), bad_sha}, kActor, kNow),
               StatusIs(Code::kInvalidArgument, "items[1].facts.sha256_hex"));
    ImportItem bad_source = Item(10);
    bad_source.source = "stolen";
    CHECK_THAT(store->ImportBatch({}, {bad_source}, kActor, kNow),
               StatusIs(Code::kInvalidArgument, "items[0].source"));
    CHECK_FALSE(ValueOrDie(store->FindVersionBySha256(Sha(11))).has_value());
  });
}

TEST_CASE("ImportBatchOfAThousandItemsStoresEveryOne") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    std::vector<ImportItem> items;
    for (int i = 0; i < 1000; ++i) {
      ImportItem item = Item(i);
      item.environments = {"prod", "eu"};
      item.tags = {{"batch", "big"}, {"n", absl::StrCat(i)}};
      item.facts.sans = {item.facts.common_name,
                         absl::StrCat("alt", i, ".example.org")};
      items.push_back(std::move(item));
    }
    ImportBatchResult r = Import(*store, items);
    for (const ImportItemResult& item : r.items) {
      REQUIRE(item.outcome == ImportItemOutcome::kImported);
    }
    CHECK(ValueOrDie(store->LatestRevision()) == 2000);
    ListQuery q;
    q.filter = "tags.batch = big AND environment = eu";
    q.page_size = 1;
    q.now = kNow;
    CHECK(ValueOrDie(store->ListCertificates(q)).total_size == 1000);
    CHECK(Names(*store, "san = \"alt999.example.org\"") ==
          std::set<std::string>{"host999.example.com"});
    // Again: all already present.
    ImportBatchResult again = Import(*store, items);
    for (const ImportItemResult& item : again.items) {
      REQUIRE(item.outcome == ImportItemOutcome::kAlreadyPresent);
    }
  });
}

TEST_CASE("CaCertificatesAreStoredOnceBySha256") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    ImportBatchResult r =
        ValueOrDie(store->ImportBatch({Ca(1), Ca(2), Ca(1)}, {}, kActor, kNow));
    CHECK(r.ca_certificates_added == std::vector<bool>{true, true, false});
    r = ValueOrDie(store->ImportBatch({Ca(2), Ca(3)}, {}, kActor, kNow));
    CHECK(r.ca_certificates_added == std::vector<bool>{false, true});
    CHECK(AllChanges(*store).size() == 3);

    CaCertificateRecord got =
        ValueOrDie(store->GetCaCertificate(Ca(2).sha256_hex));
    CHECK(got.der == Ca(2).der);
    CheckFactsEqual(got.facts, Ca(2).facts);
    CHECK(got.create_time == kNow);
    std::vector<CaCertificateRecord> by_subject =
        ValueOrDie(store->FindCaBySubject("CN=CA 3"));
    REQUIRE(by_subject.size() == 1);
    CHECK(by_subject[0].sha256_hex == Ca(3).sha256_hex);
    CHECK(ValueOrDie(store->FindCaBySubject("CN=nobody")).empty());
    CHECK_THAT(store->GetCaCertificate(Sha(5)), StatusIs(Code::kNotFound));

    CaCertificateRecord mismatched = Ca(4);
    mismatched.facts.sha256_hex = Sha(1);
    CHECK_THAT(store->ImportBatch({mismatched}, {}, kActor, kNow),
               StatusIs(Code::kInvalidArgument, "ca_certificates[0]"));
  });
}

TEST_CASE("CreateCertificateIsIdempotentByRequestIdAndAddVersionSupersedes") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    CertificateRecord record;
    record.display_name = "pay";
    record.owner = "payments";
    record.environments = {"prod", "prod", "dev"};
    record.tags = {{"team", "pay"}};
    record.desired = std::string("\x0a\x00\xff\x12", 4);
    record.auto_renew = true;
    record.renew_before_days = 20;
    record.reuse_key = true;
    record.request_id = "req-1";
    CertificateRecord created =
        ValueOrDie(store->CreateCertificate(record, kActor, kNow));
    CHECK(created.source == "issued");
    CHECK(created.current_version == 0);
    CHECK_FALSE(created.current.has_value());
    CHECK(created.environments == std::vector<std::string>{"dev", "prod"});

    CertificateRecord retry = ValueOrDie(
        store->CreateCertificate(record, kActor, kNow + absl::Seconds(5)));
    CHECK(retry.certificate_id == created.certificate_id);
    CHECK(retry.etag == created.etag);
    CHECK(AllChanges(*store).size() == 1);

    CertificateRecord got =
        ValueOrDie(store->GetCertificate(created.certificate_id));
    CHECK(got.desired == record.desired);
    CHECK(got.auto_renew);
    CHECK(got.renew_before_days == 20);
    CHECK(got.reuse_key);
    CHECK(got.request_id == "req-1");
    CHECK(got.tags == record.tags);

    record.request_id = "";
    CertificateRecord second =
        ValueOrDie(store->CreateCertificate(record, kActor, kNow));
    CHECK(second.certificate_id != created.certificate_id);
    record.source = "bogus";
    CHECK_THAT(store->CreateCertificate(record, kActor, kNow),
               StatusIs(Code::kInvalidArgument, "source"));

    VersionRecord v;
    v.der = Der(1);
    v.facts = Facts(1);
    v.key_name = "keys/k1";
    v.origin = "order:1";
    v.chain_sha256 = {Ca(1).sha256_hex};
    VersionRecord added = ValueOrDie(store->AddVersion(
        created.certificate_id, v, kActor, kNow + absl::Seconds(1)));
    CHECK(added.version == 1);
    CHECK(added.status == "active");
    v.der = Der(2);
    v.facts = Facts(2);
    added = ValueOrDie(store->AddVersion(created.certificate_id, v, kActor,
                                         kNow + absl::Seconds(2)));
    CHECK(added.version == 2);
    got = ValueOrDie(store->GetCertificate(created.certificate_id));
    CHECK(got.current_version == 2);
    CHECK(got.version_count == 2);
    CHECK(got.current->der == Der(2));
    CHECK(got.current->chain_sha256 == v.chain_sha256);
    CHECK(got.etag != created.etag);
    CHECK(ValueOrDie(store->GetVersion(created.certificate_id, 1)).status ==
          "superseded");

    CHECK_THAT(store->AddVersion(second.certificate_id, v, kActor, kNow),
               StatusIs(Code::kAlreadyExists, "SHA-256"));
    CHECK_THAT(store->AddVersion(absl::StrCat("c", std::string(32, '1')), v,
                                 kActor, kNow),
               StatusIs(Code::kNotFound));
    REQUIRE_THAT(
        store->DeleteCertificate(second.certificate_id, "", kActor, kNow),
        IsOk());
    v.facts = Facts(3);
    CHECK_THAT(store->AddVersion(second.certificate_id, v, kActor, kNow),
               StatusIs(Code::kFailedPrecondition, "deleted"));

    VersionPage page =
        ValueOrDie(store->ListVersions(created.certificate_id, 1, ""));
    REQUIRE(page.versions.size() == 1);
    CHECK(page.versions[0].version == 2);
    REQUIRE_FALSE(page.next_page_token.empty());
    page = ValueOrDie(
        store->ListVersions(created.certificate_id, 1, page.next_page_token));
    REQUIRE(page.versions.size() == 1);
    CHECK(page.versions[0].version == 1);
    CHECK(page.next_page_token.empty());
    CHECK_THAT(
        store->ListVersions(
            second.certificate_id, 1,
            ValueOrDie(store->ListVersions(created.certificate_id, 1, ""))
                .next_page_token),
        StatusIs(Code::kInvalidArgument, "page_token"));
    CHECK_THAT(
        store->ListVersions(absl::StrCat("c", std::string(32, '1')), 10, ""),
        StatusIs(Code::kNotFound));
    CHECK_THAT(store->ListVersions(created.certificate_id, 0, ""),
               StatusIs(Code::kInvalidArgument, "page_size"));
  });
}

// Five certificates with distinct attributes (display names one..five).
struct Fleet {
  std::map<std::string, std::string> ids;  // display name -> id
};

Fleet MakeFleet(InventoryStore& store) {
  ImportItem one = Item(1);
  one.display_name = "one";
  one.facts.common_name = "api.example.com";
  one.facts.sans = {"api.example.com", "api.internal"};
  one.owner = "payments";
  one.environments = {"prod"};
  one.tags = {{"team", "pay"}, {"tier", "gold"}};
  one.facts.issuer_cn = "R3";
  one.facts.issuer_dn = "CN=R3,O=Let's Encrypt";
  one.facts.key_algorithm = "RSA";
  one.facts.key_bits = 2048;
  one.facts.key_curve = "";
  one.facts.signature_algorithm = "sha256WithRSAEncryption";
  one.facts.not_before_us = DaysUs(-80);
  one.facts.not_after_us = DaysUs(10);
  one.facts.serial_hex = "01ab";
  one.key_name = "keys/k1";

  ImportItem two = Item(2);
  two.display_name = "two";
  two.facts.common_name = "www.example.com";
  two.facts.sans = {"www.example.com", "example.com"};
  two.owner = "web";
  two.environments = {"prod", "staging"};
  two.tags = {{"team", "web"}};
  two.facts.issuer_cn = "R3";
  two.facts.issuer_dn = "CN=R3,O=LE2";
  two.facts.not_after_us = DaysUs(45);
  two.source = "discovered";

  ImportItem three = Item(3);
  three.display_name = "three";
  three.facts.common_name = "old.example.org";
  three.facts.sans = {"old.example.org"};
  three.owner = "payments";
  three.environments = {"staging"};
  three.facts.issuer_cn = "Internal CA";
  three.facts.key_algorithm = "RSA";
  three.facts.key_bits = 1024;
  three.facts.key_curve = "";
  three.facts.signature_algorithm = "sha1WithRSAEncryption";
  three.facts.not_before_us = DaysUs(-400);
  three.facts.not_after_us = DaysUs(-5);
  three.source = "issued";

  ImportItem four = Item(4);
  four.display_name = "four";
  four.facts.common_name = "edge.example.net";
  four.facts.sans = {"edge.example.net", "*.edge.example.net"};
  four.owner = "edge";
  four.facts.issuer_cn = "Internal CA";
  four.facts.key_algorithm = "Ed25519";
  four.facts.key_bits = 256;
  four.facts.key_curve = "";
  four.facts.signature_algorithm = "ED25519";
  four.facts.not_after_us = DaysUs(200);

  Fleet fleet;
  ImportBatchResult r = Import(store, {one, two, three, four});
  for (int i = 0; i < 4; ++i) {
    REQUIRE(r.items[i].outcome == ImportItemOutcome::kImported);
  }
  fleet.ids["one"] = r.items[0].certificate_id;
  fleet.ids["two"] = r.items[1].certificate_id;
  fleet.ids["three"] = r.items[2].certificate_id;
  fleet.ids["four"] = r.items[3].certificate_id;
  REQUIRE_THAT(store.RevokeVersion(fleet.ids["four"], 1, "keyCompromise", kNow,
                                   kActor, kNow),
               IsOk());

  CertificateRecord five;
  five.display_name = "five";
  five.owner = "payments";
  five.auto_renew = true;
  fleet.ids["five"] =
      ValueOrDie(store.CreateCertificate(five, kActor, kNow)).certificate_id;
  return fleet;
}

using Set = std::set<std::string>;

TEST_CASE("ListFiltersOnEveryField") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    MakeFleet(*store);
    const std::string t20 =
        absl::FormatTime(absl::RFC3339_full, Days(20), absl::UTCTimeZone());
    const std::string t_90 =
        absl::FormatTime(absl::RFC3339_full, Days(-90), absl::UTCTimeZone());
    const std::vector<std::pair<std::string, Set>> cases = {
        {"", {"one", "two", "three", "four", "five"}},
        {"common_name = \"api.example.com\"", {"one"}},
        {"common_name:www*", {"two"}},
        {"common_name:*.example.com", {"one", "two"}},
        {"common_name:*example*", {"one", "two", "three", "four"}},
        {"common_name != \"api.example.com\"",
         {"two", "three", "four", "five"}},
        {"san = \"example.com\"", {"two"}},
        {"san:*.example.com", {"one", "two"}},
        {"san:*.EXAMPLE.com", {}},
        {"san:api*", {"one"}},
        {"san:*example*", {"one", "two", "three", "four"}},
        {"san:\"*.edge.example.net\"", {"four"}},
        {"san != \"example.com\"", {"one", "three", "four", "five"}},
        {"san:*", {"one", "two", "three", "four"}},
        {"issuer = R3", {"one", "two"}},
        {"issuer_dn = \"CN=R3,O=Let's Encrypt\"", {"one"}},
        {"serial = \"01ab\"", {"one"}},
        {absl::StrCat("fingerprint = ", Sha(2)), {"two"}},
        {absl::StrCat("not_after < \"", t20, "\""), {"one", "three"}},
        {absl::StrCat("not_before <= \"", t_90, "\""), {"three"}},
        {"days_to_expiry < 30", {"one", "three"}},
        {"days_to_expiry < 0", {"three"}},
        {"days_to_expiry >= 30", {"two", "four"}},
        {"days_to_expiry = 10", {"one"}},
        {"days_to_expiry > 44.5 AND days_to_expiry < 45.5", {"two"}},
        {"owner = payments", {"one", "three", "five"}},
        {"environment = prod", {"one", "two"}},
        {"environment = staging AND owner = payments", {"three"}},
        {"NOT environment = prod", {"three", "four", "five"}},
        {"environment:stag*", {"two", "three"}},
        {"tags.team = pay", {"one"}},
        {"tags.team:*", {"one", "two"}},
        {"tags.team != pay", {"two", "three", "four", "five"}},
        {"tags.team:w*", {"two"}},
        {"tags.missing = x", {}},
        {"key_algorithm = RSA", {"one", "three"}},
        {"key_bits >= 2048", {"one"}},
        {"key_bits < 2048", {"two", "three", "four"}},
        {"key_curve = \"P-256\"", {"two"}},
        {"signature_algorithm = sha1WithRSAEncryption", {"three"}},
        {"status = ACTIVE", {"one", "two"}},
        {"status = active", {"one", "two"}},
        {"status = EXPIRED", {"three"}},
        {"status = REVOKED", {"four"}},
        {"status = SUPERSEDED", {}},
        {"status != ACTIVE", {"three", "four"}},
        {"source = DISCOVERED", {"two"}},
        {"source = ISSUED", {"three", "five"}},
        {"source != IMPORTED", {"two", "three", "five"}},
        {"display_name = five", {"five"}},
        {"display_name:f*", {"four", "five"}},
        {"auto_renew = true", {"five"}},
        {"auto_renew = false", {"one", "two", "three", "four"}},
        {"has_key = true", {"one"}},
        {"has_key = false", {"two", "three", "four", "five"}},
        {"owner = \"payments\" AND days_to_expiry < 30 AND environment = "
         "\"prod\"",
         {"one"}},
        {"owner = web OR owner = edge", {"two", "four"}},
        {"(owner = web OR owner = edge) AND -status = REVOKED", {"two"}},
        {"common_name = \"100%_\"", {}},
        {"common_name:\"*%*\"", {}},
        {"common_name:\"*_*\"", {}},
    };
    for (const auto& [filter, want] : cases) {
      INFO("filter: " << filter);
      CHECK(Names(*store, filter) == want);
    }
  });
}

TEST_CASE("ListRejectsBadFiltersOrderingsPageSizesAndTokens") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    MakeFleet(*store);
    ListQuery q;
    q.now = kNow;
    for (const char* bad :
         {"ownr = x", "owner =", "(owner = x", "key_bits = abc",
          "status = LOST", "source = STOLEN", "auto_renew = maybe",
          "days_to_expiry < soon", "not_after < yesterday", "key_bits:1",
          "tags = x"}) {
      INFO("filter: " << bad);
      q.filter = bad;
      CHECK_THAT(store->ListCertificates(q),
                 StatusIs(Code::kInvalidArgument, "filter"));
      CHECK_THAT(store->Stats(bad, kNow),
                 StatusIs(Code::kInvalidArgument, "filter"));
    }
    q.filter = "";
    for (const char* bad : {"owner ascending", "etag", "not_after, not_after",
                            "not_after desc desc"}) {
      INFO("order_by: " << bad);
      q.order_by = bad;
      CHECK_THAT(store->ListCertificates(q),
                 StatusIs(Code::kInvalidArgument, "order_by"));
    }
    q.order_by = "";
    q.page_size = 0;
    CHECK_THAT(store->ListCertificates(q),
               StatusIs(Code::kInvalidArgument, "page_size"));
    q.page_size = 1001;
    CHECK_THAT(store->ListCertificates(q),
               StatusIs(Code::kInvalidArgument, "page_size"));
    q.page_size = 2;
    q.page_token = "garbage!";
    CHECK_THAT(store->ListCertificates(q),
               StatusIs(Code::kInvalidArgument, "page_token"));
    q.page_token = "";
    std::string token = ValueOrDie(store->ListCertificates(q)).next_page_token;
    REQUIRE_FALSE(token.empty());
    q.page_token = token;
    REQUIRE_THAT(store->ListCertificates(q), IsOk());
    for (int change = 0; change < 3; ++change) {
      ListQuery other = q;
      if (change == 0) other.filter = "owner = payments";
      if (change == 1) other.order_by = "not_after desc";
      if (change == 2) other.show_deleted = true;
      CHECK_THAT(store->ListCertificates(other),
                 StatusIs(Code::kInvalidArgument, "page_token"));
    }
  });
}

TEST_CASE("ListOrdersByEveryFieldAndPagesVisitEachRowOnce") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    std::vector<ImportItem> items;
    for (int i = 0; i < 23; ++i) {
      ImportItem item = Item(i);
      item.display_name = absl::StrCat("d", i % 4);
      item.owner = absl::StrCat("o", i % 3);
      item.facts.common_name = absl::StrCat("h", i % 7);
      item.facts.not_after_us = DaysUs(i % 5);
      item.facts.not_before_us = DaysUs(-(i % 2));
      item.facts.key_bits = i % 2 == 0 ? 2048 : 4096;
      items.push_back(std::move(item));
    }
    Import(*store, items);
    CertificateRecord empty;
    empty.display_name = "d1";
    empty.owner = "o1";
    REQUIRE_THAT(store->CreateCertificate(empty, kActor, kNow), IsOk());

    ListQuery all;
    all.page_size = 1000;
    all.now = kNow;
    std::vector<CertificateRecord> everything = ListAll(*store, all);
    REQUIRE(everything.size() == 24);
    // Default order: not_after (versionless last), then id.
    for (size_t i = 1; i < everything.size(); ++i) {
      auto key = [](const CertificateRecord& r) {
        return std::make_tuple(
            r.current.has_value() ? r.current->facts.not_after_us : INT64_MAX,
            r.certificate_id);
      };
      CHECK(key(everything[i - 1]) < key(everything[i]));
    }

    auto field_key = [](const std::string& field, const CertificateRecord& r) {
      if (field == "display_name") return r.display_name;
      if (field == "owner") return r.owner;
      if (field == "common_name") {
        return r.current ? r.current->facts.common_name : std::string();
      }
      int64_t v = 0;
      if (field == "not_after") {
        v = r.current ? r.current->facts.not_after_us : INT64_MAX;
      } else if (field == "not_before") {
        v = r.current ? r.current->facts.not_before_us : INT64_MIN;
      } else if (field == "key_bits") {
        v = r.current ? r.current->facts.key_bits : 0;
      } else if (field == "create_time") {
        v = absl::ToUnixMicros(r.create_time);
      } else if (field == "update_time") {
        v = absl::ToUnixMicros(r.update_time);
      }
      // Order-preserving text for signed integers.
      return absl::StrCat(
          absl::Hex(static_cast<uint64_t>(v) ^ (1ull << 63), absl::kZeroPad16));
    };
    for (const char* field :
         {"display_name", "common_name", "not_after", "not_before", "owner",
          "create_time", "update_time", "key_bits"}) {
      for (bool desc : {false, true}) {
        INFO("order_by " << field << (desc ? " desc" : ""));
        ListQuery q;
        q.order_by = absl::StrCat(field, desc ? " desc" : "");
        q.page_size = 4;
        q.now = kNow;
        std::vector<CertificateRecord> got = ListAll(*store, q);
        std::vector<std::pair<std::string, std::string>> want;
        for (const CertificateRecord& r : everything) {
          want.emplace_back(field_key(field, r), r.certificate_id);
        }
        std::sort(want.begin(), want.end());
        if (desc) std::reverse(want.begin(), want.end());
        REQUIRE(got.size() == want.size());
        for (size_t i = 0; i < got.size(); ++i) {
          CHECK(got[i].certificate_id == want[i].second);
        }
      }
    }
    // Two fields, mixed directions.
    ListQuery q;
    q.order_by = "owner, not_after desc";
    q.page_size = 5;
    q.now = kNow;
    std::vector<CertificateRecord> got = ListAll(*store, q);
    std::vector<std::tuple<std::string, int64_t, std::string>> want;
    for (const CertificateRecord& r : everything) {
      int64_t na = r.current ? r.current->facts.not_after_us : INT64_MAX;
      // not_after descending, id descending (the tie-breaker follows the
      // last field's direction).
      want.emplace_back(r.owner, -na - 1, std::string());
      std::get<2>(want.back()) = r.certificate_id;
    }
    std::sort(want.begin(), want.end(), [](const auto& a, const auto& b) {
      if (std::get<0>(a) != std::get<0>(b))
        return std::get<0>(a) < std::get<0>(b);
      if (std::get<1>(a) != std::get<1>(b))
        return std::get<1>(a) < std::get<1>(b);
      return std::get<2>(a) > std::get<2>(b);
    });
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      CHECK(got[i].certificate_id == std::get<2>(want[i]));
    }

    // total_size counts the whole filter on every page.
    q = ListQuery();
    q.filter = "owner = o0";
    q.page_size = 3;
    q.now = kNow;
    CertificatePage page = ValueOrDie(store->ListCertificates(q));
    CHECK(page.total_size == 8);
    q.page_token = page.next_page_token;
    CHECK(ValueOrDie(store->ListCertificates(q)).total_size == 8);
  });
}

TEST_CASE("ListTotalSizeIsCappedAtAThousandAndCarriedToLaterPages") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    std::vector<ImportItem> items;
    for (int i = 0; i < 1001; ++i) {
      ImportItem item;
      item.der = "x";
      item.facts.sha256_hex = Sha(i);
      item.facts.not_after_us = DaysUs(1);
      item.environments = {i % 2 == 0 ? "prod" : "dev"};
      items.push_back(std::move(item));
    }
    Import(*store, items);
    ListQuery q;
    q.page_size = 10;
    q.now = kNow;
    CertificatePage first = ValueOrDie(store->ListCertificates(q));
    CHECK(first.total_size == 1001);
    q.filter = "days_to_expiry < 2";
    CHECK(ValueOrDie(store->ListCertificates(q)).total_size == 1001);
    q.filter = "environment = prod";
    first = ValueOrDie(store->ListCertificates(q));
    CHECK(first.total_size == 501);
    // Later pages repeat the first page's count, even after more rows match.
    ImportItem late;
    late.der = "x";
    late.facts.sha256_hex = Sha(5000);
    late.facts.not_after_us = DaysUs(1);
    late.environments = {"prod"};
    Import(*store, {late});
    q.page_token = first.next_page_token;
    CertificatePage second = ValueOrDie(store->ListCertificates(q));
    CHECK(second.total_size == 501);
    CHECK(second.certificates.size() == 10);
    q.page_token.clear();
    CHECK(ValueOrDie(store->ListCertificates(q)).total_size == 502);
  });
}

TEST_CASE("UpdateMetadataAppliesMaskedFieldsAndChecksEtags") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    Fleet fleet = MakeFleet(*store);
    const std::string id = fleet.ids["one"];
    CertificateRecord before = ValueOrDie(store->GetCertificate(id));
    const int64_t revision = ValueOrDie(store->LatestRevision());

    MetadataUpdate u;
    u.fields = {"owner", "tags", "environments", "auto_renew"};
    u.values.owner = "platform";
    u.values.display_name = "ignored: not in the mask";
    u.values.tags = {{"team", "platform"}, {"odd", "a\"b\\c,{x} y"}};
    u.values.environments = {"prod", "dev"};
    u.values.auto_renew = true;
    u.expected_etag = before.etag;
    CertificateRecord after = ValueOrDie(
        store->UpdateMetadata(id, u, kActor, kNow + absl::Seconds(9)));
    CHECK(after.owner == "platform");
    CHECK(after.display_name == "one");
    CHECK(after.tags == u.values.tags);
    CHECK(after.environments == std::vector<std::string>{"dev", "prod"});
    CHECK(after.auto_renew);
    CHECK(after.etag != before.etag);
    CHECK(after.update_time == kNow + absl::Seconds(9));
    CHECK(after.current.has_value());
    CertificateRecord got = ValueOrDie(store->GetCertificate(id));
    CHECK(got.owner == "platform");
    CHECK(got.etag == after.etag);
    CHECK(got.environments == after.environments);
    CHECK(Names(*store, "environment = dev") == Set{"one"});
    CHECK(Names(*store, "tags.team = platform") == Set{"one"});
    CHECK(Names(*store, "tags.tier:*").empty());
    CHECK(Names(*store, "tags.team = pay").empty());
    CHECK(Names(*store, "tags.odd = \"a\\\"b\\\\c,{x} y\"") == Set{"one"});
    CHECK(Names(*store, "environment = prod AND tags.team = platform") ==
          Set{"one"});

    std::vector<ChangeRecord> changes = AllChanges(*store);
    REQUIRE(changes.size() == static_cast<size_t>(revision + 1));
    const ChangeRecord& c = changes.back();
    CHECK(c.kind == "certificate_updated");
    CHECK(c.certificate_id == id);
    CHECK(c.changed_fields == std::vector<std::string>{"owner", "auto_renew",
                                                       "environments", "tags"});
    CHECK(c.not_after_us == DaysUs(10));
    CHECK(c.sha256_hex == Sha(1));

    // Stale etag.
    CHECK_THAT(store->UpdateMetadata(id, u, kActor, kNow),
               StatusIs(Code::kAborted, "etag"));
    // Nothing differs: no change row, same etag.
    u.expected_etag = after.etag;
    CertificateRecord same =
        ValueOrDie(store->UpdateMetadata(id, u, kActor, kNow));
    CHECK(same.etag == after.etag);
    CHECK(ValueOrDie(store->LatestRevision()) == revision + 1);
    // Unknown field.
    u.fields = {"owner", "serial"};
    CHECK_THAT(store->UpdateMetadata(id, u, kActor, kNow),
               StatusIs(Code::kInvalidArgument, "serial"));
    u.fields = {"renew_before_days", "reuse_key", "desired", "display_name"};
    u.values.renew_before_days = 15;
    u.values.reuse_key = true;
    u.values.desired = std::string("\x00\x01", 2);
    u.expected_etag = "";
    got = ValueOrDie(store->UpdateMetadata(id, u, kActor, kNow));
    CHECK(got.renew_before_days == 15);
    CHECK(got.reuse_key);
    CHECK(got.desired == u.values.desired);
    CHECK(got.display_name == "ignored: not in the mask");
    CHECK(ValueOrDie(store->GetCertificate(id)).desired == u.values.desired);

    CHECK_THAT(store->UpdateMetadata(absl::StrCat("c", std::string(32, '2')), u,
                                     kActor, kNow),
               StatusIs(Code::kNotFound));
    REQUIRE_THAT(store->DeleteCertificate(id, "", kActor, kNow), IsOk());
    CHECK_THAT(store->UpdateMetadata(id, u, kActor, kNow),
               StatusIs(Code::kFailedPrecondition, "deleted"));
  });
}

TEST_CASE("DeleteIsSoftAndHiddenUnlessShowDeleted") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    Fleet fleet = MakeFleet(*store);
    const std::string id = fleet.ids["two"];
    CHECK_THAT(store->DeleteCertificate(id, "stale", kActor, kNow),
               StatusIs(Code::kAborted));
    const std::string etag = ValueOrDie(store->GetCertificate(id)).etag;
    CertificateRecord deleted = ValueOrDie(
        store->DeleteCertificate(id, etag, kActor, kNow + absl::Hours(1)));
    REQUIRE(deleted.delete_time.has_value());
    CHECK(*deleted.delete_time == kNow + absl::Hours(1));
    CHECK(deleted.etag != etag);
    CertificateRecord got = ValueOrDie(store->GetCertificate(id));
    CHECK(got.delete_time == deleted.delete_time);
    CHECK(got.current.has_value());
    CHECK(Names(*store, "") == Set{"one", "three", "four", "five"});
    CHECK(Names(*store, "", /*show_deleted=*/true) ==
          Set{"one", "two", "three", "four", "five"});
    CHECK(Names(*store, "owner = web", true) == Set{"two"});
    CHECK(ValueOrDie(store->Stats("", kNow)).total == 4);
    CHECK_THAT(store->DeleteCertificate(id, "", kActor, kNow),
               StatusIs(Code::kFailedPrecondition, "already deleted"));
    CHECK_THAT(store->DeleteCertificate(absl::StrCat("c", std::string(32, '3')),
                                        "", kActor, kNow),
               StatusIs(Code::kNotFound));
    CHECK(AllChanges(*store).back().kind == "certificate_deleted");
    CHECK(AllChanges(*store).back().sha256_hex == Sha(2));
  });
}

TEST_CASE("RevokeVersionMarksItRevokedOnce") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    Fleet fleet = MakeFleet(*store);
    const std::string id = fleet.ids["one"];
    VersionRecord v = ValueOrDie(
        store->RevokeVersion(id, 1, "", kNow - absl::Hours(2), kActor, kNow));
    CHECK(v.status == "revoked");
    CHECK(v.revocation_reason == "unspecified");
    CHECK(v.revoke_time == kNow - absl::Hours(2));
    VersionRecord got = ValueOrDie(store->GetVersion(id, 1));
    CHECK(got.status == "revoked");
    CHECK(got.revoke_time == kNow - absl::Hours(2));
    CHECK(got.der == Der(1));
    CHECK(Names(*store, "status = REVOKED") == Set{"one", "four"});
    CHECK_THAT(store->RevokeVersion(id, 1, "", kNow, kActor, kNow),
               StatusIs(Code::kFailedPrecondition, "already revoked"));
    CHECK_THAT(store->RevokeVersion(id, 2, "", kNow, kActor, kNow),
               StatusIs(Code::kNotFound));
    ChangeRecord c = AllChanges(*store).back();
    CHECK(c.kind == "version_revoked");
    CHECK(c.version == 1);
  });
}

int64_t CountOf(const std::vector<StatsCount>& counts, const std::string& key) {
  for (const StatsCount& c : counts) {
    if (c.key == key) return c.count;
  }
  return 0;
}

TEST_CASE("StatsCountBucketsAgainstTheGivenTime") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    MakeFleet(*store);
    StatsRecord s = ValueOrDie(store->Stats("", kNow));
    CHECK(s.total == 5);
    REQUIRE(s.by_expiry.size() == 6);
    const std::vector<std::pair<std::string, int64_t>> expiry = {
        {"expired", 1}, {"<=7d", 0},  {"<=30d", 1},
        {"<=60d", 1},   {"<=90d", 0}, {">90d", 1}};
    for (size_t i = 0; i < 6; ++i) {
      CHECK(s.by_expiry[i].key == expiry[i].first);
      CHECK(s.by_expiry[i].count == expiry[i].second);
    }
    CHECK(CountOf(s.by_status, "ACTIVE") == 2);
    CHECK(CountOf(s.by_status, "EXPIRED") == 1);
    CHECK(CountOf(s.by_status, "REVOKED") == 1);
    CHECK(s.by_status.size() == 3);
    CHECK(CountOf(s.by_issuer, "R3") == 2);
    CHECK(CountOf(s.by_issuer, "Internal CA") == 2);
    CHECK(CountOf(s.by_key, "RSA 2048") == 1);
    CHECK(CountOf(s.by_key, "RSA 1024") == 1);
    CHECK(CountOf(s.by_key, "ECDSA P-256") == 1);
    CHECK(CountOf(s.by_key, "Ed25519") == 1);
    CHECK(CountOf(s.by_signature_algorithm, "sha1WithRSAEncryption") == 1);
    CHECK(CountOf(s.by_owner, "payments") == 3);
    CHECK(s.by_owner[0].key == "payments");
    CHECK(CountOf(s.by_environment, "prod") == 2);
    CHECK(CountOf(s.by_environment, "staging") == 2);
    CHECK(CountOf(s.by_source, "IMPORTED") == 2);
    CHECK(CountOf(s.by_source, "ISSUED") == 2);
    CHECK(CountOf(s.by_source, "DISCOVERED") == 1);
    CHECK(s.weak_key_count == 1);
    CHECK(s.weak_signature_count == 1);

    // Forty days later, "one" has expired too and "two" is due in 5 days.
    s = ValueOrDie(store->Stats("", Days(40)));
    CHECK(s.by_expiry[0].count == 2);
    CHECK(s.by_expiry[1].count == 1);
    CHECK(CountOf(s.by_status, "EXPIRED") == 2);

    s = ValueOrDie(store->Stats("owner = payments", kNow));
    CHECK(s.total == 3);
    CHECK(CountOf(s.by_environment, "prod") == 1);
    CHECK(s.by_expiry.size() == 6);
    s = ValueOrDie(store->Stats("owner = nobody", kNow));
    CHECK(s.total == 0);
    CHECK(s.by_expiry.size() == 6);
  });
}

TEST_CASE("StatsKeepsTheFiftyLargestIssuers") {
  auto db = certplane::testing::OpenFreshDatabase(db::Dialect::kSqlite);
  auto store = NewStore(*db);
  std::vector<ImportItem> items;
  for (int i = 0; i < 60; ++i) {
    for (int k = 0; k <= (i < 50 ? 2 : 0); ++k) {
      ImportItem item = Item(i * 10 + k);
      item.facts.issuer_cn = absl::StrCat("CA ", i);
      items.push_back(item);
    }
  }
  Import(*store, items);
  StatsRecord s = ValueOrDie(store->Stats("", kNow));
  REQUIRE(s.by_issuer.size() == 51);
  CHECK(s.by_issuer[0].count == 3);
  CHECK(s.by_issuer.back().key == "(other)");
  CHECK(s.by_issuer.back().count == 10);
}

TEST_CASE("ChangeFeedIsGaplessAndOrderedUnderConcurrentWriters") {
  db::DatabaseOptions options = certplane::testing::TestDatabaseOptions();
  options.pool_size = 6;
  ForEachBackend(
      [](db::Database& db) {
        auto store = NewStore(db);
        constexpr int kThreads = 4;
        constexpr int kBatches = 8;
        constexpr int kPerBatch = 25;
        constexpr int kShared = 3;
        std::vector<std::thread> threads;
        std::vector<absl::Status> errors(kThreads);
        for (int t = 0; t < kThreads; ++t) {
          threads.emplace_back([&, t]() {
            for (int b = 0; b < kBatches; ++b) {
              std::vector<ImportItem> items;
              for (int i = 0; i < kPerBatch; ++i) {
                // Overlapping batches: slots 0..2 repeat the next thread's
                // slots 3..5, so threads race to store the same
                // certificates.
                int n = (t * kBatches + b) * kPerBatch + i;
                if (i < kShared) {
                  n = (((t + 1) % kThreads) * kBatches + b) * kPerBatch + i +
                      kShared;
                }
                items.push_back(Item(n));
              }
              absl::StatusOr<ImportBatchResult> r =
                  store->ImportBatch({}, items, kActor, kNow);
              if (!r.ok()) {
                errors[t] = r.status();
                return;
              }
            }
          });
        }
        for (std::thread& th : threads) th.join();
        for (const absl::Status& s : errors) CHECK_THAT(s, IsOk());

        constexpr int kCerts = kThreads * kBatches * (kPerBatch - kShared);
        std::vector<ChangeRecord> changes = AllChanges(*store);
        REQUIRE(changes.size() == 2 * kCerts);
        std::map<std::string, int> per_certificate;
        for (size_t i = 0; i < changes.size(); ++i) {
          REQUIRE(changes[i].revision == static_cast<int64_t>(i + 1));
          per_certificate[changes[i].certificate_id]++;
        }
        CHECK(per_certificate.size() == kCerts);
        CHECK(ValueOrDie(store->LatestRevision()) == 2 * kCerts);

        // Paging the feed.
        std::vector<ChangeRecord> page = ValueOrDie(store->ChangesAfter(10, 5));
        REQUIRE(page.size() == 5);
        CHECK(page[0].revision == 11);
        CHECK(ValueOrDie(store->ChangesAfter(2 * kCerts, 5)).empty());
        CHECK_THAT(store->ChangesAfter(0, 0),
                   StatusIs(Code::kInvalidArgument, "limit"));
      },
      options);
}

}  // namespace
}  // namespace certplane::inventory
