#include "libs/server/server_runner.h"

#include <fcntl.h>
#include <grpcpp/generic/async_generic_service.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"
#include "grpcpp/support/server_interceptor.h"
#include "libs/server/internal/observability_interceptor.h"
#include "libs/server/internal/tls_stage.h"
#include "libs/server/json_log.h"
#include "libs/server/shutdown_signal.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"

namespace certplane::server {
namespace {

constexpr int kMaxIdlePollers = 64;

}  // namespace

struct ServerRunner::State {
  explicit State(ServerOptions o) : options(std::move(o)) {}

  ServerOptions options;
  std::shared_ptr<prometheus::Registry> registry =
      std::make_shared<prometheus::Registry>();
  std::vector<std::pair<grpc::Service*, std::string>> services;
  CompletionQueueService* generic_service = nullptr;
  // Declared before `server`, which must be destroyed first.
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues;
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      extra_interceptors;

  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<prometheus::Exposer> exposer;
  int port = 0;
  int metrics_port = 0;
  bool started = false;

  // Guards only the flags: Shutdown() drains the server without holding it,
  // so handlers may call SetServingStatus() during the drain.
  absl::Mutex shutdown_mu;
  bool shut_down ABSL_GUARDED_BY(shutdown_mu) = false;  // shutdown began
  bool stopped ABSL_GUARDED_BY(shutdown_mu) = false;    // shutdown finished
};

ServerRunner::ServerRunner(ServerOptions options)
    : state_(std::make_unique<State>(std::move(options))) {}

ServerRunner::~ServerRunner() { Shutdown(); }

absl::Status ServerRunner::AddService(grpc::Service* service,
                                      absl::string_view full_name) {
  if (state_->started) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot add service ", full_name, " after ServerRunner::Start()"));
  }
  if (service == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("service ", full_name, " is null"));
  }
  if (google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          std::string(full_name)) == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", full_name,
                     "\" is not a gRPC service in the linked protos; pass "
                     "<Service>::service_full_name()"));
  }
  state_->services.emplace_back(service, std::string(full_name));
  return absl::OkStatus();
}

absl::Status ServerRunner::SetGenericService(CompletionQueueService* service) {
  if (state_->started || state_->generic_service != nullptr) {
    return absl::FailedPreconditionError(
        "a generic service can be set once, before ServerRunner::Start()");
  }
  state_->generic_service = service;
  return absl::OkStatus();
}

void ServerRunner::AddInterceptorFactory(
    std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
        factory) {
  state_->extra_interceptors.push_back(std::move(factory));
}

prometheus::Registry& ServerRunner::metrics_registry() {
  return *state_->registry;
}

std::shared_ptr<prometheus::Registry> ServerRunner::shared_metrics_registry() {
  return state_->registry;
}

absl::Status ServerRunner::Start() {
  State& s = *state_;
  if (s.started) {
    return absl::FailedPreconditionError("ServerRunner::Start() called twice");
  }
  const ServerOptions& options = s.options;
  if (absl::Status status = ValidateServerOptions(options); !status.ok()) {
    return status;
  }

  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (options.insecure_plaintext_for_development) {
    credentials = grpc::InsecureServerCredentials();
    log::Warning(
        "serving plaintext gRPC (development only)",
        {{"app", options.app_name}, {"address", options.listen_address}});
  } else {
    // Checked now (startup fails naming a bad file), then re-read every
    // tls_reload_interval, so a renewed certificate needs no restart
    // (internal/tls_stage.h).
    absl::StatusOr<
        std::shared_ptr<grpc::experimental::CertificateProviderInterface>>
        provider =
            internal::WatchTlsFiles({.cert_file = options.tls_cert_file,
                                     .key_file = options.tls_key_file,
                                     .ca_file = options.tls_client_ca_file},
                                    options.tls_reload_interval);
    if (!provider.ok()) return provider.status();
    grpc::experimental::TlsServerCredentialsOptions tls(*std::move(provider));
    tls.watch_root_certs();
    tls.watch_identity_key_cert_pairs();
    tls.set_cert_request_type(
        options.require_client_certificate
            ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
            : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
    credentials = grpc::experimental::TlsServerCredentials(tls);
  }

  // Process-wide switches; both are idempotent.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default, which lets a second replica silently
  // share (and steal half the connections of) a port already in use.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // The synchronous server's threads: gRPC's default keeps at most 2 idle
  // pollers, so under a few concurrent calls it starts and ends a thread for
  // nearly every RPC (a clone, stack setup and teardown each, which cost a
  // service more than the RPC itself). Keep enough to serve a burst.
  builder.SetSyncServerOption(
      grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, kMaxIdlePollers);
  builder.AddListeningPort(options.listen_address, credentials, &s.port);
  for (auto& [service, name] : s.services) builder.RegisterService(service);
  if (s.generic_service != nullptr) {
    builder.RegisterAsyncGenericService(s.generic_service->generic_service());
    for (int i = 0; i < std::max(1, s.generic_service->queue_count()); ++i) {
      s.queues.push_back(builder.AddCompletionQueue());
    }
  }

  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(
      std::make_unique<internal::ObservabilityInterceptorFactory>(
          options.app_name,
          std::make_shared<internal::RpcMetrics>(*s.registry)));
  for (auto& factory : s.extra_interceptors) {
    interceptors.push_back(std::move(factory));
  }
  s.extra_interceptors.clear();
  builder.experimental().SetInterceptorCreators(std::move(interceptors));

  s.server = builder.BuildAndStart();
  if (s.server == nullptr || s.port == 0) {
    s.server.reset();
    return absl::UnavailableError(absl::StrCat(
        "cannot serve gRPC on --listen_address ", options.listen_address,
        " (address in use, not local, or TLS material rejected; gRPC's "
        "log above has the detail)"));
  }
  s.started = true;
  if (s.generic_service != nullptr) {
    std::vector<grpc::ServerCompletionQueue*> queues;
    for (auto& q : s.queues) queues.push_back(q.get());
    s.generic_service->Serve(std::move(queues));
  }

  grpc::HealthCheckServiceInterface* health = s.server->GetHealthCheckService();
  if (health != nullptr) {
    health->SetServingStatus(true);  // Overall ("") and existing entries.
    for (const auto& [service, name] : s.services) {
      health->SetServingStatus(name, true);
    }
  }

  if (!options.metrics_address.empty()) {
    try {
      s.exposer =
          std::make_unique<prometheus::Exposer>(options.metrics_address);
      s.exposer->RegisterCollectable(s.registry);
      std::vector<int> ports = s.exposer->GetListeningPorts();
      s.metrics_port = ports.empty() ? 0 : ports.front();
    } catch (const std::exception& e) {
      s.exposer.reset();
      Shutdown();
      return absl::UnavailableError(
          absl::StrCat("cannot serve /metrics on --metrics_address ",
                       options.metrics_address, ": ", e.what()));
    }
  }

  if (options.handle_shutdown_signals) {
    if (absl::Status status = InstallShutdownSignalHandlers(); !status.ok()) {
      Shutdown();
      return status;
    }
  }

  log::Info("serving", {{"app", options.app_name},
                        {"grpc_port", s.port},
                        {"metrics_port", s.metrics_port},
                        {"tls", !options.insecure_plaintext_for_development}});
  return absl::OkStatus();
}

int ServerRunner::port() const { return state_->port; }

int ServerRunner::metrics_port() const { return state_->metrics_port; }

grpc::Server* ServerRunner::server() { return state_->server.get(); }

absl::Status ServerRunner::SetServingStatus(absl::string_view service,
                                            bool serving) {
  State& s = *state_;
  absl::MutexLock lock(&s.shutdown_mu);
  if (s.server == nullptr || s.shut_down) {
    return absl::FailedPreconditionError(
        "SetServingStatus needs a started, running ServerRunner");
  }
  grpc::HealthCheckServiceInterface* health = s.server->GetHealthCheckService();
  if (health == nullptr) {
    return absl::InternalError("gRPC default health service is not enabled");
  }
  if (service.empty()) {
    health->SetServingStatus(serving);
    return absl::OkStatus();
  }
  for (const auto& [unused, name] : s.services) {
    if (name == service) {
      health->SetServingStatus(name, serving);
      return absl::OkStatus();
    }
  }
  return absl::NotFoundError(absl::StrCat(
      "service \"", service, "\" was not added to this ServerRunner"));
}

void ServerRunner::Shutdown() {
  State& s = *state_;
  std::unique_ptr<prometheus::Exposer> exposer;
  {
    absl::MutexLock lock(&s.shutdown_mu);
    if (s.server == nullptr) return;
    if (s.shut_down) {
      // Another thread is draining; return once it is done, as promised.
      s.shutdown_mu.Await(absl::Condition(&s.stopped));
      return;
    }
    s.shut_down = true;  // from now on SetServingStatus() refuses
    log::Info("shutting down",
              {{"app", s.options.app_name},
               {"grace_period_ms",
                absl::ToInt64Milliseconds(s.options.shutdown_grace_period)}});
    if (grpc::HealthCheckServiceInterface* health =
            s.server->GetHealthCheckService();
        health != nullptr) {
      health->SetServingStatus(false);
    }
    exposer = std::move(s.exposer);
  }
  // Stopping civetweb takes up to its 2 s poll quantum; do it alongside the
  // gRPC drain rather than after it.
  std::thread stop_exposer(
      [exposer = std::move(exposer)]() mutable { exposer.reset(); });
  s.server->Shutdown(
      absl::ToChronoTime(absl::Now() + s.options.shutdown_grace_period));
  if (s.generic_service != nullptr) s.generic_service->Drain();
  s.server->Wait();
  stop_exposer.join();
  log::Info("stopped", {{"app", s.options.app_name}});
  absl::MutexLock lock(&s.shutdown_mu);
  s.stopped = true;
}

absl::Status ServerRunner::RunUntilShutdownSignal() {
  if (absl::Status status = InstallShutdownSignalHandlers(); !status.ok()) {
    return status;
  }
  int signal_number = WaitForShutdownSignal();
  log::Info("shutdown requested",
            {{"app", state_->options.app_name},
             {"signal", signal_number > 0 ? strsignal(signal_number)
                                          : "RequestShutdown"}});
  Shutdown();
  return absl::OkStatus();
}

}  // namespace certplane::server
