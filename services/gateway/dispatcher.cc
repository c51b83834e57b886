#include "services/gateway/dispatcher.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "certplane/inventory/v1/inventory.grpc.pb.h"
#include "certplane/issuance/v1/issuance.grpc.pb.h"
#include "certplane/vault/v1/vault.grpc.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/message.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/stub_options.h"
#include "libs/server/caller.h"
#include "libs/server/json_log.h"
#include "libs/status/grpc_status.h"
#include "services/gateway/cq_tag.h"
#include "services/gateway/rpc_util.h"

namespace certplane::gateway {
namespace {

std::string RolesGranting(Permission p) {
  std::vector<std::string> roles;
  for (const char* role : {"viewer", "requester", "approver", "operator"}) {
    if (RoleGrants(role, p)) roles.push_back(role);
  }
  roles.push_back("admin");
  std::string out;
  for (size_t i = 0; i < roles.size(); ++i) {
    if (i > 0) absl::StrAppend(&out, i + 1 == roles.size() ? " or " : ", ");
    absl::StrAppend(&out, roles[i]);
  }
  return out;
}

absl::Status Denied(absl::string_view method, Permission p,
                    absl::string_view what) {
  return absl::PermissionDeniedError(absl::StrCat("permission denied: ", method,
                                                  " needs the role ",
                                                  RolesGranting(p), " ", what));
}

// "certificates/{id}/versions/{n}" -> "certificates/{id}".
absl::StatusOr<std::string> ParentName(absl::string_view name,
                                       absl::string_view collection) {
  std::vector<absl::string_view> parts = absl::StrSplit(name, '/');
  if (parts.size() < 2 || parts[0] != collection || parts[1].empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", name.substr(0, 120), "\" is not a ", collection, "/{id} name"));
  }
  return absl::StrCat(parts[0], "/", parts[1]);
}

}  // namespace

// One call in flight. Owned by shared pointers: the handle, the worker job,
// and (while the upstream call runs) itself.
class Call : public std::enable_shared_from_this<Call> {
 public:
  Call(Dispatcher& d, CallInput input, CallSink* sink)
      : d_(d), in_(std::move(input)), sink_(sink) {}

  // `may_block`: on a worker thread. Otherwise (on gRPC's thread) a call
  // that would block (a token or owner lookup, an audit write) moves itself
  // to a worker before it has consumed anything.
  void Run(bool may_block);
  void Cancel() {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    if (upstream_started_) context_.TryCancel();
  }

 private:
  void Fail(const absl::Status& status) {
    Finish(certplane::ToGrpcStatus(status));
  }
  // Tells the sink (after the audit record, when audited); with `reply`,
  // the unary response goes with the status.
  void Finish(const grpc::Status& status, bool reply = false);
  void Forward(const google::protobuf::MethodDescriptor& method,
               grpc::GenericStub& stub);

  // The upstream call's events (on in_.queue's thread). Unary: one Finish.
  // Server streaming: start, write the request (and close), then read until
  // the stream ends, each message passed to the sink, then Finish.
  void OnUnaryDone(bool ok);
  void OnStreamStarted(bool ok);
  void OnStreamWritten(bool ok);
  void OnStreamRead(bool ok);
  void OnStreamDone(bool ok);
  void EndStream();

  Dispatcher& d_;
  CallInput in_;
  CallSink* sink_;
  grpc::ClientContext context_;
  grpc::ByteBuffer response_;
  grpc::Status status_;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> unary_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> stream_;
  MemberTag<Call, &Call::OnUnaryDone> unary_tag_{this};
  MemberTag<Call, &Call::OnStreamStarted> started_tag_{this};
  MemberTag<Call, &Call::OnStreamWritten> written_tag_{this};
  MemberTag<Call, &Call::OnStreamRead> read_tag_{this};
  MemberTag<Call, &Call::OnStreamDone> stream_done_tag_{this};
  Principal principal_;
  std::string resource_;
  bool audited_ = false;
  std::shared_ptr<Call> self_;  // Set while the upstream call runs.

  absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool upstream_started_ ABSL_GUARDED_BY(mu_) = false;
};

void Call::Run(bool may_block) {
  {
    absl::MutexLock lock(&mu_);
    if (cancelled_) {
      sink_->OnFinish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
      return;
    }
  }
  const google::protobuf::MethodDescriptor* method = FindRpcMethod(in_.method);
  std::string service =
      method == nullptr ? "" : std::string(method->service()->full_name());
  auto stub = d_.stubs_.find(service);
  if (method == nullptr || stub == d_.stubs_.end()) {
    return Fail(absl::UnimplementedError(
        absl::StrCat("the gateway does not serve ", in_.method)));
  }
  absl::StatusOr<Principal> principal =
      d_.authenticator_.Authenticate(in_.authorization, in_.peer_identities);
  if (!principal.ok()) return Fail(principal.status());
  principal_ = *std::move(principal);
  if (method->client_streaming()) {
    return Fail(absl::UnimplementedError(absl::StrCat(
        in_.method, " streams requests, which the gateway does not forward")));
  }
  std::unique_ptr<google::protobuf::Message> request(
      google::protobuf::MessageFactory::generated_factory()
          ->GetPrototype(method->input_type())
          ->New());
  if (!request->ParseFromString(FlattenByteBuffer(in_.request))) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "the request is not a valid ", method->input_type()->full_name())));
  }
  absl::StatusOr<Rule> rule = RuleFor(in_.method, *request);
  if (!rule.ok()) {
    return Fail(absl::PermissionDeniedError(
        absl::StrCat("permission denied: ", in_.method,
                     " has no access rule (denied by default)")));
  }
  if (!may_block && d_.WouldBlock(principal_, *rule, *request)) {
    std::shared_ptr<Call> self = shared_from_this();
    d_.Post([self] { self->Run(true); });
    return;
  }
  if (absl::Status s = d_.CheckRateLimit(principal_.caller.identity); !s.ok()) {
    return Fail(s);
  }
  bool changed = false;
  if (absl::Status s = d_.Authorize(principal_, in_.method, *rule, *request,
                                    resource_, changed);
      !s.ok()) {
    // A refused change is worth knowing about: record it (best effort).
    if (rule->audited && absl::IsPermissionDenied(s)) {
      d_.AuditResult(principal_, in_.method, resource_, in_.request_id, s);
    }
    return Fail(s);
  }
  if (changed) in_.request = ToByteBuffer(request->SerializeAsString());
  // A change of owner (or a deletion) through this gateway is seen at once.
  if (rule->audited && !resource_.empty()) d_.ForgetOwner(resource_);
  audited_ = rule->audited;
  if (audited_) {
    if (absl::Status s =
            d_.AuditAttempt(principal_, in_.method, resource_, in_.request_id);
        !s.ok()) {
      return Fail(s);
    }
  }
  Forward(*method, *stub->second);
}

void Call::Forward(const google::protobuf::MethodDescriptor& method,
                   grpc::GenericStub& stub) {
  const Upstream& upstream = d_.upstreams_.at(method.service()->full_name());
  const DispatcherOptions& o = d_.options_;
  if (!in_.request_id.empty()) {
    context_.AddMetadata("x-request-id", in_.request_id);
  }
  if (upstream.delegate) {
    std::string roles = server::FormatRoles(principal_.caller.roles);
    if (o.development_headers) {
      context_.AddMetadata(server::kDevIdentityHeader,
                           principal_.caller.identity);
      context_.AddMetadata(server::kDevRolesHeader, roles);
    } else {
      context_.AddMetadata(server::kUserHeader, principal_.caller.identity);
      context_.AddMetadata(server::kRolesHeader, roles);
    }
  } else if (o.development_headers) {
    context_.AddMetadata(server::kDevIdentityHeader, o.development_identity);
  }
  absl::Time deadline = in_.deadline;
  if (deadline == absl::InfiniteFuture() && !method.server_streaming()) {
    deadline = absl::Now() + o.default_timeout;
  }
  if (deadline != absl::InfiniteFuture()) {
    context_.set_deadline(absl::ToChronoTime(deadline));
  }
  bool cancelled = false;
  {
    absl::MutexLock lock(&mu_);
    cancelled = cancelled_;
    if (!cancelled) {
      upstream_started_ = true;
      self_ = shared_from_this();
    }
  }
  if (cancelled) {
    Finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
    return;
  }
  if (method.server_streaming()) {
    stream_ = stub.PrepareCall(&context_, in_.method, in_.queue);
    stream_->StartCall(&started_tag_);
    return;
  }
  unary_ = stub.PrepareUnaryCall(&context_, in_.method, in_.request, in_.queue);
  unary_->StartCall();
  unary_->Finish(&response_, &status_, &unary_tag_);
}

void Call::OnUnaryDone(bool) { Finish(status_, /*reply=*/status_.ok()); }

// A step that failed (!ok) or the end of the stream: Finish tells why.
void Call::EndStream() { stream_->Finish(&status_, &stream_done_tag_); }

void Call::OnStreamStarted(bool ok) {
  if (!ok) return EndStream();
  stream_->Write(in_.request, grpc::WriteOptions().set_last_message(),
                 &written_tag_);
}

void Call::OnStreamWritten(bool ok) {
  if (!ok) return EndStream();
  stream_->Read(&response_, &read_tag_);
}

void Call::OnStreamRead(bool ok) {
  if (!ok) return EndStream();
  sink_->OnMessage(response_,
                   [this] { stream_->Read(&response_, &read_tag_); });
}

void Call::OnStreamDone(bool) { Finish(status_); }

void Call::Finish(const grpc::Status& status, bool reply) {
  // Keep this call alive until the sink is told, even after self_ drops.
  std::shared_ptr<Call> keep = shared_from_this();
  auto done = [this, keep, status, reply] {
    if (audited_) {
      d_.AuditResult(principal_, in_.method, resource_, in_.request_id,
                     certplane::FromGrpcStatus(status));
    }
    CallSink* sink = sink_;
    sink_ = nullptr;
    if (reply) {
      sink->OnReply(response_, status);
    } else {
      sink->OnFinish(status);
    }
    absl::MutexLock lock(&mu_);
    self_.reset();
  };
  if (audited_) {
    d_.Post(std::move(done));  // A blocking write: not on gRPC's threads.
  } else {
    done();
  }
}

void CallHandle::Cancel() {
  if (call_ != nullptr) call_->Cancel();
}

Dispatcher::Dispatcher(Authenticator& authenticator, AuditWriter& audit,
                       absl::flat_hash_map<std::string, Upstream> upstreams,
                       DispatcherOptions options)
    : authenticator_(authenticator),
      audit_(audit),
      upstreams_(std::move(upstreams)),
      options_(std::move(options)) {
  for (const auto& [name, upstream] : upstreams_) {
    stubs_[name] = std::make_unique<grpc::GenericStub>(upstream.channel);
  }
  for (int i = 0; i < std::max(1, options_.worker_threads); ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
}

Dispatcher::~Dispatcher() {
  {
    absl::MutexLock lock(&queue_mu_);
    stopping_ = true;
  }
  for (std::thread& t : workers_) t.join();
}

void Dispatcher::Post(std::function<void()> fn) {
  absl::MutexLock lock(&queue_mu_);
  queue_.push_back(std::move(fn));
}

void Dispatcher::WorkerLoop() {
  while (true) {
    std::function<void()> job;
    {
      absl::MutexLock lock(&queue_mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_) {
        return !queue_.empty() || stopping_;
      };
      queue_mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // Stopping and drained.
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job();
  }
}

CallHandle Dispatcher::Start(CallInput input, CallSink* sink) {
  const bool inline_ok = !authenticator_.WouldBlock(input.authorization);
  auto call = std::make_shared<Call>(*this, std::move(input), sink);
  if (inline_ok) {
    call->Run(false);
  } else {
    Post([call] { call->Run(true); });
  }
  return CallHandle(call);
}

absl::Status Dispatcher::CheckRateLimit(const std::string& principal) {
  if (options_.rate_limit_per_second <= 0) return absl::OkStatus();
  const absl::Time now = absl::Now();
  const double burst = std::max(options_.rate_limit_burst, 1.0);
  absl::MutexLock lock(&rate_mu_);
  if (buckets_.size() > 100000) buckets_.clear();
  auto [it, inserted] = buckets_.try_emplace(principal, Bucket{burst, now});
  Bucket& b = it->second;
  b.tokens = std::min(burst, b.tokens + absl::ToDoubleSeconds(now - b.updated) *
                                            options_.rate_limit_per_second);
  b.updated = now;
  if (b.tokens < 1) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "rate limit: ", principal, " may make ", options_.rate_limit_per_second,
        " calls per second; retry later"));
  }
  b.tokens -= 1;
  return absl::OkStatus();
}

absl::StatusOr<std::string> Dispatcher::LookupOwner(ScopeKind kind,
                                                    absl::string_view name) {
  // The owning resource ("certificates/x" for "certificates/x/versions/2").
  std::vector<absl::string_view> parts = absl::StrSplit(name, '/');
  const std::string key = parts.size() >= 2
                              ? absl::StrCat(parts[0], "/", parts[1])
                              : std::string(name);
  const absl::Time now = absl::Now();
  if (options_.owner_cache_ttl > absl::ZeroDuration()) {
    absl::MutexLock lock(&owners_mu_);
    auto it = owners_.find(key);
    if (it != owners_.end() &&
        now - it->second.fetched < options_.owner_cache_ttl) {
      return it->second.owner;
    }
  }
  absl::StatusOr<std::string> owner = FetchOwner(kind, name);
  if (owner.ok() && options_.owner_cache_ttl > absl::ZeroDuration()) {
    absl::MutexLock lock(&owners_mu_);
    if (owners_.size() > 100000) owners_.clear();
    owners_[key] = CachedOwner{*owner, now};
  }
  return owner;
}

bool Dispatcher::OwnerCached(absl::string_view name) {
  if (options_.owner_cache_ttl <= absl::ZeroDuration()) return false;
  std::vector<absl::string_view> parts = absl::StrSplit(name, '/');
  if (parts.size() < 2) return false;
  absl::MutexLock lock(&owners_mu_);
  auto it = owners_.find(absl::StrCat(parts[0], "/", parts[1]));
  return it != owners_.end() &&
         absl::Now() - it->second.fetched < options_.owner_cache_ttl;
}

bool Dispatcher::WouldBlock(const Principal& principal, const Rule& rule,
                            const google::protobuf::Message& request) {
  if (rule.audited) return true;
  if (Allows(principal.caller, rule.permission, "*")) return false;
  for (const Scope& scope : rule.scopes) {
    if (scope.kind != ScopeKind::kCertificate &&
        scope.kind != ScopeKind::kOrder && scope.kind != ScopeKind::kKey) {
      continue;
    }
    absl::StatusOr<std::string> value = StringField(request, scope.field);
    if (value.ok() && !value->empty() && !OwnerCached(*value)) return true;
  }
  return false;
}

void Dispatcher::ForgetOwner(absl::string_view name) {
  std::vector<absl::string_view> parts = absl::StrSplit(name, '/');
  if (parts.size() < 2) return;
  absl::MutexLock lock(&owners_mu_);
  owners_.erase(absl::StrCat(parts[0], "/", parts[1]));
}

absl::StatusOr<std::string> Dispatcher::FetchOwner(ScopeKind kind,
                                                   absl::string_view name) {
  auto context = [this] {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(
        absl::ToChronoTime(absl::Now() + options_.lookup_timeout));
    if (options_.development_headers) {
      ctx->AddMetadata(server::kDevIdentityHeader,
                       options_.development_identity);
    }
    return ctx;
  };
  auto channel = [this](absl::string_view service)
      -> absl::StatusOr<std::shared_ptr<grpc::Channel>> {
    auto it = upstreams_.find(service);
    if (it == upstreams_.end()) {
      return absl::UnavailableError(
          absl::StrCat("the gateway has no upstream for ", service));
    }
    return it->second.channel;
  };
  switch (kind) {
    case ScopeKind::kCertificate: {
      absl::StatusOr<std::string> parent = ParentName(name, "certificates");
      if (!parent.ok()) return parent.status();
      auto ch = channel("certplane.inventory.v1.InventoryService");
      if (!ch.ok()) return ch.status();
      inventory::v1::GetCertificateRequest req;
      req.set_name(*parent);
      inventory::v1::ManagedCertificate resp;
      auto ctx = context();
      absl::Status s = certplane::FromGrpcStatus(
          inventory::v1::InventoryService::NewStub(*ch)->GetCertificate(
              ctx.get(), req, &resp));
      if (!s.ok()) return s;
      return resp.owner();
    }
    case ScopeKind::kOrder: {
      absl::StatusOr<std::string> order = ParentName(name, "orders");
      if (!order.ok()) return order.status();
      auto ch = channel("certplane.issuance.v1.IssuanceService");
      if (!ch.ok()) return ch.status();
      issuance::v1::GetOrderRequest req;
      req.set_name(*order);
      issuance::v1::Order resp;
      auto ctx = context();
      absl::Status s = certplane::FromGrpcStatus(
          issuance::v1::IssuanceService::NewStub(*ch)->GetOrder(ctx.get(), req,
                                                                &resp));
      if (!s.ok()) return s;
      return resp.owner();
    }
    case ScopeKind::kKey: {
      absl::StatusOr<std::string> key = ParentName(name, "keys");
      if (!key.ok()) return key.status();
      auto ch = channel("certplane.vault.v1.VaultService");
      if (!ch.ok()) return ch.status();
      vault::v1::GetKeyRequest req;
      req.set_name(*key);
      vault::v1::Key resp;
      auto ctx = context();
      absl::Status s = certplane::FromGrpcStatus(
          vault::v1::VaultService::NewStub(*ch)->GetKey(ctx.get(), req, &resp));
      if (!s.ok()) return s;
      return resp.owner();
    }
    default:
      return absl::InternalError("not a lookup scope");
  }
}

absl::Status Dispatcher::Authorize(const Principal& principal,
                                   absl::string_view method, const Rule& rule,
                                   google::protobuf::Message& request,
                                   std::string& resource,
                                   bool& request_changed) {
  const server::Caller& caller = principal.caller;
  const Permission p = rule.permission;
  if (p == Permission::kAuthenticated) return absl::OkStatus();
  const bool global = Allows(caller, p, "*");
  for (const Scope& scope : rule.scopes) {
    switch (scope.kind) {
      case ScopeKind::kNone:
        break;
      case ScopeKind::kGlobal:
        if (!global) return Denied(method, p, "for every team (\"*\")");
        break;
      case ScopeKind::kAnyTeam:
        if (TeamsAllowed(caller, p).empty()) {
          return Denied(method, p, "for at least one team");
        }
        break;
      case ScopeKind::kListFilter: {
        std::vector<std::string> teams = TeamsAllowed(caller, p);
        if (teams.empty()) return Denied(method, p, "for at least one team");
        if (global) break;
        absl::StatusOr<std::string> filter = StringField(request, scope.field);
        if (!filter.ok()) return absl::InternalError(filter.status().message());
        if (absl::Status s = SetStringField(
                request, scope.field, NarrowFilterToTeams(*filter, teams));
            !s.ok()) {
          return absl::InternalError(s.message());
        }
        request_changed = true;
        break;
      }
      case ScopeKind::kTeamField:
      case ScopeKind::kCertificate:
      case ScopeKind::kOrder:
      case ScopeKind::kKey: {
        absl::StatusOr<std::string> value = StringField(request, scope.field);
        if (!value.ok()) return absl::InternalError(value.status().message());
        if (resource.empty() && !value->empty()) resource = *value;
        if (value->empty()) {
          if (scope.optional) break;
          if (!global) {
            return Denied(method, p,
                          absl::StrCat("for every team (\"*\"), since ",
                                       scope.field, " is empty"));
          }
          break;
        }
        if (global) break;  // No need to know the owner.
        std::string team = *value;
        if (scope.kind != ScopeKind::kTeamField) {
          absl::StatusOr<std::string> owner = LookupOwner(scope.kind, *value);
          if (!owner.ok()) return owner.status();
          team = *std::move(owner);
        }
        if (!Allows(caller, p, team)) {
          return Denied(method, p,
                        scope.kind == ScopeKind::kTeamField
                            ? absl::StrCat("for team ", team)
                            : absl::StrCat("for the team that owns ", *value));
        }
        break;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Dispatcher::AuditAttempt(const Principal& principal,
                                      absl::string_view method,
                                      absl::string_view resource,
                                      absl::string_view request_id) {
  audit::AuditRecord r;
  r.principal = principal.caller.identity;
  r.method = std::string(method);
  r.resource = std::string(resource);
  r.request_id = std::string(request_id);
  r.phase = "attempt";
  absl::StatusOr<audit::AuditRecord> stored = audit_.Append(std::move(r));
  if (!stored.ok()) {
    log::Error("gateway: audit append failed; change refused",
               {{"method", std::string(method)},
                {"error", stored.status().ToString()}});
    return absl::UnavailableError(
        "the audit log cannot be written now, so the change was refused; "
        "retry later");
  }
  return absl::OkStatus();
}

void Dispatcher::AuditResult(const Principal& principal,
                             absl::string_view method,
                             absl::string_view resource,
                             absl::string_view request_id,
                             const absl::Status& result) {
  audit::AuditRecord r;
  r.principal = principal.caller.identity;
  r.method = std::string(method);
  r.resource = std::string(resource);
  r.request_id = std::string(request_id);
  r.phase = "result";
  r.code = absl::StatusCodeToString(result.code());
  r.message = std::string(result.message().substr(0, 1000));
  absl::StatusOr<audit::AuditRecord> stored = audit_.Append(std::move(r));
  if (!stored.ok()) {
    log::Error("gateway: audit result append failed",
               {{"method", std::string(method)},
                {"error", stored.status().ToString()}});
  }
}

}  // namespace certplane::gateway
