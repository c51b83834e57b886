// The gateway's gRPC front: a generic service that takes every method the
// gateway's own services do not, and hands it to the Dispatcher with the
// request's bytes as they came (unary and server-streaming).
//
// Thread-safe; the dispatcher is not owned.
#ifndef CERTPLANE_SERVICES_GATEWAY_GRPC_FRONT_H_
#define CERTPLANE_SERVICES_GATEWAY_GRPC_FRONT_H_

#include "grpcpp/generic/async_generic_service.h"
#include "services/gateway/dispatcher.h"

namespace certplane::gateway {

class GrpcFront final : public grpc::CallbackGenericService {
 public:
  explicit GrpcFront(Dispatcher& dispatcher) : dispatcher_(dispatcher) {}

  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override;

 private:
  Dispatcher& dispatcher_;
};

// The "authorization" metadata, the peer identities and the request id of
// an incoming call, for Dispatcher::Start and the gateway's own handlers.
CallInput CallInputFrom(const grpc::ServerContextBase& context,
                        std::string method);

}  // namespace certplane::gateway

#endif  // CERTPLANE_SERVICES_GATEWAY_GRPC_FRONT_H_
