#include "services/gateway/authz.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace certplane::gateway {
namespace {

using P = Permission;
using K = ScopeKind;

Scope S(K kind, std::string field = "", bool optional = false) {
  return Scope{kind, std::move(field), optional};
}

absl::flat_hash_map<std::string, Rule> BuildRules() {
  absl::flat_hash_map<std::string, Rule> r;
  auto add = [&r](absl::string_view service, absl::string_view method,
                  Permission permission, std::vector<Scope> scopes,
                  bool audited = false) {
    r[absl::StrCat("/certplane.", service, "/", method)] =
        Rule{permission, std::move(scopes), audited};
  };
  constexpr absl::string_view kInv = "inventory.v1.InventoryService";
  add(kInv, "ImportCertificates", P::kRequest,
      {S(K::kTeamField, "owner"), S(K::kCertificate, "target", true)}, true);
  add(kInv, "CreateCertificate", P::kOperate,
      {S(K::kTeamField, "certificate.owner")}, true);
  add(kInv, "AddCertificateVersion", P::kOperate,
      {S(K::kCertificate, "parent")}, true);
  add(kInv, "GetCertificate", P::kView, {S(K::kCertificate, "name")});
  add(kInv, "ListCertificates", P::kView, {S(K::kListFilter, "filter")});
  add(kInv, "ListCertificateVersions", P::kView,
      {S(K::kCertificate, "parent")});
  add(kInv, "GetCertificateVersion", P::kView, {S(K::kCertificate, "name")});
  add(kInv, "UpdateCertificate", P::kOperate,
      {S(K::kCertificate, "certificate.name"),
       S(K::kTeamField, "certificate.owner", true)},
      true);
  add(kInv, "DeleteCertificate", P::kOperate, {S(K::kCertificate, "name")},
      true);
  add(kInv, "RevokeCertificateVersion", P::kOperate,
      {S(K::kCertificate, "name")}, true);
  // Refined by RuleFor: formats with the private key need operate.
  add(kInv, "ExportCertificate", P::kView, {S(K::kCertificate, "name")});
  add(kInv, "GetStats", P::kView, {S(K::kListFilter, "filter")});
  add(kInv, "WatchChanges", P::kView, {S(K::kGlobal)});

  constexpr absl::string_view kIss = "issuance.v1.IssuanceService";
  add(kIss, "CreateOrder", P::kRequest, {S(K::kTeamField, "owner")}, true);
  add(kIss, "GetOrder", P::kView, {S(K::kOrder, "name")});
  add(kIss, "ListOrders", P::kView, {S(K::kListFilter, "filter")});
  add(kIss, "ApproveOrder", P::kApprove, {S(K::kOrder, "name")}, true);
  add(kIss, "RejectOrder", P::kApprove, {S(K::kOrder, "name")}, true);
  add(kIss, "CancelOrder", P::kCancel, {S(K::kOrder, "name")}, true);
  add(kIss, "GetOrderCsr", P::kView, {S(K::kOrder, "name")});
  add(kIss, "UploadCertificate", P::kRequest, {S(K::kOrder, "name")}, true);
  add(kIss, "RenewCertificate", P::kRequest,
      {S(K::kCertificate, "certificate")}, true);
  add(kIss, "RevokeCertificate", P::kOperate,
      {S(K::kCertificate, "certificate_version")}, true);
  add(kIss, "ListIssuers", P::kView, {S(K::kAnyTeam)});
  add(kIss, "GetIssuer", P::kView, {S(K::kAnyTeam)});
  add(kIss, "GetCrl", P::kView, {S(K::kAnyTeam)});
  add(kIss, "ListRenewals", P::kView, {S(K::kGlobal)});

  constexpr absl::string_view kVault = "vault.v1.VaultService";
  add(kVault, "GenerateKey", P::kOperate, {S(K::kTeamField, "owner")}, true);
  add(kVault, "ImportKey", P::kOperate, {S(K::kTeamField, "owner")}, true);
  add(kVault, "GetKey", P::kView, {S(K::kKey, "name")});
  add(kVault, "ListKeys", P::kView, {S(K::kListFilter, "filter")});
  add(kVault, "DeleteKey", P::kOperate, {S(K::kKey, "name")}, true);
  add(kVault, "CreateCsr", P::kRequest, {S(K::kKey, "name")}, true);
  // Raw signatures with a stored key are for the platform's own services;
  // people get certificates through orders.
  add(kVault, "Sign", P::kAdmin, {S(K::kGlobal)}, true);
  add(kVault, "ExportKey", P::kOperate, {S(K::kKey, "name")}, true);
  add(kVault, "RotateKek", P::kAdmin, {S(K::kGlobal)}, true);
  add(kVault, "GetKekStatus", P::kView, {S(K::kGlobal)});

  constexpr absl::string_view kGw = "gateway.v1.GatewayService";
  add(kGw, "WhoAmI", P::kAuthenticated, {});
  // The handlers check ownership of tokens themselves (own or admin).
  add(kGw, "CreateToken", P::kAuthenticated, {}, true);
  add(kGw, "ListTokens", P::kAuthenticated, {});
  add(kGw, "RevokeToken", P::kAuthenticated, {}, true);

  constexpr absl::string_view kAudit = "gateway.v1.AuditService";
  for (absl::string_view m :
       {"ListAuditEntries", "ListCheckpoints", "GetAuditKey",
        "GetInclusionProof", "GetConsistencyProof"}) {
    add(kAudit, m, P::kView, {S(K::kGlobal)});
  }
  return r;
}

}  // namespace

absl::string_view PermissionName(Permission permission) {
  switch (permission) {
    case P::kAuthenticated:
      return "authenticated";
    case P::kView:
      return "view";
    case P::kRequest:
      return "request";
    case P::kApprove:
      return "approve";
    case P::kCancel:
      return "cancel";
    case P::kOperate:
      return "operate";
    case P::kAdmin:
      return "admin";
  }
  return "unknown";
}

bool RoleGrants(absl::string_view role, Permission permission) {
  if (permission == P::kAuthenticated || role == "admin") return true;
  switch (permission) {
    case P::kView:
      return role == "viewer" || role == "requester" || role == "approver" ||
             role == "operator";
    case P::kRequest:
      return role == "requester" || role == "operator";
    case P::kApprove:
      return role == "approver";
    case P::kCancel:
      return role == "requester" || role == "approver" || role == "operator";
    case P::kOperate:
      return role == "operator";
    default:
      return false;
  }
}

const absl::flat_hash_map<std::string, Rule>& MethodRules() {
  static const auto* const kRules =
      new absl::flat_hash_map<std::string, Rule>(BuildRules());
  return *kRules;
}

absl::StatusOr<Rule> RuleFor(absl::string_view method,
                             const google::protobuf::Message& request) {
  auto it = MethodRules().find(method);
  if (it == MethodRules().end()) {
    return absl::NotFoundError(
        absl::StrCat(method, " is not served by the gateway"));
  }
  Rule rule = it->second;
  if (method == "/certplane.inventory.v1.InventoryService/ExportCertificate") {
    const google::protobuf::FieldDescriptor* format =
        request.GetDescriptor()->FindFieldByName("format");
    if (format != nullptr &&
        format->type() == google::protobuf::FieldDescriptor::TYPE_ENUM) {
      const google::protobuf::EnumValueDescriptor* value =
          request.GetReflection()->GetEnum(request, format);
      if (value->name() == "PKCS12" || value->name() == "NGINX_BUNDLE") {
        rule.permission = P::kOperate;
        rule.audited = true;
      }
    }
  }
  return rule;
}

namespace {

// The message holding the last segment of `path` and that segment's field.
absl::StatusOr<std::pair<const google::protobuf::Message*,
                         const google::protobuf::FieldDescriptor*>>
Resolve(const google::protobuf::Message& message, absl::string_view path) {
  const google::protobuf::Message* current = &message;
  std::vector<absl::string_view> parts = absl::StrSplit(path, '.');
  for (size_t i = 0; i < parts.size(); ++i) {
    const google::protobuf::FieldDescriptor* field =
        current->GetDescriptor()->FindFieldByName(std::string(parts[i]));
    if (field == nullptr || field->is_repeated()) {
      return absl::InvalidArgumentError(absl::StrCat(
          current->GetDescriptor()->full_name(), " has no field ", parts[i]));
    }
    if (i + 1 == parts.size()) {
      if (field->type() != google::protobuf::FieldDescriptor::TYPE_STRING) {
        return absl::InvalidArgumentError(
            absl::StrCat(field->full_name(), " is not a string"));
      }
      return std::make_pair(current, field);
    }
    if (field->type() != google::protobuf::FieldDescriptor::TYPE_MESSAGE) {
      return absl::InvalidArgumentError(
          absl::StrCat(field->full_name(), " is not a message"));
    }
    current = &current->GetReflection()->GetMessage(*current, field);
  }
  return absl::InvalidArgumentError("empty field path");
}

}  // namespace

absl::StatusOr<std::string> StringField(
    const google::protobuf::Message& message, absl::string_view path) {
  auto resolved = Resolve(message, path);
  if (!resolved.ok()) return resolved.status();
  auto [holder, field] = *resolved;
  return holder->GetReflection()->GetString(*holder, field);
}

absl::Status SetStringField(google::protobuf::Message& message,
                            absl::string_view path, const std::string& value) {
  google::protobuf::Message* current = &message;
  std::vector<absl::string_view> parts = absl::StrSplit(path, '.');
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    const google::protobuf::FieldDescriptor* field =
        current->GetDescriptor()->FindFieldByName(std::string(parts[i]));
    if (field == nullptr ||
        field->type() != google::protobuf::FieldDescriptor::TYPE_MESSAGE) {
      return absl::InvalidArgumentError(absl::StrCat("bad path ", path));
    }
    current = current->GetReflection()->MutableMessage(current, field);
  }
  const google::protobuf::FieldDescriptor* field =
      current->GetDescriptor()->FindFieldByName(std::string(parts.back()));
  if (field == nullptr ||
      field->type() != google::protobuf::FieldDescriptor::TYPE_STRING) {
    return absl::InvalidArgumentError(absl::StrCat("bad path ", path));
  }
  current->GetReflection()->SetString(current, field, value);
  return absl::OkStatus();
}

bool Allows(const server::Caller& caller, Permission permission,
            absl::string_view team) {
  for (const server::RoleGrant& grant : caller.roles) {
    if (RoleGrants(grant.role, permission) &&
        (grant.team == "*" || (team != "*" && grant.team == team))) {
      return true;
    }
  }
  return false;
}

std::vector<std::string> TeamsAllowed(const server::Caller& caller,
                                      Permission permission) {
  std::vector<std::string> teams;
  for (const server::RoleGrant& grant : caller.roles) {
    if (!RoleGrants(grant.role, permission)) continue;
    if (grant.team == "*") return {"*"};
    teams.push_back(grant.team);
  }
  return teams;
}

std::string NarrowFilterToTeams(absl::string_view filter,
                                const std::vector<std::string>& teams) {
  // Team names are validated by server::ParseRoles (letters, digits, '-',
  // '_', '.'), so they need no escaping inside double quotes.
  std::string owners = absl::StrJoin(
      teams, " OR ", [](std::string* out, const std::string& team) {
        absl::StrAppend(out, "owner = \"", team, "\"");
      });
  if (filter.empty()) return owners;
  return absl::StrCat("(", filter, ") AND (", owners, ")");
}

}  // namespace certplane::gateway
