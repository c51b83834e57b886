#include "libs/server/http_listener.h"

#include <sys/socket.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <set>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"

namespace certplane::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

void SetTimeouts(tcp::socket& socket, absl::Duration timeout) {
  struct timeval tv;
  tv.tv_sec = static_cast<time_t>(absl::ToInt64Seconds(timeout));
  tv.tv_usec = 0;
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv,
               sizeof(tv));
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv,
               sizeof(tv));
}

class Responder final : public HttpResponder {
 public:
  Responder(tcp::socket& socket, unsigned version, bool keep_alive, bool head,
            const std::string& server)
      : socket_(socket),
        version_(version),
        keep_alive_(keep_alive),
        head_(head),
        server_(server) {}

  void Send(int status, absl::string_view content_type, std::string body,
            const HttpHeaders& headers) override {
    if (done_) return;
    done_ = true;
    http::response<http::string_body> res{static_cast<http::status>(status),
                                          version_};
    res.set(http::field::server, server_);
    res.set(http::field::content_type,
            beast::string_view(content_type.data(), content_type.size()));
    for (const auto& [name, value] : headers) res.set(name, value);
    res.keep_alive(keep_alive_);
    res.body() = std::move(body);
    res.prepare_payload();
    if (head_) res.body().clear();
    beast::error_code ec;
    http::write(socket_, res, ec);
    if (ec) failed_ = true;
  }

  bool BeginStream(int status, absl::string_view content_type,
                   const HttpHeaders& headers) override {
    if (done_) return false;
    done_ = true;
    streaming_ = true;
    http::response<http::empty_body> res{static_cast<http::status>(status),
                                         version_};
    res.set(http::field::server, server_);
    res.set(http::field::content_type,
            beast::string_view(content_type.data(), content_type.size()));
    res.set(http::field::cache_control, "no-store");
    for (const auto& [name, value] : headers) res.set(name, value);
    res.keep_alive(keep_alive_);
    res.chunked(true);
    http::response_serializer<http::empty_body> sr{res};
    beast::error_code ec;
    http::write_header(socket_, sr, ec);
    if (ec) failed_ = true;
    return !failed_;
  }

  bool WriteChunk(absl::string_view data) override {
    if (!streaming_ || failed_ || data.empty()) return !failed_;
    beast::error_code ec;
    asio::write(socket_,
                http::make_chunk(asio::buffer(data.data(), data.size())), ec);
    if (ec) failed_ = true;
    return !failed_;
  }

  void EndStream() override {
    if (!streaming_ || failed_) return;
    beast::error_code ec;
    asio::write(socket_, http::make_chunk_last(), ec);
    if (ec) failed_ = true;
  }

  bool answered() const { return done_; }
  bool failed() const { return failed_; }

 private:
  tcp::socket& socket_;
  unsigned version_;
  bool keep_alive_;
  bool head_;
  const std::string& server_;
  bool done_ = false;
  bool streaming_ = false;
  bool failed_ = false;
};

}  // namespace

std::string HttpRequest::Header(absl::string_view name) const {
  auto it = headers.find(absl::AsciiStrToLower(name));
  return it == headers.end() ? "" : it->second;
}

struct HttpListener::Impl {
  Impl(HttpListenerOptions o, HttpHandler h)
      : options(std::move(o)), handler(std::move(h)) {}

  void Serve(tcp::socket& socket) {
    SetTimeouts(socket, options.idle_timeout);
    beast::flat_buffer buffer(16384);
    while (!stopping.load()) {
      beast::error_code ec;
      http::request_parser<http::string_body> parser;
      parser.header_limit(16384);
      parser.body_limit(options.max_body_bytes);
      http::read(socket, buffer, parser, ec);
      if (ec == http::error::end_of_stream || ec == asio::error::eof ||
          ec == asio::error::connection_reset ||
          ec == asio::error::would_block || ec == asio::error::timed_out) {
        break;
      }
      if (ec) {
        Responder r(socket, 11, false, false, options.server_name);
        r.Send(ec == http::error::body_limit ? 413 : 400,
               "text/plain; charset=utf-8",
               ec == http::error::body_limit ? "request body too large\n"
                                             : "malformed HTTP request\n",
               {});
        break;
      }
      http::request<http::string_body> req = parser.release();
      HttpRequest request;
      request.method = std::string(req.method_string());
      request.target = std::string(req.target());
      request.path = request.target.substr(0, request.target.find('?'));
      for (const auto& field : req) {
        request.headers[absl::AsciiStrToLower(absl::string_view(
            field.name_string().data(), field.name_string().size()))] =
            std::string(field.value());
      }
      request.body = std::move(req.body());
      const bool keep_alive = req.keep_alive() && !stopping.load();
      Responder responder(socket, req.version(), keep_alive,
                          req.method() == http::verb::head,
                          options.server_name);
      handler(request, responder);
      if (!responder.answered()) {
        responder.Send(500, "text/plain; charset=utf-8",
                       "the handler gave no answer\n", {});
      }
      if (responder.failed() || !keep_alive) break;
    }
    beast::error_code ec;
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
      const int fd = socket.native_handle();
      {
        absl::MutexLock lock(&mu);
        fds.insert(fd);
      }
      std::thread([this, fd, s = std::move(socket)]() mutable {
        Serve(s);
        {
          // Forget the descriptor before it is closed and can be reused.
          absl::MutexLock lock(&mu);
          fds.erase(fd);
        }
        beast::error_code ignored;
        s.close(ignored);
        absl::MutexLock lock(&mu);
        --active;
      }).detach();
    }
  }

  HttpListenerOptions options;
  HttpHandler handler;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::atomic<bool> stopping{false};
  std::thread thread;
  absl::Mutex mu;
  int active ABSL_GUARDED_BY(mu) = 0;
  std::set<int> fds ABSL_GUARDED_BY(mu);  // Open connections.
};

absl::StatusOr<std::unique_ptr<HttpListener>> HttpListener::Start(
    HttpListenerOptions options, HttpHandler handler) {
  const std::string address = options.listen_address;
  auto impl = std::make_unique<Impl>(std::move(options), std::move(handler));
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("HTTP listen address \"", address, "\" is not host:port"));
  }
  std::string host(absl::StripSuffix(
      absl::StripPrefix(absl::string_view(address).substr(0, colon), "["),
      "]"));
  beast::error_code ec;
  const asio::ip::address ip = asio::ip::make_address(host, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat("HTTP listen address \"",
                                                   address, "\": \"", host,
                                                   "\" is not an IP address"));
  }
  const tcp::endpoint endpoint(ip, static_cast<unsigned short>(port));
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) {
    impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  }
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot listen for HTTP on ",
                                               address, ": ", ec.message()));
  }
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->AcceptLoop(); });
  return std::unique_ptr<HttpListener>(new HttpListener(std::move(impl)));
}

HttpListener::HttpListener(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

HttpListener::~HttpListener() { Stop(); }

int HttpListener::port() const {
  beast::error_code ec;
  return impl_->acceptor.local_endpoint(ec).port();
}

void HttpListener::Stop() {
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
  // Open connections end after their current request: keep-alive is off
  // once stopping, and connections waiting for a request see end of file.
  absl::MutexLock lock(&impl_->mu);
  for (int fd : impl_->fds) ::shutdown(fd, SHUT_RD);
  auto idle = [this]() ABSL_SHARED_LOCKS_REQUIRED(impl_->mu) {
    return impl_->active == 0;
  };
  impl_->mu.Await(absl::Condition(&idle));
}

}  // namespace certplane::server
