// Authorization: which permission each RPC needs, for which team, and
// whether it is audited. One table (MethodRules()) covers every public RPC
// behind the gateway; a method not in it is denied (deny by default).
//
// Roles grant permissions (admin grants every one):
//   view     viewer, requester, approver, operator
//   request  requester, operator
//   approve  approver
//   cancel   requester, approver, operator
//   operate  operator
//   admin    admin only
// A role is held for one owning team or for "*" (every team).
//
// Scopes say which team a call concerns:
//   kGlobal      the role must be held for "*"
//   kAnyTeam     for at least one team (issuers, CRLs: not team-owned)
//   kTeamField   for the team named by a request field ("owner")
//   kCertificate for the owner of the inventory certificate a field names
//   kOrder       for the owner of the issuance order a field names
//   kKey         for the owner of the vault key a field names
//   kListFilter  for at least one team; unless held for "*", the request's
//                filter field is narrowed to the caller's teams, so lists
//                show only what those teams may see
// A scope whose field is empty needs the role for "*", unless the scope is
// optional (then it is skipped). Every scope of a rule must pass.
//
// Pure data and functions; thread-safe.
#ifndef CERTPLANE_SERVICES_GATEWAY_AUTHZ_H_
#define CERTPLANE_SERVICES_GATEWAY_AUTHZ_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/server/caller.h"

namespace google::protobuf {
class Message;
}  // namespace google::protobuf

namespace certplane::gateway {

enum class Permission {
  kAuthenticated,
  kView,
  kRequest,
  kApprove,
  kCancel,
  kOperate,
  kAdmin
};

absl::string_view PermissionName(Permission permission);

// Whether `role` grants `permission` (kAuthenticated: always).
bool RoleGrants(absl::string_view role, Permission permission);

enum class ScopeKind {
  kNone,  // No team check (kAuthenticated rules: the handler decides).
  kGlobal,
  kAnyTeam,
  kTeamField,
  kCertificate,
  kOrder,
  kKey,
  kListFilter,
};

struct Scope {
  ScopeKind kind = ScopeKind::kNone;
  // Dotted path of a string field of the request ("certificate.owner").
  std::string field;
  bool optional = false;
};

struct Rule {
  Permission permission = Permission::kAdmin;
  std::vector<Scope> scopes;
  // A change or a key export: the gateway writes an "attempt" audit record
  // before forwarding (refusing the call if it cannot) and a "result" after.
  bool audited = false;
};

// Full method name ("/certplane.inventory.v1.InventoryService/GetCertificate")
// -> rule.
const absl::flat_hash_map<std::string, Rule>& MethodRules();

// The rule for one call: the table's rule, refined by the request where the
// request decides (ExportCertificate of a format with the private key needs
// operate and is audited). NOT_FOUND when the method is not in the table.
absl::StatusOr<Rule> RuleFor(absl::string_view method,
                             const google::protobuf::Message& request);

// The value of the string field at `path` in `message` ("" when unset);
// INVALID_ARGUMENT when the path does not name a string field (a table bug).
absl::StatusOr<std::string> StringField(
    const google::protobuf::Message& message, absl::string_view path);
// Sets the string field at `path`, creating parents.
absl::Status SetStringField(google::protobuf::Message& message,
                            absl::string_view path, const std::string& value);

// Whether `caller` holds `permission` for `team` ("*": for every team).
bool Allows(const server::Caller& caller, Permission permission,
            absl::string_view team);
// The teams for which `caller` holds `permission`; {"*"} when global.
std::vector<std::string> TeamsAllowed(const server::Caller& caller,
                                      Permission permission);

// `filter` narrowed to `teams` on its `owner` field:
//   "" -> owner = "a" OR owner = "b"
//   f  -> (f) AND (owner = "a" OR owner = "b")
std::string NarrowFilterToTeams(absl::string_view filter,
                                const std::vector<std::string>& teams);

}  // namespace certplane::gateway

#endif  // CERTPLANE_SERVICES_GATEWAY_AUTHZ_H_
