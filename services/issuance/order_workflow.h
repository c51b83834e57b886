// The order workflow after approval: the steps that turn an APPROVED order
// into a certificate in the inventory, and the worker threads that run
// them.
//
// Steps (docs/issuance.md has the crash-safety argument):
//   APPROVED  -> KEY_READY  vault GenerateKey (request_id
//                           "issuance:<order id>", so a retry after a crash
//                           gets the same key) unless a renewal keeps its
//                           key; then CreateCsr. Key name and CSR are stored
//                           with the transition.
//   KEY_READY -> SUBMITTED  the issuer signs; the certificate is stored in
//                           the order with the transition, before anything
//                           else sees it.
//             -> AWAITING_CERTIFICATE  for issuers whose certificate comes
//                           by upload.
//   SUBMITTED -> ISSUED     inventory CreateCertificate (request_id
//                           "issuance:<order id>"; renewals add to the
//                           certificate they renew) and AddCertificateVersion
//                           with the stored certificate (a retry finds the
//                           version already stored).
// A step that fails with a refusal (INVALID_ARGUMENT, FAILED_PRECONDITION,
// PERMISSION_DENIED, NOT_FOUND, ALREADY_EXISTS, OUT_OF_RANGE,
// UNIMPLEMENTED) FAILS the order with the reason. Any other failure (an
// outage) keeps the state, counts an attempt and retries after
// step_retry_base x 2^(attempts-1), at most step_retry_max; after
// max_step_attempts the order FAILS. Orders that end without a certificate
// have their new vault key deleted (kept keys of renewals are not touched),
// and a renewal order that ends pokes the renewal schedule.
//
// Workers: `threads` threads each claim up to `batch` due orders at a time
// (IssuanceStore::ClaimOrders, leased for `lease`) and carry each as far as
// it goes. Every transition names the lease, so a worker that stalled past
// its lease cannot act on an order another worker took over.
//
// Thread-safe.
#ifndef CERTPLANE_SERVICES_ISSUANCE_ORDER_WORKFLOW_H_
#define CERTPLANE_SERVICES_ISSUANCE_ORDER_WORKFLOW_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "certplane/issuance/v1/issuance.pb.h"
#include "services/issuance/issuance_store.h"
#include "services/issuance/issuer.h"
#include "services/issuance/peers.h"

namespace certplane::issuance {

using Clock = std::function<absl::Time()>;
using IssuerMap = std::map<std::string, std::unique_ptr<Issuer>>;

struct WorkflowOptions {
  // Unique per process (replica); threads add "/<n>".
  std::string worker_id = "issuance";
  int threads = 2;
  int batch = 8;
  absl::Duration lease = absl::Minutes(2);
  // How often idle workers look for due orders (Wake() is immediate).
  absl::Duration poll_interval = absl::Seconds(1);
  absl::Duration step_retry_base = absl::Seconds(5);
  absl::Duration step_retry_max = absl::Hours(1);
  int max_step_attempts = 8;
};

// The order's spec as PlanNewOrder stored it. DATA_LOSS when unreadable.
absl::StatusOr<v1::CreateOrderRequest> ParseSpec(const OrderRecord& order);

// Whether a step failure is the CA's (or a peer's) refusal rather than an
// outage.
bool IsRefusal(const absl::Status& status);

class OrderWorkflow {
 public:
  // Everything is borrowed and must outlive the workflow.
  OrderWorkflow(IssuanceStore& orders, RenewalStore& renewals,
                const IssuerMap& issuers, Peers& peers,
                const v1::IssuanceConfig& config, Clock clock,
                WorkflowOptions options);
  ~OrderWorkflow();

  // Starts the worker threads. Call once.
  void Start();
  // Stops them after their current order; idempotent.
  void Stop();
  // Makes idle workers look for due orders now.
  void Wake();

  // Carries `order`, leased to `lease_owner`, as far as it goes now: until
  // it waits for a person, ends, or a step fails (then it is scheduled for
  // a retry and its lease released). Returns the order as it was left; an
  // error only when the store refused a transition (the lease was lost, or
  // the store is down).
  absl::StatusOr<OrderRecord> Advance(OrderRecord order,
                                      const std::string& lease_owner);

  // For orders that just ended without a certificate (FAILED, REJECTED,
  // CANCELLED), wherever that happened: deletes the order's new vault key
  // and pokes the renewal schedule. Best effort (logged).
  void AfterEnded(const OrderRecord& order);

  // For tests: claims and advances due orders once, as a worker would.
  // Returns how many it claimed.
  absl::StatusOr<int> RunOnce(const std::string& worker);

 private:
  struct Step {
    std::string to_state;
    OrderUpdate update;
    std::string reason;
  };
  absl::StatusOr<Step> KeyStep(const OrderRecord& order);
  absl::StatusOr<Step> SubmitStep(const OrderRecord& order);
  absl::StatusOr<Step> StoreStep(const OrderRecord& order);
  // The transition for a failed step: retry later, or FAILED.
  Step Failure(const OrderRecord& order, const absl::Status& status);

  void WorkerLoop(int index);

  IssuanceStore& orders_;
  RenewalStore& renewals_;
  const IssuerMap& issuers_;
  Peers& peers_;
  const v1::IssuanceConfig& config_;
  Clock clock_;
  WorkflowOptions options_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t wakeups_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> threads_;
};

}  // namespace certplane::issuance

#endif  // CERTPLANE_SERVICES_ISSUANCE_ORDER_WORKFLOW_H_
