// A small HTTP/1.1 server on Boost.Beast for the platform's plain HTTP
// endpoints (the gateway's JSON front and static files, the issuance CRL
// listener): synchronous, one thread per connection, keep-alive, whole or
// chunked (streamed) responses.
//
// Limits: a request's header may be at most 16 KiB and its body
// `max_body_bytes` (413 beyond); a connection that sends nothing for
// `idle_timeout` is closed; at most `max_connections` are served at once
// (further ones wait in the listen backlog). Malformed requests get 400 and
// the connection is closed. HEAD requests get GET's headers without a body.
//
// Thread-safe. The handler runs on connection threads, concurrently.
#ifndef CERTPLANE_LIBS_SERVER_HTTP_LISTENER_H_
#define CERTPLANE_LIBS_SERVER_HTTP_LISTENER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace certplane::server {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // "/path?query"
  std::string path;    // target without the query
  // Header names in lowercase.
  absl::flat_hash_map<std::string, std::string> headers;
  std::string body;

  // The header's value, or "".
  std::string Header(absl::string_view name) const;
};

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// How a handler answers: exactly one of Send() or BeginStream() ... End().
class HttpResponder {
 public:
  virtual ~HttpResponder() = default;
  virtual void Send(int status, absl::string_view content_type,
                    std::string body, const HttpHeaders& headers = {}) = 0;
  // A chunked response. WriteChunk returns false once the client is gone.
  virtual bool BeginStream(int status, absl::string_view content_type,
                           const HttpHeaders& headers = {}) = 0;
  virtual bool WriteChunk(absl::string_view data) = 0;
  virtual void EndStream() = 0;
};

using HttpHandler =
    std::function<void(const HttpRequest& request, HttpResponder& responder)>;

struct HttpListenerOptions {
  std::string listen_address = "127.0.0.1:0";  // host:port; port 0: any.
  std::string server_name = "certplane";
  int max_connections = 64;
  size_t max_body_bytes = size_t{16} << 20;
  absl::Duration idle_timeout = absl::Seconds(30);
};

class HttpListener {
 public:
  // INVALID_ARGUMENT for a malformed address, UNAVAILABLE when it cannot be
  // bound.
  static absl::StatusOr<std::unique_ptr<HttpListener>> Start(
      HttpListenerOptions options, HttpHandler handler);
  ~HttpListener();  // Stop().

  int port() const;
  // Stops accepting and waits for open connections to finish their current
  // request. Idempotent.
  void Stop();

 private:
  struct Impl;
  explicit HttpListener(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace certplane::server

#endif  // CERTPLANE_LIBS_SERVER_HTTP_LISTENER_H_
