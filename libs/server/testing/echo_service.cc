#include "libs/server/testing/echo_service.h"

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "libs/server/request_id.h"
#include "libs/status/grpc_status.h"

namespace certplane::server::testing {

grpc::Status EchoServiceImpl::Echo(
    grpc::ServerContext* context,
    const certplane::testing::v1::EchoRequest* request,
    certplane::testing::v1::EchoResponse* response) {
  if (request->delay_ms() > 0) {
    if (on_slow_call_started_) on_slow_call_started_();
    absl::SleepFor(absl::Milliseconds(request->delay_ms()));
  }
  if (request->error_code() != 0) {
    return ToGrpcStatus(
        absl::Status(static_cast<absl::StatusCode>(request->error_code()),
                     request->error_message()));
  }
  response->set_message(request->message());
  response->set_request_id(RequestId(*context));
  return grpc::Status::OK;
}

}  // namespace certplane::server::testing
