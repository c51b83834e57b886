// The issuance service's gRPC handlers (certplane.issuance.v1
// .IssuanceService): orders and their approval, uploads for external CAs,
// renewal on request, revocation and CRLs, issuers.
//
// Every RPC identifies the caller (caller.h; UNAUTHENTICATED without an
// identity), validates the request (INVALID_ARGUMENT naming the field) and
// answers through the one absl::Status -> grpc::Status mapping
// (libs/status/grpc_status.h).
//
// Who may do what here: anyone identified may apply, read and list (the
// gateway decides which callers reach the service, issue 6); approving and
// rejecting need the approver (or admin) role for the order's team and are
// never done by the requester; cancelling is for the requester or an
// approver; revoking needs the operator (or admin) role for the
// certificate's team.
//
// Orders move on in the background (order_workflow.h); CreateOrder and
// ApproveOrder return at once and wake the workers. UploadCertificate
// carries the order to ISSUED itself, so the caller sees the outcome.
//
// Ownership: everything is borrowed and must outlive the service.
// Thread-safe.
#ifndef CERTPLANE_SERVICES_ISSUANCE_ISSUANCE_SERVICE_H_
#define CERTPLANE_SERVICES_ISSUANCE_ISSUANCE_SERVICE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "certplane/issuance/v1/issuance.grpc.pb.h"
#include "libs/server/caller.h"
#include "services/issuance/issuance_store.h"
#include "services/issuance/order_workflow.h"
#include "services/issuance/peers.h"

namespace certplane::issuance {

using server::Caller;
using server::CallerOptions;
using server::RoleGrant;


struct IssuanceServiceOptions {
  CallerOptions caller;
  // The lease an RPC takes to carry an order on itself.
  absl::Duration rpc_lease = absl::Minutes(1);
};

// The API view of a stored order (`with_history`: events and approvals).
absl::StatusOr<v1::Order> OrderToProto(const OrderRecord& order);

class IssuanceService final : public v1::IssuanceService::Service {
 public:
  IssuanceService(IssuanceStore& orders, RenewalStore& renewals,
                  const IssuerMap& issuers, Peers& peers,
                  OrderWorkflow& workflow, const v1::IssuanceConfig& config,
                  Clock clock, IssuanceServiceOptions options);

  grpc::Status CreateOrder(grpc::ServerContext* context,
                           const v1::CreateOrderRequest* request,
                           v1::Order* response) override;
  grpc::Status GetOrder(grpc::ServerContext* context,
                        const v1::GetOrderRequest* request,
                        v1::Order* response) override;
  grpc::Status ListOrders(grpc::ServerContext* context,
                          const v1::ListOrdersRequest* request,
                          v1::ListOrdersResponse* response) override;
  grpc::Status ApproveOrder(grpc::ServerContext* context,
                            const v1::ApproveOrderRequest* request,
                            v1::Order* response) override;
  grpc::Status RejectOrder(grpc::ServerContext* context,
                           const v1::RejectOrderRequest* request,
                           v1::Order* response) override;
  grpc::Status CancelOrder(grpc::ServerContext* context,
                           const v1::CancelOrderRequest* request,
                           v1::Order* response) override;
  grpc::Status GetOrderCsr(grpc::ServerContext* context,
                           const v1::GetOrderCsrRequest* request,
                           v1::OrderCsr* response) override;
  grpc::Status UploadCertificate(grpc::ServerContext* context,
                                 const v1::UploadCertificateRequest* request,
                                 v1::Order* response) override;
  grpc::Status RenewCertificate(grpc::ServerContext* context,
                                const v1::RenewCertificateRequest* request,
                                v1::Order* response) override;
  grpc::Status RevokeCertificate(grpc::ServerContext* context,
                                 const v1::RevokeCertificateRequest* request,
                                 v1::Revocation* response) override;
  grpc::Status ListIssuers(grpc::ServerContext* context,
                           const v1::ListIssuersRequest* request,
                           v1::ListIssuersResponse* response) override;
  grpc::Status GetIssuer(grpc::ServerContext* context,
                         const v1::GetIssuerRequest* request,
                         v1::Issuer* response) override;
  grpc::Status GetCrl(grpc::ServerContext* context,
                      const v1::GetCrlRequest* request,
                      v1::Crl* response) override;
  grpc::Status ListRenewals(grpc::ServerContext* context,
                            const v1::ListRenewalsRequest* request,
                            v1::ListRenewalsResponse* response) override;

 private:
  absl::StatusOr<OrderRecord> LoadOrder(absl::string_view name);
  absl::StatusOr<v1::Issuer> DescribeIssuer(const std::string& id) const;
  absl::StatusOr<v1::Order> Upload(const Caller& caller,
                                   const v1::UploadCertificateRequest& request);

  IssuanceStore& orders_;
  RenewalStore& renewals_;
  const IssuerMap& issuers_;
  Peers& peers_;
  OrderWorkflow& workflow_;
  const v1::IssuanceConfig& config_;
  Clock clock_;
  IssuanceServiceOptions options_;
};

}  // namespace certplane::issuance

#endif  // CERTPLANE_SERVICES_ISSUANCE_ISSUANCE_SERVICE_H_
