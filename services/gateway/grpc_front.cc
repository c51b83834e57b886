#include "services/gateway/grpc_front.h"

#include <atomic>
#include <memory>
#include <string>
#include <utility>

#include "absl/time/clock.h"
#include "grpcpp/server_context.h"
#include "libs/server/peer_identity.h"
#include "libs/server/request_id.h"

namespace certplane::gateway {
namespace {

std::string Metadata(const grpc::ServerContextBase& context, const char* name) {
  auto it = context.client_metadata().find(name);
  if (it == context.client_metadata().end()) return "";
  return std::string(it->second.data(), it->second.size());
}

class FrontReactor final : public grpc::ServerGenericBidiReactor,
                           public CallSink {
 public:
  FrontReactor(grpc::GenericCallbackServerContext* context,
               Dispatcher& dispatcher)
      : context_(context), dispatcher_(dispatcher) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "the call carried no request message"));
      return;
    }
    CallInput input = CallInputFrom(*context_, context_->method());
    input.request = std::move(request_);
    refs_.fetch_add(1);  // Dropped once the handle is stored.
    // Start may answer at once (on this thread), so no lock is held.
    auto handle =
        std::make_unique<CallHandle>(dispatcher_.Start(std::move(input), this));
    {
      absl::MutexLock lock(&mu_);
      handle_ = std::move(handle);
    }
    Unref();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    if (handle_ != nullptr) handle_->Cancel();
  }

  // The call may finish (and gRPC call OnDone) before Start() returns.
  void OnDone() override { Unref(); }
  void Unref() {
    if (refs_.fetch_sub(1) == 1) delete this;
  }

  // CallSink.
  void OnMessage(const grpc::ByteBuffer& message,
                 std::function<void()> next) override {
    {
      absl::MutexLock lock(&mu_);
      next_ = std::move(next);
    }
    StartWrite(&message);
  }
  void OnWriteDone(bool ok) override {
    std::function<void()> next;
    {
      absl::MutexLock lock(&mu_);
      next = std::move(next_);
    }
    // When the client is gone (!ok), the upstream is cancelled by
    // OnCancel; asking for the next message lets the call wind down.
    (void)ok;
    if (next) next();
  }
  void OnFinish(const grpc::Status& status) override { Finish(status); }

 private:
  grpc::GenericCallbackServerContext* context_;
  Dispatcher& dispatcher_;
  grpc::ByteBuffer request_;
  std::atomic<int> refs_{1};
  absl::Mutex mu_;
  std::unique_ptr<CallHandle> handle_ ABSL_GUARDED_BY(mu_);
  std::function<void()> next_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

CallInput CallInputFrom(const grpc::ServerContextBase& context,
                        std::string method) {
  CallInput input;
  input.method = std::move(method);
  input.authorization = Metadata(context, "authorization");
  input.peer_identities = server::PeerIdentities(context);
  input.request_id = server::RequestId(context);
  if (input.request_id.empty())
    input.request_id = Metadata(context, "x-request-id");
  absl::Time deadline = absl::FromChrono(context.deadline());
  if (deadline < absl::Now() + absl::Hours(24 * 365)) input.deadline = deadline;
  return input;
}

grpc::ServerGenericBidiReactor* GrpcFront::CreateReactor(
    grpc::GenericCallbackServerContext* context) {
  return new FrontReactor(context, dispatcher_);
}

}  // namespace certplane::gateway
