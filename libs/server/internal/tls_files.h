// Reading PEM files named by TLS flags. Internal to libs/server.
#ifndef CERTPLANE_LIBS_SERVER_INTERNAL_TLS_FILES_H_
#define CERTPLANE_LIBS_SERVER_INTERNAL_TLS_FILES_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace certplane::server::internal {

// The contents of `path`, which must hold a PEM block. Errors name `flag`
// and the path: NOT_FOUND / PERMISSION_DENIED (from errno) or
// INVALID_ARGUMENT when there is no PEM block.
absl::StatusOr<std::string> ReadPemFile(const std::string& path,
                                        absl::string_view flag);

}  // namespace certplane::server::internal

#endif  // CERTPLANE_LIBS_SERVER_INTERNAL_TLS_FILES_H_
