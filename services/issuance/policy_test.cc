// Issuance policy with fixed dates: Baseline Requirements validity by issue
// date, approval rule precedence, domain allow-lists and who may approve.
#include "services/issuance/policy.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "google/protobuf/text_format.h"
#include "libs/testing/status_matchers.h"

namespace certplane::issuance {
namespace {

using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using Code = absl::StatusCode;

absl::Time Utc(int y, int m, int d, int hh = 0, int mm = 0, int ss = 0) {
  return absl::FromCivil(absl::CivilSecond(y, m, d, hh, mm, ss),
                         absl::UTCTimeZone());
}

v1::IssuanceConfig Config(const std::string& text) {
  v1::IssuanceConfig config;
  REQUIRE(google::protobuf::TextFormat::ParseFromString(text, &config));
  return config;
}

v1::Profile Profile(int default_days, int max_days) {
  v1::Profile p;
  p.set_name("tls-server");
  p.set_default_validity_days(default_days);
  p.set_max_validity_days(max_days);
  return p;
}

TEST_CASE("PublicValidityLimitFollowsTheIssueDate") {
  CHECK(MaxPublicValidityDays(Utc(2025, 1, 1)) == 398);
  CHECK(MaxPublicValidityDays(Utc(2026, 3, 14, 23, 59, 59)) == 398);
  CHECK(MaxPublicValidityDays(Utc(2026, 3, 15)) == 200);
  CHECK(MaxPublicValidityDays(Utc(2027, 3, 14, 23, 59, 59)) == 200);
  CHECK(MaxPublicValidityDays(Utc(2027, 3, 15)) == 100);
  CHECK(MaxPublicValidityDays(Utc(2029, 3, 14, 23, 59, 59)) == 100);
  CHECK(MaxPublicValidityDays(Utc(2029, 3, 15)) == 47);
  CHECK(MaxPublicValidityDays(Utc(2040, 1, 1)) == 47);
}

TEST_CASE("ValidityIsCheckedAgainstTheProfileAndThePublicLimitOfTheDay") {
  const v1::Profile profile = Profile(90, 397);
  CHECK(*ResolveValidityDays(0, profile, false, Utc(2026, 12, 4)) == 90);
  CHECK(*ResolveValidityDays(397, profile, false, Utc(2026, 12, 4)) == 397);
  CHECK_THAT(ResolveValidityDays(398, profile, false, Utc(2026, 12, 4)),
             StatusIs(Code::kInvalidArgument, "profile tls-server"));
  CHECK_THAT(ResolveValidityDays(-1, profile, false, Utc(2026, 12, 4)),
             StatusIs(Code::kInvalidArgument, "negative"));
  CHECK_THAT(ResolveValidityDays(0, Profile(0, 0), false, Utc(2026, 12, 4)),
             StatusIs(Code::kInvalidArgument, "no default"));
  // Public trust: the same request passes or fails by the date.
  CHECK(*ResolveValidityDays(397, profile, true, Utc(2026, 3, 14)) == 397);
  CHECK_THAT(ResolveValidityDays(397, profile, true, Utc(2026, 3, 15)),
             StatusIs(Code::kFailedPrecondition, "from 2026-03-15 (200 days)"));
  CHECK(*ResolveValidityDays(200, profile, true, Utc(2027, 3, 14)) == 200);
  CHECK_THAT(ResolveValidityDays(200, profile, true, Utc(2027, 3, 15)),
             StatusIs(Code::kFailedPrecondition, "from 2027-03-15 (100 days)"));
  CHECK(*ResolveValidityDays(47, profile, true, Utc(2029, 3, 15)) == 47);
  CHECK_THAT(ResolveValidityDays(48, profile, true, Utc(2029, 3, 15)),
             StatusIs(Code::kFailedPrecondition, "from 2029-03-15 (47 days)"));
  CHECK_THAT(ResolveValidityDays(0, profile, true, Utc(2029, 3, 15)),
             StatusIs(Code::kFailedPrecondition, "Baseline Requirements"));
}

TEST_CASE("TheMostSpecificApprovalRuleDecides") {
  const v1::IssuanceConfig config = Config(R"pb(
    approval_rules { required_approvals: 2 }
    approval_rules { team: "payments" required_approvals: 3 }
    approval_rules { issuer: "internal" required_approvals: 1 }
    approval_rules {
      issuer: "internal"
      team: "payments"
      auto_approve: true
      allowed_domains: "*.pay.example.com"
      allowed_domains: "Pay.Example.com"
    }
  )pb");
  ApprovalDecision both = DecideApproval(config, "internal", "payments");
  CHECK(both.auto_approve);
  CHECK(both.required_approvals == 0);
  CHECK(both.rule == "rule for issuer internal, team payments");
  CHECK(DecideApproval(config, "internal", "web").required_approvals == 1);
  CHECK(DecideApproval(config, "digicert", "payments").required_approvals == 3);
  ApprovalDecision fallback = DecideApproval(config, "digicert", "web");
  CHECK(fallback.required_approvals == 2);
  CHECK_FALSE(fallback.auto_approve);
  CHECK(fallback.rule == "default rule");
  ApprovalDecision none = DecideApproval(v1::IssuanceConfig(), "x", "y");
  CHECK(none.required_approvals == 1);
  CHECK(none.allowed_domains.empty());
  // A rule asking for 0 approvals without auto_approve still needs one.
  CHECK(DecideApproval(Config("approval_rules { team: \"t\" }"), "i", "t")
            .required_approvals == 1);
}

TEST_CASE("DomainAllowListsCoverExactNamesAndNamesBelowAWildcard") {
  const v1::IssuanceConfig config = Config(R"pb(
    approval_rules {
      team: "payments"
      allowed_domains: "*.pay.example.com"
      allowed_domains: "pay.example.com"
    }
  )pb");
  ApprovalDecision d = DecideApproval(config, "internal", "payments");
  CHECK_THAT(CheckDomainsAllowed(d, "payments",
                                 {"pay.example.com", "API.pay.example.com",
                                  "a.b.pay.example.com", "*.pay.example.com"}),
             IsOk());
  CHECK_THAT(CheckDomainsAllowed(d, "payments", {"evilpay.example.com"}),
             StatusIs(Code::kFailedPrecondition, "evilpay.example.com"));
  CHECK_THAT(CheckDomainsAllowed(d, "payments", {"example.com"}),
             StatusIs(Code::kFailedPrecondition, "team payments"));
  CHECK_THAT(CheckDomainsAllowed(d, "payments", {"pay.example.com.evil.net"}),
             StatusIs(Code::kFailedPrecondition));
  CHECK_THAT(CheckDomainsAllowed(d, "payments", {"x.pay.example.co"}),
             StatusIs(Code::kFailedPrecondition));
  // No list: anything.
  CHECK_THAT(CheckDomainsAllowed(DecideApproval(config, "i", "web"), "web",
                                 {"anything.example.org"}),
             IsOk());
}

TEST_CASE("RequestersNeverApproveTheirOwnOrders") {
  CHECK_THAT(CheckApprover("bob", "alice", "payments", {"payments"}), IsOk());
  CHECK_THAT(CheckApprover("root", "alice", "payments", {"*"}), IsOk());
  CHECK_THAT(CheckApprover("alice", "alice", "payments", {"payments", "*"}),
             StatusIs(Code::kPermissionDenied, "cannot approve"));
  CHECK_THAT(
      CheckApprover("bob", "alice", "payments", {"web"}),
      StatusIs(Code::kPermissionDenied, "approver role for team payments"));
  CHECK_THAT(CheckApprover("", "alice", "payments", {"*"}),
             StatusIs(Code::kUnauthenticated));
}

}  // namespace
}  // namespace certplane::issuance
