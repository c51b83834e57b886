#include "services/issuance/renewal_controller.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "grpcpp/grpcpp.h"
#include "libs/crypto_proto/crypto_proto.h"
#include "libs/server/json_log.h"
#include "libs/status/grpc_status.h"
#include "libs/status/status_macros.h"
#include "services/issuance/order_plan.h"
#include "services/issuance/renewal_schedule.h"

namespace certplane::issuance {
namespace {

namespace inventory_v1 = ::certplane::inventory::v1;

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

}  // namespace

RenewalController::RenewalController(RenewalStore& renewals,
                                     IssuanceStore& orders, Peers& peers,
                                     const v1::IssuanceConfig& config,
                                     OrderWorkflow& workflow, Clock clock,
                                     RenewalControllerOptions options)
    : renewals_(renewals),
      orders_(orders),
      peers_(peers),
      config_(config),
      workflow_(workflow),
      clock_(std::move(clock)),
      options_(std::move(options)) {}

RenewalController::~RenewalController() { Stop(); }

void RenewalController::Loop(absl::Duration interval,
                             absl::FunctionRef<void()> pass) {
  while (true) {
    pass();
    absl::MutexLock lock(&mu_);
    auto stopping = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping), interval)) return;
  }
}

void RenewalController::Start() {
  threads_.emplace_back([this] {
    Loop(options_.reconnect_delay, [this] {
      if (absl::Status s = Follow(/*wait=*/true); !s.ok()) {
        log::Warning("issuance: inventory change feed interrupted",
                     {{"error", s.ToString()}});
      }
    });
  });
  threads_.emplace_back([this] {
    Loop(options_.sweep_interval, [this] {
      if (absl::Status s = SweepOnce(); !s.ok()) {
        log::Warning("issuance: renewal sweep failed",
                     {{"error", s.ToString()}});
      }
    });
  });
  threads_.emplace_back([this] {
    const std::string worker = absl::StrCat(options_.worker_id, "/renewals");
    Loop(options_.due_poll_interval, [&] {
      while (true) {
        absl::StatusOr<int> n = RunDueOnce(worker);
        if (!n.ok()) {
          log::Warning("issuance: renewal pass failed",
                       {{"error", n.status().ToString()}});
        }
        if (!n.ok() || *n < options_.batch) return;
        absl::MutexLock lock(&mu_);
        if (stopping_) return;
      }
    });
  });
}

void RenewalController::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (stream_ != nullptr) stream_->TryCancel();
  }
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

absl::Status RenewalController::Track(
    const inventory_v1::ManagedCertificate& certificate) {
  const std::string& id = certificate.certificate_id();
  if (id.empty()) {
    return absl::InvalidArgumentError("certificate without an id");
  }
  if (certificate.has_delete_time() || !certificate.renewal().auto_renew() ||
      !certificate.has_current_version()) {
    return renewals_.DeleteRenewal(id);
  }
  const inventory_v1::CertificateVersion& current =
      certificate.current_version();
  const absl::Time not_before = FromProto(current.details().not_before());
  const absl::Time not_after = FromProto(current.details().not_after());
  RenewalRecord r;
  r.certificate_id = id;
  r.version = current.name();
  r.not_after = not_after;
  r.renew_time = RenewalTime(id, not_before, not_after,
                             certificate.renewal().renew_before_days());
  return renewals_.UpsertRenewal(r, clock_());
}

absl::Status RenewalController::SweepOnce() {
  inventory_v1::ListCertificatesRequest request;
  request.set_filter("auto_renew = true");
  request.set_page_size(1000);
  do {
    CERTPLANE_ASSIGN_OR_RETURN(inventory_v1::ListCertificatesResponse page,
                               peers_.ListCertificates(request));
    for (const inventory_v1::ManagedCertificate& c : page.certificates()) {
      CERTPLANE_RETURN_IF_ERROR(Track(c));
    }
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());
  return absl::OkStatus();
}

absl::Status RenewalController::ApplyChange(
    const inventory_v1::Change& change) {
  switch (change.kind()) {
    case inventory_v1::CERTIFICATE_CREATED:
    case inventory_v1::CERTIFICATE_UPDATED:
    case inventory_v1::CERTIFICATE_DELETED:
    case inventory_v1::VERSION_ADDED:
    case inventory_v1::VERSION_REVOKED:
      break;
    default:
      return absl::OkStatus();
  }
  if (!absl::StartsWith(change.certificate(), "certificates/")) {
    return absl::OkStatus();
  }
  absl::StatusOr<inventory_v1::ManagedCertificate> certificate =
      peers_.GetCertificate(change.certificate());
  if (absl::IsNotFound(certificate.status())) {
    return renewals_.DeleteRenewal(
        absl::StripPrefix(change.certificate(), "certificates/"));
  }
  if (!certificate.ok()) return certificate.status();
  return Track(*certificate);
}

absl::Status RenewalController::Follow(bool wait) {
  CERTPLANE_ASSIGN_OR_RETURN(int64_t cursor,
                             renewals_.GetCursor(options_.cursor_name));
  if (peers_.inventory_stub() == nullptr) {
    return absl::FailedPreconditionError("no inventory is configured");
  }
  std::unique_ptr<grpc::ClientContext> context = peers_.StreamContext();
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::OkStatus();
    stream_ = context.get();
  }
  inventory_v1::WatchChangesRequest request;
  request.set_since_revision(cursor);
  request.set_no_wait(!wait);
  std::unique_ptr<grpc::ClientReaderInterface<inventory_v1::Change>> reader =
      peers_.inventory_stub()->WatchChanges(context.get(), request);
  inventory_v1::Change change;
  absl::Status status;
  while (reader->Read(&change)) {
    status = ApplyChange(change);
    if (!status.ok()) break;
    status = renewals_.SetCursor(options_.cursor_name, change.revision());
    if (!status.ok()) break;
  }
  if (!status.ok()) context->TryCancel();
  absl::Status finished = FromGrpcStatus(reader->Finish());
  {
    absl::MutexLock lock(&mu_);
    stream_ = nullptr;
    if (stopping_) return absl::OkStatus();
  }
  if (!status.ok()) return status;
  if (!finished.ok()) {
    return absl::Status(finished.code(),
                        absl::StrCat("inventory: ", finished.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> RenewalController::FollowOnce() {
  CERTPLANE_RETURN_IF_ERROR(Follow(/*wait=*/false));
  return renewals_.GetCursor(options_.cursor_name);
}

absl::StatusOr<int> RenewalController::RunDueOnce(const std::string& worker) {
  CERTPLANE_ASSIGN_OR_RETURN(
      std::vector<RenewalRecord> due,
      renewals_.ClaimDueRenewals(worker, clock_(), options_.lease,
                                 options_.batch));
  for (const RenewalRecord& r : due) {
    if (absl::Status s = Act(r, worker); !s.ok()) {
      log::Warning(
          "issuance: renewal step failed",
          {{"certificate", r.certificate_id}, {"error", s.ToString()}});
      // Let the lease lapse; the row is due again after it.
    }
  }
  return static_cast<int>(due.size());
}

absl::Status RenewalController::Act(const RenewalRecord& r,
                                    const std::string& worker) {
  const absl::Time now = clock_();
  RenewalUpdate update;
  if (!r.last_order_id.empty()) {
    CERTPLANE_ASSIGN_OR_RETURN(OrderRecord order,
                               orders_.GetOrder(r.last_order_id));
    if (!IsFinalOrderState(order.state)) {
      update.next_attempt_time = now + options_.recheck;
    } else if (order.state == kIssued) {
      // The new version takes over (the feed usually got here first).
      CERTPLANE_ASSIGN_OR_RETURN(inventory_v1::ManagedCertificate certificate,
                                 peers_.GetCertificate(absl::StrCat(
                                     "certificates/", r.certificate_id)));
      CERTPLANE_RETURN_IF_ERROR(Track(certificate));
      update.last_order_id = "";
    } else {
      const int failures = r.failure_count + 1;
      update.failure_count = failures;
      update.last_error = order.failure_reason.empty()
                              ? absl::StrCat("renewal order ", order.order_id,
                                             " was ", order.state)
                              : order.failure_reason;
      update.last_order_id = "";
      update.next_attempt_time = order.update_time + RetryDelay(failures);
      log::Warning("issuance: renewal failed",
                   {{"certificate", r.certificate_id},
                    {"order", order.order_id},
                    {"failures", failures},
                    {"error", *update.last_error}});
    }
    return renewals_.FinishRenewal(r.certificate_id, worker, update, now);
  }

  CERTPLANE_ASSIGN_OR_RETURN(
      inventory_v1::ManagedCertificate certificate,
      peers_.GetCertificate(absl::StrCat("certificates/", r.certificate_id)));
  if (!certificate.has_current_version() ||
      certificate.current_version().name() != r.version ||
      !certificate.renewal().auto_renew() || certificate.has_delete_time()) {
    // Changed since it was scheduled: schedule it afresh.
    CERTPLANE_RETURN_IF_ERROR(
        renewals_.FinishRenewal(r.certificate_id, worker, update, now));
    return Track(certificate);
  }
  const std::string request_id =
      absl::StrCat("renewal:", r.version, ":", r.failure_count);
  absl::StatusOr<PlannedOrder> plan =
      PlanRenewal(certificate, config_, kRenewalActor, request_id, now);
  absl::StatusOr<OrderRecord> order;
  if (plan.ok()) {
    order = orders_.CreateOrder(
        plan->record, {.from_state = "",
                       .to_state = kApproved,
                       .time = now,
                       .actor = kRenewalActor,
                       .reason = absl::StrCat(
                           "renewal due at ",
                           absl::FormatTime(absl::RFC3339_sec, r.renew_time,
                                            absl::UTCTimeZone()))});
    if (absl::IsAlreadyExists(order.status())) {
      // Someone opened a renewal meanwhile (RenewCertificate): follow it.
      CERTPLANE_ASSIGN_OR_RETURN(std::optional<OrderRecord> open,
                                 orders_.FindOpenRenewal(r.certificate_id));
      if (open.has_value()) order = *std::move(open);
    }
  } else {
    order = plan.status();
  }
  if (!order.ok()) {
    if (!IsRefusal(order.status())) return order.status();
    const int failures = r.failure_count + 1;
    update.failure_count = failures;
    update.last_error = std::string(order.status().message());
    update.next_attempt_time = now + RetryDelay(failures);
    return renewals_.FinishRenewal(r.certificate_id, worker, update, now);
  }
  update.last_order_id = order->order_id;
  update.next_attempt_time = now + options_.recheck;
  CERTPLANE_RETURN_IF_ERROR(
      renewals_.FinishRenewal(r.certificate_id, worker, update, now));
  workflow_.Wake();
  return absl::OkStatus();
}

}  // namespace certplane::issuance
