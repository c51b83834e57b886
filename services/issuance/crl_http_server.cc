#include "services/issuance/crl_http_server.h"

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "libs/crypto/certificate.h"
#include "libs/server/json_log.h"

namespace certplane::issuance {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct Reply {
  http::status status = http::status::ok;
  std::string content_type = "text/plain";
  std::string body;
};

Reply Text(http::status status, std::string body) {
  return {status, "text/plain; charset=utf-8", std::move(body) + "\n"};
}

}  // namespace

struct CrlHttpServer::Impl {
  Impl(const IssuerMap& issuers, Clock clock, CrlHttpOptions options)
      : issuers(issuers),
        clock(std::move(clock)),
        options(std::move(options)) {}

  Reply Answer(http::verb method, absl::string_view target) {
    if (method != http::verb::get && method != http::verb::head) {
      return Text(http::status::method_not_allowed, "only GET and HEAD");
    }
    absl::string_view path = target.substr(0, target.find('?'));
    absl::string_view crl_id = path, cert_id = path;
    const bool crl = absl::ConsumePrefix(&crl_id, "/crl/") &&
                     absl::ConsumeSuffix(&crl_id, ".crl");
    const bool cert = absl::ConsumePrefix(&cert_id, "/ca/") &&
                      absl::ConsumeSuffix(&cert_id, ".crt");
    const absl::string_view id = crl ? crl_id : cert_id;
    if (!crl && !cert) return Text(http::status::not_found, "not found");
    auto it = issuers.find(std::string(id));
    Issuer* issuer = it == issuers.end() ? nullptr : it->second.get();
    const std::string ca_der =
        issuer == nullptr ? "" : issuer->IssuingCertificateDer();
    if (ca_der.empty()) {
      return Text(http::status::not_found,
                  absl::StrCat("no internal CA \"", id.substr(0, 64), "\""));
    }
    if (cert) return {http::status::ok, "application/pkix-cert", ca_der};
    absl::StatusOr<CrlSnapshot> snapshot = issuer->CurrentCrl(clock());
    if (!snapshot.ok()) {
      log::Warning("issuance: CRL unavailable",
                   {{"issuer", std::string(id)},
                    {"error", snapshot.status().ToString()}});
      return Text(http::status::service_unavailable,
                  "the CRL cannot be produced right now; try again");
    }
    return {http::status::ok, "application/pkix-crl", snapshot->der};
  }

  void Serve(tcp::socket socket) {
    beast::error_code ec;
    // A deadline for reading the request: a peer that sends nothing must
    // not hold a connection slot.
    struct timeval tv {
      10, 0
    };
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv,
                 sizeof(tv));
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv,
                 sizeof(tv));
    beast::flat_buffer buffer(8192);
    http::request_parser<http::empty_body> parser;
    parser.header_limit(8192);
    http::read(socket, buffer, parser, ec);
    Reply reply;
    unsigned version = 11;
    bool head = false;
    if (ec) {
      if (ec == http::error::end_of_stream) return;
      reply = Text(http::status::bad_request, "malformed request");
    } else {
      const auto& req = parser.get();
      version = req.version();
      head = req.method() == http::verb::head;
      reply = Answer(req.method(), absl::string_view(req.target().data(),
                                                     req.target().size()));
    }
    http::response<http::string_body> res{reply.status, version};
    res.set(http::field::server, "certplane-issuance");
    res.set(http::field::content_type, reply.content_type);
    res.set(http::field::cache_control, "max-age=300");
    res.keep_alive(false);
    res.body() = std::move(reply.body);
    res.prepare_payload();
    if (head) res.body().clear();
    http::write(socket, res, ec);
    socket.shutdown(tcp::socket::shutdown_both, ec);
  }

  void AcceptLoop() {
    while (true) {
      tcp::socket socket(io);
      beast::error_code ec;
      acceptor.accept(socket, ec);
      if (stopping.load()) return;
      if (ec) continue;
      {
        absl::MutexLock lock(&mu);
        auto room = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu) {
          return active < options.max_connections;
        };
        mu.Await(absl::Condition(&room));
        ++active;
      }
      std::thread([this, s = std::move(socket)]() mutable {
        Serve(std::move(s));
        absl::MutexLock lock(&mu);
        --active;
      }).detach();
    }
  }

  const IssuerMap& issuers;
  Clock clock;
  CrlHttpOptions options;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::atomic<bool> stopping{false};
  std::thread thread;
  absl::Mutex mu;
  int active ABSL_GUARDED_BY(mu) = 0;
};

absl::StatusOr<std::unique_ptr<CrlHttpServer>> CrlHttpServer::Start(
    const IssuerMap& issuers, Clock clock, CrlHttpOptions options) {
  auto impl = std::make_unique<Impl>(issuers, std::move(clock), options);
  absl::string_view address = options.listen_address;
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == absl::string_view::npos ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("CRL listen address \"", address, "\" is not host:port"));
  }
  std::string host(
      absl::StripSuffix(absl::StripPrefix(address.substr(0, colon), "["), "]"));
  beast::error_code ec;
  const asio::ip::address ip = asio::ip::make_address(host, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat("CRL listen address \"",
                                                   address, "\": \"", host,
                                                   "\" is not an IP address"));
  }
  const tcp::endpoint endpoint(ip, static_cast<unsigned short>(port));
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec)
    impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen for CRL requests on ", address, ": ", ec.message()));
  }
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->AcceptLoop(); });
  return std::unique_ptr<CrlHttpServer>(new CrlHttpServer(std::move(impl)));
}

CrlHttpServer::CrlHttpServer(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

CrlHttpServer::~CrlHttpServer() { Stop(); }

int CrlHttpServer::port() const {
  beast::error_code ec;
  return impl_->acceptor.local_endpoint(ec).port();
}

void CrlHttpServer::Stop() {
  if (impl_->stopping.exchange(true)) return;
  // Wake the blocking accept with a connection of our own.
  beast::error_code ec;
  tcp::endpoint local = impl_->acceptor.local_endpoint(ec);
  if (!ec) {
    asio::io_context io;
    tcp::socket poke(io);
    poke.connect(local, ec);
  }
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->acceptor.close(ec);
  // Let in-flight connections finish (each is bounded by its timeouts).
  absl::MutexLock lock(&impl_->mu);
  auto idle = [this]() ABSL_SHARED_LOCKS_REQUIRED(impl_->mu) {
    return impl_->active == 0;
  };
  impl_->mu.Await(absl::Condition(&idle));
}

}  // namespace certplane::issuance
