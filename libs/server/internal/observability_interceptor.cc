#include "libs/server/internal/observability_interceptor.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/server_context.h"
#include "libs/server/internal/request_id_registry.h"
#include "libs/server/json_log.h"
#include "libs/server/peer_identity.h"
#include "libs/server/request_id.h"
#include "libs/status/grpc_status.h"

namespace certplane::server::internal {
namespace {

// "/certplane.vault.v1.VaultService/GetKey" -> service and method.
void SplitMethod(absl::string_view full, std::string* service,
                 std::string* method) {
  if (!full.empty() && full.front() == '/') full.remove_prefix(1);
  size_t slash = full.rfind('/');
  if (slash == absl::string_view::npos) {
    *service = "unknown";
    *method = std::string(full);
    return;
  }
  *service = std::string(full.substr(0, slash));
  *method = std::string(full.substr(slash + 1));
}

// Codes that mean the server, not the caller, is at fault.
bool IsServerFault(absl::StatusCode code) {
  return code == absl::StatusCode::kInternal ||
         code == absl::StatusCode::kUnknown ||
         code == absl::StatusCode::kDataLoss;
}

class ObservabilityInterceptor final : public grpc::experimental::Interceptor {
 public:
  ObservabilityInterceptor(grpc::experimental::ServerRpcInfo* info,
                           const std::string& app_name, RpcMetrics* metrics)
      : context_(info->server_context()),
        app_name_(app_name),
        metrics_(metrics),
        start_(absl::Now()) {
    SplitMethod(info->method() == nullptr ? "" : info->method(), &service_,
                &method_);
  }

  ~ObservabilityInterceptor() override {
    if (registered_) UnregisterRequestId(context_);
  }

  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      auto* metadata = methods->GetRecvInitialMetadata();
      if (metadata != nullptr) {
        auto it = metadata->find(kRequestIdMetadataKey);
        if (it != metadata->end()) {
          absl::string_view given(it->second.data(), it->second.size());
          if (IsAcceptableRequestId(given)) request_id_ = std::string(given);
        }
      }
      EnsureRequestId();
    }
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      EnsureRequestId();
      methods->GetSendInitialMetadata()->emplace(kRequestIdMetadataKey,
                                                 request_id_);
    }
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_STATUS)) {
      EnsureRequestId();
      Finish(methods->GetSendStatus());
    }
    methods->Proceed();
  }

 private:
  void EnsureRequestId() {
    if (request_id_.empty()) request_id_ = NewRequestId();
    if (!registered_ && context_ != nullptr) {
      RegisterRequestId(context_, request_id_);
      registered_ = true;
    }
  }

  void Finish(const grpc::Status& status) {
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start_);
    const absl::StatusCode code = FromGrpcCode(status.error_code());
    const std::string code_name = absl::StatusCodeToString(code);
    if (metrics_ != nullptr) {
      metrics_->Record(service_, method_, code_name, seconds);
    }
    const log::Level level = status.ok() || !IsServerFault(code)
                                 ? log::Level::kInfo
                                 : log::Level::kError;
    if (!log::Enabled(level)) return;
    std::string peer;
    std::string identity;
    if (context_ != nullptr) {
      peer = context_->peer();
      identity = PeerIdentity(*context_);
    }
    if (status.ok()) {
      log::Log(level, "rpc",
               {{"app", app_name_},
                {"service", service_},
                {"method", method_},
                {"request_id", request_id_},
                {"grpc_code", code_name},
                {"latency_ms", seconds * 1000.0},
                {"peer", peer},
                {"peer_identity", identity}});
    } else {
      log::Log(level, "rpc",
               {{"app", app_name_},
                {"service", service_},
                {"method", method_},
                {"request_id", request_id_},
                {"grpc_code", code_name},
                {"latency_ms", seconds * 1000.0},
                {"peer", peer},
                {"peer_identity", identity},
                {"error", status.error_message()}});
    }
  }

  grpc::ServerContextBase* context_;
  const std::string& app_name_;
  RpcMetrics* metrics_;
  absl::Time start_;
  std::string service_;
  std::string method_;
  std::string request_id_;
  bool registered_ = false;
};

}  // namespace

RpcMetrics::RpcMetrics(prometheus::Registry& registry)
    : handled_(prometheus::BuildCounter()
                   .Name(kHandledTotalMetric)
                   .Help("RPCs completed on the server, by method and code.")
                   .Register(registry)),
      handling_seconds_(
          prometheus::BuildHistogram()
              .Name(kHandlingSecondsMetric)
              .Help("Time from the start of an RPC until its status is sent.")
              .Register(registry)) {}

RpcMetrics::Series RpcMetrics::Lookup(const std::string& service,
                                      const std::string& method,
                                      const std::string& code) {
  const std::string key = absl::StrCat(service, "/", method, "/", code);
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = series_.find(key);
    if (it != series_.end()) return it->second;
  }
  // gRPC's own services (health, reflection) and every linked proto's.
  const bool known =
      absl::StartsWith(service, "grpc.") ||
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
          absl::StrCat(service, ".", method)) != nullptr;
  const std::string s = known ? service : "unknown";
  const std::string m = known ? method : "unknown";
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
      0.25,  0.5,    1,     2.5,  5,     10,   30};
  Series series{
      &handled_.Add(
          {{"grpc_service", s}, {"grpc_method", m}, {"grpc_code", code}}),
      &handling_seconds_.Add({{"grpc_service", s}, {"grpc_method", m}},
                             kBuckets)};
  if (known) {  // Unknown names are not kept: there is no bound on them.
    absl::MutexLock lock(&mu_);
    series_.emplace(key, series);
  }
  return series;
}

void RpcMetrics::Record(const std::string& service, const std::string& method,
                        const std::string& code, double seconds) {
  Series series = Lookup(service, method, code);
  series.handled->Increment();
  series.seconds->Observe(seconds);
}

grpc::experimental::Interceptor*
ObservabilityInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new ObservabilityInterceptor(info, app_name_, metrics_.get());
}

}  // namespace certplane::server::internal
