// The gateway's core: one call from authentication to the owning service's
// answer, for both fronts (gRPC, grpc_front.h; HTTP/JSON, http_front.h).
//
// For each call (on gRPC's callback thread while nothing can block: a cached
// token, no owner to look up, nothing to audit; otherwise on a worker
// thread, since lookups and audit writes block):
//  1. find the method (UNIMPLEMENTED when no upstream serves it) and its
//     rule (authz.h; PERMISSION_DENIED when the table has none);
//  2. authenticate (authn.h) and apply the per-principal rate limit
//     (RESOURCE_EXHAUSTED);
//  3. parse the request (INVALID_ARGUMENT when it is not the method's
//     message) and check every scope of the rule, looking up the owner of
//     the certificate, order or key it names in the owning service;
//     narrow list filters to the caller's teams;
//  4. for audited rules, append the "attempt" record, refusing the call
//     (UNAVAILABLE) when the audit log cannot be written;
//  5. forward the request bytes (re-encoded only when a filter was
//     narrowed) with the caller's identity and roles (x-certplane-user and
//     x-certplane-roles, or the development headers on a development
//     platform), the request id and the deadline; stream the responses to
//     the sink; for audited rules, append the "result" record.
//
// Ownership: the authenticator, audit writer and channels are not owned and
// must outlive the dispatcher. Thread-safe.
#ifndef CERTPLANE_SERVICES_GATEWAY_DISPATCHER_H_
#define CERTPLANE_SERVICES_GATEWAY_DISPATCHER_H_

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "services/gateway/audit_writer.h"
#include "services/gateway/authn.h"
#include "services/gateway/authz.h"

namespace grpc {
class Channel;
class CompletionQueue;
}  // namespace grpc

namespace google::protobuf {
class MethodDescriptor;
}  // namespace google::protobuf

namespace certplane::gateway {

struct CallInput {
  std::string method;  // "/certplane.inventory.v1.InventoryService/Get..."
  std::string authorization;
  std::vector<std::string> peer_identities;
  std::string request_id;
  absl::Time deadline = absl::InfiniteFuture();
  grpc::ByteBuffer request;
  // Where the upstream call's events go (the front's queue, whose thread
  // takes each tag as a CqTag, cq_tag.h). Required.
  grpc::CompletionQueue* queue = nullptr;
};

// Where a call's results go. For a stream, OnMessage for each response
// (the next one is read once `next` is called), then OnFinish. For a unary
// call that succeeded, OnReply with the response and the status together.
// Exactly one OnFinish or OnReply, after which the dispatcher never touches
// the sink again.
class CallSink {
 public:
  virtual ~CallSink() = default;
  virtual void OnMessage(const grpc::ByteBuffer& message,
                         std::function<void()> next) = 0;
  virtual void OnReply(const grpc::ByteBuffer& message,
                       const grpc::Status& status) = 0;
  virtual void OnFinish(const grpc::Status& status) = 0;
};

class Call;

// Lets a front cancel a call it started (the client went away).
class CallHandle {
 public:
  explicit CallHandle(std::shared_ptr<Call> call) : call_(std::move(call)) {}
  void Cancel();

 private:
  std::shared_ptr<Call> call_;
};

struct Upstream {
  std::shared_ptr<grpc::Channel> channel;
  // Send the caller's identity and roles (services that act on them);
  // otherwise the service sees only the gateway.
  bool delegate = true;
};

struct DispatcherOptions {
  // A development platform (plaintext loopback): identities go in
  // x-certplane-dev-identity / x-certplane-dev-roles.
  bool development_headers = false;
  // The gateway's own identity on development channels.
  std::string development_identity = "certplane-gateway";
  // Deadline of calls without one (unary) and of owner lookups.
  absl::Duration default_timeout = absl::Seconds(60);
  absl::Duration lookup_timeout = absl::Seconds(10);
  int worker_threads = 8;
  // How long a looked-up owner of a certificate, order or key is reused.
  // Ownership changes made through this gateway take effect at once; others
  // (another replica, a service) within this time. Zero: no cache.
  absl::Duration owner_cache_ttl = absl::Seconds(5);
  // Per principal; 0: no limit.
  double rate_limit_per_second = 0;
  double rate_limit_burst = 0;
};

class Dispatcher {
 public:
  // `upstreams` by service full name ("certplane.vault.v1.VaultService").
  Dispatcher(Authenticator& authenticator, AuditWriter& audit,
             absl::flat_hash_map<std::string, Upstream> upstreams,
             DispatcherOptions options);
  ~Dispatcher();  // Waits for queued work.

  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Starts a call; `sink` (not owned) must stay valid until its OnFinish.
  CallHandle Start(CallInput input, CallSink* sink);

  // Runs `fn` on a worker thread.
  void Post(std::function<void()> fn);

  // Audits one call outcome for the gateway's own handlers, which do not go
  // through Start(): the "attempt" record (refusing when it fails) ...
  absl::Status AuditAttempt(const Principal& principal,
                            absl::string_view method,
                            absl::string_view resource,
                            absl::string_view request_id);
  // ... and the "result".
  void AuditResult(const Principal& principal, absl::string_view method,
                   absl::string_view resource, absl::string_view request_id,
                   const absl::Status& result);

  // Steps 1-3 above for a parsed request; `teams_filter` is set when the
  // rule narrows a list (the request is changed in place) and `resource`
  // to what the call acts on.
  absl::Status Authorize(const Principal& principal, absl::string_view method,
                         const Rule& rule, google::protobuf::Message& request,
                         std::string& resource, bool& request_changed);

 private:
  friend class Call;

  absl::StatusOr<std::string> LookupOwner(ScopeKind kind,
                                          absl::string_view name);
  absl::StatusOr<std::string> FetchOwner(ScopeKind kind,
                                         absl::string_view name);
  void ForgetOwner(absl::string_view name);
  bool OwnerCached(absl::string_view name);
  // Whether authorizing or auditing this call may block (a lookup that is
  // not cached, an audit write): then it runs on a worker thread.
  bool WouldBlock(const Principal& principal, const Rule& rule,
                  const google::protobuf::Message& request);
  absl::Status CheckRateLimit(const std::string& principal);
  void WorkerLoop();

  Authenticator& authenticator_;
  AuditWriter& audit_;
  absl::flat_hash_map<std::string, Upstream> upstreams_;
  absl::flat_hash_map<std::string, std::unique_ptr<grpc::GenericStub>> stubs_;
  const DispatcherOptions options_;

  absl::Mutex queue_mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  std::vector<std::thread> workers_;

  struct CachedOwner {
    std::string owner;
    absl::Time fetched;
  };
  absl::Mutex owners_mu_;
  absl::flat_hash_map<std::string, CachedOwner> owners_
      ABSL_GUARDED_BY(owners_mu_);

  struct Bucket {
    double tokens = 0;
    absl::Time updated;
  };
  absl::Mutex rate_mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(rate_mu_);
};

}  // namespace certplane::gateway

#endif  // CERTPLANE_SERVICES_GATEWAY_DISPATCHER_H_
