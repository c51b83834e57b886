#include "libs/server/private_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace certplane::server {
namespace {

absl::Status ErrnoStatus(int err, absl::string_view what) {
  std::string message = absl::StrCat(what, ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    default:
      return absl::InternalError(message);
  }
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  absl::Status Close(absl::string_view what) {
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return ErrnoStatus(errno, what);
    return absl::OkStatus();
  }

 private:
  int fd_;
};

// Writes `contents` to a new temporary file (mode 0600) beside `path`,
// fsynced and closed. Returns its name.
absl::StatusOr<std::string> WriteTempFile(const std::string& path,
                                          const crypto::SecretBytes& contents) {
  std::string temp = absl::StrCat(path, ".tmp-XXXXXX");
  Fd fd(::mkostemp(temp.data(), O_CLOEXEC));
  if (fd.get() < 0) {
    return ErrnoStatus(errno,
                       absl::StrCat("creating a temporary file beside ", path));
  }
  absl::Status status = [&]() -> absl::Status {
    if (::fchmod(fd.get(), 0600) != 0) {
      return ErrnoStatus(errno, absl::StrCat("chmod 0600 of ", temp));
    }
    absl::string_view rest = contents.view();
    while (!rest.empty()) {
      ssize_t n = ::write(fd.get(), rest.data(), rest.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return ErrnoStatus(errno, absl::StrCat("writing ", temp));
      rest.remove_prefix(static_cast<size_t>(n));
    }
    if (::fsync(fd.get()) != 0) {
      return ErrnoStatus(errno, absl::StrCat("fsync of ", temp));
    }
    return fd.Close(absl::StrCat("closing ", temp));
  }();
  if (!status.ok()) {
    ::unlink(temp.c_str());
    return status;
  }
  return temp;
}

absl::Status FsyncDirectoryOf(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) {
    return ErrnoStatus(errno, absl::StrCat("opening directory ", dir));
  }
  if (::fsync(fd.get()) != 0) {
    return ErrnoStatus(errno, absl::StrCat("fsync of directory ", dir));
  }
  return fd.Close(absl::StrCat("closing directory ", dir));
}

}  // namespace

absl::Status WritePrivateFile(const std::string& path,
                              const crypto::SecretBytes& contents) {
  absl::StatusOr<std::string> temp = WriteTempFile(path, contents);
  if (!temp.ok()) return temp.status();
  if (::rename(temp->c_str(), path.c_str()) != 0) {
    absl::Status status =
        ErrnoStatus(errno, absl::StrCat("renaming ", *temp, " over ", path));
    ::unlink(temp->c_str());
    return status;
  }
  return FsyncDirectoryOf(path);
}

absl::Status CreatePrivateFile(const std::string& path,
                               const crypto::SecretBytes& contents) {
  absl::StatusOr<std::string> temp = WriteTempFile(path, contents);
  if (!temp.ok()) return temp.status();
  // link() fails with EEXIST instead of replacing.
  const int result = ::link(temp->c_str(), path.c_str());
  const int link_errno = errno;
  ::unlink(temp->c_str());
  if (result != 0) {
    if (link_errno == EEXIST) {
      return absl::AlreadyExistsError(absl::StrCat(path, " already exists"));
    }
    return ErrnoStatus(link_errno, absl::StrCat("creating ", path));
  }
  return FsyncDirectoryOf(path);
}

absl::StatusOr<crypto::SecretBytes> ReadPrivateFile(const std::string& path,
                                                    absl::string_view what) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) {
    int err = errno;
    if (err == ELOOP) {
      return absl::FailedPreconditionError(
          absl::StrCat(what, " ", path, " is a symbolic link; refusing it"));
    }
    return ErrnoStatus(err, absl::StrCat("opening ", what, " ", path));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) {
    return ErrnoStatus(errno, absl::StrCat("stat of ", what, " ", path));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " ", path, " is not a regular file"));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s %s has mode %04o; it must not be accessible to group or others "
        "(chmod 600 %s)",
        what, path, st.st_mode & 07777, path));
  }
  if (st.st_size > (1 << 20)) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " ", path, " is over 1 MiB"));
  }
  crypto::SecretBytes contents(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n =
        ::read(fd.get(), contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, absl::StrCat("reading ", path));
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  contents.Truncate(done);
  return contents;
}

}  // namespace certplane::server
