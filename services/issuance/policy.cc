#include "services/issuance/policy.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace certplane::issuance {
namespace {

absl::Time Utc(int year, int month, int day) {
  return absl::FromCivil(absl::CivilDay(year, month, day), absl::UTCTimeZone());
}

struct PublicLimit {
  int year, month, day;  // In force from this date (UTC).
  int max_days;
};

// CA/Browser Forum ballot SC-081, newest first.
constexpr PublicLimit kPublicLimits[] = {
    {2029, 3, 15, 47},
    {2027, 3, 15, 100},
    {2026, 3, 15, 200},
};
constexpr int kPublicLimitBefore2026 = 398;

std::string FormatDay(const PublicLimit& limit) {
  return absl::StrCat(limit.year, "-", limit.month < 10 ? "0" : "", limit.month,
                      "-", limit.day < 10 ? "0" : "", limit.day);
}

// Whether DNS name `name` (lowercase) is covered by allow-list entry
// `entry` (lowercase).
bool Covers(absl::string_view entry, absl::string_view name) {
  if (entry == name) return true;
  absl::string_view base = entry;
  if (!absl::ConsumePrefix(&base, "*.")) return false;
  // "*.example.com" covers names below example.com at any depth, including
  // the wildcard "*.example.com" itself, but not example.com.
  return name.size() > base.size() + 1 && absl::EndsWith(name, base) &&
         name[name.size() - base.size() - 1] == '.';
}

}  // namespace

int MaxPublicValidityDays(absl::Time issue_time) {
  for (const PublicLimit& limit : kPublicLimits) {
    if (issue_time >= Utc(limit.year, limit.month, limit.day)) {
      return limit.max_days;
    }
  }
  return kPublicLimitBefore2026;
}

ApprovalDecision DecideApproval(const v1::IssuanceConfig& config,
                                absl::string_view issuer_id,
                                absl::string_view team) {
  const v1::ApprovalRule* best = nullptr;
  int best_rank = -1;
  for (const v1::ApprovalRule& rule : config.approval_rules()) {
    const bool issuer_match =
        rule.issuer().empty() || rule.issuer() == issuer_id;
    const bool team_match = rule.team().empty() || rule.team() == team;
    if (!issuer_match || !team_match) continue;
    const int rank =
        (rule.issuer().empty() ? 0 : 2) + (rule.team().empty() ? 0 : 1);
    if (rank > best_rank) {
      best = &rule;
      best_rank = rank;
    }
  }
  ApprovalDecision decision;
  if (best == nullptr) {
    decision.rule = "default (one approval)";
    return decision;
  }
  decision.auto_approve = best->auto_approve();
  decision.required_approvals =
      best->auto_approve() ? 0 : std::max(1, best->required_approvals());
  for (const std::string& domain : best->allowed_domains()) {
    decision.allowed_domains.push_back(absl::AsciiStrToLower(domain));
  }
  if (best->issuer().empty() && best->team().empty()) {
    decision.rule = "default rule";
  } else {
    decision.rule = absl::StrCat(
        "rule for ",
        best->issuer().empty() ? "any issuer" : "issuer " + best->issuer(),
        ", ", best->team().empty() ? "any team" : "team " + best->team());
  }
  return decision;
}

absl::Status CheckDomainsAllowed(const ApprovalDecision& decision,
                                 absl::string_view team,
                                 const std::vector<std::string>& dns_names) {
  if (decision.allowed_domains.empty()) return absl::OkStatus();
  for (const std::string& raw : dns_names) {
    const std::string name = absl::AsciiStrToLower(raw);
    const bool allowed = std::any_of(
        decision.allowed_domains.begin(), decision.allowed_domains.end(),
        [&](const std::string& entry) { return Covers(entry, name); });
    if (!allowed) {
      return absl::FailedPreconditionError(
          absl::StrCat("sans: ", raw, " is not among the domains team ", team,
                       " may request (", decision.rule, ")"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int> ResolveValidityDays(int requested_days,
                                        const v1::Profile& profile,
                                        bool public_trust,
                                        absl::Time issue_time) {
  if (requested_days < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("validity_days: ", requested_days, " is negative"));
  }
  int days =
      requested_days == 0 ? profile.default_validity_days() : requested_days;
  if (days <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("validity_days: required, profile ", profile.name(),
                     " has no default"));
  }
  if (profile.max_validity_days() > 0 && days > profile.max_validity_days()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "validity_days: ", days, " days is more than profile ", profile.name(),
        " allows (", profile.max_validity_days(), ")"));
  }
  if (public_trust) {
    const int max_days = MaxPublicValidityDays(issue_time);
    if (days > max_days) {
      std::string since = "before 2026-03-15";
      for (const PublicLimit& limit : kPublicLimits) {
        if (limit.max_days == max_days) since = "from " + FormatDay(limit);
      }
      return absl::FailedPreconditionError(absl::StrCat(
          "validity_days: ", days,
          " days is more than the Baseline Requirements allow for publicly "
          "trusted certificates issued ",
          since, " (", max_days, " days)"));
    }
  }
  return days;
}

absl::Status CheckApprover(absl::string_view approver,
                           absl::string_view requester, absl::string_view team,
                           const std::vector<std::string>& approver_teams) {
  if (approver.empty()) {
    return absl::UnauthenticatedError("approval needs a caller identity");
  }
  if (approver == requester) {
    return absl::PermissionDeniedError(
        absl::StrCat(approver,
                     " requested this order and cannot approve it; another "
                     "approver must"));
  }
  const bool may =
      std::any_of(approver_teams.begin(), approver_teams.end(),
                  [&](const std::string& t) { return t == "*" || t == team; });
  if (!may) {
    return absl::PermissionDeniedError(absl::StrCat(
        approver, " does not hold the approver role for team ", team));
  }
  return absl::OkStatus();
}

}  // namespace certplane::issuance
