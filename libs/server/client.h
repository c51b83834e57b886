// Outgoing gRPC calls from one certplane service to another.
//
//   auto channel = CreateClientChannel("vault:7002",
//                                      ClientOptionsFromServerOptions(opts));
//   std::unique_ptr<grpc::ClientContext> ctx =
//       NewClientContext(absl::Seconds(5), server_context);
//   status = FromGrpcStatus(stub->GetKey(ctx.get(), request, &response));
//
// Channels use mTLS (the service's own certificate as its client identity,
// server certificates checked against the CA bundle) unless the development
// plaintext flag is set. Every outgoing call gets a deadline, and carries on
// the x-request-id of the RPC it serves.
//
// Stateless and thread-safe; channels are shared and thread-safe.
#ifndef CERTPLANE_LIBS_SERVER_CLIENT_H_
#define CERTPLANE_LIBS_SERVER_CLIENT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/server/server_options.h"

namespace grpc {
class Channel;
class ClientContext;
class ServerContextBase;
}  // namespace grpc

namespace certplane::server {

struct ClientOptions {
  bool insecure_plaintext_for_development = false;
  // PEM files: this service's certificate chain and key (its identity), and
  // the CA bundle the server's certificate must chain to.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_ca_file;
  // Expected name in the server's certificate when it differs from the
  // target's host (tests, IP targets). Empty: the target's host.
  std::string tls_server_name;
  // How often the three files are read again (ServerOptions's field).
  absl::Duration tls_reload_interval = absl::Minutes(1);
};

// The server's TLS material reused for outgoing calls: one identity per
// service, one internal CA.
ClientOptions ClientOptionsFromServerOptions(const ServerOptions& options);

// A channel to `target` ("host:port" or any gRPC target URI). Reads the TLS
// files now: NOT_FOUND/PERMISSION_DENIED/INVALID_ARGUMENT naming the file;
// INVALID_ARGUMENT when TLS is not configured and plaintext is not allowed.
absl::StatusOr<std::shared_ptr<grpc::Channel>> CreateClientChannel(
    absl::string_view target, const ClientOptions& options);

// A context for one outgoing call: deadline now + `timeout` (or the incoming
// RPC's deadline when that is sooner), and the incoming RPC's request id as
// x-request-id when `incoming` is given.
std::unique_ptr<grpc::ClientContext> NewClientContext(
    absl::Duration timeout, const grpc::ServerContextBase* incoming = nullptr);

}  // namespace certplane::server

#endif  // CERTPLANE_LIBS_SERVER_CLIENT_H_
