// The environment-variable KEK source (`env:NAME`), for deployments that
// inject secrets as environment variables (Kubernetes secrets, systemd
// credentials).
//
// The variable holds comma-separated versions, each `v<N>:<base64 of 32
// bytes>`, for example `v1:AAAA...=,v2:BBBB...=`. It is read once, at Open;
// the keys then live only in memory (crypto::SecretBytes inside the AEADs).
// Wrap/Unwrap behave exactly as the key-file source's (see
// file_kek_source.h). Not rotatable: the operator adds a version to the
// variable and restarts.
//
// Thread safety: safe to call from several threads.
#ifndef CERTPLANE_SERVICES_VAULT_ENV_KEK_SOURCE_H_
#define CERTPLANE_SERVICES_VAULT_ENV_KEK_SOURCE_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/crypto/secret_bytes.h"
#include "services/vault/file_kek_source.h"
#include "services/vault/kek_source.h"

namespace certplane::vault {

// Parses a value of the form `v1:<base64>,v2:<base64>`. INVALID_ARGUMENT
// naming the entry for an empty value, a malformed entry, bad base64, a key
// that is not 32 bytes, or a duplicate version.
absl::StatusOr<std::map<int, crypto::SecretBytes>> ParseKekEnvValue(
    absl::string_view value);

class EnvKekSource final : public KekSource {
 public:
  // INVALID_ARGUMENT for an empty or invalid variable name;
  // FAILED_PRECONDITION when the variable is unset or its value is malformed.
  static absl::StatusOr<std::unique_ptr<EnvKekSource>> Open(
      absl::string_view variable);

  std::string Describe() const override;
  absl::StatusOr<std::vector<int>> Versions() const override;
  absl::StatusOr<std::string> Wrap(
      int version, const crypto::SecretBytes& dek,
      absl::string_view associated_data) const override;
  absl::StatusOr<crypto::SecretBytes> Unwrap(
      int version, absl::string_view wrapped,
      absl::string_view associated_data) const override;

 private:
  EnvKekSource(std::string variable, KekRing ring)
      : variable_(std::move(variable)), ring_(std::move(ring)) {}

  const std::string variable_;
  KekRing ring_;
};

}  // namespace certplane::vault

#endif  // CERTPLANE_SERVICES_VAULT_ENV_KEK_SOURCE_H_
