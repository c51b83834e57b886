#include "services/issuance/peers.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "libs/server/client.h"
#include "libs/status/grpc_status.h"

namespace certplane::issuance {
namespace {

namespace inventory_v1 = ::certplane::inventory::v1;
namespace vault_v1 = ::certplane::vault::v1;

constexpr char kDevelopmentIdentityHeader[] = "x-certplane-dev-identity";

}  // namespace

Peers::Peers(
    std::unique_ptr<vault_v1::VaultService::StubInterface> vault,
    std::unique_ptr<inventory_v1::InventoryService::StubInterface> inventory,
    PeerOptions options)
    : vault_(std::move(vault)),
      inventory_(std::move(inventory)),
      options_(std::move(options)) {}

template <typename Stub, typename Request, typename Response>
absl::Status Peers::Call(absl::string_view peer, Stub* stub,
                         grpc::Status (Stub::*method)(grpc::ClientContext*,
                                                      const Request&,
                                                      Response*),
                         const Request& request, Response* response) {
  if (stub == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("no ", peer, " is configured"));
  }
  absl::Status status;
  absl::Duration backoff = absl::Milliseconds(100);
  for (int attempt = 1; attempt <= options_.attempts; ++attempt) {
    std::unique_ptr<grpc::ClientContext> context =
        server::NewClientContext(options_.timeout);
    if (!options_.development_identity.empty()) {
      context->AddMetadata(kDevelopmentIdentityHeader,
                           options_.development_identity);
    }
    status = FromGrpcStatus((stub->*method)(context.get(), request, response));
    if (!absl::IsUnavailable(status)) break;
    if (attempt < options_.attempts) {
      absl::SleepFor(backoff);
      backoff *= 2;
    }
  }
  if (status.ok()) return status;
  return absl::Status(status.code(),
                      absl::StrCat(peer, ": ", status.message()));
}

absl::StatusOr<vault_v1::Key> Peers::GenerateKey(
    const vault_v1::GenerateKeyRequest& request) {
  vault_v1::Key key;
  absl::Status s =
      Call("vault", vault_.get(),
           &vault_v1::VaultService::StubInterface::GenerateKey, request, &key);
  if (!s.ok()) return s;
  return key;
}

absl::StatusOr<vault_v1::Key> Peers::GetKey(const std::string& name) {
  vault_v1::GetKeyRequest request;
  request.set_name(name);
  vault_v1::Key key;
  absl::Status s =
      Call("vault", vault_.get(),
           &vault_v1::VaultService::StubInterface::GetKey, request, &key);
  if (!s.ok()) return s;
  return key;
}

absl::StatusOr<std::string> Peers::CreateCsr(
    const vault_v1::CreateCsrRequest& request) {
  vault_v1::CreateCsrResponse response;
  absl::Status s = Call("vault", vault_.get(),
                        &vault_v1::VaultService::StubInterface::CreateCsr,
                        request, &response);
  if (!s.ok()) return s;
  return std::move(*response.mutable_csr_pem());
}

absl::StatusOr<std::string> Peers::Sign(const std::string& key_name,
                                        absl::string_view data,
                                        absl::string_view digest) {
  vault_v1::SignRequest request;
  request.set_name(key_name);
  request.set_data(std::string(data));
  request.set_digest(std::string(digest));
  vault_v1::SignResponse response;
  absl::Status s =
      Call("vault", vault_.get(), &vault_v1::VaultService::StubInterface::Sign,
           request, &response);
  if (!s.ok()) return s;
  return std::move(*response.mutable_signature());
}

absl::Status Peers::DeleteKey(const std::string& name) {
  vault_v1::DeleteKeyRequest request;
  request.set_name(name);
  vault_v1::Key key;
  absl::Status s =
      Call("vault", vault_.get(),
           &vault_v1::VaultService::StubInterface::DeleteKey, request, &key);
  if (absl::IsNotFound(s)) return absl::OkStatus();
  return s;
}

absl::StatusOr<inventory_v1::ManagedCertificate> Peers::CreateCertificate(
    const inventory_v1::CreateCertificateRequest& request) {
  inventory_v1::ManagedCertificate out;
  absl::Status s =
      Call("inventory", inventory_.get(),
           &inventory_v1::InventoryService::StubInterface::CreateCertificate,
           request, &out);
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<inventory_v1::ManagedCertificate> Peers::GetCertificate(
    const std::string& name) {
  inventory_v1::GetCertificateRequest request;
  request.set_name(name);
  inventory_v1::ManagedCertificate out;
  absl::Status s =
      Call("inventory", inventory_.get(),
           &inventory_v1::InventoryService::StubInterface::GetCertificate,
           request, &out);
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<inventory_v1::CertificateVersion> Peers::AddCertificateVersion(
    const inventory_v1::AddCertificateVersionRequest& request,
    absl::string_view sha256_hex) {
  inventory_v1::CertificateVersion out;
  absl::Status s = Call(
      "inventory", inventory_.get(),
      &inventory_v1::InventoryService::StubInterface::AddCertificateVersion,
      request, &out);
  if (!absl::IsAlreadyExists(s)) {
    if (!s.ok()) return s;
    return out;
  }
  // Stored by an earlier attempt: find that version.
  inventory_v1::ListCertificateVersionsRequest list;
  list.set_parent(request.parent());
  list.set_page_size(1000);
  do {
    inventory_v1::ListCertificateVersionsResponse page;
    absl::Status ls = Call(
        "inventory", inventory_.get(),
        &inventory_v1::InventoryService::StubInterface::ListCertificateVersions,
        list, &page);
    if (!ls.ok()) return ls;
    for (inventory_v1::CertificateVersion& v : *page.mutable_versions()) {
      if (v.details().sha256_fingerprint_hex() == sha256_hex) {
        return std::move(v);
      }
    }
    list.set_page_token(page.next_page_token());
  } while (!list.page_token().empty());
  return absl::FailedPreconditionError(absl::StrCat(
      "inventory: the certificate ", sha256_hex,
      " is already stored, but not as a version of ", request.parent()));
}

absl::StatusOr<inventory_v1::CertificateVersion> Peers::GetCertificateVersion(
    const std::string& name) {
  inventory_v1::GetCertificateVersionRequest request;
  request.set_name(name);
  inventory_v1::CertificateVersion out;
  absl::Status s = Call(
      "inventory", inventory_.get(),
      &inventory_v1::InventoryService::StubInterface::GetCertificateVersion,
      request, &out);
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<inventory_v1::CertificateVersion>
Peers::RevokeCertificateVersion(
    const inventory_v1::RevokeCertificateVersionRequest& request) {
  inventory_v1::CertificateVersion out;
  absl::Status s = Call(
      "inventory", inventory_.get(),
      &inventory_v1::InventoryService::StubInterface::RevokeCertificateVersion,
      request, &out);
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<inventory_v1::ListCertificatesResponse> Peers::ListCertificates(
    const inventory_v1::ListCertificatesRequest& request) {
  inventory_v1::ListCertificatesResponse out;
  absl::Status s =
      Call("inventory", inventory_.get(),
           &inventory_v1::InventoryService::StubInterface::ListCertificates,
           request, &out);
  if (!s.ok()) return s;
  return out;
}

std::unique_ptr<grpc::ClientContext> Peers::StreamContext() const {
  auto context = std::make_unique<grpc::ClientContext>();
  if (!options_.development_identity.empty()) {
    context->AddMetadata(kDevelopmentIdentityHeader,
                         options_.development_identity);
  }
  return context;
}

}  // namespace certplane::issuance
