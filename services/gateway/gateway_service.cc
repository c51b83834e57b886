#include "services/gateway/gateway_service.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/time_util.h"
#include "libs/audit/merkle.h"
#include "libs/crypto/key.h"
#include "libs/server/caller.h"
#include "libs/server/private_file.h"
#include "libs/server/request_id.h"
#include "libs/status/grpc_status.h"
#include "libs/status/status_macros.h"
#include "services/gateway/audit_proto.h"
#include "services/gateway/grpc_front.h"
#include "services/gateway/tokens.h"

namespace certplane::gateway {
namespace {

using ::certplane::ToGrpcStatus;
using google::protobuf::util::TimeUtil;

constexpr char kGatewayPrefix[] = "/certplane.gateway.v1.GatewayService/";
constexpr char kAuditPrefix[] = "/certplane.gateway.v1.AuditService/";
constexpr absl::Duration kDefaultTtl = absl::Hours(24 * 90);
constexpr absl::Duration kMaxTtl = absl::Hours(24 * 366);

google::protobuf::Timestamp Ts(absl::Time t) {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

bool IsGlobalAdmin(const server::Caller& caller) {
  return Allows(caller, Permission::kAdmin, "*");
}

// Whether `caller` holds `grant` itself (so may hand it to a token).
bool Holds(const server::Caller& caller, const server::RoleGrant& grant) {
  for (const server::RoleGrant& c : caller.roles) {
    if ((c.role == grant.role || c.role == "admin") &&
        (c.team == "*" || c.team == grant.team)) {
      return true;
    }
  }
  return false;
}

absl::StatusOr<std::string> NormalizePrincipal(absl::string_view name) {
  std::string out(name);
  if (!absl::StartsWith(out, "user:") && !absl::StartsWith(out, "service:")) {
    out = absl::StrCat("user:", out);
  }
  absl::string_view rest = absl::string_view(out).substr(out.find(':') + 1);
  bool printable = !rest.empty() && out.size() <= 256;
  for (char c : out) printable = printable && c > 0x20 && c < 0x7f;
  if (!printable) {
    return absl::InvalidArgumentError(
        "principal must be \"user:<name>\" or \"service:<name>\", 1-256 "
        "printable characters without spaces");
  }
  return out;
}

// A proof built from stored hashes is checked against the roots the log
// recorded before it is served, so that a damaged subtree row or leaf hash
// is an error here instead of a proof that fails on the client.
absl::Status CheckStoredProof(const absl::Status& verified,
                              uint64_t tree_size) {
  if (verified.ok()) return verified;
  return absl::DataLossError(absl::StrCat(
      "the audit log's stored hashes do not add up to the root it recorded "
      "at tree size ",
      tree_size, " (", verified.message(),
      "): a record's leaf hash or a row of audit_nodes was changed; "
      "`certplane audit verify` names a changed record, and a gateway "
      "started with audit_nodes emptied rebuilds the subtrees from the "
      "records"));
}

}  // namespace

v1::Token TokenToProto(const TokenRecord& t) {
  v1::Token p;
  p.set_name(absl::StrCat("tokens/", t.id));
  p.set_principal(t.principal);
  p.set_kind(t.kind == "service_account" ? v1::SERVICE_ACCOUNT : v1::USER);
  absl::StatusOr<std::vector<server::RoleGrant>> roles =
      server::ParseRoles(t.roles);
  if (roles.ok()) {
    for (const server::RoleGrant& g : *roles) {
      v1::RoleBinding* b = p.add_roles();
      b->set_role(g.role);
      b->set_team(g.team);
    }
  }
  p.set_description(t.description);
  p.set_created_by(t.created_by);
  *p.mutable_create_time() = Ts(t.create_time);
  *p.mutable_expire_time() = Ts(t.expire_time);
  if (t.revoke_time) *p.mutable_revoke_time() = Ts(*t.revoke_time);
  return p;
}

GatewayServiceImpl::GatewayServiceImpl(GatewayStore& store,
                                       Authenticator& authenticator,
                                       Dispatcher& dispatcher, Clock clock)
    : store_(store),
      authenticator_(authenticator),
      dispatcher_(dispatcher),
      clock_(std::move(clock)) {}

absl::StatusOr<Principal> GatewayServiceImpl::Authenticate(
    const grpc::ServerContext& context) {
  CallInput in = CallInputFrom(context, "");
  return authenticator_.Authenticate(in.authorization, in.peer_identities);
}

grpc::Status GatewayServiceImpl::WhoAmI(grpc::ServerContext* context,
                                        const v1::WhoAmIRequest*,
                                        v1::Principal* response) {
  absl::StatusOr<Principal> p = Authenticate(*context);
  if (!p.ok()) return ToGrpcStatus(p.status());
  response->set_name(p->caller.identity);
  response->set_authenticated_by(p->authenticated_by);
  for (const server::RoleGrant& g : p->caller.roles) {
    v1::RoleBinding* b = response->add_roles();
    b->set_role(g.role);
    b->set_team(g.team);
  }
  if (!p->token_id.empty()) {
    response->set_token(absl::StrCat("tokens/", p->token_id));
  }
  return grpc::Status::OK;
}

grpc::Status GatewayServiceImpl::CreateToken(
    grpc::ServerContext* context, const v1::CreateTokenRequest* request,
    v1::CreateTokenResponse* response) {
  const std::string method = absl::StrCat(kGatewayPrefix, "CreateToken");
  absl::StatusOr<Principal> caller = Authenticate(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  absl::Status status = [&]() -> absl::Status {
    std::string principal = caller->caller.identity;
    if (!request->principal().empty()) {
      CERTPLANE_ASSIGN_OR_RETURN(principal,
                                 NormalizePrincipal(request->principal()));
    }
    std::vector<server::RoleGrant> roles;
    for (const v1::RoleBinding& b : request->roles()) {
      roles.push_back({b.role(), b.team()});
    }
    if (request->roles().empty() && principal == caller->caller.identity) {
      roles = caller->caller.roles;
    }
    absl::StatusOr<std::vector<server::RoleGrant>> checked =
        server::ParseRoles(server::FormatRoles(roles));
    if (!checked.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("roles: ", checked.status().message()));
    }
    const bool admin = IsGlobalAdmin(caller->caller);
    if (!admin) {
      if (principal != caller->caller.identity) {
        return absl::PermissionDeniedError(
            "permission denied: only a global admin may create tokens for "
            "someone else");
      }
      for (const server::RoleGrant& g : roles) {
        if (!Holds(caller->caller, g)) {
          return absl::PermissionDeniedError(
              absl::StrCat("permission denied: you do not hold ", g.role, ":",
                           g.team, ", so a token of yours cannot either"));
        }
      }
    }
    absl::Duration ttl = kDefaultTtl;
    if (request->has_ttl()) {
      ttl = absl::Seconds(request->ttl().seconds()) +
            absl::Nanoseconds(request->ttl().nanos());
    }
    if (ttl <= absl::ZeroDuration() || ttl > kMaxTtl) {
      return absl::InvalidArgumentError(
          "ttl must be positive and at most 366 days");
    }
    if (request->description().size() > 1000) {
      return absl::InvalidArgumentError(
          "description is longer than 1000 characters");
    }
    CERTPLANE_RETURN_IF_ERROR(dispatcher_.AuditAttempt(
        *caller, method, principal, server::RequestId(*context)));
    CERTPLANE_ASSIGN_OR_RETURN(NewToken token, GenerateToken());
    TokenRecord record;
    record.id = token.id;
    record.principal = principal;
    record.kind =
        request->kind() == v1::SERVICE_ACCOUNT ? "service_account" : "user";
    record.roles = server::FormatRoles(roles);
    record.description = request->description();
    record.created_by = caller->caller.identity;
    record.secret_sha256 = TokenHash(token.token);
    record.create_time = clock_();
    record.expire_time = record.create_time + ttl;
    absl::Status stored = store_.InsertToken(record);
    dispatcher_.AuditResult(*caller, method, principal,
                            server::RequestId(*context), stored);
    CERTPLANE_RETURN_IF_ERROR(stored);
    *response->mutable_token() = TokenToProto(record);
    response->set_secret(token.token);
    return absl::OkStatus();
  }();
  return ToGrpcStatus(status);
}

grpc::Status GatewayServiceImpl::ListTokens(
    grpc::ServerContext* context, const v1::ListTokensRequest* request,
    v1::ListTokensResponse* response) {
  absl::StatusOr<Principal> caller = Authenticate(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (request->page_size() < 0) {
    return ToGrpcStatus(absl::InvalidArgumentError("page_size is negative"));
  }
  if (!request->page_token().empty() && !ValidTokenId(request->page_token())) {
    return ToGrpcStatus(absl::InvalidArgumentError("page_token is malformed"));
  }
  TokenListOptions o;
  if (!IsGlobalAdmin(caller->caller)) o.principal = caller->caller.identity;
  o.show_inactive = request->show_inactive();
  o.now = clock_();
  o.page_size =
      request->page_size() == 0 ? 100 : std::min(request->page_size(), 1000);
  o.after_id = request->page_token();
  absl::StatusOr<std::vector<TokenRecord>> tokens = store_.ListTokens(o);
  if (!tokens.ok()) return ToGrpcStatus(tokens.status());
  for (size_t i = 0; i < tokens->size() && i < static_cast<size_t>(o.page_size);
       ++i) {
    *response->add_tokens() = TokenToProto((*tokens)[i]);
  }
  if (tokens->size() > static_cast<size_t>(o.page_size)) {
    response->set_next_page_token((*tokens)[o.page_size - 1].id);
  }
  return grpc::Status::OK;
}

grpc::Status GatewayServiceImpl::RevokeToken(
    grpc::ServerContext* context, const v1::RevokeTokenRequest* request,
    v1::Token* response) {
  const std::string method = absl::StrCat(kGatewayPrefix, "RevokeToken");
  absl::StatusOr<Principal> caller = Authenticate(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  absl::Status status = [&]() -> absl::Status {
    absl::string_view id = request->name();
    if (!absl::ConsumePrefix(&id, "tokens/") || !ValidTokenId(id)) {
      return absl::InvalidArgumentError("name must be tokens/<16 hex digits>");
    }
    CERTPLANE_ASSIGN_OR_RETURN(TokenRecord token, store_.GetToken(id));
    if (!IsGlobalAdmin(caller->caller) &&
        token.principal != caller->caller.identity) {
      // Same answer as a missing token: others' tokens are not visible.
      return absl::NotFoundError(absl::StrCat("no token ", id));
    }
    CERTPLANE_RETURN_IF_ERROR(dispatcher_.AuditAttempt(
        *caller, method, request->name(), server::RequestId(*context)));
    absl::StatusOr<TokenRecord> revoked = store_.RevokeToken(id, clock_());
    authenticator_.Forget(id);
    dispatcher_.AuditResult(*caller, method, request->name(),
                            server::RequestId(*context), revoked.status());
    if (!revoked.ok()) return revoked.status();
    *response = TokenToProto(*revoked);
    return absl::OkStatus();
  }();
  return ToGrpcStatus(status);
}

AuditServiceImpl::AuditServiceImpl(GatewayStore& store,
                                   Authenticator& authenticator,
                                   Dispatcher& dispatcher, AuditWriter& writer)
    : store_(store),
      authenticator_(authenticator),
      dispatcher_(dispatcher),
      writer_(writer) {}

absl::Status AuditServiceImpl::Check(const grpc::ServerContext& context,
                                     const google::protobuf::Message& request,
                                     absl::string_view method) {
  CallInput in = CallInputFrom(context, "");
  CERTPLANE_ASSIGN_OR_RETURN(
      Principal p,
      authenticator_.Authenticate(in.authorization, in.peer_identities));
  std::string full = absl::StrCat(kAuditPrefix, method);
  CERTPLANE_ASSIGN_OR_RETURN(Rule rule, RuleFor(full, request));
  std::unique_ptr<google::protobuf::Message> copy(request.New());
  copy->CopyFrom(request);
  std::string resource;
  bool changed = false;
  return dispatcher_.Authorize(p, full, rule, *copy, resource, changed);
}

absl::StatusOr<uint64_t> AuditServiceImpl::DefaultSize(uint64_t requested) {
  if (requested != 0) return requested;
  CERTPLANE_ASSIGN_OR_RETURN(std::optional<audit::Checkpoint> latest,
                             store_.LatestCheckpoint());
  if (latest.has_value()) return latest->tree_size;
  return store_.AuditSize();
}

grpc::Status AuditServiceImpl::ListAuditEntries(
    grpc::ServerContext* context, const v1::ListAuditEntriesRequest* request,
    v1::ListAuditEntriesResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    CERTPLANE_RETURN_IF_ERROR(Check(*context, *request, "ListAuditEntries"));
    if (request->page_size() < 0) {
      return absl::InvalidArgumentError("page_size is negative");
    }
    int limit =
        request->page_size() == 0 ? 100 : std::min(request->page_size(), 1000);
    CERTPLANE_ASSIGN_OR_RETURN(uint64_t size, store_.AuditSize());
    CERTPLANE_ASSIGN_OR_RETURN(
        std::vector<audit::AuditRecord> records,
        store_.ListAudit(request->start_index(), limit, request->filter()));
    for (const audit::AuditRecord& r : records) {
      *response->add_entries() = ToProto(r);
    }
    if (static_cast<int>(records.size()) == limit) {
      response->set_next_start_index(records.back().index + 1);
    }
    response->set_tree_size(size);
    return absl::OkStatus();
  }();
  return ToGrpcStatus(status);
}

grpc::Status AuditServiceImpl::ListCheckpoints(
    grpc::ServerContext* context, const v1::ListCheckpointsRequest* request,
    v1::ListCheckpointsResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    CERTPLANE_RETURN_IF_ERROR(Check(*context, *request, "ListCheckpoints"));
    CERTPLANE_ASSIGN_OR_RETURN(std::vector<audit::Checkpoint> all,
                               store_.ListCheckpoints());
    for (const audit::Checkpoint& c : all) {
      *response->add_checkpoints() = ToProto(c);
    }
    return absl::OkStatus();
  }();
  return ToGrpcStatus(status);
}

grpc::Status AuditServiceImpl::GetAuditKey(
    grpc::ServerContext* context, const v1::GetAuditKeyRequest* request,
    v1::AuditKey* response) {
  absl::Status status = [&]() -> absl::Status {
    CERTPLANE_RETURN_IF_ERROR(Check(*context, *request, "GetAuditKey"));
    response->set_key_id(writer_.key_id());
    response->set_public_key_der(writer_.public_key_der());
    CERTPLANE_ASSIGN_OR_RETURN(std::string pem,
                               crypto::SpkiDerToPem(writer_.public_key_der()));
    response->set_public_key_pem(pem);
    return absl::OkStatus();
  }();
  return ToGrpcStatus(status);
}

grpc::Status AuditServiceImpl::GetInclusionProof(
    grpc::ServerContext* context, const v1::GetInclusionProofRequest* request,
    v1::InclusionProof* response) {
  absl::Status status = [&]() -> absl::Status {
    CERTPLANE_RETURN_IF_ERROR(Check(*context, *request, "GetInclusionProof"));
    CERTPLANE_ASSIGN_OR_RETURN(uint64_t size,
                               DefaultSize(request->tree_size()));
    CERTPLANE_ASSIGN_OR_RETURN(uint64_t log_size, store_.AuditSize());
    if (size > log_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tree_size ", size, " is beyond the log's ", log_size, " records"));
    }
    CERTPLANE_ASSIGN_OR_RETURN(std::string root, store_.RootAt(size));
    return store_.ReadSubtrees(
        [&](audit::SubtreeHashes subtree) -> absl::Status {
          CERTPLANE_ASSIGN_OR_RETURN(
              std::vector<std::string> proof,
              audit::InclusionProof(subtree, request->index(), size));
          CERTPLANE_ASSIGN_OR_RETURN(std::string leaf_hash,
                                     subtree(0, request->index()));
          CERTPLANE_RETURN_IF_ERROR(CheckStoredProof(
              audit::VerifyInclusion(leaf_hash, request->index(), size, proof,
                                     root),
              size));
          response->Clear();
          response->set_index(request->index());
          response->set_tree_size(size);
          response->set_leaf_hash(std::move(leaf_hash));
          for (std::string& h : proof) response->add_hashes(std::move(h));
          return absl::OkStatus();
        });
  }();
  return ToGrpcStatus(status);
}

grpc::Status AuditServiceImpl::GetConsistencyProof(
    grpc::ServerContext* context, const v1::GetConsistencyProofRequest* request,
    v1::ConsistencyProof* response) {
  absl::Status status = [&]() -> absl::Status {
    CERTPLANE_RETURN_IF_ERROR(Check(*context, *request, "GetConsistencyProof"));
    CERTPLANE_ASSIGN_OR_RETURN(uint64_t second,
                               DefaultSize(request->second_tree_size()));
    CERTPLANE_ASSIGN_OR_RETURN(uint64_t log_size, store_.AuditSize());
    if (second > log_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("second_tree_size ", second, " is beyond the log's ",
                       log_size, " records"));
    }
    // A first size past the second is refused by ConsistencyProof below,
    // before the roots are used.
    std::string first_root;
    if (request->first_tree_size() <= second) {
      CERTPLANE_ASSIGN_OR_RETURN(first_root,
                                 store_.RootAt(request->first_tree_size()));
    }
    CERTPLANE_ASSIGN_OR_RETURN(std::string second_root, store_.RootAt(second));
    return store_.ReadSubtrees(
        [&](audit::SubtreeHashes subtree) -> absl::Status {
          CERTPLANE_ASSIGN_OR_RETURN(
              std::vector<std::string> proof,
              audit::ConsistencyProof(subtree, request->first_tree_size(),
                                      second));
          CERTPLANE_RETURN_IF_ERROR(CheckStoredProof(
              audit::VerifyConsistency(request->first_tree_size(), second,
                                       first_root, second_root, proof),
              second));
          response->Clear();
          response->set_first_tree_size(request->first_tree_size());
          response->set_second_tree_size(second);
          for (std::string& h : proof) response->add_hashes(std::move(h));
          return absl::OkStatus();
        });
  }();
  return ToGrpcStatus(status);
}

absl::StatusOr<bool> BootstrapAdminToken(GatewayStore& store,
                                         const std::string& path, Clock clock) {
  CERTPLANE_ASSIGN_OR_RETURN(int64_t count, store.CountTokens());
  if (count > 0) return false;
  CERTPLANE_ASSIGN_OR_RETURN(NewToken token, GenerateToken());
  TokenRecord record;
  record.id = token.id;
  record.principal = "user:admin";
  record.kind = "user";
  record.roles = "admin:*";
  record.description = "created by the gateway's first start (bootstrap)";
  record.created_by = "certplane-gateway (bootstrap)";
  record.secret_sha256 = TokenHash(token.token);
  record.create_time = clock();
  record.expire_time = record.create_time + kMaxTtl;
  CERTPLANE_RETURN_IF_ERROR(server::WritePrivateFile(
      path, crypto::SecretBytes(absl::StrCat(token.token, "\n"))));
  CERTPLANE_RETURN_IF_ERROR(store.InsertToken(record));
  return true;
}

}  // namespace certplane::gateway
