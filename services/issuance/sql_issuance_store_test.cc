// The issuance store on SQLite and PostgreSQL: creation and idempotency,
// transitions as compare-and-set with their history, approvals, the
// one-open-renewal rule, and work-queue claims shared by several workers.
#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/db/database.h"
#include "libs/db/migrate.h"
#include "libs/testing/db_test_util.h"
#include "libs/testing/status_matchers.h"
#include "services/issuance/issuance_store.h"
#include "services/issuance/migrations.h"

namespace certplane::issuance {
namespace {

using ::certplane::testing::ForEachBackend;
using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using Code = absl::StatusCode;

const absl::Time kNow = absl::FromUnixSeconds(1796300000);

template <typename T>
T ValueOrDie(absl::StatusOr<T> v) {
  REQUIRE_THAT(v.status(), IsOk());
  return *std::move(v);
}

std::unique_ptr<IssuanceStore> NewStore(db::Database& db) {
  REQUIRE_THAT(db::Migrate(db, IssuanceMigrations()), IsOk());
  return NewSqlIssuanceStore(db);
}

OrderRecord Order(int n, std::string state = kPendingApproval) {
  OrderRecord o;
  o.state = std::move(state);
  o.reason = "new";
  o.issuer_id = "internal";
  o.owner = "payments";
  o.environment = "prod";
  o.requester = "alice";
  o.common_name = absl::StrCat("host", n, ".example.com");
  o.sans = {o.common_name, "10.0.0.1"};
  o.spec = std::string("\x00\x01spec\xff", 7);
  o.request_hash = absl::StrCat("hash", n);
  o.required_approvals = 1;
  o.next_attempt_time = kNow;
  return o;
}

OrderEventRecord Created() {
  return {.from_state = "",
          .to_state = "",
          .time = kNow,
          .actor = "alice",
          .reason = "created"};
}

OrderEventRecord To(const std::string& state, absl::Time t = kNow,
                    std::string actor = "issuance") {
  return {.from_state = "",
          .to_state = state,
          .time = t,
          .actor = std::move(actor),
          .reason = absl::StrCat("to ", state)};
}

std::vector<std::string> States(std::initializer_list<const char*> states) {
  return {states.begin(), states.end()};
}

TEST_CASE("CreateOrderStoresEveryFieldAndItsCreationEvent") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    OrderRecord o = Order(1);
    o.renewal_of = "c0123";
    o.reason = "renewal";
    o.not_after_us = 42;
    OrderRecord created = ValueOrDie(store->CreateOrder(o, Created()));
    CHECK(created.order_id.size() == 33);
    CHECK(created.order_id[0] == 'o');
    CHECK_FALSE(created.etag.empty());
    OrderRecord got = ValueOrDie(store->GetOrder(created.order_id));
    CHECK(got.state == kPendingApproval);
    CHECK(got.reason == "renewal");
    CHECK(got.issuer_id == "internal");
    CHECK(got.owner == "payments");
    CHECK(got.environment == "prod");
    CHECK(got.requester == "alice");
    CHECK(got.common_name == "host1.example.com");
    CHECK(got.sans == o.sans);
    CHECK(got.spec == o.spec);
    CHECK(got.required_approvals == 1);
    CHECK(got.renewal_of == "c0123");
    CHECK(got.not_after_us == std::optional<int64_t>(42));
    CHECK(got.next_attempt_time == kNow);
    CHECK(got.lease_owner.empty());
    CHECK(got.create_time == kNow);
    CHECK(got.etag == created.etag);
    REQUIRE(got.events.size() == 1);
    CHECK(got.events[0].from_state.empty());
    CHECK(got.events[0].to_state == kPendingApproval);
    CHECK(got.events[0].actor == "alice");
    CHECK(got.approvals.empty());

    CHECK_THAT(store->GetOrder("o" + std::string(32, '0')),
               StatusIs(Code::kNotFound));
    CHECK_THAT(store->GetOrder("x"),
               StatusIs(Code::kInvalidArgument, "order id"));
    OrderRecord bad = Order(2, "lost");
    CHECK_THAT(store->CreateOrder(bad, Created()),
               StatusIs(Code::kInvalidArgument, "state"));
  });
}

TEST_CASE("CreateOrderIsIdempotentByRequestId") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    OrderRecord o = Order(1);
    o.request_id = "req-1";
    OrderRecord first = ValueOrDie(store->CreateOrder(o, Created()));
    OrderRecord again = ValueOrDie(store->CreateOrder(o, Created()));
    CHECK(again.order_id == first.order_id);
    OrderRecord different = Order(2);
    different.request_id = "req-1";
    CHECK_THAT(store->CreateOrder(different, Created()),
               StatusIs(Code::kAlreadyExists, "req-1"));
    // Concurrent creates with one request_id make one order.
    OrderRecord racy = Order(3);
    racy.request_id = "req-race";
    std::set<std::string> ids;
    absl::Mutex mu;
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&] {
        absl::StatusOr<OrderRecord> r = store->CreateOrder(racy, Created());
        absl::MutexLock lock(&mu);
        if (r.ok()) ids.insert(r->order_id);
      });
    }
    for (std::thread& t : threads) t.join();
    CHECK(ids.size() == 1);
  });
}

TEST_CASE("TransitionIsACompareAndSetThatRecordsTheHistory") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    OrderRecord o =
        ValueOrDie(store->CreateOrder(Order(1, kApproved), Created()));
    OrderUpdate u;
    u.key_name = "keys/k1";
    u.csr_pem = "-----BEGIN CERTIFICATE REQUEST-----";
    OrderRecord ready = ValueOrDie(store->Transition(
        o.order_id, States({kApproved}), To(kKeyReady, kNow + absl::Seconds(1)),
        u, o.etag, ""));
    CHECK(ready.state == kKeyReady);
    CHECK(ready.key_name == "keys/k1");
    CHECK(ready.etag != o.etag);
    // A stale etag is ABORTED; a state not in from_states is refused.
    CHECK_THAT(store->Transition(o.order_id, States({kKeyReady}),
                                 To(kSubmitted), {}, o.etag, ""),
               StatusIs(Code::kAborted, "etag"));
    CHECK_THAT(store->Transition(o.order_id, States({kApproved}), To(kKeyReady),
                                 {}, "", ""),
               StatusIs(Code::kFailedPrecondition, "key_ready"));
    OrderUpdate issued;
    issued.certificate_der = std::string("\x30\x82\x00\x00", 4);
    issued.serial_hex = "0abc";
    issued.not_after_us = 99;
    issued.certificate_version = "certificates/c1/versions/1";
    OrderRecord done = ValueOrDie(store->Transition(
        o.order_id, States({kKeyReady}), To(kIssued, kNow + absl::Seconds(2)),
        issued, "", ""));
    OrderRecord got = ValueOrDie(store->GetOrder(o.order_id));
    CHECK(got.state == kIssued);
    CHECK(got.certificate_der == *issued.certificate_der);
    CHECK(got.serial_hex == "0abc");
    CHECK(got.not_after_us == std::optional<int64_t>(99));
    CHECK(got.key_name == "keys/k1");
    CHECK(got.update_time == kNow + absl::Seconds(2));
    REQUIRE(got.events.size() == 3);
    CHECK(got.events[1].from_state == kApproved);
    CHECK(got.events[1].to_state == kKeyReady);
    CHECK(got.events[2].from_state == kKeyReady);
    CHECK(got.events[2].to_state == kIssued);
    CHECK(got.events[2].time == kNow + absl::Seconds(2));
    CHECK(done.events.size() == 3);
  });
}

TEST_CASE("ApprovalsCountOncePerApproverAndApproveAtTheRequiredNumber") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    OrderRecord o = Order(1);
    o.required_approvals = 2;
    o = ValueOrDie(store->CreateOrder(o, Created()));
    OrderRecord one = ValueOrDie(
        store->AddApproval(o.order_id, {"bob", kNow, "looks fine"}, o.etag));
    CHECK(one.state == kPendingApproval);
    CHECK_THAT(store->AddApproval(o.order_id, {"bob", kNow, ""}, ""),
               StatusIs(Code::kAlreadyExists, "bob"));
    CHECK_THAT(store->AddApproval(o.order_id, {"carol", kNow, ""}, o.etag),
               StatusIs(Code::kAborted));
    OrderRecord two =
        ValueOrDie(store->AddApproval(o.order_id, {"carol", kNow, ""}, ""));
    CHECK(two.state == kApproved);
    OrderRecord got = ValueOrDie(store->GetOrder(o.order_id));
    REQUIRE(got.approvals.size() == 2);
    CHECK(got.state == kApproved);
    REQUIRE(got.events.size() == 3);
    CHECK(got.events[1].to_state == kPendingApproval);
    CHECK(got.events[1].actor == "bob");
    CHECK(got.events[2].to_state == kApproved);
    CHECK(got.events[2].actor == "carol");
    CHECK_THAT(store->AddApproval(o.order_id, {"dave", kNow, ""}, ""),
               StatusIs(Code::kFailedPrecondition, "approved"));
  });
}

TEST_CASE("ACertificateHasAtMostOneOpenRenewalOrder") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    OrderRecord r = Order(1, kApproved);
    r.reason = "renewal";
    r.renewal_of = "c1";
    OrderRecord first = ValueOrDie(store->CreateOrder(r, Created()));
    CHECK_THAT(store->CreateOrder(r, Created()),
               StatusIs(Code::kAlreadyExists, first.order_id));
    std::optional<OrderRecord> open = ValueOrDie(store->FindOpenRenewal("c1"));
    REQUIRE(open.has_value());
    CHECK(open->order_id == first.order_id);
    REQUIRE_THAT(store
                     ->Transition(first.order_id, States({kApproved}),
                                  To(kFailed), {}, "", "")
                     .status(),
                 IsOk());
    CHECK_FALSE(ValueOrDie(store->FindOpenRenewal("c1")).has_value());
    OrderRecord second = ValueOrDie(store->CreateOrder(r, Created()));
    CHECK(second.order_id != first.order_id);
  });
}

TEST_CASE("ClaimsLeaseDueOrdersToOneWorkerAtATime") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    OrderRecord due =
        ValueOrDie(store->CreateOrder(Order(1, kApproved), Created()));
    OrderRecord later = Order(2, kApproved);
    later.next_attempt_time = kNow + absl::Hours(1);
    later = ValueOrDie(store->CreateOrder(later, Created()));
    ValueOrDie(store->CreateOrder(Order(3, kPendingApproval), Created()));

    std::vector<OrderRecord> a = ValueOrDie(store->ClaimOrders(
        States({kApproved, kKeyReady}), "a", kNow, absl::Minutes(1), 10));
    REQUIRE(a.size() == 1);
    CHECK(a[0].order_id == due.order_id);
    CHECK(a[0].lease_owner == "a");
    // Leased: nobody else gets it until the lease ends.
    CHECK(ValueOrDie(store->ClaimOrders(States({kApproved}), "b", kNow,
                                        absl::Minutes(1), 10))
              .empty());
    // Only the holder may move it.
    CHECK_THAT(store->Transition(due.order_id, States({kApproved}),
                                 To(kKeyReady), {}, "", "b"),
               StatusIs(Code::kFailedPrecondition, "leased"));
    // After the lease expires (the worker died) another worker takes over,
    // and the first may no longer act.
    std::vector<OrderRecord> b = ValueOrDie(
        store->ClaimOrders(States({kApproved}), "b", kNow + absl::Minutes(2),
                           absl::Minutes(1), 10));
    REQUIRE(b.size() == 1);
    CHECK_THAT(store->Transition(due.order_id, States({kApproved}),
                                 To(kKeyReady), {}, "", "a"),
               StatusIs(Code::kFailedPrecondition));
    OrderUpdate release;
    release.release_lease = true;
    release.next_attempt_time = kNow + absl::Minutes(2);
    OrderRecord moved = ValueOrDie(store->Transition(
        due.order_id, States({kApproved}), To(kKeyReady), release, "", "b"));
    CHECK(moved.lease_owner.empty());
    std::vector<OrderRecord> c = ValueOrDie(
        store->ClaimOrders(States({kKeyReady}), "c", kNow + absl::Minutes(2),
                           absl::Minutes(1), 10));
    REQUIRE(c.size() == 1);
    CHECK(c[0].state == kKeyReady);
    CHECK_THAT(
        store->ClaimOrders(States({kIssued}), "c", kNow, absl::Minutes(1), 10),
        StatusIs(Code::kInvalidArgument, "issued"));
  });
}

TEST_CASE("ConcurrentWorkersNeverClaimTheSameOrder") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    constexpr int kOrders = 200;
    for (int i = 0; i < kOrders; ++i) {
      ValueOrDie(store->CreateOrder(Order(i, kApproved), Created()));
    }
    absl::Mutex mu;
    std::map<std::string, int> claims;
    std::atomic<int> errors{0};
    std::vector<std::thread> workers;
    for (int w = 0; w < 4; ++w) {
      workers.emplace_back([&, w] {
        for (;;) {
          absl::StatusOr<std::vector<OrderRecord>> got =
              store->ClaimOrders(States({kApproved}), absl::StrCat("w", w),
                                 kNow, absl::Hours(1), 7);
          if (!got.ok()) {
            if (++errors > 20) return;
            continue;
          }
          if (got->empty()) return;
          absl::MutexLock lock(&mu);
          for (const OrderRecord& o : *got) ++claims[o.order_id];
        }
      });
    }
    for (std::thread& t : workers) t.join();
    CHECK(errors.load() == 0);
    CHECK(claims.size() == kOrders);
    for (const auto& [id, n] : claims) {
      INFO(id);
      CHECK(n == 1);
    }
  });
}

TEST_CASE("ListOrdersFiltersAndPagesNewestFirst") {
  ForEachBackend([](db::Database& db) {
    auto store = NewStore(db);
    for (int i = 0; i < 7; ++i) {
      OrderRecord o = Order(i, i % 2 == 0 ? kPendingApproval : kApproved);
      o.owner = i < 5 ? "payments" : "web";
      OrderEventRecord created = Created();
      created.time = kNow + absl::Seconds(i);
      REQUIRE_THAT(store->CreateOrder(o, created).status(), IsOk());
    }
    OrderQuery query;
    query.page_size = 3;
    query.filter = "owner = payments";
    std::vector<std::string> names;
    for (int pages = 0; pages < 5; ++pages) {
      OrderPage page = ValueOrDie(store->ListOrders(query));
      CHECK(page.total_size == 5);
      for (const OrderRecord& o : page.orders) names.push_back(o.common_name);
      if (page.next_page_token.empty()) break;
      query.page_token = page.next_page_token;
    }
    CHECK(names ==
          std::vector<std::string>{"host4.example.com", "host3.example.com",
                                   "host2.example.com", "host1.example.com",
                                   "host0.example.com"});

    auto count = [&](const std::string& filter) {
      OrderQuery q;
      q.page_size = 100;
      q.filter = filter;
      return ValueOrDie(store->ListOrders(q)).orders.size();
    };
    CHECK(count("state = PENDING_APPROVAL") == 4);
    CHECK(count("state = approved AND owner = web") == 1);
    CHECK(count("issuer = \"issuers/internal\"") == 7);
    CHECK(count("issuer = internal") == 7);
    CHECK(count("reason = NEW_CERTIFICATE") == 7);
    CHECK(count("reason = RENEWAL") == 0);
    CHECK(count("san = host3.example.com") == 1);
    CHECK(count("san = 10.0.0.1") == 7);
    CHECK(count("san:*.example.com") == 7);
    CHECK(count("san:host1*") == 1);
    CHECK(count("san = example.com") == 0);
    CHECK(count("create_time >= \"2026-12-03T00:00:00Z\"") == 7);

    OrderQuery oldest;
    oldest.page_size = 1;
    oldest.order_by = "create_time";
    CHECK(ValueOrDie(store->ListOrders(oldest)).orders[0].common_name ==
          "host0.example.com");

    OrderQuery bad;
    bad.filter = "state = LOST";
    CHECK_THAT(store->ListOrders(bad),
               StatusIs(Code::kInvalidArgument, "LOST"));
    bad.filter = "colour = red";
    CHECK_THAT(store->ListOrders(bad),
               StatusIs(Code::kInvalidArgument, "colour"));
    bad.filter = "";
    bad.order_by = "owner";
    CHECK_THAT(store->ListOrders(bad), StatusIs(Code::kInvalidArgument));
    bad.order_by = "";
    bad.page_token = "garbage";
    CHECK_THAT(store->ListOrders(bad), StatusIs(Code::kInvalidArgument));
    bad.page_token = "";
    bad.page_size = 0;
    CHECK_THAT(store->ListOrders(bad), StatusIs(Code::kInvalidArgument));
  });
}

TEST_CASE("TheFirstStoredCaWinsAndCrlsPublishInSequence") {
  ForEachBackend([](db::Database& db) {
    NewStore(db);
    auto cas = NewSqlCaStore(db);
    CHECK(!ValueOrDie(cas->GetCa("internal")).has_value());
    CaRecord ca;
    ca.issuer_id = "internal";
    ca.root_key_name = "keys/root";
    ca.root_der = std::string("\x30\x00root", 6);
    ca.intermediate_key_name = "keys/inter";
    ca.intermediate_der = std::string("\x30\x01inter", 7);
    ca.create_time = kNow;
    CHECK(ValueOrDie(cas->CreateCa(ca)).root_key_name == "keys/root");
    CaRecord second = ca;
    second.root_key_name = "keys/other";
    CHECK(ValueOrDie(cas->CreateCa(second)).root_key_name == "keys/root");
    CaRecord got = *ValueOrDie(cas->GetCa("internal"));
    CHECK(got.root_der == ca.root_der);
    CHECK(got.intermediate_der == ca.intermediate_der);
    CHECK(got.crl_number == 0);

    RevocationRecord r{.issuer_id = "internal",
                       .serial_hex = "0a1b",
                       .reason = "keyCompromise",
                       .revoke_time = kNow,
                       .certificate_version = "certificates/c1/versions/1"};
    CHECK(ValueOrDie(cas->AddRevocation(r)).reason == "keyCompromise");
    RevocationRecord again = r;
    again.reason = "superseded";
    CHECK(ValueOrDie(cas->AddRevocation(again)).reason == "keyCompromise");

    CHECK_THAT(
        cas->PublishCrl("internal", 2, "crl", kNow, kNow + absl::Hours(1)),
        StatusIs(Code::kAborted));
    CaRecord published = ValueOrDie(
        cas->PublishCrl("internal", 1, "crl1", kNow, kNow + absl::Hours(24)));
    CHECK(published.crl_number == 1);
    CHECK(ValueOrDie(cas->GetCa("internal"))->crl_der == "crl1");
    std::vector<RevocationRecord> all =
        ValueOrDie(cas->ListRevocations("internal"));
    REQUIRE(all.size() == 1);
    CHECK(all[0].crl_number == 1);
    CHECK_THAT(cas->PublishCrl("internal", 1, "again", kNow, kNow),
               StatusIs(Code::kAborted));
    CHECK_THAT(cas->PublishCrl("other", 1, "x", kNow, kNow),
               StatusIs(Code::kNotFound));
  });
}

TEST_CASE("TheRenewalScheduleKeepsFailuresPerVersionAndLeasesDueOnes") {
  ForEachBackend([](db::Database& db) {
    NewStore(db);
    auto renewals = NewSqlRenewalStore(db);
    RenewalRecord r;
    r.certificate_id = "c1";
    r.version = "certificates/c1/versions/1";
    r.not_after = kNow + absl::Hours(24 * 90);
    r.renew_time = kNow + absl::Hours(24 * 60);
    REQUIRE_THAT(renewals->UpsertRenewal(r, kNow), IsOk());
    RenewalRecord due = r;
    due.certificate_id = "c2";
    due.version = "certificates/c2/versions/1";
    due.renew_time = kNow - absl::Hours(1);
    REQUIRE_THAT(renewals->UpsertRenewal(due, kNow), IsOk());

    std::vector<RenewalRecord> claimed = ValueOrDie(
        renewals->ClaimDueRenewals("w1", kNow, absl::Minutes(5), 10));
    REQUIRE(claimed.size() == 1);
    CHECK(claimed[0].certificate_id == "c2");
    // Leased: nobody else gets it.
    CHECK(
        ValueOrDie(renewals->ClaimDueRenewals("w2", kNow, absl::Minutes(5), 10))
            .empty());
    CHECK_THAT(renewals->FinishRenewal("c2", "w2", {}, kNow),
               StatusIs(Code::kFailedPrecondition));
    RenewalUpdate ordered;
    ordered.last_order_id = "o1";
    ordered.next_attempt_time = kNow + absl::Hours(1);
    REQUIRE_THAT(renewals->FinishRenewal("c2", "w1", ordered, kNow), IsOk());
    CHECK(
        ValueOrDie(renewals->ClaimDueRenewals("w2", kNow, absl::Minutes(5), 10))
            .empty());
    // The order ended: a poke makes the renewal due now.
    REQUIRE_THAT(renewals->PokeRenewal("c2", "other", kNow), IsOk());
    CHECK(ValueOrDie(renewals->GetRenewal("c2")).next_attempt_time ==
          kNow + absl::Hours(1));
    REQUIRE_THAT(renewals->PokeRenewal("c2", "o1", kNow), IsOk());
    claimed = ValueOrDie(
        renewals->ClaimDueRenewals("w2", kNow, absl::Minutes(5), 10));
    REQUIRE(claimed.size() == 1);
    REQUIRE_THAT(
        renewals->FinishRenewal("c2", "w2",
                                {.last_order_id = "",
                                 .failure_count = 1,
                                 .last_error = "CA down",
                                 .next_attempt_time = kNow + absl::Hours(1)},
                                kNow),
        IsOk());
    // The same version keeps its failures; a new one starts afresh.
    REQUIRE_THAT(renewals->UpsertRenewal(due, kNow), IsOk());
    RenewalRecord got = ValueOrDie(renewals->GetRenewal("c2"));
    CHECK(got.failure_count == 1);
    CHECK(got.last_error == "CA down");
    RenewalPage failing = ValueOrDie(renewals->ListRenewals(10, "", true));
    REQUIRE(failing.renewals.size() == 1);
    CHECK(failing.renewals[0].certificate_id == "c2");
    due.version = "certificates/c2/versions/2";
    due.renew_time = kNow + absl::Hours(24 * 60);
    REQUIRE_THAT(renewals->UpsertRenewal(due, kNow), IsOk());
    got = ValueOrDie(renewals->GetRenewal("c2"));
    CHECK(got.failure_count == 0);
    CHECK(got.last_error.empty());
    CHECK(got.next_attempt_time == absl::InfinitePast());

    RenewalPage first = ValueOrDie(renewals->ListRenewals(1, "", false));
    REQUIRE(first.renewals.size() == 1);
    CHECK(first.renewals[0].certificate_id == "c1");
    RenewalPage second =
        ValueOrDie(renewals->ListRenewals(1, first.next_page_token, false));
    REQUIRE(second.renewals.size() == 1);
    CHECK(second.renewals[0].certificate_id == "c2");
    CHECK(second.next_page_token.empty());
    CHECK_THAT(renewals->ListRenewals(1, "bad", false),
               StatusIs(Code::kInvalidArgument));

    REQUIRE_THAT(renewals->DeleteRenewal("c1"), IsOk());
    CHECK_THAT(renewals->GetRenewal("c1"), StatusIs(Code::kNotFound));

    CHECK(ValueOrDie(renewals->GetCursor("inventory")) == 0);
    REQUIRE_THAT(renewals->SetCursor("inventory", 42), IsOk());
    REQUIRE_THAT(renewals->SetCursor("inventory", 7), IsOk());
    CHECK(ValueOrDie(renewals->GetCursor("inventory")) == 42);
  });
}

}  // namespace
}  // namespace certplane::issuance
