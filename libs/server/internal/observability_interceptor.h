// The runtime's server interceptor: request id, one JSON log line per RPC,
// and Prometheus metrics per method and code. Internal to libs/server; the
// public face is ServerRunner, RequestId() and the metric names below.
#ifndef CERTPLANE_LIBS_SERVER_INTERNAL_OBSERVABILITY_INTERCEPTOR_H_
#define CERTPLANE_LIBS_SERVER_INTERNAL_OBSERVABILITY_INTERCEPTOR_H_

#include <memory>
#include <string>

#include "grpcpp/support/server_interceptor.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace certplane::server::internal {

inline constexpr char kHandledTotalMetric[] =
    "certplane_grpc_server_handled_total";
inline constexpr char kHandlingSecondsMetric[] =
    "certplane_grpc_server_handling_seconds";

// Shared by every RPC's interceptor. Thread-safe.
class RpcMetrics {
 public:
  explicit RpcMetrics(prometheus::Registry& registry);
  void Record(const std::string& service, const std::string& method,
              const std::string& code, double seconds);

 private:
  prometheus::Family<prometheus::Counter>& handled_;
  prometheus::Family<prometheus::Histogram>& handling_seconds_;
};

class ObservabilityInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  ObservabilityInterceptorFactory(std::string app_name,
                                  std::shared_ptr<RpcMetrics> metrics)
      : app_name_(std::move(app_name)), metrics_(std::move(metrics)) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  std::string app_name_;
  std::shared_ptr<RpcMetrics> metrics_;
};

}  // namespace certplane::server::internal

#endif  // CERTPLANE_LIBS_SERVER_INTERNAL_OBSERVABILITY_INTERCEPTOR_H_
