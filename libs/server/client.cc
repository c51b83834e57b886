#include "libs/server/client.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_certificate_verifier.h"
#include "grpcpp/security/tls_credentials_options.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/channel_arguments.h"
#include "libs/server/internal/tls_stage.h"
#include "libs/server/request_id.h"

namespace certplane::server {

ClientOptions ClientOptionsFromServerOptions(const ServerOptions& options) {
  ClientOptions client;
  client.insecure_plaintext_for_development =
      options.insecure_plaintext_for_development;
  client.tls_cert_file = options.tls_cert_file;
  client.tls_key_file = options.tls_key_file;
  client.tls_ca_file = options.tls_client_ca_file;
  client.tls_reload_interval = options.tls_reload_interval;
  return client;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> CreateClientChannel(
    absl::string_view target, const ClientOptions& options) {
  grpc::ChannelArguments args;
  if (options.insecure_plaintext_for_development) {
    return grpc::CreateCustomChannel(std::string(target),
                                     grpc::InsecureChannelCredentials(), args);
  }
  if (options.tls_cert_file.empty() || options.tls_key_file.empty() ||
      options.tls_ca_file.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "calling ", target,
        " needs mutual TLS: set the certificate, key and CA files, or "
        "--insecure_plaintext_for_development for local development"));
  }
  // Checked now, then re-read every tls_reload_interval, so a renewed
  // identity needs no new channel (internal/tls_stage.h). The server's
  // certificate is checked against the CA bundle and its name against the
  // target's host (or tls_server_name).
  absl::StatusOr<
      std::shared_ptr<grpc::experimental::CertificateProviderInterface>>
      provider = internal::WatchTlsFiles({.cert_file = options.tls_cert_file,
                                          .key_file = options.tls_key_file,
                                          .ca_file = options.tls_ca_file,
                                          .cert_name = "client certificate",
                                          .key_name = "client key",
                                          .ca_name = "CA bundle"},
                                         options.tls_reload_interval);
  if (!provider.ok()) return provider.status();
  grpc::experimental::TlsChannelCredentialsOptions tls;
  tls.set_certificate_provider(*std::move(provider));
  tls.watch_root_certs();
  tls.watch_identity_key_cert_pairs();
  tls.set_verify_server_certs(true);
  tls.set_certificate_verifier(
      std::make_shared<grpc::experimental::HostNameCertificateVerifier>());
  if (!options.tls_server_name.empty()) {
    args.SetSslTargetNameOverride(options.tls_server_name);
  }
  return grpc::CreateCustomChannel(
      std::string(target), grpc::experimental::TlsCredentials(tls), args);
}

std::unique_ptr<grpc::ClientContext> NewClientContext(
    absl::Duration timeout, const grpc::ServerContextBase* incoming) {
  auto context = std::make_unique<grpc::ClientContext>();
  std::chrono::system_clock::time_point deadline =
      absl::ToChronoTime(absl::Now() + timeout);
  if (incoming != nullptr) {
    deadline = std::min(deadline, incoming->deadline());
    std::string id = RequestId(*incoming);
    if (!id.empty()) context->AddMetadata(kRequestIdMetadataKey, id);
  }
  context->set_deadline(deadline);
  return context;
}

}  // namespace certplane::server
