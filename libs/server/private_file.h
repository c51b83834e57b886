// Files that hold secrets (keys, tokens): written atomically with mode 0600
// (temporary file, fsync, rename, fsync of the directory) and read only
// when they are regular files that group and others cannot read.
//
// Stateless; thread-safe.
#ifndef CERTPLANE_LIBS_SERVER_PRIVATE_FILE_H_
#define CERTPLANE_LIBS_SERVER_PRIVATE_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/crypto/secret_bytes.h"

namespace certplane::server {

// Replaces `path` with `contents`. Errors name the path and the failed step
// (PERMISSION_DENIED, NOT_FOUND for a missing folder, INTERNAL).
absl::Status WritePrivateFile(const std::string& path,
                              const crypto::SecretBytes& contents);

// Like WritePrivateFile, but never replaces: ALREADY_EXISTS "<path> already
// exists" when something is there (the name appears only once the contents
// are complete and synced, through link(2)).
absl::Status CreatePrivateFile(const std::string& path,
                               const crypto::SecretBytes& contents);

// NOT_FOUND when missing; FAILED_PRECONDITION naming `what` and the path
// for a symbolic link, a non-regular file, a file group or others can read
// (with the chmod to fix it) or one over 1 MiB.
absl::StatusOr<crypto::SecretBytes> ReadPrivateFile(const std::string& path,
                                                    absl::string_view what);

}  // namespace certplane::server

#endif  // CERTPLANE_LIBS_SERVER_PRIVATE_FILE_H_
