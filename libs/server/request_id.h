// The request id of an RPC, for handlers that log or pass it on.
//
// ServerRunner's interceptor gives every RPC a request id: the client's
// `x-request-id` metadata when it is present and sane (1-128 printable ASCII
// characters), otherwise a fresh random 32-hex-digit id. The id is sent back
// in the response's initial metadata and is on the RPC's JSON log line.
// Handlers read it with RequestId(*context); outgoing calls made on behalf of
// the RPC should send it on as `x-request-id`.
//
// Thread-safe.
#ifndef CERTPLANE_LIBS_SERVER_REQUEST_ID_H_
#define CERTPLANE_LIBS_SERVER_REQUEST_ID_H_

#include <string>

#include "absl/strings/string_view.h"

namespace grpc {
class ServerContextBase;
}  // namespace grpc

namespace certplane::server {

inline constexpr char kRequestIdMetadataKey[] = "x-request-id";

// The request id of the RPC `context` belongs to, valid while the RPC is in
// progress. "" when the server does not run ServerRunner's interceptors.
std::string RequestId(const grpc::ServerContextBase& context);

// A new random request id (32 lowercase hex digits).
std::string NewRequestId();

// Whether a client-supplied id is kept: 1-128 printable ASCII characters.
bool IsAcceptableRequestId(absl::string_view id);

}  // namespace certplane::server

#endif  // CERTPLANE_LIBS_SERVER_REQUEST_ID_H_
