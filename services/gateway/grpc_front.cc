#include "services/gateway/grpc_front.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/base/attributes.h"
#include "absl/time/clock.h"
#include "grpcpp/alarm.h"
#include "grpcpp/server_context.h"
#include "libs/server/peer_identity.h"
#include "libs/server/request_id.h"
#include "services/gateway/cq_tag.h"

namespace certplane::gateway {
namespace {

// The queue whose tags this thread runs (null on other threads).
ABSL_CONST_INIT thread_local grpc::ServerCompletionQueue* t_queue = nullptr;

std::string Metadata(const grpc::ServerContextBase& context, const char* name) {
  auto it = context.client_metadata().find(name);
  if (it == context.client_metadata().end()) return "";
  return std::string(it->second.data(), it->second.size());
}

}  // namespace

// One incoming call, from the queue's request to its end; deletes itself
// once gRPC has reported both the sent status and the call's end. Its tags
// all come from one queue, so one thread runs them one at a time. The
// sink's OnFinish/OnReply may come from a dispatcher worker; those are
// moved onto the queue's thread (an alarm due now), so that every
// operation on the stream, and the deletion, happen on that one thread.
class FrontCall final : public CallSink {
 public:
  FrontCall(GrpcFront& front, grpc::ServerCompletionQueue* queue)
      : front_(front), queue_(queue), stream_(&context_) {
    context_.AsyncNotifyWhenDone(&done_tag_);
    front_.service_.RequestCall(&context_, &stream_, queue_, queue_,
                                &request_tag_);
  }

  // CallSink.
  void OnMessage(const grpc::ByteBuffer& message,
                 std::function<void()> next) override {
    {
      absl::MutexLock lock(&mu_);
      next_ = std::move(next);
    }
    stream_.Write(message, &write_tag_);
  }
  void OnReply(const grpc::ByteBuffer& message,
               const grpc::Status& status) override {
    final_message_ = message;  // Shares the slices; no copy.
    has_final_message_ = true;
    final_status_ = status;
    SendFinal();
  }
  void OnFinish(const grpc::Status& status) override {
    final_status_ = status;
    SendFinal();
  }

 private:
  void OnRequest(bool ok) {
    if (!ok) {  // The server is shutting down; this call never started.
      delete this;
      return;
    }
    {
      absl::MutexLock lock(&front_.mu_);
      ++front_.live_calls_;
    }
    new FrontCall(front_, queue_);  // Ready for the next call.
    stream_.Read(&request_, &read_tag_);
  }

  void OnRead(bool ok) {
    if (!ok) {
      OnFinish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "the call carried no request message"));
      return;
    }
    CallInput input = CallInputFrom(context_, context_.method());
    input.request = std::move(request_);
    input.queue = queue_;
    // Start may finish the call at once; the finish tag is only taken from
    // the queue once this handler returns, so `this` stays valid.
    CallHandle handle = front_.dispatcher_.Start(std::move(input), this);
    absl::MutexLock lock(&mu_);
    handle_ = std::make_unique<CallHandle>(std::move(handle));
    if (cancelled_) handle_->Cancel();
  }

  void OnWrite(bool ok) {
    // When the client is gone (!ok), the done tag cancels the upstream;
    // asking for the next message lets the call wind down.
    (void)ok;
    std::function<void()> next;
    {
      absl::MutexLock lock(&mu_);
      next = std::move(next_);
    }
    if (next) next();
  }

  // Sends the final message (if any) and status on the queue's thread;
  // called elsewhere (a dispatcher worker), it comes back here through the
  // alarm.
  void SendFinal() {
    if (t_queue != queue_) {
      alarm_.Set(queue_, gpr_now(GPR_CLOCK_MONOTONIC), &moved_tag_);
      return;
    }
    if (has_final_message_) {
      stream_.WriteAndFinish(final_message_, grpc::WriteOptions(),
                             final_status_, &finish_tag_);
    } else {
      stream_.Finish(final_status_, &finish_tag_);
    }
  }
  void OnMoved(bool) { SendFinal(); }

  void OnFinished(bool) {
    finished_ = true;
    MaybeEnd();
  }

  void OnDone(bool) {
    done_ = true;
    if (context_.IsCancelled()) {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      if (handle_ != nullptr) handle_->Cancel();
    }
    MaybeEnd();
  }

  void MaybeEnd() {
    if (!finished_ || !done_) return;
    GrpcFront& front = front_;
    delete this;
    front.CallEnded();
  }

  GrpcFront& front_;
  grpc::ServerCompletionQueue* const queue_;
  grpc::GenericServerContext context_;
  grpc::GenericServerAsyncReaderWriter stream_;
  grpc::ByteBuffer request_;
  bool finished_ = false;  // Queue thread only.
  bool done_ = false;      // Queue thread only.
  // What OnReply/OnFinish send (kept while the alarm moves them over).
  grpc::Alarm alarm_;
  grpc::ByteBuffer final_message_;
  bool has_final_message_ = false;
  grpc::Status final_status_;

  MemberTag<FrontCall, &FrontCall::OnRequest> request_tag_{this};
  MemberTag<FrontCall, &FrontCall::OnRead> read_tag_{this};
  MemberTag<FrontCall, &FrontCall::OnWrite> write_tag_{this};
  MemberTag<FrontCall, &FrontCall::OnMoved> moved_tag_{this};
  MemberTag<FrontCall, &FrontCall::OnFinished> finish_tag_{this};
  MemberTag<FrontCall, &FrontCall::OnDone> done_tag_{this};

  absl::Mutex mu_;
  std::unique_ptr<CallHandle> handle_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void()> next_ ABSL_GUARDED_BY(mu_);
};

GrpcFront::~GrpcFront() { Drain(); }

void GrpcFront::Serve(std::vector<grpc::ServerCompletionQueue*> queues) {
  queues_ = std::move(queues);
  for (grpc::ServerCompletionQueue* queue : queues_) {
    // A few calls waiting per queue, so a burst is matched at once.
    for (int i = 0; i < 4; ++i) new FrontCall(*this, queue);
    pollers_.emplace_back([queue] {
      t_queue = queue;
      void* tag = nullptr;
      bool ok = false;
      while (queue->Next(&tag, &ok)) static_cast<CqTag*>(tag)->OnEvent(ok);
    });
  }
}

void GrpcFront::CallEnded() {
  absl::MutexLock lock(&mu_);
  --live_calls_;
}

void GrpcFront::Drain() {
  if (pollers_.empty()) return;
  {
    // The server has cancelled what was left; wait for those calls (and
    // their upstream calls, which use the same queues) to end.
    absl::MutexLock lock(&mu_);
    auto ended = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return live_calls_ == 0;
    };
    mu_.Await(absl::Condition(&ended));
  }
  for (grpc::ServerCompletionQueue* queue : queues_) queue->Shutdown();
  for (std::thread& t : pollers_) t.join();
  pollers_.clear();
}

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

}  // namespace certplane::gateway
