// Issuance policy: the rules an order is checked against before it is
// stored, and who may approve it. Pure functions over the configuration
// (issuance.v1.IssuanceConfig), so every rule is tested with a fixed clock.
//
//  - Validity: a profile's maximum, and for publicly trusted issuers the
//    CA/Browser Forum maximum by issue date (ballot SC-081): 398 days before
//    2026-03-15, 200 days from then, 100 days from 2027-03-15, 47 days from
//    2029-03-15. A validity of N days means notAfter = notBefore + N days
//    - 1 second, since the Baseline Requirements count the period from
//    notBefore through notAfter inclusive.
//  - Approval rules: the most specific rule for (issuer, team) decides
//    whether an order is approved at once or needs N approvals, and which
//    DNS names the team may ask for.
//  - Approvers: never the requester; only callers with the approver (or
//    admin) role for the order's team.
//
// Errors name the rule that was broken: INVALID_ARGUMENT for a request that
// can never be valid (too long for the profile), FAILED_PRECONDITION for one
// the policy refuses (a domain outside the team's list, a public validity
// limit in force on this date), PERMISSION_DENIED for an approver who may
// not approve.
//
// Thread safety: stateless functions.
#ifndef CERTPLANE_SERVICES_ISSUANCE_POLICY_H_
#define CERTPLANE_SERVICES_ISSUANCE_POLICY_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "certplane/issuance/v1/issuance.pb.h"

namespace certplane::issuance {

// The Baseline Requirements' maximum validity, in days, for a publicly
// trusted TLS certificate issued at `issue_time`.
int MaxPublicValidityDays(absl::Time issue_time);

// What the approval rules say for one (issuer, team).
struct ApprovalDecision {
  bool auto_approve = false;
  int required_approvals = 1;
  // Empty: any name.
  std::vector<std::string> allowed_domains;
  // Which rule decided, for events and errors ("issuer internal, team
  // payments", "default").
  std::string rule;
};

// The most specific rule: issuer and team, then issuer, then team, then the
// default rule (both empty); without one, one approval and any name.
ApprovalDecision DecideApproval(const v1::IssuanceConfig& config,
                                absl::string_view issuer_id,
                                absl::string_view team);

// OK when every DNS name in `dns_names` is allowed: equal (ignoring case) to
// an entry, or below an entry "*.example.com" (any depth, and the wildcard
// name itself). FAILED_PRECONDITION naming the first name that is not.
absl::Status CheckDomainsAllowed(const ApprovalDecision& decision,
                                 absl::string_view team,
                                 const std::vector<std::string>& dns_names);

// The validity to issue with: `requested_days` (0: the profile's default),
// checked against the profile's maximum and, when `public_trust`, the
// Baseline Requirements maximum at `issue_time`.
absl::StatusOr<int> ResolveValidityDays(int requested_days,
                                        const v1::Profile& profile,
                                        bool public_trust,
                                        absl::Time issue_time);

// OK when `approver` may approve an order that `requester` made for `team`;
// `approver_teams` are the teams the approver holds the approver or admin
// role for ("*": every team).
absl::Status CheckApprover(absl::string_view approver,
                           absl::string_view requester, absl::string_view team,
                           const std::vector<std::string>& approver_teams);

}  // namespace certplane::issuance

#endif  // CERTPLANE_SERVICES_ISSUANCE_POLICY_H_
