#include "services/vault/metrics.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace certplane::vault {

VaultMetrics::VaultMetrics(prometheus::Registry* registry) {
  if (registry == nullptr) return;
  operations_ = &prometheus::BuildCounter()
                     .Name("certplane_vault_operations_total")
                     .Help("Vault operations by RPC and result code.")
                     .Register(*registry);
  kek_encryptions_ =
      &prometheus::BuildGauge()
           .Name("certplane_vault_kek_encryptions")
           .Help("AES-GCM encryptions (DEK wraps) under each KEK version.")
           .Register(*registry);
  keys_to_rewrap_ =
      &prometheus::BuildGauge()
           .Name("certplane_vault_keys_to_rewrap")
           .Help("Data keys still wrapped under an older KEK version.")
           .Register(*registry)
           .Add({});
  rewrapped_ = &prometheus::BuildCounter()
                    .Name("certplane_vault_rewrapped_keys_total")
                    .Help("Data keys rewrapped under a newer KEK version.")
                    .Register(*registry)
                    .Add({});
  rewrap_failures_ =
      &prometheus::BuildCounter()
           .Name("certplane_vault_rewrap_failures_total")
           .Help("Data keys that could not be rewrapped (DATA_LOSS).")
           .Register(*registry)
           .Add({});
}

void VaultMetrics::CountOperation(absl::string_view operation,
                                  absl::StatusCode result) {
  if (operations_ == nullptr) return;
  operations_
      ->Add({{"operation", std::string(operation)},
             {"result", absl::StatusCodeToString(result)}})
      .Increment();
}

void VaultMetrics::SetKekEncryptions(int kek_version, int64_t count) {
  if (kek_encryptions_ == nullptr) return;
  kek_encryptions_->Add({{"kek_version", absl::StrCat(kek_version)}})
      .Set(static_cast<double>(count));
}

void VaultMetrics::SetKeysToRewrap(int64_t count) {
  if (keys_to_rewrap_ != nullptr) {
    keys_to_rewrap_->Set(static_cast<double>(count));
  }
}

void VaultMetrics::CountRewrapped() {
  if (rewrapped_ != nullptr) rewrapped_->Increment();
}

void VaultMetrics::CountRewrapFailure() {
  if (rewrap_failures_ != nullptr) rewrap_failures_->Increment();
}

}  // namespace certplane::vault
