// The renewal controller: follows the inventory and renews every auto-renew
// certificate when its time comes, the way a Kubernetes controller
// reconciles: from durable state, so a restart at any point resumes.
//
// What it follows (RenewalStore's schedule, one row per certificate):
//  - the inventory's change feed (WatchChanges from a stored cursor): each
//    change to a certificate re-reads it and updates its row (Track);
//  - a periodic sweep of ListCertificates(auto_renew = true), which repairs
//    anything the feed could not deliver.
// A row's renew_time is RenewalTime() of the current version (jitter
// included). A new version resets failures.
//
// What it does with due rows (claimed with leases; SKIP LOCKED on
// PostgreSQL, so replicas share them): with no renewal order outstanding it
// plans one (PlanRenewal, request_id "renewal:<version>:<failures>", so a
// retry after a crash finds the same order) and looks again after
// `recheck`. With one outstanding it reads the order: still open, look
// again later; ISSUED, the new version takes over; ended otherwise, one more
// failure, the order's reason as last_error, and the next attempt after
// RetryDelay(failures) (1 h x 2^(n-1), at most a day) counted from when
// the order ended. The store's unique index allows one open renewal order
// per certificate, whoever creates it.
//
// Thread-safe. Start() runs the follower, the sweeper and the due loop on
// their own threads; the *Once methods do one pass each (tests).
#ifndef CERTPLANE_SERVICES_ISSUANCE_RENEWAL_CONTROLLER_H_
#define CERTPLANE_SERVICES_ISSUANCE_RENEWAL_CONTROLLER_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "certplane/inventory/v1/inventory.pb.h"
#include "certplane/issuance/v1/issuance.pb.h"
#include "services/issuance/issuance_store.h"
#include "services/issuance/order_workflow.h"
#include "services/issuance/peers.h"

namespace grpc {
class ClientContext;
}  // namespace grpc

namespace certplane::issuance {

inline constexpr char kRenewalActor[] = "issuance:renewal";

struct RenewalControllerOptions {
  std::string worker_id = "issuance";
  absl::Duration sweep_interval = absl::Minutes(10);
  absl::Duration due_poll_interval = absl::Seconds(30);
  absl::Duration lease = absl::Minutes(2);
  absl::Duration recheck = absl::Minutes(10);
  absl::Duration reconnect_delay = absl::Seconds(2);
  int batch = 50;
  std::string cursor_name = "inventory";
};

class RenewalController {
 public:
  // Borrowed; must outlive the controller.
  RenewalController(RenewalStore& renewals, IssuanceStore& orders, Peers& peers,
                    const v1::IssuanceConfig& config, OrderWorkflow& workflow,
                    Clock clock, RenewalControllerOptions options);
  ~RenewalController();

  void Start();
  void Stop();  // Idempotent.

  // Puts `certificate` in the schedule, or takes it out (not auto-renew,
  // deleted, no version yet).
  absl::Status Track(const inventory::v1::ManagedCertificate& certificate);
  // Every auto-renew certificate of the inventory, tracked.
  absl::Status SweepOnce();
  // The change feed from the stored cursor up to now; returns the new
  // cursor.
  absl::StatusOr<int64_t> FollowOnce();
  // Claims the due renewals and acts on each; returns how many.
  absl::StatusOr<int> RunDueOnce(const std::string& worker);

 private:
  // The feed as a long-lived stream (until Stop()).
  absl::Status Follow(bool wait);
  absl::Status ApplyChange(const inventory::v1::Change& change);
  // One due renewal, leased to `worker`.
  absl::Status Act(const RenewalRecord& renewal, const std::string& worker);

  void Loop(absl::Duration interval, absl::FunctionRef<void()> pass);

  RenewalStore& renewals_;
  IssuanceStore& orders_;
  Peers& peers_;
  const v1::IssuanceConfig& config_;
  OrderWorkflow& workflow_;
  Clock clock_;
  RenewalControllerOptions options_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* stream_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::vector<std::thread> threads_;
};

}  // namespace certplane::issuance

#endif  // CERTPLANE_SERVICES_ISSUANCE_RENEWAL_CONTROLLER_H_
