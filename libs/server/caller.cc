#include "libs/server/caller.h"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "grpcpp/server_context.h"
#include "libs/server/peer_identity.h"

namespace certplane::server {
namespace {

constexpr absl::string_view kRoles[] = {"viewer", "requester", "approver",
                                        "operator", "admin"};

bool ValidTeam(absl::string_view team) {
  if (team == "*") return true;
  if (team.empty() || team.size() > 63) return false;
  for (char c : team) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

bool PrintableIdentity(absl::string_view value) {
  if (value.empty() || value.size() > 256) return false;
  for (char c : value) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

// The value of metadata `name`, if sent.
std::optional<absl::string_view> Header(const grpc::ServerContextBase& context,
                                        absl::string_view name) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(grpc::string_ref(name.data(), name.size()));
  if (it == metadata.end()) return std::nullopt;
  return absl::string_view(it->second.data(), it->second.size());
}

absl::StatusOr<Caller> FromHeaders(absl::string_view identity_header,
                                   absl::string_view identity,
                                   absl::string_view roles_header,
                                   std::optional<absl::string_view> roles) {
  if (!PrintableIdentity(identity)) {
    return absl::UnauthenticatedError(absl::StrCat(
        identity_header, " must be 1-256 printable ASCII characters"));
  }
  Caller caller;
  caller.identity = std::string(identity);
  if (roles.has_value()) {
    absl::StatusOr<std::vector<RoleGrant>> parsed = ParseRoles(*roles);
    if (!parsed.ok()) {
      return absl::UnauthenticatedError(
          absl::StrCat(roles_header, ": ", parsed.status().message()));
    }
    caller.roles = *std::move(parsed);
  }
  return caller;
}

}  // namespace

std::vector<std::string> Caller::TeamsWithRole(absl::string_view role) const {
  std::vector<std::string> teams;
  for (const RoleGrant& grant : roles) {
    if (grant.role == role || grant.role == "admin")
      teams.push_back(grant.team);
  }
  return teams;
}

bool Caller::HasRole(absl::string_view role, absl::string_view team) const {
  for (const RoleGrant& grant : roles) {
    if ((grant.role == role || grant.role == "admin") &&
        (grant.team == "*" || grant.team == team)) {
      return true;
    }
  }
  return false;
}

absl::StatusOr<std::vector<RoleGrant>> ParseRoles(absl::string_view text) {
  std::vector<RoleGrant> out;
  for (absl::string_view entry :
       absl::StrSplit(text, absl::ByAnyChar(", \t"), absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> parts =
        absl::StrSplit(entry, absl::MaxSplits(':', 1));
    const bool known = std::find(std::begin(kRoles), std::end(kRoles),
                                 parts.first) != std::end(kRoles);
    if (!known || !ValidTeam(parts.second)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "role \"", absl::CHexEscape(entry.substr(0, 80)),
          "\" is not <role>:<team> with role viewer, requester, approver, "
          "operator or admin and team a name or \"*\""));
    }
    out.push_back({std::string(parts.first), std::string(parts.second)});
  }
  return out;
}

absl::StatusOr<absl::flat_hash_map<std::string, std::vector<RoleGrant>>>
ParseRoleAssignments(absl::string_view text) {
  absl::flat_hash_map<std::string, std::vector<RoleGrant>> out;
  for (absl::string_view entry :
       absl::StrSplit(text, ';', absl::SkipWhitespace())) {
    std::pair<absl::string_view, absl::string_view> parts =
        absl::StrSplit(entry, absl::MaxSplits('=', 1));
    absl::string_view name = absl::StripAsciiWhitespace(parts.first);
    if (name.empty() || parts.second.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", absl::CHexEscape(entry.substr(0, 80)),
                       "\" is not <name>=<roles>"));
    }
    absl::StatusOr<std::vector<RoleGrant>> roles = ParseRoles(parts.second);
    if (!roles.ok()) return roles.status();
    std::vector<RoleGrant>& list = out[std::string(name)];
    list.insert(list.end(), roles->begin(), roles->end());
  }
  return out;
}

std::string FormatRoles(const std::vector<RoleGrant>& roles) {
  std::string out;
  for (const RoleGrant& grant : roles) {
    if (!out.empty()) out += ",";
    absl::StrAppend(&out, grant.role, ":", grant.team);
  }
  return out;
}

bool IsKnownRole(absl::string_view name) {
  return std::find(std::begin(kRoles), std::end(kRoles), name) !=
         std::end(kRoles);
}

absl::StatusOr<Caller> IdentifyCaller(const grpc::ServerContextBase& context,
                                      const CallerOptions& options) {
  std::optional<absl::string_view> dev = Header(context, kDevIdentityHeader);
  const std::vector<std::string> peers = server::PeerIdentities(context);
  if (peers.empty()) {
    if (!dev.has_value()) {
      return absl::UnauthenticatedError(
          "no caller identity: present a client certificate (or, on a "
          "development server, the x-certplane-dev-identity header)");
    }
    if (!options.allow_development_identity) {
      return absl::UnauthenticatedError(
          "x-certplane-dev-identity is accepted only by development servers "
          "(--allow_development_identity); authenticate with a client "
          "certificate");
    }
    return FromHeaders(kDevIdentityHeader, *dev, kDevRolesHeader,
                       Header(context, kDevRolesHeader));
  }
  for (const std::string& peer : peers) {
    if (!options.trusted_delegators.contains(peer)) continue;
    if (std::optional<absl::string_view> user = Header(context, kUserHeader)) {
      return FromHeaders(kUserHeader, *user, kRolesHeader,
                         Header(context, kRolesHeader));
    }
  }
  Caller caller;
  caller.identity = server::PeerIdentity(context);
  for (const std::string& peer : peers) {
    auto it = options.service_roles.find(peer);
    if (it == options.service_roles.end()) continue;
    caller.roles.insert(caller.roles.end(), it->second.begin(),
                        it->second.end());
  }
  return caller;
}

}  // namespace certplane::server
