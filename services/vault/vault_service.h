// The vault's gRPC handlers (certplane.vault.v1.VaultService).
//
// Every RPC:
//  1. identifies the caller (mTLS peer, or the development header on a
//     plaintext development server; see policy.h) and checks the policy;
//     refused calls get UNAUTHENTICATED / PERMISSION_DENIED and are audited;
//  2. validates the request (INVALID_ARGUMENT naming the field);
//  3. does its work and audits it through the store: mutations (GenerateKey,
//     ImportKey, DeleteKey, RotateKek) in the same transaction as their
//     effect; reads that release something (GetKey, ListKeys, CreateCsr,
//     Sign, ExportKey) with AppendAudit before the result is returned, so a
//     failed audit means no result (fail-closed). Failed calls are audited
//     too (best effort: the failure is returned either way).
// Stored keys that fail to authenticate are refused with DATA_LOSS.
//
// Private keys exist in plaintext only inside crypto::PrivateKey and
// crypto::SecretBytes, for the duration of one call. No error message, log
// line or audit record holds key material.
//
// KEK rotation: RotateKek (or the automatic trigger when the current KEK
// version reaches options.kek_encryption_limit wraps) creates a new version
// in a RotatableKekSource, records it, and starts a background worker that
// rewraps every data key under it in batches, each key by compare-and-set,
// so it is safe to kill at any point; Start() resumes it.
//
// Ownership: the store, KEK source and policy are not owned and must
// outlive the service. Thread-safe; handlers run concurrently.
#ifndef CERTPLANE_SERVICES_VAULT_VAULT_SERVICE_H_
#define CERTPLANE_SERVICES_VAULT_VAULT_SERVICE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "certplane/vault/v1/vault.grpc.pb.h"
#include "services/vault/envelope.h"
#include "services/vault/kek_source.h"
#include "services/vault/metrics.h"
#include "services/vault/opened_key_cache.h"
#include "services/vault/policy.h"
#include "services/vault/vault_store.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace certplane::vault {

using Clock = std::function<absl::Time()>;

struct VaultServiceOptions {
  // Accept the x-certplane-dev-identity header (plaintext development
  // servers only; main() sets it from --insecure_plaintext_for_development).
  bool allow_development_identity = false;
  // Wraps under one KEK version before a new version is created
  // automatically (rotatable sources) or further wraps are refused with
  // FAILED_PRECONDITION (other sources). Far below GCM's 2^32 bound.
  int64_t kek_encryption_limit = int64_t{1} << 30;
  // Keys per rewrap batch, and the wait after a failed batch.
  int rewrap_batch_size = 100;
  absl::Duration rewrap_retry_backoff = absl::Seconds(2);
  // Where metrics go (not owned); null: none.
  prometheus::Registry* metrics_registry = nullptr;
  // Recently opened keys kept for reuse (see opened_key_cache.h).
  OpenedKeyCache::Options opened_keys;
};

// The associated data of EXPORT_WRAPPED_TO_RECIPIENT messages
// (crypto::EciesOpen's `context`): "certplane-vault-export|v1|" +
// N(key_id), N as in KeyAssociatedData. Binds the export to its key.
std::string ExportAssociatedData(absl::string_view key_id);

// The audit identity of work the vault does on its own (KEK registration,
// automatic rotation).
inline constexpr char kSystemIdentity[] = "certplane-vault (system)";

class VaultService final : public v1::VaultService::Service {
 public:
  VaultService(VaultStore& store, KekSource& kek, const Policy& policy,
               Clock clock, VaultServiceOptions options = {});
  ~VaultService() override;  // Stop().

  VaultService(const VaultService&) = delete;
  VaultService& operator=(const VaultService&) = delete;

  // Records the KEK source's versions in the store (with audit records) and
  // resumes rewrapping if any key is wrapped under an older version. Call
  // once before serving.
  absl::Status Start();
  // Stops the rewrap worker (it resumes on the next Start()). Idempotent.
  void Stop();
  // Blocks until no rewrap is running or pending (tests, tools).
  void WaitForRewrapIdle();

  grpc::Status GenerateKey(grpc::ServerContext* context,
                           const v1::GenerateKeyRequest* request,
                           v1::Key* response) override;
  grpc::Status ImportKey(grpc::ServerContext* context,
                         const v1::ImportKeyRequest* request,
                         v1::Key* response) override;
  grpc::Status GetKey(grpc::ServerContext* context,
                      const v1::GetKeyRequest* request,
                      v1::Key* response) override;
  grpc::Status ListKeys(grpc::ServerContext* context,
                        const v1::ListKeysRequest* request,
                        v1::ListKeysResponse* response) override;
  grpc::Status DeleteKey(grpc::ServerContext* context,
                         const v1::DeleteKeyRequest* request,
                         v1::Key* response) override;
  grpc::Status CreateCsr(grpc::ServerContext* context,
                         const v1::CreateCsrRequest* request,
                         v1::CreateCsrResponse* response) override;
  grpc::Status Sign(grpc::ServerContext* context,
                    const v1::SignRequest* request,
                    v1::SignResponse* response) override;
  grpc::Status ExportKey(grpc::ServerContext* context,
                         const v1::ExportKeyRequest* request,
                         v1::ExportKeyResponse* response) override;
  grpc::Status RotateKek(grpc::ServerContext* context,
                         const v1::RotateKekRequest* request,
                         v1::KekStatus* response) override;
  grpc::Status GetKekStatus(grpc::ServerContext* context,
                            const v1::GetKekStatusRequest* request,
                            v1::KekStatus* response) override;

 private:
  // One authorized call in progress.
  struct Call {
    std::string rpc;       // "GenerateKey", ...
    std::string identity;  // The caller's identities joined with ",".
    std::string request_id;
    std::string key_id;  // Set as soon as it is known.
  };
  using Body = absl::FunctionRef<absl::Status(Call&)>;

  // Authorizes, runs `body`, audits a failure, counts the outcome.
  grpc::Status Handle(grpc::ServerContext* context, absl::string_view rpc,
                      Operation operation, absl::string_view request_id,
                      Body body);
  AuditRecord Audit(const Call& call, absl::string_view result,
                    absl::string_view detail) const;

  absl::StatusOr<KeyRecord> SealNewKey(
      const crypto::PrivateKey& key, absl::string_view owner,
      const google::protobuf::Map<std::string, std::string>& labels,
      absl::string_view origin, absl::string_view request_id);
  // Inserts a sealed key (audited in the same transaction); when a
  // concurrent call with the same request_id won, returns that one's key.
  absl::StatusOr<KeyRecord> InsertOrFindIdempotent(Call& call, KeyRecord record,
                                                   absl::string_view detail);
  // For a non-empty request_id used before: the earlier key (audited), or
  // ALREADY_EXISTS when it was used for a different request.
  absl::StatusOr<std::optional<KeyRecord>> FindRetry(
      Call& call, absl::string_view request_id, absl::string_view owner,
      absl::string_view origin,
      absl::FunctionRef<bool(const KeyRecord&)> same_request);
  // The key named `name`; FAILED_PRECONDITION when destroyed.
  absl::StatusOr<KeyRecord> LoadActiveKey(Call& call, absl::string_view name);

  // Makes sure the current KEK version is recorded and below the
  // encryption limit, rotating automatically where the source can.
  absl::Status EnsureEncryptionBudget();
  // The private key of an active `record`, from opened_keys_ or unsealed.
  absl::StatusOr<std::shared_ptr<const crypto::PrivateKey>> OpenKey(
      const KeyRecord& record);
  absl::StatusOr<int> CurrentKekVersion() const;
  absl::StatusOr<int> RotateLocked(absl::string_view identity,
                                   absl::string_view request_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(rotate_mu_);
  absl::StatusOr<v1::KekStatus> BuildKekStatus();

  void RequestRewrap();
  void RewrapWorker();
  // Rewraps everything below the current version; OK when nothing is left
  // that can be rewrapped.
  absl::Status RewrapAll();

  VaultStore& store_;
  KekSource& kek_;
  const Policy& policy_;
  Clock clock_;
  VaultServiceOptions options_;
  Envelope envelope_;
  OpenedKeyCache opened_keys_;
  VaultMetrics metrics_;

  // Held exclusively while the KEK version changes, shared while a key is
  // sealed and inserted, so no key is inserted under a version that a
  // finished rewrap has already left behind.
  absl::Mutex rotate_mu_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool rewrap_running_ ABSL_GUARDED_BY(mu_) = false;
  bool rewrap_requested_ ABSL_GUARDED_BY(mu_) = false;
  std::thread worker_ ABSL_GUARDED_BY(mu_);
};

}  // namespace certplane::vault

#endif  // CERTPLANE_SERVICES_VAULT_VAULT_SERVICE_H_
