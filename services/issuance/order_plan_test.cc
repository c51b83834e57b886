// CreateOrder's checks and the order they plan, with a fixed clock and a
// configuration in protobuf text format.
#include "services/issuance/order_plan.h"

#include <catch2/catch.hpp>
#include <string>

#include "absl/time/time.h"
#include "google/protobuf/text_format.h"
#include "libs/testing/status_matchers.h"

namespace certplane::issuance {
namespace {

using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using Code = absl::StatusCode;
namespace common = ::certplane::common::v1;

const absl::Time kNow =
    absl::FromCivil(absl::CivilDay(2026, 12, 4), absl::UTCTimeZone());

template <typename T>
T Parse(const std::string& text) {
  T message;
  REQUIRE(google::protobuf::TextFormat::ParseFromString(text, &message));
  return message;
}

const v1::IssuanceConfig& Config() {
  static const auto* config =
      new v1::IssuanceConfig(Parse<v1::IssuanceConfig>(R"pb(
        issuers { id: "internal" type: INTERNAL_CA }
        issuers {
          id: "public"
          type: EXTERNAL_UPLOAD
          public_trust: true
          profiles {
            name: "web"
            default_validity_days: 90
            max_validity_days: 397
            allowed_key_types: ECDSA_P256
            allowed_key_types: RSA_2048
            allowed_key_types: ED25519
          }
        }
        approval_rules { required_approvals: 2 }
        approval_rules {
          issuer: "internal"
          team: "payments"
          auto_approve: true
          allowed_domains: "*.pay.example.com"
        }
      )pb"));
  return *config;
}

v1::CreateOrderRequest Request() {
  return Parse<v1::CreateOrderRequest>(R"pb(
    subject { attributes { type: "CN" value: "api.pay.example.com" } }
    sans { type: DNS value: "api.pay.example.com" }
    sans { type: IP value: "10.1.2.3" }
    key_spec { type: ECDSA_P256 }
    issuer: "issuers/internal"
    owner: "payments"
    environment: "prod"
    request_id: "r-1"
  )pb");
}

TEST_CASE("PlansAnAutoApprovedOrderWithResolvedProfileAndValidity") {
  PlannedOrder plan = *PlanNewOrder(Request(), Config(), "alice", kNow);
  const OrderRecord& r = plan.record;
  CHECK(r.state == kApproved);
  CHECK(r.required_approvals == 0);
  CHECK(r.reason == "new");
  CHECK(r.issuer_id == "internal");
  CHECK(r.owner == "payments");
  CHECK(r.environment == "prod");
  CHECK(r.requester == "alice");
  CHECK(r.common_name == "api.pay.example.com");
  CHECK(r.sans == std::vector<std::string>{"api.pay.example.com", "10.1.2.3"});
  CHECK(r.request_id == "r-1");
  CHECK(r.next_attempt_time == kNow);
  CHECK(plan.spec.profile() == "tls-server");
  CHECK(plan.spec.validity_days() == 90);
  CHECK(plan.spec.request_id().empty());
  v1::CreateOrderRequest stored;
  REQUIRE(stored.ParseFromString(r.spec));
  CHECK(stored.profile() == "tls-server");
}

TEST_CASE("OtherTeamsWaitForTheDefaultRulesApprovals") {
  v1::CreateOrderRequest request = Request();
  request.set_owner("web");
  request.mutable_subject()->mutable_attributes(0)->set_value(
      "www.example.com");
  request.mutable_sans(0)->set_value("www.example.com");
  PlannedOrder plan = *PlanNewOrder(request, Config(), "bob", kNow);
  CHECK(plan.record.state == kPendingApproval);
  CHECK(plan.record.required_approvals == 2);
}

TEST_CASE("RequestHashTellsRetriesFromDifferentRequests") {
  v1::CreateOrderRequest a = Request();
  v1::CreateOrderRequest b = Request();
  b.set_request_id("r-2");
  b.set_validate_only(true);
  CHECK(PlanNewOrder(a, Config(), "alice", kNow)->record.request_hash ==
        PlanNewOrder(b, Config(), "alice", kNow)->record.request_hash);
  v1::CreateOrderRequest c = Request();
  c.set_environment("staging");
  CHECK(PlanNewOrder(a, Config(), "alice", kNow)->record.request_hash !=
        PlanNewOrder(c, Config(), "alice", kNow)->record.request_hash);
  // An explicit default profile is the same request as none.
  v1::CreateOrderRequest d = Request();
  d.set_profile("tls-server");
  d.set_validity_days(90);
  CHECK(PlanNewOrder(a, Config(), "alice", kNow)->record.request_hash ==
        PlanNewOrder(d, Config(), "alice", kNow)->record.request_hash);
}

TEST_CASE("RefusesBadRequestsNamingTheFieldAndRule") {
  struct Case {
    const char* what;
    void (*edit)(v1::CreateOrderRequest&);
    Code code;
    const char* message;
  };
  const Case cases[] = {
      {"unknown issuer",
       [](v1::CreateOrderRequest& r) { r.set_issuer("issuers/nope"); },
       Code::kNotFound, "issuers/nope"},
      {"malformed issuer",
       [](v1::CreateOrderRequest& r) { r.set_issuer("internal"); },
       Code::kInvalidArgument, "issuer"},
      {"no owner", [](v1::CreateOrderRequest& r) { r.clear_owner(); },
       Code::kInvalidArgument, "owner: required"},
      {"bad owner", [](v1::CreateOrderRequest& r) { r.set_owner("pay ments"); },
       Code::kInvalidArgument, "owner"},
      {"bad environment",
       [](v1::CreateOrderRequest& r) { r.set_environment("a/b"); },
       Code::kInvalidArgument, "environment"},
      {"no key type", [](v1::CreateOrderRequest& r) { r.clear_key_spec(); },
       Code::kInvalidArgument, "key_spec.type"},
      {"unknown profile",
       [](v1::CreateOrderRequest& r) { r.set_profile("code-signing"); },
       Code::kInvalidArgument, "profile"},
      {"no SANs",
       [](v1::CreateOrderRequest& r) {
         r.clear_sans();
         r.clear_subject();
       },
       Code::kInvalidArgument, "at least one"},
      {"bad SAN",
       [](v1::CreateOrderRequest& r) {
         r.mutable_sans(1)->set_value("10.1.2");
       },
       Code::kInvalidArgument, "sans[1]"},
      {"repeated SAN",
       [](v1::CreateOrderRequest& r) {
         r.mutable_sans(1)->set_type(common::SubjectAltName::DNS);
         r.mutable_sans(1)->set_value("API.pay.example.com");
       },
       Code::kInvalidArgument, "repeated"},
      {"CN not a SAN",
       [](v1::CreateOrderRequest& r) {
         r.mutable_subject()->mutable_attributes(0)->set_value(
             "other.pay.example.com");
       },
       Code::kInvalidArgument, "common name"},
      {"two CNs",
       [](v1::CreateOrderRequest& r) {
         *r.mutable_subject()->add_attributes() = r.subject().attributes(0);
       },
       Code::kInvalidArgument, "CN"},
      {"domain outside the team's list",
       [](v1::CreateOrderRequest& r) {
         r.mutable_subject()->clear_attributes();
         r.mutable_sans(0)->set_value("api.example.org");
       },
       Code::kFailedPrecondition, "api.example.org"},
      {"too long for the profile",
       [](v1::CreateOrderRequest& r) { r.set_validity_days(400); },
       Code::kInvalidArgument, "validity_days"},
      {"negative renew_before_days",
       [](v1::CreateOrderRequest& r) { r.set_renew_before_days(-1); },
       Code::kInvalidArgument, "renew_before_days"},
      {"request_id too long",
       [](v1::CreateOrderRequest& r) {
         r.set_request_id(std::string(129, 'x'));
       },
       Code::kInvalidArgument, "request_id"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    v1::CreateOrderRequest request = Request();
    c.edit(request);
    CHECK_THAT(PlanNewOrder(request, Config(), "alice", kNow),
               StatusIs(c.code, c.message));
  }
}

TEST_CASE("PublicIssuersFollowTheBaselineRequirements") {
  v1::CreateOrderRequest request = Request();
  request.set_issuer("issuers/public");
  request.set_owner("web");
  request.set_validity_days(200);
  CHECK_THAT(PlanNewOrder(request, Config(), "bob", kNow).status(), IsOk());
  request.set_validity_days(201);
  CHECK_THAT(PlanNewOrder(request, Config(), "bob", kNow),
             StatusIs(Code::kFailedPrecondition, "200 days"));
  request.set_validity_days(100);
  CHECK_THAT(PlanNewOrder(request, Config(), "bob",
                          absl::FromCivil(absl::CivilDay(2027, 3, 15),
                                          absl::UTCTimeZone()))
                 .status(),
             IsOk());
  request.set_validity_days(0);
  request.mutable_key_spec()->set_type(common::ED25519);
  CHECK_THAT(PlanNewOrder(request, Config(), "bob", kNow),
             StatusIs(Code::kFailedPrecondition, "Ed25519"));
  request.mutable_key_spec()->set_type(common::RSA_4096);
  CHECK_THAT(PlanNewOrder(request, Config(), "bob", kNow),
             StatusIs(Code::kInvalidArgument, "not allowed by profile web"));
}

}  // namespace
}  // namespace certplane::issuance
