#include "services/issuance/crl_http_server.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "libs/server/http_listener.h"
#include "libs/server/json_log.h"

namespace certplane::issuance {
namespace {

struct Reply {
  int status = 200;
  std::string content_type = "text/plain";
  std::string body;
};

Reply Text(int status, std::string body) {
  return {status, "text/plain; charset=utf-8", std::move(body) + "\n"};
}

}  // namespace

struct CrlHttpServer::Impl {
  Impl(const IssuerMap& issuers, Clock clock)
      : issuers(issuers), clock(std::move(clock)) {}

  Reply Answer(absl::string_view method, absl::string_view path) {
    if (method != "GET" && method != "HEAD") {
      return Text(405, "only GET and HEAD");
    }
    absl::string_view crl_id = path, cert_id = path;
    const bool crl = absl::ConsumePrefix(&crl_id, "/crl/") &&
                     absl::ConsumeSuffix(&crl_id, ".crl");
    const bool cert = absl::ConsumePrefix(&cert_id, "/ca/") &&
                      absl::ConsumeSuffix(&cert_id, ".crt");
    const absl::string_view id = crl ? crl_id : cert_id;
    if (!crl && !cert) return Text(404, "not found");
    auto it = issuers.find(std::string(id));
    Issuer* issuer = it == issuers.end() ? nullptr : it->second.get();
    const std::string ca_der =
        issuer == nullptr ? "" : issuer->IssuingCertificateDer();
    if (ca_der.empty()) {
      return Text(404,
                  absl::StrCat("no internal CA \"", id.substr(0, 64), "\""));
    }
    if (cert) return {200, "application/pkix-cert", ca_der};
    absl::StatusOr<CrlSnapshot> snapshot = issuer->CurrentCrl(clock());
    if (!snapshot.ok()) {
      log::Warning("issuance: CRL unavailable",
                   {{"issuer", std::string(id)},
                    {"error", snapshot.status().ToString()}});
      return Text(503, "the CRL cannot be produced right now; try again");
    }
    return {200, "application/pkix-crl", snapshot->der};
  }

  const IssuerMap& issuers;
  Clock clock;
  std::unique_ptr<server::HttpListener> listener;
};

absl::StatusOr<std::unique_ptr<CrlHttpServer>> CrlHttpServer::Start(
    const IssuerMap& issuers, Clock clock, CrlHttpOptions options) {
  auto impl = std::make_unique<Impl>(issuers, std::move(clock));
  server::HttpListenerOptions listener_options;
  listener_options.listen_address = options.listen_address;
  listener_options.server_name = "certplane-issuance";
  listener_options.max_connections = options.max_connections;
  listener_options.max_body_bytes = 8192;
  listener_options.idle_timeout = absl::Seconds(10);
  Impl* raw = impl.get();
  absl::StatusOr<std::unique_ptr<server::HttpListener>> listener =
      server::HttpListener::Start(
          listener_options, [raw](const server::HttpRequest& request,
                                  server::HttpResponder& responder) {
            Reply reply = raw->Answer(request.method, request.path);
            responder.Send(reply.status, reply.content_type,
                           std::move(reply.body),
                           {{"Cache-Control", "max-age=300"}});
          });
  if (!listener.ok()) {
    return absl::Status(
        listener.status().code(),
        absl::StrCat("CRL listener: ", listener.status().message()));
  }
  impl->listener = *std::move(listener);
  return std::unique_ptr<CrlHttpServer>(new CrlHttpServer(std::move(impl)));
}

CrlHttpServer::CrlHttpServer(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

CrlHttpServer::~CrlHttpServer() { Stop(); }

int CrlHttpServer::port() const { return impl_->listener->port(); }

void CrlHttpServer::Stop() { impl_->listener->Stop(); }

}  // namespace certplane::issuance
