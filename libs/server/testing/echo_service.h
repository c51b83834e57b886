// Test-only implementation of certplane.testing.v1.EchoService, used by the
// runtime's tests: echoes the message and the request id it saw, fails with
// the requested code, or waits before answering.
//
// Thread-safe.
#ifndef CERTPLANE_LIBS_SERVER_TESTING_ECHO_SERVICE_H_
#define CERTPLANE_LIBS_SERVER_TESTING_ECHO_SERVICE_H_

#include <functional>
#include <utility>

#include "certplane/testing/v1/echo.grpc.pb.h"

namespace certplane::server::testing {

class EchoServiceImpl final
    : public certplane::testing::v1::EchoService::Service {
 public:
  // `on_slow_call_started`, when set, runs as a handler with delay_ms > 0
  // begins (tests use it to know an RPC is in flight).
  explicit EchoServiceImpl(std::function<void()> on_slow_call_started = {})
      : on_slow_call_started_(std::move(on_slow_call_started)) {}

  grpc::Status Echo(grpc::ServerContext* context,
                    const certplane::testing::v1::EchoRequest* request,
                    certplane::testing::v1::EchoResponse* response) override;

 private:
  std::function<void()> on_slow_call_started_;
};

}  // namespace certplane::server::testing

#endif  // CERTPLANE_LIBS_SERVER_TESTING_ECHO_SERVICE_H_
