#include "libs/server/internal/tls_stage.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "libs/crypto/certificate.h"
#include "libs/crypto/digest.h"
#include "libs/crypto/formats.h"
#include "libs/crypto/key.h"
#include "libs/crypto/secret_bytes.h"
#include "libs/server/internal/tls_files.h"
#include "libs/server/json_log.h"

namespace certplane::server::internal {
namespace {

using crypto::SecretBytes;

constexpr int64_t kMaxKeyFileBytes = 1 << 20;

absl::Status ErrnoError(int error, absl::string_view what) {
  return absl::Status(absl::ErrnoToStatusCode(error),
                      absl::StrCat(what, ": ", strerror(error)));
}

// The key file's contents, only ever in SecretBytes.
absl::StatusOr<SecretBytes> ReadKeyFile(const std::string& path,
                                        absl::string_view name) {
  const std::string what = absl::StrCat(name, " \"", path, "\"");
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, absl::StrCat("cannot open ", what));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int error = errno;
    ::close(fd);
    return ErrnoError(error, absl::StrCat("cannot stat ", what));
  }
  if (st.st_size > kMaxKeyFileBytes) {
    ::close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is larger than 1 MiB; it should hold one key"));
  }
  // One byte more than the size, so that a file that grew is noticed.
  SecretBytes contents(static_cast<size_t>(st.st_size) + 1);
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = ::read(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      ::close(fd);
      return ErrnoError(error, absl::StrCat("cannot read ", what));
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  if (done == contents.size()) {
    return absl::UnavailableError(
        absl::StrCat(what, " changed while it was read"));
  }
  contents.Truncate(done);
  if (!absl::StrContains(contents.view(), "-----BEGIN ")) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " holds no PEM block (-----BEGIN ...)"));
  }
  return contents;
}

// A new in-memory file holding `data`.
absl::StatusOr<int> NewMemoryFile(absl::string_view data) {
  int fd = ::memfd_create("certplane-tls", MFD_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, "memfd_create");
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      ::close(fd);
      return ErrnoError(error, "writing an in-memory TLS file");
    }
    done += static_cast<size_t>(n);
  }
  return fd;
}

class Stage {
 public:
  Stage(TlsFiles files, absl::Duration interval)
      : files_(std::move(files)), interval_(interval) {}

  // Reads the files; when they changed and pass the checks, puts them in
  // place of the staged ones (the first time: creates the staged files).
  absl::Status Refresh() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::StatusOr<std::string> chain =
        ReadPemFile(files_.cert_file, files_.cert_name);
    if (!chain.ok()) return chain.status();
    absl::StatusOr<SecretBytes> key =
        ReadKeyFile(files_.key_file, files_.key_name);
    if (!key.ok()) return key.status();
    absl::StatusOr<std::string> ca =
        ReadPemFile(files_.ca_file, files_.ca_name);
    if (!ca.ok()) return ca.status();
    const std::string digest = crypto::Sha256Of({*chain, key->view(), *ca});
    absl::MutexLock lock(&mu_);
    if (digest == digest_) return absl::OkStatus();
    if (absl::Status s = Check(*chain, *key, *ca); !s.ok()) return s;

    // The key and the chain in one file, so that they change together.
    SecretBytes identity(key->size() + 1 + chain->size());
    std::memcpy(identity.data(), key->data(), key->size());
    identity.data()[key->size()] = '\n';
    std::memcpy(identity.data() + key->size() + 1, chain->data(),
                chain->size());
    absl::StatusOr<int> identity_fd = NewMemoryFile(identity.view());
    if (!identity_fd.ok()) return identity_fd.status();
    absl::StatusOr<int> ca_fd = NewMemoryFile(*ca);
    if (!ca_fd.ok()) {
      ::close(*identity_fd);
      return ca_fd.status();
    }
    if (identity_fd_ < 0) {
      identity_fd_ = *identity_fd;
      ca_fd_ = *ca_fd;
    } else {
      // Each path now opens the new file; readers that opened the old one
      // finish reading it.
      if (::dup3(*identity_fd, identity_fd_, O_CLOEXEC) < 0 ||
          ::dup3(*ca_fd, ca_fd_, O_CLOEXEC) < 0) {
        int error = errno;
        ::close(*identity_fd);
        ::close(*ca_fd);
        return ErrnoError(error, "replacing an in-memory TLS file");
      }
      ::close(*identity_fd);
      ::close(*ca_fd);
    }
    digest_ = digest;
    return absl::OkStatus();
  }

  // Refreshes every interval, for the rest of the process.
  void StartRefreshing() {
    std::thread([this] {
      std::string last_error;
      while (true) {
        absl::SleepFor(interval_);
        absl::Status s = Refresh();
        if (!s.ok() && std::string(s.message()) != last_error) {
          log::Warning(
              "TLS files not reloaded; the last good ones stay in service",
              {{"error", std::string(s.message())}});
        } else if (s.ok() && !last_error.empty()) {
          log::Info("TLS files reloaded", {{"cert_file", files_.cert_file}});
        }
        last_error = s.ok() ? "" : std::string(s.message());
      }
    }).detach();
  }

  std::string identity_path() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return absl::StrCat("/proc/self/fd/", identity_fd_);
  }
  std::string ca_path() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return absl::StrCat("/proc/self/fd/", ca_fd_);
  }
  absl::Duration interval() const { return interval_; }

 private:
  absl::Status Check(const std::string& chain, const SecretBytes& key,
                     const std::string& ca) const {
    absl::StatusOr<crypto::ParsedBundle> certs = crypto::ReadPem(chain);
    if (!certs.ok() || certs->certificates.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          files_.cert_name, " \"", files_.cert_file,
          "\" does not hold a certificate chain: ",
          certs.ok() ? "no certificate" : certs.status().message()));
    }
    absl::StatusOr<crypto::PrivateKey> private_key =
        crypto::PrivateKey::FromPem(key.view());
    if (!private_key.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(files_.key_name, " \"", files_.key_file,
                       "\" does not hold an unencrypted private key: ",
                       private_key.status().message()));
    }
    if (!certs->certificates.front().CheckKeyMatches(*private_key).ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("the key in ", files_.key_name, " \"", files_.key_file,
                       "\" does not belong to the first certificate in ",
                       files_.cert_name, " \"", files_.cert_file, "\""));
    }
    absl::StatusOr<crypto::ParsedBundle> roots = crypto::ReadPem(ca);
    if (!roots.ok() || roots->certificates.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          files_.ca_name, " \"", files_.ca_file,
          "\" does not hold a CA certificate: ",
          roots.ok() ? "no certificate" : roots.status().message()));
    }
    return absl::OkStatus();
  }

  const TlsFiles files_;
  const absl::Duration interval_;
  mutable absl::Mutex mu_;
  std::string digest_ ABSL_GUARDED_BY(mu_);  // Of what is staged.
  int identity_fd_ ABSL_GUARDED_BY(mu_) = -1;
  int ca_fd_ ABSL_GUARDED_BY(mu_) = -1;
};

// The process's stages by file paths. Never destroyed: a stage's files
// must outlive every channel and server that reads them.
struct Stages {
  absl::Mutex mu;
  std::map<std::tuple<std::string, std::string, std::string>,
           std::unique_ptr<Stage>>
      by_files ABSL_GUARDED_BY(mu);
};

absl::StatusOr<Stage*> StageFor(const TlsFiles& files,
                                absl::Duration interval) {
  static Stages* const stages = new Stages;
  absl::MutexLock lock(&stages->mu);
  auto key = std::make_tuple(files.cert_file, files.key_file, files.ca_file);
  auto it = stages->by_files.find(key);
  if (it != stages->by_files.end()) {
    // Known files: read them again now, so that a caller never starts on
    // older files than it was given.
    Stage* stage = it->second.get();
    if (absl::Status s = stage->Refresh(); !s.ok()) return s;
    return stage;
  }
  auto stage = std::make_unique<Stage>(files, interval);
  if (absl::Status s = stage->Refresh(); !s.ok()) return s;
  stage->StartRefreshing();
  Stage* raw = stage.get();
  stages->by_files.emplace(std::move(key), std::move(stage));
  return raw;
}

}  // namespace

absl::StatusOr<
    std::shared_ptr<grpc::experimental::CertificateProviderInterface>>
WatchTlsFiles(const TlsFiles& files, absl::Duration interval) {
  absl::StatusOr<Stage*> stage = StageFor(files, interval);
  if (!stage.ok()) return stage.status();
  const int64_t seconds = std::clamp<int64_t>(
      absl::ToInt64Seconds(absl::Ceil((*stage)->interval(), absl::Seconds(1))),
      1, int64_t{86400});
  const std::string identity = (*stage)->identity_path();
  return std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      identity, identity, (*stage)->ca_path(),
      static_cast<unsigned int>(seconds));
}

}  // namespace certplane::server::internal
