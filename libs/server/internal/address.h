// host:port parsing for the runtime's listening addresses. Internal to
// libs/server.
#ifndef CERTPLANE_LIBS_SERVER_INTERNAL_ADDRESS_H_
#define CERTPLANE_LIBS_SERVER_INTERNAL_ADDRESS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace certplane::server::internal {

struct HostPort {
  std::string host;  // Without brackets for IPv6 ("::1").
  int port = 0;
};

// "127.0.0.1:80", "[::1]:0", "0.0.0.0:8443", "localhost:0".
// INVALID_ARGUMENT saying what is wrong otherwise.
absl::StatusOr<HostPort> ParseHostPort(absl::string_view address);

// 127.0.0.0/8, ::1 or "localhost".
bool IsLoopbackHost(absl::string_view host);

}  // namespace certplane::server::internal

#endif  // CERTPLANE_LIBS_SERVER_INTERNAL_ADDRESS_H_
