#include "libs/server/testing/echo_service.h"

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "libs/server/client.h"
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
  if (request->forward_to_port() != 0) {
    ClientOptions plaintext;
    plaintext.insecure_plaintext_for_development = true;
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        CreateClientChannel(
            absl::StrCat("127.0.0.1:", request->forward_to_port()), plaintext);
    if (!channel.ok()) return ToGrpcStatus(channel.status());
    certplane::testing::v1::EchoRequest forwarded = *request;
    forwarded.set_forward_to_port(0);
    std::unique_ptr<grpc::ClientContext> outgoing =
        NewClientContext(absl::Seconds(5), context);
    return certplane::testing::v1::EchoService::NewStub(*channel)->Echo(
        outgoing.get(), forwarded, response);
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
