// The issuance service's calls to its peers, the vault and the inventory:
// one place that sets each call's deadline and caller identity, retries what
// is safe to retry, and names the peer in every error.
//
// Retries: a call that fails with UNAVAILABLE (the peer is restarting, the
// connection dropped) is tried again up to `attempts` times in all, after
// 100 ms, 200 ms, ...; every call made here is idempotent (GenerateKey and
// CreateCertificate carry request ids; the others read, or set a state that
// a repeat sets again). Other codes return at once, with the peer's message
// prefixed "vault: " or "inventory: " and the peer's code kept, so callers
// can tell a refusal (INVALID_ARGUMENT, FAILED_PRECONDITION, ...) from an
// outage (UNAVAILABLE, DEADLINE_EXCEEDED).
//
// Thread-safe: stubs are shared and each call has its own context.
#ifndef CERTPLANE_SERVICES_ISSUANCE_PEERS_H_
#define CERTPLANE_SERVICES_ISSUANCE_PEERS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "certplane/inventory/v1/inventory.grpc.pb.h"
#include "certplane/vault/v1/vault.grpc.pb.h"

namespace grpc {
class ClientContext;
class ServerContextBase;
}  // namespace grpc

namespace certplane::issuance {

struct PeerOptions {
  // Deadline of each attempt.
  absl::Duration timeout = absl::Seconds(10);
  int attempts = 3;
  // Sent as x-certplane-dev-identity to peers reached over plaintext
  // development channels; empty with mTLS (the client certificate is the
  // identity).
  std::string development_identity;
};

class Peers {
 public:
  // Either stub may be null (that peer's calls are FAILED_PRECONDITION).
  Peers(
      std::unique_ptr<vault::v1::VaultService::StubInterface> vault,
      std::unique_ptr<inventory::v1::InventoryService::StubInterface> inventory,
      PeerOptions options);

  // Vault.
  absl::StatusOr<vault::v1::Key> GenerateKey(
      const vault::v1::GenerateKeyRequest& request);
  absl::StatusOr<vault::v1::Key> GetKey(const std::string& name);
  absl::StatusOr<std::string> CreateCsr(
      const vault::v1::CreateCsrRequest& request);
  // The signature of `data` (digest "sha256", "sha384", "sha512").
  absl::StatusOr<std::string> Sign(const std::string& key_name,
                                   absl::string_view data,
                                   absl::string_view digest);
  // OK also when the key is already gone.
  absl::Status DeleteKey(const std::string& name);

  // Inventory.
  absl::StatusOr<inventory::v1::ManagedCertificate> CreateCertificate(
      const inventory::v1::CreateCertificateRequest& request);
  absl::StatusOr<inventory::v1::ManagedCertificate> GetCertificate(
      const std::string& name);
  // Adds the version, or when the inventory already holds this certificate
  // as a version of `parent` (a retry after a crash), returns that version.
  absl::StatusOr<inventory::v1::CertificateVersion> AddCertificateVersion(
      const inventory::v1::AddCertificateVersionRequest& request,
      absl::string_view sha256_hex);
  absl::StatusOr<inventory::v1::CertificateVersion> GetCertificateVersion(
      const std::string& name);
  absl::StatusOr<inventory::v1::CertificateVersion> RevokeCertificateVersion(
      const inventory::v1::RevokeCertificateVersionRequest& request);
  absl::StatusOr<inventory::v1::ListCertificatesResponse> ListCertificates(
      const inventory::v1::ListCertificatesRequest& request);
  // A context for WatchChanges (no deadline: the stream is long-lived).
  std::unique_ptr<grpc::ClientContext> StreamContext() const;
  inventory::v1::InventoryService::StubInterface* inventory_stub() {
    return inventory_.get();
  }

 private:
  template <typename Stub, typename Request, typename Response>
  absl::Status Call(absl::string_view peer, Stub* stub,
                    grpc::Status (Stub::*method)(grpc::ClientContext*,
                                                 const Request&, Response*),
                    const Request& request, Response* response);

  std::unique_ptr<vault::v1::VaultService::StubInterface> vault_;
  std::unique_ptr<inventory::v1::InventoryService::StubInterface> inventory_;
  PeerOptions options_;
};

}  // namespace certplane::issuance

#endif  // CERTPLANE_SERVICES_ISSUANCE_PEERS_H_
