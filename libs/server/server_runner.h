// ServerRunner: what every certplane service's main() uses to serve gRPC.
//
//   ServerRunner runner(options);               // from ServerOptionsFromFlags
//   VaultServiceImpl service(...);
//   absl::Status status = runner.AddService(
//       &service, certplane::vault::v1::VaultService::service_full_name());
//   if (status.ok()) status = runner.Start();
//   if (status.ok()) status = runner.RunUntilShutdownSignal();  // SIGTERM
//   return status;                               // main: exit 0 when OK
//
// Start() builds a grpc::Server on options.listen_address with
//  - mutual TLS from the configured files (client certificates are required
//    and verified), or plaintext on loopback with the development flag;
//  - the given services, grpc.health.v1 (each service and "" SERVING) and
//    server reflection;
//  - the runtime's interceptor (request id, one JSON log line per RPC,
//    certplane_grpc_server_handled_total{grpc_service,grpc_method,grpc_code}
//    and certplane_grpc_server_handling_seconds{grpc_service,grpc_method}),
//    then any interceptors added with AddInterceptorFactory();
//  - a Prometheus exposer serving /metrics on options.metrics_address.
//
// Shutdown() (and RunUntilShutdownSignal() on SIGTERM/SIGINT) marks every
// service NOT_SERVING, lets in-flight RPCs finish for up to
// options.shutdown_grace_period, cancels the rest, and stops the exposer.
//
// Ownership: services are not
// owned and must outlive the runner; factories are owned. Configuration
// calls (AddService, AddInterceptorFactory, Start) are for one thread;
// port(), metrics_registry() and Shutdown() are thread-safe after Start().
#ifndef CERTPLANE_LIBS_SERVER_SERVER_RUNNER_H_
#define CERTPLANE_LIBS_SERVER_SERVER_RUNNER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "libs/server/server_options.h"

namespace grpc {
class AsyncGenericService;
class Server;
class ServerCompletionQueue;
class Service;
namespace experimental {
class ServerInterceptorFactoryInterface;
}  // namespace experimental
}  // namespace grpc

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace certplane::server {

// A generic service served from completion queues (the gateway's proxy):
// every method no added service has arrives on generic_service(), and the
// service runs its own threads over the queues the runner creates for it.
class CompletionQueueService {
 public:
  virtual ~CompletionQueueService() = default;
  virtual grpc::AsyncGenericService* generic_service() = 0;
  // How many completion queues to create (one per serving thread).
  virtual int queue_count() const = 0;
  // After the server started: serve on `queues` (owned by the runner).
  virtual void Serve(std::vector<grpc::ServerCompletionQueue*> queues) = 0;
  // After grpc::Server::Shutdown() returned: let the calls still running
  // end, shut the queues down, drain them, and join the threads.
  virtual void Drain() = 0;
};

class ServerRunner {
 public:
  explicit ServerRunner(ServerOptions options);
  ~ServerRunner();  // Shutdown() if still serving.

  ServerRunner(const ServerRunner&) = delete;
  ServerRunner& operator=(const ServerRunner&) = delete;

  // Registers `service` (not owned) under its full proto name, e.g.
  // certplane::vault::v1::VaultService::service_full_name(); the name is
  // what health checks ask for. INVALID_ARGUMENT when the name is not a
  // service in the linked protos; FAILED_PRECONDITION after Start().
  absl::Status AddService(grpc::Service* service, absl::string_view full_name);

  // Serves every method no added service has (the gateway's proxy). At most
  // one; not owned. FAILED_PRECONDITION after Start() or when one is set.
  absl::Status SetGenericService(CompletionQueueService* service);

  // Extra interceptors (authentication, ...), run after the runtime's own.
  void AddInterceptorFactory(
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
          factory);

  // Where services register their own metrics; served on /metrics.
  prometheus::Registry& metrics_registry();
  std::shared_ptr<prometheus::Registry> shared_metrics_registry();

  // Validates the options, reads the TLS files, and starts serving.
  // INVALID_ARGUMENT for bad options, NOT_FOUND/PERMISSION_DENIED for
  // unreadable TLS files, UNAVAILABLE when an address cannot be bound,
  // FAILED_PRECONDITION when called twice.
  absl::Status Start();

  // The bound gRPC port (the chosen one when listen_address had port 0).
  int port() const;
  // The bound /metrics port, or 0 without an exposer.
  int metrics_port() const;
  // The running server (for in-process channels in tests); null before
  // Start().
  grpc::Server* server();

  // Reports `service` (a name given to AddService, or "" for the whole
  // server) as SERVING or NOT_SERVING to health checks, e.g. while its
  // database is unreachable. NOT_FOUND for a name never added;
  // FAILED_PRECONDITION when not serving. Thread-safe.
  absl::Status SetServingStatus(absl::string_view service, bool serving);

  // Graceful stop, see above. Idempotent and thread-safe; every call returns
  // once the server stopped. Handlers may call SetServingStatus() while the
  // server drains (it returns FAILED_PRECONDITION), but must not call
  // Shutdown(): it would wait for the handler itself.
  void Shutdown();

  // Blocks until SIGTERM/SIGINT (or RequestShutdown(), shutdown_signal.h),
  // then Shutdown(). OK after a clean stop; INTERNAL if the signal handlers
  // could not be installed.
  absl::Status RunUntilShutdownSignal();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace certplane::server

#endif  // CERTPLANE_LIBS_SERVER_SERVER_RUNNER_H_
