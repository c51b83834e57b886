// The gateway's gRPC front: a generic service that takes every method the
// gateway's own services do not, and hands it to the Dispatcher with the
// request's bytes as they came (unary and server-streaming).
//
// It runs on completion queues, one thread per queue: a call's network
// events, its authorization (when nothing blocks) and its upstream call
// (on the same queue) all run on that one thread, with no hand-off between
// threads, which on a small machine is most of what a proxy costs.
//
// Thread-safe; the dispatcher is not owned.
#ifndef CERTPLANE_SERVICES_GATEWAY_GRPC_FRONT_H_
#define CERTPLANE_SERVICES_GATEWAY_GRPC_FRONT_H_

#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "grpcpp/generic/async_generic_service.h"
#include "libs/server/server_runner.h"
#include "services/gateway/dispatcher.h"

namespace certplane::gateway {

class GrpcFront final : public server::CompletionQueueService {
 public:
  // `threads`: completion queues (and threads) to serve on, >= 1.
  GrpcFront(Dispatcher& dispatcher, int threads)
      : dispatcher_(dispatcher), threads_(threads) {}
  ~GrpcFront() override;

  grpc::AsyncGenericService* generic_service() override { return &service_; }
  int queue_count() const override { return threads_; }
  void Serve(std::vector<grpc::ServerCompletionQueue*> queues) override;
  void Drain() override;

 private:
  friend class FrontCall;

  void CallEnded();

  Dispatcher& dispatcher_;
  const int threads_;
  grpc::AsyncGenericService service_;
  std::vector<grpc::ServerCompletionQueue*> queues_;
  std::vector<std::thread> pollers_;

  absl::Mutex mu_;
  int live_calls_ ABSL_GUARDED_BY(mu_) = 0;  // Matched and not yet ended.
};

// The "authorization" metadata, the peer identities and the request id of
// an incoming call, for Dispatcher::Start and the gateway's own handlers.
CallInput CallInputFrom(const grpc::ServerContextBase& context,
                        std::string method);

}  // namespace certplane::gateway

#endif  // CERTPLANE_SERVICES_GATEWAY_GRPC_FRONT_H_
