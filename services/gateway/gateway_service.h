// The gateway's own RPCs (certplane.gateway.v1): WhoAmI and API tokens
// (GatewayService), and the audit log (AuditService). They authenticate
// and authorize through the same Authenticator, table (authz.h) and audit
// records as forwarded calls (Dispatcher).
//
// Tokens: anyone may create tokens for themselves with a subset of their
// own roles; a global admin for anyone with any roles. Lists and
// revocation: one's own tokens, or all for a global admin.
//
// Ownership: everything passed in is not owned. Thread-safe.
#ifndef CERTPLANE_SERVICES_GATEWAY_GATEWAY_SERVICE_H_
#define CERTPLANE_SERVICES_GATEWAY_GATEWAY_SERVICE_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "certplane/gateway/v1/gateway.grpc.pb.h"
#include "services/gateway/audit_writer.h"
#include "services/gateway/authn.h"
#include "services/gateway/dispatcher.h"
#include "services/gateway/gateway_store.h"

namespace certplane::gateway {

using Clock = std::function<absl::Time()>;

class GatewayServiceImpl final : public v1::GatewayService::Service {
 public:
  GatewayServiceImpl(GatewayStore& store, Authenticator& authenticator,
                     Dispatcher& dispatcher, Clock clock);

  grpc::Status WhoAmI(grpc::ServerContext* context,
                      const v1::WhoAmIRequest* request,
                      v1::Principal* response) override;
  grpc::Status CreateToken(grpc::ServerContext* context,
                           const v1::CreateTokenRequest* request,
                           v1::CreateTokenResponse* response) override;
  grpc::Status ListTokens(grpc::ServerContext* context,
                          const v1::ListTokensRequest* request,
                          v1::ListTokensResponse* response) override;
  grpc::Status RevokeToken(grpc::ServerContext* context,
                           const v1::RevokeTokenRequest* request,
                           v1::Token* response) override;

 private:
  absl::StatusOr<Principal> Authenticate(const grpc::ServerContext& context);

  GatewayStore& store_;
  Authenticator& authenticator_;
  Dispatcher& dispatcher_;
  const Clock clock_;
};

class AuditServiceImpl final : public v1::AuditService::Service {
 public:
  AuditServiceImpl(GatewayStore& store, Authenticator& authenticator,
                   Dispatcher& dispatcher, AuditWriter& writer);

  grpc::Status ListAuditEntries(
      grpc::ServerContext* context, const v1::ListAuditEntriesRequest* request,
      v1::ListAuditEntriesResponse* response) override;
  grpc::Status ListCheckpoints(grpc::ServerContext* context,
                               const v1::ListCheckpointsRequest* request,
                               v1::ListCheckpointsResponse* response) override;
  grpc::Status GetAuditKey(grpc::ServerContext* context,
                           const v1::GetAuditKeyRequest* request,
                           v1::AuditKey* response) override;
  grpc::Status GetInclusionProof(grpc::ServerContext* context,
                                 const v1::GetInclusionProofRequest* request,
                                 v1::InclusionProof* response) override;
  grpc::Status GetConsistencyProof(
      grpc::ServerContext* context,
      const v1::GetConsistencyProofRequest* request,
      v1::ConsistencyProof* response) override;

 private:
  absl::Status Check(const grpc::ServerContext& context,
                     const google::protobuf::Message& request,
                     absl::string_view method);
  absl::StatusOr<uint64_t> DefaultSize(uint64_t requested);

  GatewayStore& store_;
  Authenticator& authenticator_;
  Dispatcher& dispatcher_;
  AuditWriter& writer_;
};

// On a gateway with no tokens at all, creates an admin token ("user:admin",
// admin:*, 366 days) and writes it to `path` (mode 0600). OK and no change
// when tokens exist; returns whether one was created.
absl::StatusOr<bool> BootstrapAdminToken(GatewayStore& store,
                                         const std::string& path, Clock clock);

v1::Token TokenToProto(const TokenRecord& token);

}  // namespace certplane::gateway

#endif  // CERTPLANE_SERVICES_GATEWAY_GATEWAY_SERVICE_H_
