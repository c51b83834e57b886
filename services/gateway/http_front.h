// The gateway's HTTP/JSON front for browsers and scripts.
//
//   POST /<package>.<Service>/<Method>      (e.g. /certplane.inventory.v1.
//                                            InventoryService/ListCertificates)
//     body: the request in protobuf's JSON mapping (whatever the
//     Content-Type says, so `curl -d` works; an empty body is the empty
//     request; unknown fields are refused)
//     unary reply: 200 and the response as JSON
//     server-streaming reply: 200, application/x-ndjson, one JSON response
//     per line; an error after the first message ends the stream with a
//     line {"error": {"code": ..., "message": ...}}
//     errors: {"code": "permission_denied", "message": "..."} with the HTTP
//     status of the code (docs/security.md has the table)
//   GET /healthz                            "ok"
//   GET anything else                       static files from `web_root`
//                                           (index.html for "/" and for
//                                           paths without an extension)
//
// Credentials and the request id come from the Authorization and
// X-Request-Id headers. Each call goes to the gateway's own gRPC server over
// an in-process channel, so HTTP and gRPC callers get exactly the same
// authentication, authorization and audit.
//
// Thread-safe.
#ifndef CERTPLANE_SERVICES_GATEWAY_HTTP_FRONT_H_
#define CERTPLANE_SERVICES_GATEWAY_HTTP_FRONT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/server/http_listener.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace certplane::gateway {

struct HttpFrontOptions {
  std::string listen_address = "127.0.0.1:8080";
  // The web UI's build folder; empty or missing: no static files (404).
  std::string web_root;
  // Deadline of unary calls.
  absl::Duration call_timeout = absl::Seconds(60);
};

// The HTTP status for a gRPC code (Connect-style).
int HttpStatusForCode(int grpc_code);

class HttpFront {
 public:
  // `channel`: to the gateway's own gRPC server.
  static absl::StatusOr<std::unique_ptr<HttpFront>> Start(
      std::shared_ptr<grpc::Channel> channel, HttpFrontOptions options);
  ~HttpFront();

  int port() const { return listener_->port(); }
  void Stop() { listener_->Stop(); }

 private:
  HttpFront(std::shared_ptr<grpc::Channel> channel, HttpFrontOptions options);
  void Handle(const server::HttpRequest& request,
              server::HttpResponder& responder);
  void HandleRpc(const server::HttpRequest& request,
                 server::HttpResponder& responder);
  void HandleStatic(const server::HttpRequest& request,
                    server::HttpResponder& responder);

  std::shared_ptr<grpc::Channel> channel_;
  const HttpFrontOptions options_;
  std::unique_ptr<server::HttpListener> listener_;
};

}  // namespace certplane::gateway

#endif  // CERTPLANE_SERVICES_GATEWAY_HTTP_FRONT_H_
