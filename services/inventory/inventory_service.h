// The inventory's gRPC handlers (certplane.inventory.v1.InventoryService).
//
// Every RPC identifies the caller (the mTLS peer, or on a plaintext
// development server the x-certplane-dev-identity header; UNAUTHENTICATED
// without either), who is recorded as the actor of the changes it makes;
// validates the request (INVALID_ARGUMENT naming the field); and returns
// errors through the one absl::Status -> grpc::Status mapping
// (libs/status/grpc_status.h). Authorization is the gateway's job.
//
// ImportCertificates: the importer (importer.h) reads the files; each
// private key that belongs to a leaf not yet stored with a key goes to the
// vault with ImportKey, with request_id "inventory:<SPKI SHA-256
// hex>:<owner>" so that retries and re-imports find the key stored the first
// time instead of adding another (owners too long to fit are replaced by a
// 64-bit hash of the owner). The inventory keeps only the returned key name.
// The key travels in the ImportKey request, whose copy is overwritten once
// the call returns (gRPC's own buffers are beyond reach). The certificates
// then go to the store in batches of at most `import_batch_size` leaves (CA
// certificates with the first). Counts: imported_count counts leaves
// IMPORTED (in a dry run: WOULD_IMPORT), already_present_count leaves and CA
// certificates ALREADY_PRESENT, failed_count leaves FAILED plus files that
// could not be read; newly stored CA certificates (CA_CERTIFICATE_STORED)
// are in none of them. A store failure fails the whole call (a retry is
// safe: imports are idempotent); a vault failure fails only the leaves whose
// key it concerns.
//
// ExportCertificate with a key (PKCS12, NGINX_BUNDLE): the key is fetched
// from the vault with ExportKey EXPORT_WRAPPED_TO_RECIPIENT to a P-256 key
// pair made for this one call, opened in memory, written into the output
// and dropped; it is never logged or stored.
//
// WatchChanges: pages of the store's change feed, then (unless no_wait) new
// changes as they are committed: the handler polls the store every
// `watch_poll_interval` and is woken at once when this process commits a
// change. It ends when the client cancels, the server shuts down, or
// Shutdown() is called.
//
// Ownership: the store is not owned and must outlive the service; the vault
// stub is owned (null: no vault; imports that carry keys fail those leaves
// and key exports are FAILED_PRECONDITION). Thread-safe; handlers run
// concurrently.
#ifndef CERTPLANE_SERVICES_INVENTORY_INVENTORY_SERVICE_H_
#define CERTPLANE_SERVICES_INVENTORY_INVENTORY_SERVICE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "certplane/inventory/v1/inventory.grpc.pb.h"
#include "certplane/vault/v1/vault.grpc.pb.h"
#include "libs/crypto/certificate.h"
#include "libs/crypto/key.h"
#include "services/inventory/inventory_store.h"

namespace certplane::inventory {

using Clock = std::function<absl::Time()>;

struct InventoryServiceOptions {
  // Accept the x-certplane-dev-identity header as the caller's identity
  // (plaintext development servers only).
  bool allow_development_identity = false;
  // mTLS identities (the gateway) whose x-certplane-user header names the
  // person they act for: recorded as the actor of that person's changes.
  absl::flat_hash_set<std::string> trusted_delegators;
  // Sent as x-certplane-dev-identity on calls to the vault, for a vault
  // reached over a plaintext development channel. Empty: none (mTLS: the
  // channel's client certificate is the identity).
  std::string vault_development_identity;
  // Deadline of each vault call.
  absl::Duration vault_timeout = absl::Seconds(10);

  // ImportCertificates limits (INVALID_ARGUMENT beyond).
  int max_import_files = 1000;
  size_t max_import_bytes = size_t{64} << 20;
  size_t max_import_certificates = 10000;
  // Leaves per store transaction.
  int import_batch_size = 1000;

  // WatchChanges: changes per store read, and how often a waiting stream
  // looks for changes committed by other processes.
  int watch_page_size = 500;
  absl::Duration watch_poll_interval = absl::Milliseconds(500);
};

// The associated data the vault binds an EXPORT_WRAPPED_TO_RECIPIENT
// message to (crypto::EciesOpen's `context`), as the vault documents it
// (services/vault/vault_service.h, ExportAssociatedData).
std::string VaultExportContext(absl::string_view key_id);

// The vault ImportKey request_id for a key (see above).
std::string VaultImportRequestId(absl::string_view spki_sha256_hex,
                                 absl::string_view owner);

class InventoryService final : public v1::InventoryService::Service {
 public:
  InventoryService(
      InventoryStore& store,
      std::unique_ptr<vault::v1::VaultService::StubInterface> vault,
      Clock clock, InventoryServiceOptions options = {});
  ~InventoryService() override;

  InventoryService(const InventoryService&) = delete;
  InventoryService& operator=(const InventoryService&) = delete;

  // Ends every WatchChanges stream (they return OK after what they have
  // sent) and makes new ones end at once. For graceful shutdown; idempotent.
  void Shutdown();

  grpc::Status ImportCertificates(
      grpc::ServerContext* context,
      const v1::ImportCertificatesRequest* request,
      v1::ImportCertificatesResponse* response) override;
  grpc::Status CreateCertificate(grpc::ServerContext* context,
                                 const v1::CreateCertificateRequest* request,
                                 v1::ManagedCertificate* response) override;
  grpc::Status AddCertificateVersion(
      grpc::ServerContext* context,
      const v1::AddCertificateVersionRequest* request,
      v1::CertificateVersion* response) override;
  grpc::Status GetCertificate(grpc::ServerContext* context,
                              const v1::GetCertificateRequest* request,
                              v1::ManagedCertificate* response) override;
  grpc::Status ListCertificates(
      grpc::ServerContext* context, const v1::ListCertificatesRequest* request,
      v1::ListCertificatesResponse* response) override;
  grpc::Status ListCertificateVersions(
      grpc::ServerContext* context,
      const v1::ListCertificateVersionsRequest* request,
      v1::ListCertificateVersionsResponse* response) override;
  grpc::Status GetCertificateVersion(
      grpc::ServerContext* context,
      const v1::GetCertificateVersionRequest* request,
      v1::CertificateVersion* response) override;
  grpc::Status UpdateCertificate(grpc::ServerContext* context,
                                 const v1::UpdateCertificateRequest* request,
                                 v1::ManagedCertificate* response) override;
  grpc::Status DeleteCertificate(grpc::ServerContext* context,
                                 const v1::DeleteCertificateRequest* request,
                                 v1::ManagedCertificate* response) override;
  grpc::Status RevokeCertificateVersion(
      grpc::ServerContext* context,
      const v1::RevokeCertificateVersionRequest* request,
      v1::CertificateVersion* response) override;
  grpc::Status ExportCertificate(
      grpc::ServerContext* context, const v1::ExportCertificateRequest* request,
      v1::ExportCertificateResponse* response) override;
  grpc::Status GetStats(grpc::ServerContext* context,
                        const v1::GetStatsRequest* request,
                        v1::Stats* response) override;
  grpc::Status WatchChanges(grpc::ServerContext* context,
                            const v1::WatchChangesRequest* request,
                            grpc::ServerWriter<v1::Change>* writer) override;

 private:
  struct ImportState;

  absl::StatusOr<std::string> Actor(const grpc::ServerContext& context) const;

  absl::Status Import(const grpc::ServerContext& context,
                      const v1::ImportCertificatesRequest& request,
                      const std::string& actor,
                      v1::ImportCertificatesResponse& response);
  // Stores the plan's keys marked key_needed in the vault; fills key_names
  // (by key index) or key_errors.
  void StoreKeys(const grpc::ServerContext& context, ImportState& state);
  // The vault's name for `key` (ImportKey, idempotent by request_id).
  absl::StatusOr<std::string> ImportKeyToVault(
      const grpc::ServerContext& context, const crypto::PrivateKey& key,
      absl::string_view spki_sha256_hex, absl::string_view owner);

  absl::StatusOr<v1::CertificateVersion> VersionToProto(
      const VersionRecord& record, absl::Time now);
  absl::StatusOr<v1::ManagedCertificate> CertificateToProto(
      const CertificateRecord& record, absl::Time now);
  // The chain's CA certificates, through a cache (they never change).
  absl::StatusOr<crypto::Certificate> CaCertificate(
      const std::string& sha256_hex);

  // The version `name` names ("certificates/{id}": its current version).
  absl::StatusOr<VersionRecord> ResolveVersion(absl::string_view field,
                                               absl::string_view name);
  absl::Status ExportWithKey(const grpc::ServerContext& context,
                             const v1::ExportCertificateRequest& request,
                             const VersionRecord& version,
                             const std::string& base,
                             v1::ExportCertificateResponse& response);

  // Wakes WatchChanges streams after this process committed a change.
  void NotifyChange();

  InventoryStore& store_;
  std::unique_ptr<vault::v1::VaultService::StubInterface> vault_;
  Clock clock_;
  InventoryServiceOptions options_;

  absl::Mutex ca_mu_;
  absl::flat_hash_map<std::string, crypto::Certificate> ca_cache_
      ABSL_GUARDED_BY(ca_mu_);

  absl::Mutex watch_mu_;
  absl::CondVar watch_cv_;
  uint64_t change_epoch_ ABSL_GUARDED_BY(watch_mu_) = 0;
  bool shutting_down_ ABSL_GUARDED_BY(watch_mu_) = false;
};

}  // namespace certplane::inventory

#endif  // CERTPLANE_SERVICES_INVENTORY_INVENTORY_SERVICE_H_
