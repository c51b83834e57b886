#include "services/issuance/issuance_service.h"

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "certplane/inventory/v1/inventory.pb.h"
#include "grpcpp/grpcpp.h"
#include "libs/crypto/certificate.h"
#include "libs/crypto/csr.h"
#include "libs/crypto/formats.h"
#include "libs/crypto/issue.h"
#include "libs/crypto_proto/crypto_proto.h"
#include "libs/server/json_log.h"
#include "libs/status/grpc_status.h"
#include "libs/status/status_macros.h"
#include "services/issuance/order_plan.h"
#include "services/issuance/policy.h"

namespace certplane::issuance {
namespace {

namespace inventory_v1 = ::certplane::inventory::v1;
using crypto_proto::TimeToProto;

struct StateName {
  const char* stored;
  v1::OrderState state;
};
constexpr StateName kStateNames[] = {
    {kPendingApproval, v1::PENDING_APPROVAL},
    {kApproved, v1::APPROVED},
    {kKeyReady, v1::KEY_READY},
    {kSubmitted, v1::SUBMITTED},
    {kAwaitingCertificate, v1::AWAITING_CERTIFICATE},
    {kIssued, v1::ISSUED},
    {kRejected, v1::REJECTED},
    {kFailed, v1::FAILED},
    {kCancelled, v1::CANCELLED},
};

v1::OrderState StateToProto(absl::string_view stored) {
  for (const StateName& s : kStateNames) {
    if (stored == s.stored) return s.state;
  }
  return v1::ORDER_STATE_UNSPECIFIED;
}

absl::StatusOr<std::string> ParseOrderName(absl::string_view field,
                                           absl::string_view name) {
  absl::string_view id = name;
  if (!absl::ConsumePrefix(&id, "orders/") || id.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": \"", absl::CHexEscape(name.substr(0, 80)),
                     "\" is not an order name (orders/{order_id})"));
  }
  return std::string(id);
}

absl::StatusOr<std::string> ParseIssuerName(absl::string_view field,
                                            absl::string_view name) {
  absl::string_view id = name;
  if (!absl::ConsumePrefix(&id, "issuers/") || id.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": \"", absl::CHexEscape(name.substr(0, 80)),
                     "\" is not an issuer name (issuers/{issuer_id})"));
  }
  return std::string(id);
}

absl::Status CheckComment(absl::string_view comment, bool required) {
  if (required && absl::StripAsciiWhitespace(comment).empty()) {
    return absl::InvalidArgumentError("comment: required (say why)");
  }
  if (comment.size() > 1024) {
    return absl::InvalidArgumentError("comment: at most 1024 bytes");
  }
  return absl::OkStatus();
}

absl::StatusOr<int> PageSize(int requested) {
  if (requested < 0) {
    return absl::InvalidArgumentError("page_size: must not be negative");
  }
  if (requested == 0) return 50;
  return std::min(requested, kMaxOrderPageSize);
}

std::string RandomLease() {
  absl::BitGen gen;
  return absl::StrCat("rpc-", absl::Hex(absl::Uniform<uint64_t>(gen)));
}

// "DNS:pay.example.com" with DNS names and email domains lowercased, for
// comparing SAN sets.
std::string SanKey(const crypto::SubjectAltName& san) {
  std::string value = san.value;
  if (san.type == crypto::SanType::kDns ||
      san.type == crypto::SanType::kEmail) {
    absl::AsciiStrToLower(&value);
  }
  return absl::StrCat(crypto::SanTypeName(san.type), ":", value);
}

template <typename F>
grpc::Status Handle(F&& body) {
  return ToGrpcStatus(body());
}

}  // namespace

absl::StatusOr<v1::Order> OrderToProto(const OrderRecord& r) {
  CERTPLANE_ASSIGN_OR_RETURN(v1::CreateOrderRequest spec, ParseSpec(r));
  v1::Order o;
  o.set_name(absl::StrCat("orders/", r.order_id));
  o.set_order_id(r.order_id);
  o.set_state(StateToProto(r.state));
  o.set_reason(r.reason == "renewal" ? v1::RENEWAL : v1::NEW_CERTIFICATE);
  *o.mutable_subject() = spec.subject();
  *o.mutable_sans() = spec.sans();
  *o.mutable_key_spec() = spec.key_spec();
  o.set_issuer(absl::StrCat("issuers/", r.issuer_id));
  o.set_profile(spec.profile());
  o.set_validity_days(spec.validity_days());
  o.set_owner(r.owner);
  o.set_environment(r.environment);
  o.set_display_name(spec.display_name());
  o.set_auto_renew(spec.auto_renew());
  o.set_renew_before_days(spec.renew_before_days());
  o.set_reuse_key(spec.reuse_key());
  o.set_requester(r.requester);
  o.set_request_id(r.request_id);
  for (const ApprovalRecord& a : r.approvals) {
    v1::Approval& out = *o.add_approvals();
    out.set_approver(a.approver);
    *out.mutable_time() = TimeToProto(a.time);
    out.set_comment(a.comment);
  }
  o.set_required_approvals(r.required_approvals);
  o.set_key_name(r.key_name);
  o.set_csr_pem(r.csr_pem);
  if (!r.certificate_id.empty()) {
    o.set_certificate(absl::StrCat("certificates/", r.certificate_id));
  } else if (!r.renewal_of.empty()) {
    o.set_certificate(absl::StrCat("certificates/", r.renewal_of));
  }
  o.set_certificate_version(r.certificate_version);
  o.set_serial_hex(r.serial_hex);
  if (r.not_after_us.has_value()) {
    *o.mutable_not_after() = TimeToProto(absl::FromUnixMicros(*r.not_after_us));
  }
  o.set_failure_reason(r.failure_reason);
  for (const OrderEventRecord& e : r.events) {
    v1::OrderEvent& out = *o.add_events();
    out.set_from_state(StateToProto(e.from_state));
    out.set_to_state(StateToProto(e.to_state));
    *out.mutable_time() = TimeToProto(e.time);
    out.set_actor(e.actor);
    out.set_reason(e.reason);
  }
  *o.mutable_create_time() = TimeToProto(r.create_time);
  *o.mutable_update_time() = TimeToProto(r.update_time);
  o.set_etag(r.etag);
  o.set_attempts(r.attempts);
  if (r.attempts > 0 && r.next_attempt_time != absl::InfinitePast()) {
    *o.mutable_next_attempt_time() = TimeToProto(r.next_attempt_time);
  }
  return o;
}

IssuanceService::IssuanceService(IssuanceStore& orders, RenewalStore& renewals,
                                 const IssuerMap& issuers, Peers& peers,
                                 OrderWorkflow& workflow,
                                 const v1::IssuanceConfig& config, Clock clock,
                                 IssuanceServiceOptions options)
    : orders_(orders),
      renewals_(renewals),
      issuers_(issuers),
      peers_(peers),
      workflow_(workflow),
      config_(config),
      clock_(std::move(clock)),
      options_(std::move(options)) {}

absl::StatusOr<OrderRecord> IssuanceService::LoadOrder(absl::string_view name) {
  CERTPLANE_ASSIGN_OR_RETURN(std::string id, ParseOrderName("name", name));
  absl::StatusOr<OrderRecord> order = orders_.GetOrder(id);
  if (absl::IsInvalidArgument(order.status())) {
    return absl::InvalidArgumentError(
        absl::StrCat("name: ", order.status().message()));
  }
  return order;
}

grpc::Status IssuanceService::CreateOrder(grpc::ServerContext* context,
                                          const v1::CreateOrderRequest* request,
                                          v1::Order* response) {
  return Handle([&]() -> absl::Status {
    CERTPLANE_ASSIGN_OR_RETURN(Caller caller,
                               server::IdentifyCaller(*context, options_.caller));
    const absl::Time now = clock_();
    CERTPLANE_ASSIGN_OR_RETURN(
        PlannedOrder plan,
        PlanNewOrder(*request, config_, caller.identity, now));
    const ApprovalDecision approval =
        DecideApproval(config_, plan.record.issuer_id, plan.record.owner);
    OrderEventRecord created{
        .from_state = "",
        .to_state = plan.record.state,
        .time = now,
        .actor = caller.identity,
        .reason =
            plan.record.state == kApproved
                ? absl::StrCat(
                      "created; approved at once (rule: ", approval.rule, ")")
                : absl::StrCat("created; needs ",
                               plan.record.required_approvals,
                               " approval(s) (rule: ", approval.rule, ")")};
    if (request->validate_only()) {
      OrderRecord preview = plan.record;
      preview.create_time = now;
      preview.update_time = now;
      preview.events = {created};
      CERTPLANE_ASSIGN_OR_RETURN(*response, OrderToProto(preview));
      return absl::OkStatus();
    }
    const bool carry = request->wait() && plan.record.state == kApproved;
    const std::string lease = RandomLease();
    if (carry) {
      plan.record.lease_owner = lease;
      plan.record.lease_expiry = now + options_.rpc_lease;
    }
    CERTPLANE_ASSIGN_OR_RETURN(OrderRecord stored,
                               orders_.CreateOrder(plan.record, created));
    if (carry && stored.lease_owner == lease) {
      // This call created it (not a repeat of an earlier request): carry it.
      absl::StatusOr<OrderRecord> carried = workflow_.Advance(stored, lease);
      if (carried.ok()) {
        stored = *std::move(carried);
      } else {
        // Stored and leased: the workers take it up once the lease ends.
        log::Warning("issuance: could not carry a new order through",
                     {{"order", stored.order_id},
                      {"error", carried.status().ToString()}});
      }
    } else if (stored.state == kApproved) {
      workflow_.Wake();
    }
    CERTPLANE_ASSIGN_OR_RETURN(*response, OrderToProto(stored));
    return absl::OkStatus();
  });
}

grpc::Status IssuanceService::GetOrder(grpc::ServerContext* context,
                                       const v1::GetOrderRequest* request,
                                       v1::Order* response) {
  return Handle([&]() -> absl::Status {
    CERTPLANE_RETURN_IF_ERROR(
        server::IdentifyCaller(*context, options_.caller).status());
    CERTPLANE_ASSIGN_OR_RETURN(OrderRecord order, LoadOrder(request->name()));
    CERTPLANE_ASSIGN_OR_RETURN(*response, OrderToProto(order));
    return absl::OkStatus();
  });
}

grpc::Status IssuanceService::ListOrders(grpc::ServerContext* context,
                                         const v1::ListOrdersRequest* request,
                                         v1::ListOrdersResponse* response) {
  return Handle([&]() -> absl::Status {
    CERTPLANE_RETURN_IF_ERROR(
        server::IdentifyCaller(*context, options_.caller).status());
    OrderQuery query;
    CERTPLANE_ASSIGN_OR_RETURN(query.page_size, PageSize(request->page_size()));
    query.page_token = request->page_token();
    query.filter = request->filter();
    query.order_by = request->order_by();
    CERTPLANE_ASSIGN_OR_RETURN(OrderPage page, orders_.ListOrders(query));
    for (const OrderRecord& r : page.orders) {
      CERTPLANE_ASSIGN_OR_RETURN(*response->add_orders(), OrderToProto(r));
    }
    response->set_next_page_token(page.next_page_token);
    response->set_total_size(static_cast<int32_t>(page.total_size));
    return absl::OkStatus();
  });
}

grpc::Status IssuanceService::ApproveOrder(
    grpc::ServerContext* context, const v1::ApproveOrderRequest* request,
    v1::Order* response) {
  return Handle([&]() -> absl::Status {
    CERTPLANE_ASSIGN_OR_RETURN(Caller caller,
                               server::IdentifyCaller(*context, options_.caller));
    CERTPLANE_RETURN_IF_ERROR(CheckComment(request->comment(), false));
    CERTPLANE_ASSIGN_OR_RETURN(OrderRecord order, LoadOrder(request->name()));
    CERTPLANE_RETURN_IF_ERROR(CheckApprover(caller.identity, order.requester,
                                            order.owner,
                                            caller.TeamsWithRole("approver")));
    CERTPLANE_ASSIGN_OR_RETURN(
        OrderRecord approved,
        orders_.AddApproval(order.order_id,
                            {.approver = caller.identity,
                             .time = clock_(),
                             .comment = request->comment()},
                            request->etag()));
    if (approved.state == kApproved) workflow_.Wake();
    CERTPLANE_ASSIGN_OR_RETURN(*response, OrderToProto(approved));
    return absl::OkStatus();
  });
}

grpc::Status IssuanceService::RejectOrder(grpc::ServerContext* context,
                                          const v1::RejectOrderRequest* request,
                                          v1::Order* response) {
  return Handle([&]() -> absl::Status {
    CERTPLANE_ASSIGN_OR_RETURN(Caller caller,
                               server::IdentifyCaller(*context, options_.caller));
    CERTPLANE_RETURN_IF_ERROR(CheckComment(request->comment(), true));
    CERTPLANE_ASSIGN_OR_RETURN(OrderRecord order, LoadOrder(request->name()));
    CERTPLANE_RETURN_IF_ERROR(CheckApprover(caller.identity, order.requester,
                                            order.owner,
                                            caller.TeamsWithRole("approver")));
    const std::vector<std::string> from = {kPendingApproval};
    CERTPLANE_ASSIGN_OR_RETURN(
        OrderRecord rejected,
        orders_.Transition(
            order.order_id, from,
            {.from_state = "",
             .to_state = kRejected,
             .time = clock_(),
             .actor = caller.identity,
             .reason = absl::StrCat("rejected: ", request->comment())},
            {}, request->etag(), ""));
    workflow_.AfterEnded(rejected);
    CERTPLANE_ASSIGN_OR_RETURN(*response, OrderToProto(rejected));
    return absl::OkStatus();
  });
}

grpc::Status IssuanceService::CancelOrder(grpc::ServerContext* context,
                                          const v1::CancelOrderRequest* request,
                                          v1::Order* response) {
  return Handle([&]() -> absl::Status {
    CERTPLANE_ASSIGN_OR_RETURN(Caller caller,
                               server::IdentifyCaller(*context, options_.caller));
    CERTPLANE_RETURN_IF_ERROR(CheckComment(request->comment(), false));
    CERTPLANE_ASSIGN_OR_RETURN(OrderRecord order, LoadOrder(request->name()));
    if (caller.identity != order.requester &&
        !caller.HasRole("approver", order.owner)) {
      return absl::PermissionDeniedError(absl::StrCat(
          caller.identity, " may not cancel order ", order.order_id,
          ": only its requester or an approver for team ", order.owner));
    }
    // A signed certificate (SUBMITTED) is stored rather than thrown away.
    const std::vector<std::string> from = {kPendingApproval, kApproved,
                                           kKeyReady, kAwaitingCertificate};
    CERTPLANE_ASSIGN_OR_RETURN(
        OrderRecord cancelled,
        orders_.Transition(
            order.order_id, from,
            {.from_state = "",
             .to_state = kCancelled,
             .time = clock_(),
             .actor = caller.identity,
             .reason = request->comment().empty()
                           ? std::string("cancelled")
                           : absl::StrCat("cancelled: ", request->comment())},
            {}, request->etag(), ""));
    workflow_.AfterEnded(cancelled);
    CERTPLANE_ASSIGN_OR_RETURN(*response, OrderToProto(cancelled));
    return absl::OkStatus();
  });
}

grpc::Status IssuanceService::GetOrderCsr(grpc::ServerContext* context,
                                          const v1::GetOrderCsrRequest* request,
                                          v1::OrderCsr* response) {
  return Handle([&]() -> absl::Status {
    CERTPLANE_RETURN_IF_ERROR(
        server::IdentifyCaller(*context, options_.caller).status());
    CERTPLANE_ASSIGN_OR_RETURN(OrderRecord order, LoadOrder(request->name()));
    if (order.csr_pem.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("order ", order.order_id, " is ", order.state,
                       "; its CSR exists once the key is ready"));
    }
    response->set_csr_pem(order.csr_pem);
    const std::string base =
        order.common_name.empty()
            ? (order.sans.empty() ? order.order_id : order.sans.front())
            : order.common_name;
    std::string file =
        absl::StrReplaceAll(base, {{"*", "wildcard"}, {"/", "_"}, {":", "_"}});
    response->set_filename(absl::StrCat(file, ".csr"));
    return absl::OkStatus();
  });
}

absl::StatusOr<v1::Order> IssuanceService::Upload(
    const Caller& caller, const v1::UploadCertificateRequest& request) {
  CERTPLANE_ASSIGN_OR_RETURN(OrderRecord order, LoadOrder(request.name()));
  if (order.state != kAwaitingCertificate) {
    return absl::FailedPreconditionError(absl::StrCat(
        "order ", order.order_id, " is ", order.state,
        "; a certificate is uploaded only while the order awaits one"));
  }
  if (request.certificate().empty()) {
    return absl::InvalidArgumentError(
        "certificate: required (PEM, DER or PKCS#7, with its chain)");
  }
  absl::StatusOr<crypto::ParsedBundle> bundle =
      crypto::ReadBundle(request.certificate());
  if (!bundle.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate: ", bundle.status().message()));
  }
  if (!bundle->keys.empty()) {
    return absl::InvalidArgumentError(
        "certificate: holds a private key; upload only the certificate and "
        "its chain (this order's key stays in the vault)");
  }
  CERTPLANE_ASSIGN_OR_RETURN(
      crypto::CertificateRequest csr,
      crypto::CertificateRequest::FromPem(order.csr_pem));
  const crypto::Certificate* leaf = nullptr;
  std::string other_leaf;
  for (const crypto::Certificate& c : bundle->certificates) {
    if (c.info().is_ca) continue;
    if (c.public_key() == csr.public_key()) {
      leaf = &c;
      break;
    }
    if (other_leaf.empty()) other_leaf = c.info().spki_sha256_hex;
  }
  if (leaf == nullptr) {
    if (other_leaf.empty()) {
      return absl::InvalidArgumentError(
          "certificate: holds only CA certificates; upload the certificate "
          "the CA issued for this order");
    }
    return absl::InvalidArgumentError(
        absl::StrCat("certificate: its public key (SPKI SHA-256 ", other_leaf,
                     ") is not this order's key (",
                     absl::BytesToHexString(csr.public_key().SpkiSha256()),
                     "); the CA must sign this order's CSR"));
  }
  CERTPLANE_ASSIGN_OR_RETURN(v1::CreateOrderRequest spec, ParseSpec(order));
  CERTPLANE_ASSIGN_OR_RETURN(
      std::vector<crypto::SubjectAltName> wanted,
      crypto_proto::SubjectAltNamesFromProto(spec.sans(), "sans"));
  std::set<std::string> want, have;
  for (const crypto::SubjectAltName& san : wanted) want.insert(SanKey(san));
  for (const crypto::SubjectAltName& san : leaf->info().sans) {
    have.insert(SanKey(san));
  }
  std::vector<std::string> missing, extra;
  for (const std::string& s : want) {
    if (!have.contains(s)) missing.push_back(s);
  }
  for (const std::string& s : have) {
    if (!want.contains(s)) extra.push_back(s);
  }
  if (!missing.empty() || !extra.empty()) {
    std::vector<std::string> parts;
    if (!missing.empty()) {
      parts.push_back(absl::StrCat("missing ", absl::StrJoin(missing, ", ")));
    }
    if (!extra.empty()) {
      parts.push_back(absl::StrCat("not ordered ", absl::StrJoin(extra, ", ")));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("certificate: its SANs do not match the order (",
                     absl::StrJoin(parts, "; "), ")"));
  }
  const absl::Time now = clock_();
  if (leaf->info().not_after <= now) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate: expired at ",
                     absl::FormatTime(absl::RFC3339_sec, leaf->info().not_after,
                                      absl::UTCTimeZone())));
  }
  std::string chain;
  for (const crypto::Certificate& c : bundle->certificates) {
    if (&c != leaf && c.info().is_ca) chain += c.ToPem();
  }
  OrderUpdate update;
  update.certificate_der = leaf->der();
  update.chain_pem = std::move(chain);
  update.serial_hex = leaf->info().serial_hex;
  update.not_after_us = absl::ToUnixMicros(leaf->info().not_after);
  update.attempts = 0;
  update.next_attempt_time = now;
  const std::string lease = RandomLease();
  update.take_lease = lease;
  update.take_lease_expiry = now + options_.rpc_lease;
  const std::vector<std::string> from = {kAwaitingCertificate};
  CERTPLANE_ASSIGN_OR_RETURN(
      OrderRecord submitted,
      orders_.Transition(
          order.order_id, from,
          {.from_state = "",
           .to_state = kSubmitted,
           .time = now,
           .actor = caller.identity,
           .reason = absl::StrCat("certificate uploaded, serial ",
                                  leaf->info().serial_hex)},
          update, "", ""));
  CERTPLANE_ASSIGN_OR_RETURN(OrderRecord done,
                             workflow_.Advance(std::move(submitted), lease));
  return OrderToProto(done);
}

grpc::Status IssuanceService::UploadCertificate(
    grpc::ServerContext* context, const v1::UploadCertificateRequest* request,
    v1::Order* response) {
  return Handle([&]() -> absl::Status {
    CERTPLANE_ASSIGN_OR_RETURN(Caller caller,
                               server::IdentifyCaller(*context, options_.caller));
    CERTPLANE_ASSIGN_OR_RETURN(*response, Upload(caller, *request));
    return absl::OkStatus();
  });
}

grpc::Status IssuanceService::RenewCertificate(
    grpc::ServerContext* context, const v1::RenewCertificateRequest* request,
    v1::Order* response) {
  return Handle([&]() -> absl::Status {
    CERTPLANE_ASSIGN_OR_RETURN(Caller caller,
                               server::IdentifyCaller(*context, options_.caller));
    absl::string_view id = request->certificate();
    if (!absl::ConsumePrefix(&id, "certificates/") || id.empty() ||
        absl::StrContains(id, '/')) {
      return absl::InvalidArgumentError(
          "certificate: must be certificates/{certificate_id}");
    }
    CERTPLANE_ASSIGN_OR_RETURN(std::optional<OrderRecord> open,
                               orders_.FindOpenRenewal(id));
    if (open.has_value() && request->request_id().empty()) {
      CERTPLANE_ASSIGN_OR_RETURN(*response, OrderToProto(*open));
      return absl::OkStatus();
    }
    CERTPLANE_ASSIGN_OR_RETURN(inventory_v1::ManagedCertificate certificate,
                               peers_.GetCertificate(request->certificate()));
    const absl::Time now = clock_();
    CERTPLANE_ASSIGN_OR_RETURN(
        PlannedOrder plan, PlanRenewal(certificate, config_, caller.identity,
                                       request->request_id(), now));
    absl::StatusOr<OrderRecord> stored =
        orders_.CreateOrder(plan.record, {.from_state = "",
                                          .to_state = kApproved,
                                          .time = now,
                                          .actor = caller.identity,
                                          .reason = "renewal requested"});
    if (absl::IsAlreadyExists(stored.status()) &&
        request->request_id().empty()) {
      // Another caller (or the controller) opened one meanwhile.
      CERTPLANE_ASSIGN_OR_RETURN(open, orders_.FindOpenRenewal(id));
      if (open.has_value()) stored = *std::move(open);
    }
    if (!stored.ok()) return stored.status();
    workflow_.Wake();
    CERTPLANE_ASSIGN_OR_RETURN(*response, OrderToProto(*stored));
    return absl::OkStatus();
  });
}

grpc::Status IssuanceService::RevokeCertificate(
    grpc::ServerContext* context, const v1::RevokeCertificateRequest* request,
    v1::Revocation* response) {
  return Handle([&]() -> absl::Status {
    CERTPLANE_ASSIGN_OR_RETURN(Caller caller,
                               server::IdentifyCaller(*context, options_.caller));
    const std::string& name = request->certificate_version();
    std::vector<absl::string_view> parts = absl::StrSplit(name, '/');
    int64_t number = 0;
    if (parts.size() != 4 || parts[0] != "certificates" || parts[1].empty() ||
        parts[2] != "versions" || !absl::SimpleAtoi(parts[3], &number) ||
        number < 1) {
      return absl::InvalidArgumentError(
          "certificate_version: must be "
          "certificates/{certificate_id}/versions/{n}");
    }
    const std::string reason =
        request->reason().empty() ? "unspecified" : request->reason();
    if (crypto::CrlReasonCode(reason) < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "reason: \"", absl::CHexEscape(reason.substr(0, 64)),
          "\" is not an RFC 5280 reason (unspecified, keyCompromise, "
          "cACompromise, affiliationChanged, superseded, "
          "cessationOfOperation, certificateHold, privilegeWithdrawn, "
          "aACompromise)"));
    }
    CERTPLANE_ASSIGN_OR_RETURN(
        inventory_v1::ManagedCertificate certificate,
        peers_.GetCertificate(absl::StrCat("certificates/", parts[1])));
    if (!caller.HasRole("operator", certificate.owner())) {
      return absl::PermissionDeniedError(
          absl::StrCat(caller.identity, " may not revoke certificates of team ",
                       certificate.owner(), ": that needs the operator role"));
    }
    CERTPLANE_ASSIGN_OR_RETURN(inventory_v1::CertificateVersion version,
                               peers_.GetCertificateVersion(name));
    Issuer* issuer = nullptr;
    for (const auto& [id, candidate] : issuers_) {
      if (candidate->Issued(version.der())) issuer = candidate.get();
    }
    if (issuer == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          name,
          " was not issued by an internal CA of this service; revoke it "
          "at the CA that issued it"));
    }
    const absl::Time now = clock_();
    CERTPLANE_ASSIGN_OR_RETURN(
        CrlSnapshot crl,
        issuer->Revoke(version.details().serial_hex(), reason, name, now));
    inventory_v1::RevokeCertificateVersionRequest mark;
    mark.set_name(name);
    mark.set_reason(reason);
    *mark.mutable_revoke_time() = TimeToProto(now);
    // A repeat (or a retry after a crash here) finds it marked already.
    if (version.status() != inventory_v1::REVOKED) {
      CERTPLANE_RETURN_IF_ERROR(peers_.RevokeCertificateVersion(mark).status());
    }
    log::Info("issuance: certificate revoked",
              {{"version", name},
               {"serial", version.details().serial_hex()},
               {"reason", reason},
               {"by", caller.identity}});
    response->set_issuer(issuer->description().name());
    response->set_serial_hex(version.details().serial_hex());
    response->set_reason(reason);
    *response->mutable_revoke_time() = TimeToProto(now);
    response->set_certificate_version(name);
    response->set_crl_number(crl.crl_number);
    return absl::OkStatus();
  });
}

absl::StatusOr<v1::Issuer> IssuanceService::DescribeIssuer(
    const std::string& id) const {
  auto it = issuers_.find(id);
  if (it == issuers_.end()) {
    return absl::NotFoundError(absl::StrCat("issuers/", id, " does not exist"));
  }
  v1::Issuer out = it->second->description();
  CERTPLANE_ASSIGN_OR_RETURN(const v1::IssuerConfig* config,
                             FindIssuer(config_, absl::StrCat("issuers/", id)));
  out.clear_profiles();
  for (const v1::Profile& p : IssuerProfiles(*config)) *out.add_profiles() = p;
  out.set_default_profile(config->default_profile().empty()
                              ? out.profiles(0).name()
                              : config->default_profile());
  return out;
}

grpc::Status IssuanceService::ListIssuers(grpc::ServerContext* context,
                                          const v1::ListIssuersRequest*,
                                          v1::ListIssuersResponse* response) {
  return Handle([&]() -> absl::Status {
    CERTPLANE_RETURN_IF_ERROR(
        server::IdentifyCaller(*context, options_.caller).status());
    for (const auto& [id, issuer] : issuers_) {
      CERTPLANE_ASSIGN_OR_RETURN(*response->add_issuers(), DescribeIssuer(id));
    }
    return absl::OkStatus();
  });
}

grpc::Status IssuanceService::GetIssuer(grpc::ServerContext* context,
                                        const v1::GetIssuerRequest* request,
                                        v1::Issuer* response) {
  return Handle([&]() -> absl::Status {
    CERTPLANE_RETURN_IF_ERROR(
        server::IdentifyCaller(*context, options_.caller).status());
    CERTPLANE_ASSIGN_OR_RETURN(std::string id,
                               ParseIssuerName("name", request->name()));
    CERTPLANE_ASSIGN_OR_RETURN(*response, DescribeIssuer(id));
    return absl::OkStatus();
  });
}

grpc::Status IssuanceService::GetCrl(grpc::ServerContext* context,
                                     const v1::GetCrlRequest* request,
                                     v1::Crl* response) {
  return Handle([&]() -> absl::Status {
    CERTPLANE_RETURN_IF_ERROR(
        server::IdentifyCaller(*context, options_.caller).status());
    CERTPLANE_ASSIGN_OR_RETURN(std::string id,
                               ParseIssuerName("issuer", request->issuer()));
    auto it = issuers_.find(id);
    if (it == issuers_.end()) {
      return absl::NotFoundError(
          absl::StrCat("issuer: issuers/", id, " does not exist"));
    }
    CERTPLANE_ASSIGN_OR_RETURN(CrlSnapshot crl,
                               it->second->CurrentCrl(clock_()));
    response->set_der(crl.der);
    response->set_crl_number(crl.crl_number);
    *response->mutable_this_update() = TimeToProto(crl.this_update);
    *response->mutable_next_update() = TimeToProto(crl.next_update);
    response->set_revoked_count(crl.revoked_count);
    return absl::OkStatus();
  });
}

grpc::Status IssuanceService::ListRenewals(
    grpc::ServerContext* context, const v1::ListRenewalsRequest* request,
    v1::ListRenewalsResponse* response) {
  return Handle([&]() -> absl::Status {
    CERTPLANE_RETURN_IF_ERROR(
        server::IdentifyCaller(*context, options_.caller).status());
    CERTPLANE_ASSIGN_OR_RETURN(int page_size, PageSize(request->page_size()));
    CERTPLANE_ASSIGN_OR_RETURN(
        RenewalPage page,
        renewals_.ListRenewals(page_size, request->page_token(),
                               request->failing_only()));
    for (const RenewalRecord& r : page.renewals) {
      v1::Renewal& out = *response->add_renewals();
      out.set_certificate(absl::StrCat("certificates/", r.certificate_id));
      *out.mutable_not_after() = TimeToProto(r.not_after);
      *out.mutable_renew_time() = TimeToProto(r.renew_time);
      out.set_failure_count(r.failure_count);
      out.set_last_error(r.last_error);
      if (!r.last_order_id.empty()) {
        out.set_last_order(absl::StrCat("orders/", r.last_order_id));
      }
      if (r.next_attempt_time != absl::InfinitePast()) {
        *out.mutable_next_attempt_time() = TimeToProto(r.next_attempt_time);
      }
    }
    response->set_next_page_token(page.next_page_token);
    return absl::OkStatus();
  });
}

}  // namespace certplane::issuance
