// Storage for issuance: orders (certificate applications), the transitions
// of their state machine, and their approvals.
//
// The store is the only code that knows the schema. What an order asks for
// (subject, SANs, key spec, profile, validity, renewal settings) is opaque to
// it (`spec`, a serialized message of the service's); it indexes only what
// filters, idempotency and the work queue need.
//
// Every change of state is a compare-and-set on the current state (and the
// etag, when the caller gives one) that appends its event row in the same
// transaction, so the event list is the complete, ordered history of the
// order and two callers can never both move an order out of one state.
//
// The work queue: ClaimOrders leases orders in the given states whose
// next_attempt_time has come to one worker for a while. On PostgreSQL the
// claim is SELECT ... FOR UPDATE SKIP LOCKED, so replicas take different
// orders without waiting on one another; on SQLite claims are serialized by
// the write lock. An order leased to a worker is not claimed by another
// until the lease expires (the worker died), and a worker's Transition must
// name its lease, so a worker whose lease was taken over cannot act on it.
//
// Times are stored as int64 microseconds since the Unix epoch.
//
// Thread safety: implementations are safe to call from several threads.
#ifndef CERTPLANE_SERVICES_ISSUANCE_ISSUANCE_STORE_H_
#define CERTPLANE_SERVICES_ISSUANCE_ISSUANCE_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace certplane::db {
class Database;
}  // namespace certplane::db

namespace certplane::issuance {

// States as stored; the service maps them to issuance.v1.OrderState.
inline constexpr char kPendingApproval[] = "pending_approval";
inline constexpr char kApproved[] = "approved";
inline constexpr char kKeyReady[] = "key_ready";
inline constexpr char kSubmitted[] = "submitted";
inline constexpr char kAwaitingCertificate[] = "awaiting_certificate";
inline constexpr char kIssued[] = "issued";
inline constexpr char kRejected[] = "rejected";
inline constexpr char kFailed[] = "failed";
inline constexpr char kCancelled[] = "cancelled";

// Whether `state` is one of the above; and whether it is final.
bool IsOrderState(absl::string_view state);
bool IsFinalOrderState(absl::string_view state);

struct OrderEventRecord {
  std::string from_state;  // Empty for the creation event.
  std::string to_state;
  absl::Time time;
  std::string actor;
  std::string reason;
};

struct ApprovalRecord {
  std::string approver;
  absl::Time time;
  std::string comment;
};

struct OrderRecord {
  std::string order_id;  // "o" + 32 lowercase hex; made by the store.
  std::string state;
  std::string reason;  // "new" or "renewal".
  // Indexed copies of what the order asks for.
  std::string issuer_id;
  std::string owner;
  std::string environment;
  std::string requester;
  std::string common_name;
  std::vector<std::string> sans;
  // The request itself, serialized by the service (opaque to the store).
  std::string spec;
  // Idempotency: unique when not empty; `request_hash` tells a repeat of
  // the same request from a different one.
  std::string request_id;
  std::string request_hash;
  int required_approvals = 0;
  // For renewals: the inventory certificate renewed. At most one order that
  // is not final renews a given certificate.
  std::string renewal_of;
  // Filled as the order advances.
  std::string key_name;
  std::string csr_pem;
  std::string certificate_id;
  std::string certificate_version;
  std::string certificate_der;  // The issued certificate, once signed.
  std::string chain_pem;        // Its CA certificates, as the CA gave them.
  std::string serial_hex;
  std::optional<int64_t> not_after_us;
  std::string failure_reason;
  // The work queue.
  int attempts = 0;
  absl::Time next_attempt_time = absl::InfinitePast();
  std::string lease_owner;  // Empty: not leased.
  absl::Time lease_expiry = absl::InfinitePast();
  absl::Time create_time;
  absl::Time update_time;
  std::string etag;  // Changes on every update; made by the store.
  // Filled by reads: oldest first.
  std::vector<OrderEventRecord> events;
  std::vector<ApprovalRecord> approvals;
};

// The fields a transition may set; unset ones keep their value.
struct OrderUpdate {
  std::optional<std::string> key_name;
  std::optional<std::string> csr_pem;
  std::optional<std::string> certificate_id;
  std::optional<std::string> certificate_version;
  std::optional<std::string> certificate_der;
  std::optional<std::string> chain_pem;
  std::optional<std::string> serial_hex;
  std::optional<int64_t> not_after_us;
  std::optional<std::string> failure_reason;
  std::optional<int> attempts;
  std::optional<absl::Time> next_attempt_time;
  // Ends the caller's lease (the step is done, or it gives up for now).
  bool release_lease = false;
  // Leases the order to `take_lease` until `take_lease_expiry` (an RPC that
  // moves an order on and then carries out the next step itself).
  std::string take_lease;
  absl::Time take_lease_expiry = absl::InfinitePast();
};

// ListOrders. page_size 1-1000; filter and order_by as ListOrdersRequest
// documents them.
struct OrderQuery {
  int page_size = 50;
  std::string page_token;
  std::string filter;
  std::string order_by;
};

struct OrderPage {
  std::vector<OrderRecord> orders;  // Without events and approvals.
  std::string next_page_token;
  int64_t total_size = 0;  // Exact up to 10,000; 10,001 means more.
};

inline constexpr int kMaxOrderPageSize = 1000;
inline constexpr int64_t kOrderTotalSizeCap = 10000;

class IssuanceStore {
 public:
  virtual ~IssuanceStore() = default;

  // Stores a new order in `order.state` with its creation event, leased to
  // `order.lease_owner` until `order.lease_expiry` when those are set (the
  // creating RPC carries the order on itself). With a
  // request_id that is already stored: the stored order when request_hash
  // matches, else ALREADY_EXISTS naming the request_id. With renewal_of set
  // while another order for that certificate is not final:
  // ALREADY_EXISTS naming the open order. INVALID_ARGUMENT for an unknown
  // state.
  virtual absl::StatusOr<OrderRecord> CreateOrder(
      const OrderRecord& order, const OrderEventRecord& created) = 0;

  // NOT_FOUND for an unknown id, INVALID_ARGUMENT for a malformed one.
  virtual absl::StatusOr<OrderRecord> GetOrder(absl::string_view order_id) = 0;

  // The open (not final) renewal order of `certificate_id`, if any.
  virtual absl::StatusOr<std::optional<OrderRecord>> FindOpenRenewal(
      absl::string_view certificate_id) = 0;

  // Moves the order from one of `from_states` to `event.to_state` (which
  // may equal the current state, to record a retry), applies `update` and
  // appends `event`. FAILED_PRECONDITION naming the current state when it
  // is not in `from_states`; ABORTED when `expected_etag` is set and
  // differs; FAILED_PRECONDITION when `lease_owner` is set and the order is
  // not leased to it (the lease expired and another worker took it).
  virtual absl::StatusOr<OrderRecord> Transition(
      absl::string_view order_id, absl::Span<const std::string> from_states,
      const OrderEventRecord& event, const OrderUpdate& update,
      absl::string_view expected_etag, absl::string_view lease_owner) = 0;

  // Records one approval of a PENDING_APPROVAL order; once it has
  // `required_approvals` of them, moves it to APPROVED (with an event) in
  // the same transaction. ALREADY_EXISTS when this approver approved
  // before; FAILED_PRECONDITION when the order is not pending approval;
  // ABORTED on an etag mismatch.
  virtual absl::StatusOr<OrderRecord> AddApproval(
      absl::string_view order_id, const ApprovalRecord& approval,
      absl::string_view expected_etag) = 0;

  // Leases up to `limit` orders in `states` whose next_attempt_time <= now
  // and that no live lease holds, to `worker` until now + `lease`, oldest
  // next_attempt_time first.
  virtual absl::StatusOr<std::vector<OrderRecord>> ClaimOrders(
      absl::Span<const std::string> states, absl::string_view worker,
      absl::Time now, absl::Duration lease, int limit) = 0;

  // A page of orders. INVALID_ARGUMENT for a bad page_size, filter,
  // order_by or page_token.
  virtual absl::StatusOr<OrderPage> ListOrders(const OrderQuery& query) = 0;
};

// An internal CA's certificates and the vault keys that sign for them, and
// its latest CRL. Made once, on the first start that finds the issuer
// missing; every replica then reads the same record.
struct CaRecord {
  std::string issuer_id;
  std::string root_key_name;  // "keys/{id}" in the vault.
  std::string root_der;
  std::string intermediate_key_name;
  std::string intermediate_der;  // Signs the leaves and the CRL.
  absl::Time create_time;
  // The latest CRL: its number (0: none yet), DER and times.
  int64_t crl_number = 0;
  std::string crl_der;
  absl::Time crl_this_update = absl::InfinitePast();
  absl::Time crl_next_update = absl::InfinitePast();
};

// One revoked certificate of an internal CA.
struct RevocationRecord {
  std::string issuer_id;
  std::string serial_hex;  // Lowercase, as crypto::CertificateInfo has it.
  std::string reason;      // An RFC 5280 reason name (crypto::CrlReasonCode).
  absl::Time revoke_time;
  // "certificates/{id}/versions/{n}" in the inventory, when known.
  std::string certificate_version;
  // The first CRL that lists it; 0 until one is published.
  int64_t crl_number = 0;
};

class CaStore {
 public:
  virtual ~CaStore() = default;

  // The CA of `issuer_id`, if made.
  virtual absl::StatusOr<std::optional<CaRecord>> GetCa(
      absl::string_view issuer_id) = 0;
  // Stores `ca` unless the issuer has one already; returns the stored one
  // (so of two replicas making the CA at once, both use the first).
  virtual absl::StatusOr<CaRecord> CreateCa(const CaRecord& ca) = 0;

  // Records a revocation; a repeat for the same serial returns the first
  // record unchanged (revoking twice is not an error, and keeps the first
  // reason and time).
  virtual absl::StatusOr<RevocationRecord> AddRevocation(
      const RevocationRecord& revocation) = 0;
  // Every revocation of the issuer, oldest first.
  virtual absl::StatusOr<std::vector<RevocationRecord>> ListRevocations(
      absl::string_view issuer_id) = 0;
  // Publishes a CRL numbered `crl_number`, which must be the stored number
  // + 1 (ABORTED otherwise: another replica published first; read again),
  // and sets crl_number on the revocations it is the first to list (those
  // with revoke_time <= this_update not yet listed). Returns the updated CA.
  virtual absl::StatusOr<CaRecord> PublishCrl(absl::string_view issuer_id,
                                              int64_t crl_number,
                                              const std::string& der,
                                              absl::Time this_update,
                                              absl::Time next_update) = 0;
};

// One auto-renew certificate in the renewal controller's schedule: which
// inventory version it was computed for, when it renews, and how its
// renewal orders went. The queue of due renewals is this table, claimed with
// leases like orders.
struct RenewalRecord {
  std::string certificate_id;
  // The inventory version the schedule is for ("certificates/c/versions/3").
  std::string version;
  absl::Time not_after;
  absl::Time renew_time;
  int failure_count = 0;
  std::string last_error;
  // The latest renewal order; cleared once its outcome is counted.
  std::string last_order_id;
  absl::Time next_attempt_time = absl::InfinitePast();
  std::string lease_owner;
  absl::Time lease_expiry = absl::InfinitePast();
  absl::Time update_time;
};

struct RenewalUpdate {
  std::optional<std::string> last_order_id;
  std::optional<int> failure_count;
  std::optional<std::string> last_error;
  std::optional<absl::Time> next_attempt_time;
};

struct RenewalPage {
  std::vector<RenewalRecord> renewals;
  std::string next_page_token;
};

class RenewalStore {
 public:
  virtual ~RenewalStore() = default;

  // Sets the schedule of a certificate from its current version. A new
  // version (a renewal was issued, or someone uploaded one) starts afresh:
  // failures, error, last order and backoff are cleared. The same version
  // keeps them and only takes the new times.
  virtual absl::Status UpsertRenewal(const RenewalRecord& renewal,
                                     absl::Time now) = 0;
  // Stops following a certificate (auto-renew turned off, deleted).
  virtual absl::Status DeleteRenewal(absl::string_view certificate_id) = 0;
  // NOT_FOUND when not followed.
  virtual absl::StatusOr<RenewalRecord> GetRenewal(
      absl::string_view certificate_id) = 0;
  // Leases up to `limit` renewals due at `now` (renew_time and
  // next_attempt_time passed, no live lease), earliest renew_time first; on
  // PostgreSQL with SKIP LOCKED, so replicas take different ones.
  virtual absl::StatusOr<std::vector<RenewalRecord>> ClaimDueRenewals(
      absl::string_view worker, absl::Time now, absl::Duration lease,
      int limit) = 0;
  // Applies `update` and ends `worker`'s lease. FAILED_PRECONDITION when the
  // lease is no longer the worker's.
  virtual absl::Status FinishRenewal(absl::string_view certificate_id,
                                     absl::string_view worker,
                                     const RenewalUpdate& update,
                                     absl::Time now) = 0;
  // Makes the renewal due now when `order_id` is its last order (that order
  // just ended, so its outcome should be counted without waiting).
  virtual absl::Status PokeRenewal(absl::string_view certificate_id,
                                   absl::string_view order_id,
                                   absl::Time now) = 0;
  // By certificate id; `failing_only`: failure_count > 0.
  virtual absl::StatusOr<RenewalPage> ListRenewals(int page_size,
                                                   absl::string_view page_token,
                                                   bool failing_only) = 0;

  // A follower's position in the inventory's change feed (0 before the
  // first change). SetCursor never moves it back.
  virtual absl::StatusOr<int64_t> GetCursor(absl::string_view name) = 0;
  virtual absl::Status SetCursor(absl::string_view name, int64_t value) = 0;
};

// The SOCI store over `db` (migrated with IssuanceMigrations()). `db` must
// outlive the store.
std::unique_ptr<IssuanceStore> NewSqlIssuanceStore(db::Database& db);
std::unique_ptr<CaStore> NewSqlCaStore(db::Database& db);
std::unique_ptr<RenewalStore> NewSqlRenewalStore(db::Database& db);

}  // namespace certplane::issuance

#endif  // CERTPLANE_SERVICES_ISSUANCE_ISSUANCE_STORE_H_
