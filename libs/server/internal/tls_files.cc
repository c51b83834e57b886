#include "libs/server/internal/tls_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace certplane::server::internal {

absl::StatusOr<std::string> ReadPemFile(const std::string& path,
                                        absl::string_view flag) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int error = errno;
    return absl::Status(absl::ErrnoToStatusCode(error),
                        absl::StrCat("cannot open ", flag, " \"", path,
                                     "\": ", strerror(error)));
  }
  std::string contents;
  char buffer[8192];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      ::close(fd);
      return absl::Status(absl::ErrnoToStatusCode(error),
                          absl::StrCat("cannot read ", flag, " \"", path,
                                       "\": ", strerror(error)));
    }
    if (n == 0) break;
    contents.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  if (!absl::StrContains(contents, "-----BEGIN ")) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, " \"", path, "\" holds no PEM block (-----BEGIN ...)"));
  }
  return contents;
}

}  // namespace certplane::server::internal
