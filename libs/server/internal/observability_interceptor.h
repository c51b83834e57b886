// The runtime's server interceptor: request id, one JSON log line per RPC,
// and Prometheus metrics per method and code. Internal to libs/server; the
// public face is ServerRunner, RequestId() and the metric names below.
#ifndef CERTPLANE_LIBS_SERVER_INTERNAL_OBSERVABILITY_INTERCEPTOR_H_
#define CERTPLANE_LIBS_SERVER_INTERNAL_OBSERVABILITY_INTERCEPTOR_H_

#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
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
//
// Label values are bounded: a method that no linked proto declares (a
// client can send any name to the gateway's generic service) is counted as
// grpc_service="unknown", grpc_method="unknown". Each method's series are
// looked up once and kept, so recording an RPC takes no label maps.
class RpcMetrics {
 public:
  explicit RpcMetrics(prometheus::Registry& registry);
  void Record(const std::string& service, const std::string& method,
              const std::string& code, double seconds);

 private:
  struct Series {
    prometheus::Counter* handled;
    prometheus::Histogram* seconds;
  };
  Series Lookup(const std::string& service, const std::string& method,
                const std::string& code);

  prometheus::Family<prometheus::Counter>& handled_;
  prometheus::Family<prometheus::Histogram>& handling_seconds_;
  absl::Mutex mu_;
  // By "service/method/code".
  absl::flat_hash_map<std::string, Series> series_ ABSL_GUARDED_BY(mu_);
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
