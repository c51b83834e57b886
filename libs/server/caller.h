// Who calls a certplane service, and with which roles: shared by the
// services that act on roles (issuance) and the gateway, which vouches for
// the people it forwards calls for.
//
// Identity:
//  - mTLS: the client certificate's identity (libs/server/peer_identity.h).
//    When that identity is one of `trusted_delegators` (the gateway) and the
//    call carries "x-certplane-user", the caller is that user, with the
//    roles in "x-certplane-roles"; the delegator vouches for both.
//  - A development server (allow_development_identity, plaintext only)
//    takes "x-certplane-dev-identity" and "x-certplane-dev-roles" instead.
//  - Otherwise UNAUTHENTICATED.
// A service calling as itself (no delegation) has the roles the
// service's configuration grants its identity (CallerOptions::service_roles).
//
// Roles are "<role>:<team>" separated by commas and/or spaces, team "*"
// for every team: "approver:payments, requester:*". Roles: viewer,
// requester, approver, operator, admin. Malformed role lists are
// UNAUTHENTICATED naming the header (a front that sends them is broken).
//
// Thread safety: stateless functions over immutable options.
#ifndef CERTPLANE_LIBS_SERVER_CALLER_H_
#define CERTPLANE_LIBS_SERVER_CALLER_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace grpc {
class ServerContextBase;
}  // namespace grpc

namespace certplane::server {

inline constexpr char kUserHeader[] = "x-certplane-user";
inline constexpr char kRolesHeader[] = "x-certplane-roles";
inline constexpr char kDevIdentityHeader[] = "x-certplane-dev-identity";
inline constexpr char kDevRolesHeader[] = "x-certplane-dev-roles";

struct RoleGrant {
  std::string role;
  std::string team;  // "*": every team.
};

struct Caller {
  std::string identity;
  std::vector<RoleGrant> roles;

  // The teams for which the caller holds `role` or admin ("*" when for
  // all).
  std::vector<std::string> TeamsWithRole(absl::string_view role) const;
  bool HasRole(absl::string_view role, absl::string_view team) const;
};

struct CallerOptions {
  bool allow_development_identity = false;
  absl::flat_hash_set<std::string> trusted_delegators;
  // Roles of services calling as themselves, by identity.
  absl::flat_hash_map<std::string, std::vector<RoleGrant>> service_roles;
};

// Parses "approver:payments, requester:*". INVALID_ARGUMENT naming the bad
// entry.
absl::StatusOr<std::vector<RoleGrant>> ParseRoles(absl::string_view text);

// Roles per name, as flags give them: "<name>=<roles>;<name>=<roles>"
// (mTLS identities, OIDC groups). A name given twice gets both role lists.
// INVALID_ARGUMENT naming the bad entry.
absl::StatusOr<absl::flat_hash_map<std::string, std::vector<RoleGrant>>>
ParseRoleAssignments(absl::string_view text);

// The inverse of ParseRoles: "approver:payments,requester:*".
std::string FormatRoles(const std::vector<RoleGrant>& roles);

// Whether `name` is one of the five roles.
bool IsKnownRole(absl::string_view name);

absl::StatusOr<Caller> IdentifyCaller(const grpc::ServerContextBase& context,
                                      const CallerOptions& options);

}  // namespace certplane::server

#endif  // CERTPLANE_LIBS_SERVER_CALLER_H_
