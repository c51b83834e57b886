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
#include "grpcpp/server_context.h"
#include "grpcpp/support/channel_arguments.h"
#include "libs/server/internal/tls_files.h"
#include "libs/server/request_id.h"

namespace certplane::server {

ClientOptions ClientOptionsFromServerOptions(const ServerOptions& options) {
  ClientOptions client;
  client.insecure_plaintext_for_development =
      options.insecure_plaintext_for_development;
  client.tls_cert_file = options.tls_cert_file;
  client.tls_key_file = options.tls_key_file;
  client.tls_ca_file = options.tls_client_ca_file;
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
  absl::StatusOr<std::string> cert =
      internal::ReadPemFile(options.tls_cert_file, "client certificate");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key =
      internal::ReadPemFile(options.tls_key_file, "client key");
  if (!key.ok()) return key.status();
  absl::StatusOr<std::string> ca =
      internal::ReadPemFile(options.tls_ca_file, "CA bundle");
  if (!ca.ok()) return ca.status();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = *std::move(ca);
  ssl.pem_private_key = *std::move(key);
  ssl.pem_cert_chain = *std::move(cert);
  if (!options.tls_server_name.empty()) {
    args.SetSslTargetNameOverride(options.tls_server_name);
  }
  return grpc::CreateCustomChannel(std::string(target),
                                   grpc::SslCredentials(ssl), args);
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
