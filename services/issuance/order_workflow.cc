#include "services/issuance/order_workflow.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/crypto/certificate.h"
#include "libs/server/json_log.h"
#include "libs/status/status_macros.h"
#include "services/issuance/order_plan.h"

namespace certplane::issuance {
namespace {

namespace inventory_v1 = ::certplane::inventory::v1;
namespace vault_v1 = ::certplane::vault::v1;

constexpr char kActor[] = "issuance";

std::string IdempotencyKey(const OrderRecord& order) {
  return absl::StrCat("issuance:", order.order_id);
}

absl::StatusOr<v1::Profile> ProfileOf(const v1::IssuanceConfig& config,
                                      const OrderRecord& order,
                                      const v1::CreateOrderRequest& spec) {
  CERTPLANE_ASSIGN_OR_RETURN(
      const v1::IssuerConfig* issuer,
      FindIssuer(config, absl::StrCat("issuers/", order.issuer_id)));
  for (v1::Profile& profile : IssuerProfiles(*issuer)) {
    if (profile.name() == spec.profile()) return std::move(profile);
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "issuer ", order.issuer_id, " no longer has profile ", spec.profile()));
}

}  // namespace

absl::StatusOr<v1::CreateOrderRequest> ParseSpec(const OrderRecord& order) {
  v1::CreateOrderRequest spec;
  if (!spec.ParseFromString(order.spec)) {
    return absl::DataLossError(
        absl::StrCat("order ", order.order_id, ": stored spec is unreadable"));
  }
  return spec;
}

bool IsRefusal(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kUnimplemented:
    case absl::StatusCode::kDataLoss:
      return true;
    default:
      return false;
  }
}

OrderWorkflow::OrderWorkflow(IssuanceStore& orders, RenewalStore& renewals,
                             const IssuerMap& issuers, Peers& peers,
                             const v1::IssuanceConfig& config, Clock clock,
                             WorkflowOptions options)
    : orders_(orders),
      renewals_(renewals),
      issuers_(issuers),
      peers_(peers),
      config_(config),
      clock_(std::move(clock)),
      options_(std::move(options)) {}

OrderWorkflow::~OrderWorkflow() { Stop(); }

void OrderWorkflow::Start() {
  for (int i = 0; i < options_.threads; ++i) {
    threads_.emplace_back([this, i] { WorkerLoop(i); });
  }
}

void OrderWorkflow::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

void OrderWorkflow::Wake() {
  absl::MutexLock lock(&mu_);
  ++wakeups_;
}

void OrderWorkflow::WorkerLoop(int index) {
  const std::string worker = absl::StrCat(options_.worker_id, "/", index);
  uint64_t seen = 0;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      seen = wakeups_;
    }
    absl::StatusOr<int> claimed = RunOnce(worker);
    if (!claimed.ok()) {
      log::Warning(
          "issuance: claiming orders failed",
          {{"worker", worker}, {"error", claimed.status().ToString()}});
    }
    if (claimed.ok() && *claimed > 0) continue;
    absl::MutexLock lock(&mu_);
    auto woken = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return stopping_ || wakeups_ != seen;
    };
    mu_.AwaitWithTimeout(absl::Condition(&woken), options_.poll_interval);
  }
}

absl::StatusOr<int> OrderWorkflow::RunOnce(const std::string& worker) {
  static const std::vector<std::string> kStates = {kApproved, kKeyReady,
                                                   kSubmitted};
  CERTPLANE_ASSIGN_OR_RETURN(
      std::vector<OrderRecord> claimed,
      orders_.ClaimOrders(kStates, worker, clock_(), options_.lease,
                          options_.batch));
  for (OrderRecord& order : claimed) {
    const std::string id = order.order_id;
    absl::StatusOr<OrderRecord> done = Advance(std::move(order), worker);
    if (!done.ok()) {
      log::Warning("issuance: order step not recorded",
                   {{"order", id}, {"error", done.status().ToString()}});
    }
  }
  return static_cast<int>(claimed.size());
}

absl::StatusOr<OrderRecord> OrderWorkflow::Advance(
    OrderRecord order, const std::string& lease_owner) {
  while (true) {
    absl::StatusOr<Step> step;
    if (order.state == kApproved) {
      step = KeyStep(order);
    } else if (order.state == kKeyReady) {
      step = SubmitStep(order);
    } else if (order.state == kSubmitted) {
      step = StoreStep(order);
    } else {
      return order;
    }
    const bool failed = !step.ok();
    Step next = failed ? Failure(order, step.status()) : *std::move(step);
    OrderEventRecord event{.from_state = order.state,
                           .to_state = next.to_state,
                           .time = clock_(),
                           .actor = kActor,
                           .reason = next.reason};
    const std::vector<std::string> from = {order.state};
    CERTPLANE_ASSIGN_OR_RETURN(
        order, orders_.Transition(order.order_id, from, event, next.update, "",
                                  lease_owner));
    if (order.state == kFailed) AfterEnded(order);
    if (order.state == kIssued) {
      log::Info(
          "issuance: order issued",
          {{"order", order.order_id}, {"version", order.certificate_version}});
      if (!order.renewal_of.empty()) {
        (void)renewals_.PokeRenewal(order.renewal_of, order.order_id, clock_());
      }
    }
    if (failed || IsFinalOrderState(order.state) ||
        order.state == kAwaitingCertificate) {
      return order;
    }
  }
}

absl::StatusOr<OrderWorkflow::Step> OrderWorkflow::KeyStep(
    const OrderRecord& order) {
  CERTPLANE_ASSIGN_OR_RETURN(v1::CreateOrderRequest spec, ParseSpec(order));
  Step step{.to_state = kKeyReady, .update = {}, .reason = ""};
  std::string key_name = order.key_name;
  if (spec.reuse_key() && !key_name.empty()) {
    step.reason = absl::StrCat("renewal keeps key ", key_name);
  } else {
    vault_v1::GenerateKeyRequest request;
    *request.mutable_spec() = spec.key_spec();
    request.set_owner(order.owner);
    (*request.mutable_labels())["order"] = order.order_id;
    request.set_request_id(IdempotencyKey(order));
    CERTPLANE_ASSIGN_OR_RETURN(vault_v1::Key key, peers_.GenerateKey(request));
    key_name = key.name();
    step.reason = absl::StrCat("key ", key_name, " generated in the vault");
  }
  vault_v1::CreateCsrRequest csr;
  csr.set_name(key_name);
  *csr.mutable_subject() = spec.subject();
  *csr.mutable_sans() = spec.sans();
  absl::StatusOr<std::string> csr_pem = peers_.CreateCsr(csr);
  if (!csr_pem.ok()) {
    // A refused CSR fails the order before its key name is recorded: drop
    // the new key here, or nothing would. (After an outage the retry gets
    // the same key back by request id.)
    if (IsRefusal(csr_pem.status()) && !spec.reuse_key()) {
      (void)peers_.DeleteKey(key_name);
    }
    return csr_pem.status();
  }
  step.update.key_name = key_name;
  step.update.csr_pem = *std::move(csr_pem);
  step.update.attempts = 0;
  absl::StrAppend(&step.reason, "; CSR made");
  return step;
}

absl::StatusOr<OrderWorkflow::Step> OrderWorkflow::SubmitStep(
    const OrderRecord& order) {
  auto issuer = issuers_.find(order.issuer_id);
  if (issuer == issuers_.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("issuer ", order.issuer_id, " is no longer configured"));
  }
  CERTPLANE_ASSIGN_OR_RETURN(v1::CreateOrderRequest spec, ParseSpec(order));
  CERTPLANE_ASSIGN_OR_RETURN(v1::Profile profile,
                             ProfileOf(config_, order, spec));
  CERTPLANE_ASSIGN_OR_RETURN(
      std::optional<IssuedCertificate> issued,
      issuer->second->Submit({.order_id = order.order_id,
                              .csr_pem = order.csr_pem,
                              .profile = std::move(profile),
                              .validity_days = spec.validity_days(),
                              .now = clock_()}));
  Step step;
  step.update.attempts = 0;
  if (!issued.has_value()) {
    step.to_state = kAwaitingCertificate;
    step.update.release_lease = true;
    step.reason = absl::StrCat("waiting for the certificate from issuers/",
                               order.issuer_id,
                               ": download the CSR and upload what the CA "
                               "returns");
    return step;
  }
  const crypto::Certificate& leaf = issued->leaf;
  std::string chain;
  for (const crypto::Certificate& ca : issued->chain) chain += ca.ToPem();
  step.to_state = kSubmitted;
  step.update.certificate_der = leaf.der();
  step.update.chain_pem = std::move(chain);
  step.update.serial_hex = leaf.info().serial_hex;
  step.update.not_after_us = absl::ToUnixMicros(leaf.info().not_after);
  step.reason = absl::StrCat("signed by issuers/", order.issuer_id, ", serial ",
                             leaf.info().serial_hex);
  return step;
}

absl::StatusOr<OrderWorkflow::Step> OrderWorkflow::StoreStep(
    const OrderRecord& order) {
  CERTPLANE_ASSIGN_OR_RETURN(v1::CreateOrderRequest spec, ParseSpec(order));
  // Parsed and checked when it was signed or uploaded; stored since.
  const std::string& leaf_der = order.certificate_der;
  std::string certificate_id = order.certificate_id;
  if (certificate_id.empty()) {
    inventory_v1::CreateCertificateRequest create;
    inventory_v1::ManagedCertificate& c = *create.mutable_certificate();
    // What people call it: the order's name for it, else its common name
    // (else its first SAN), as the inventory names imported certificates.
    std::string display = spec.display_name();
    if (display.empty()) display = order.common_name;
    if (display.empty() && spec.sans_size() > 0) display = spec.sans(0).value();
    c.set_display_name(display);
    c.set_owner(order.owner);
    if (!order.environment.empty()) c.add_environments(order.environment);
    c.set_source(inventory_v1::ISSUED);
    inventory_v1::DesiredState& desired = *c.mutable_desired();
    *desired.mutable_subject() = spec.subject();
    *desired.mutable_sans() = spec.sans();
    *desired.mutable_key_spec() = spec.key_spec();
    desired.set_issuer(absl::StrCat("issuers/", order.issuer_id));
    desired.set_validity_days(spec.validity_days());
    c.mutable_renewal()->set_auto_renew(spec.auto_renew());
    c.mutable_renewal()->set_renew_before_days(spec.renew_before_days());
    create.set_request_id(IdempotencyKey(order));
    CERTPLANE_ASSIGN_OR_RETURN(inventory_v1::ManagedCertificate created,
                               peers_.CreateCertificate(create));
    certificate_id = created.certificate_id();
  }
  inventory_v1::AddCertificateVersionRequest add;
  add.set_parent(absl::StrCat("certificates/", certificate_id));
  add.set_certificate(crypto::CertificateDerToPem(leaf_der) + order.chain_pem);
  add.set_key_name(order.key_name);
  add.set_origin(absl::StrCat("issuance:orders/", order.order_id));
  CERTPLANE_ASSIGN_OR_RETURN(
      inventory_v1::CertificateVersion version,
      peers_.AddCertificateVersion(add, crypto::Sha256Hex(leaf_der)));
  Step step{.to_state = kIssued, .update = {}, .reason = ""};
  step.update.certificate_id = certificate_id;
  step.update.certificate_version = version.name();
  step.update.attempts = 0;
  step.reason = absl::StrCat("stored in the inventory as ", version.name());
  return step;
}

OrderWorkflow::Step OrderWorkflow::Failure(const OrderRecord& order,
                                           const absl::Status& status) {
  Step step;
  const int attempts = order.attempts + 1;
  if (IsRefusal(status) || attempts >= options_.max_step_attempts) {
    step.to_state = kFailed;
    step.update.failure_reason =
        IsRefusal(status) ? std::string(status.message())
                          : absl::StrCat("gave up after ", attempts,
                                         " attempts: ", status.message());
    step.update.attempts = attempts;
    step.reason = *step.update.failure_reason;
    return step;
  }
  absl::Duration delay = options_.step_retry_base;
  for (int i = 1; i < attempts && delay < options_.step_retry_max; ++i) {
    delay *= 2;
  }
  delay = std::min(delay, options_.step_retry_max);
  const absl::Time next = clock_() + delay;
  step.to_state = order.state;
  step.update.attempts = attempts;
  step.update.next_attempt_time = next;
  step.update.release_lease = true;
  step.reason = absl::StrCat(
      "attempt ", attempts, " failed (", status.message(),
      "); next attempt at ",
      absl::FormatTime(absl::RFC3339_sec, next, absl::UTCTimeZone()));
  return step;
}

void OrderWorkflow::AfterEnded(const OrderRecord& order) {
  absl::StatusOr<v1::CreateOrderRequest> spec = ParseSpec(order);
  const bool kept_key = spec.ok() && spec->reuse_key();
  if (!order.key_name.empty() && !kept_key) {
    if (absl::Status s = peers_.DeleteKey(order.key_name); !s.ok()) {
      log::Warning("issuance: could not delete the key of an ended order",
                   {{"order", order.order_id},
                    {"key", order.key_name},
                    {"error", s.ToString()}});
    }
  }
  if (!order.renewal_of.empty()) {
    if (absl::Status s =
            renewals_.PokeRenewal(order.renewal_of, order.order_id, clock_());
        !s.ok()) {
      log::Warning("issuance: could not update the renewal schedule",
                   {{"order", order.order_id}, {"error", s.ToString()}});
    }
  }
}

}  // namespace certplane::issuance
