// Prometheus metrics of the vault service:
//
//   certplane_vault_operations_total{operation,result}   every RPC outcome
//   certplane_vault_kek_encryptions{kek_version}         AES-GCM wraps under
//                                                        each KEK version
//   certplane_vault_keys_to_rewrap                       DEKs still wrapped
//                                                        under older versions
//   certplane_vault_rewrapped_keys_total                 DEKs rewrapped
//   certplane_vault_rewrap_failures_total                DEKs that could not
//                                                        be rewrapped
//
// Built over a registry the caller owns (ServerRunner's); a null registry
// makes every method a no-op (unit tests). Thread-safe.
#ifndef CERTPLANE_SERVICES_VAULT_METRICS_H_
#define CERTPLANE_SERVICES_VAULT_METRICS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace prometheus {
class Registry;
template <typename T>
class Family;
class Counter;
class Gauge;
}  // namespace prometheus

namespace certplane::vault {

class VaultMetrics {
 public:
  explicit VaultMetrics(prometheus::Registry* registry);

  void CountOperation(absl::string_view operation, absl::StatusCode result);
  void SetKekEncryptions(int kek_version, int64_t count);
  void SetKeysToRewrap(int64_t count);
  void CountRewrapped();
  void CountRewrapFailure();

 private:
  prometheus::Family<prometheus::Counter>* operations_ = nullptr;
  prometheus::Family<prometheus::Gauge>* kek_encryptions_ = nullptr;
  prometheus::Gauge* keys_to_rewrap_ = nullptr;
  prometheus::Counter* rewrapped_ = nullptr;
  prometheus::Counter* rewrap_failures_ = nullptr;
};

}  // namespace certplane::vault

#endif  // CERTPLANE_SERVICES_VAULT_METRICS_H_
