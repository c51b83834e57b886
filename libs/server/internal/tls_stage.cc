#include "libs/server/internal/tls_stage.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
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

// Whether every PEM block in `pem` is a CERTIFICATE: what gRPC's loader
// reads (ReadPem would also take PKCS7 blocks, which gRPC cannot).
bool OnlyCertificateBlocks(absl::string_view pem) {
  constexpr absl::string_view kBegin = "-----BEGIN ";
  for (size_t at = pem.find(kBegin); at != absl::string_view::npos;
       at = pem.find(kBegin, at + kBegin.size())) {
    if (!absl::StartsWith(pem.substr(at + kBegin.size()), "CERTIFICATE-----")) {
      return false;
    }
  }
  return true;
}

class Stage {
 public:
  Stage(TlsFiles files, absl::Duration interval)
      : files_(std::move(files)), interval_(interval) {}

  // Reads the files; when they changed and pass the checks, puts them in
  // place of the staged ones (the first time: creates the staged files).
  // The lock is held throughout, so that a slow refresh cannot put older
  // files back after a newer one.
  absl::Status Refresh() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
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
    // gRPC reads the identity path twice (key, then chain) and trusts the
    // pair when the file's modification time, in whole seconds, is the same
    // before and after: each new file's time is a second past the last.
    const int64_t stamp =
        std::max<int64_t>(absl::ToUnixSeconds(absl::Now()), last_stamp_ + 1);
    const struct timespec times[2] = {{static_cast<time_t>(stamp), 0},
                                      {static_cast<time_t>(stamp), 0}};
    if (::futimens(*identity_fd, times) != 0 ||
        ::futimens(*ca_fd, times) != 0) {
      int error = errno;
      ::close(*identity_fd);
      ::close(*ca_fd);
      return ErrnoError(error, "stamping an in-memory TLS file");
    }
    if (identity_fd_ < 0) {
      identity_fd_ = *identity_fd;
      ca_fd_ = *ca_fd;
    } else {
      // Each path now opens the new file; readers that opened the old one
      // finish reading it. The two swaps are separate: if the second one
      // failed, the new identity would meet the old CA bundle until the
      // next refresh, which digest_ (unchanged) makes try again.
      if (::dup3(*identity_fd, identity_fd_, O_CLOEXEC) < 0 ||
          ::dup3(*ca_fd, ca_fd_, O_CLOEXEC) < 0) {
        int error = errno;
        ::close(*identity_fd);
        ::close(*ca_fd);
        return ErrnoError(error, "replacing an in-memory TLS file");
      }
      ::close(*identity_fd);
      ::close(*ca_fd);
      log::Info("TLS files reloaded", {{"cert_file", files_.cert_file}});
    }
    last_stamp_ = stamp;
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
        }
        last_error = s.ok() ? "" : std::string(s.message());
      }
    }).detach();
  }

  // What gRPC reads. The numbers never change after the first Refresh.
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
    absl::StatusOr<std::vector<crypto::Certificate>> certs = ReadCertificates(
        chain, files_.cert_name, files_.cert_file, "a certificate chain");
    if (!certs.ok()) return certs.status();
    absl::StatusOr<crypto::PrivateKey> private_key =
        crypto::PrivateKey::FromPem(key.view());
    if (!private_key.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(files_.key_name, " \"", files_.key_file,
                       "\" does not hold an unencrypted private key: ",
                       private_key.status().message()));
    }
    if (!certs->front().CheckKeyMatches(*private_key).ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("the key in ", files_.key_name, " \"", files_.key_file,
                       "\" does not belong to the first certificate in ",
                       files_.cert_name, " \"", files_.cert_file, "\""));
    }
    return ReadCertificates(ca, files_.ca_name, files_.ca_file,
                            "CA certificates")
        .status();
  }

  // The certificates of `pem`, which must be CERTIFICATE blocks only (what
  // gRPC's loader reads; ReadPem would also take PKCS7 blocks); errors name
  // the file as holding no `what`.
  static absl::StatusOr<std::vector<crypto::Certificate>> ReadCertificates(
      const std::string& pem, const std::string& name, const std::string& file,
      absl::string_view what) {
    absl::StatusOr<crypto::ParsedBundle> bundle = crypto::ReadPem(pem);
    if (!bundle.ok() || bundle->certificates.empty() ||
        !OnlyCertificateBlocks(pem)) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, " \"", file, "\" does not hold ", what,
          " (CERTIFICATE blocks only): ",
          !bundle.ok()                   ? bundle.status().message()
          : bundle->certificates.empty() ? "no certificate"
                                         : "it holds other blocks"));
    }
    return std::move(bundle->certificates);
  }

  const TlsFiles files_;
  const absl::Duration interval_;
  mutable absl::Mutex mu_;
  std::string digest_ ABSL_GUARDED_BY(mu_);  // Of what is staged.
  int64_t last_stamp_ ABSL_GUARDED_BY(mu_) = 0;
  int identity_fd_ ABSL_GUARDED_BY(mu_) = -1;
  int ca_fd_ ABSL_GUARDED_BY(mu_) = -1;
};

// Whether `path` reads back: gRPC only logs a file it cannot read, so a
// stage it cannot see (no /proc) is found here, at start.
absl::Status CheckReadable(const std::string& path) {
  absl::StatusOr<std::string> contents = ReadPemFile(path, "staged TLS file");
  if (!contents.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("TLS files are staged in memory and read through "
                     "/proc/self/fd, which this process cannot read: ",
                     contents.status().message()));
  }
  return absl::OkStatus();
}

// The process's stages by file paths and the names errors give them. Never
// destroyed: a stage's files must outlive every channel and server that
// reads them.
struct Stages {
  absl::Mutex mu;
  std::map<std::vector<std::string>, std::unique_ptr<Stage>> by_files
      ABSL_GUARDED_BY(mu);
};

absl::StatusOr<Stage*> StageFor(const TlsFiles& files,
                                absl::Duration interval) {
  static Stages* const stages = new Stages;
  std::vector<std::string> key = {files.cert_file, files.key_file,
                                  files.ca_file,   files.cert_name,
                                  files.key_name,  files.ca_name};
  Stage* stage = nullptr;
  {
    absl::MutexLock lock(&stages->mu);
    auto it = stages->by_files.find(key);
    if (it == stages->by_files.end()) {
      interval = std::clamp(interval, absl::Seconds(1), absl::Hours(24));
      auto created = std::make_unique<Stage>(files, interval);
      if (absl::Status s = created->Refresh(); !s.ok()) return s;
      if (absl::Status s = CheckReadable(created->identity_path()); !s.ok()) {
        return s;
      }
      created->StartRefreshing();
      Stage* raw = created.get();
      stages->by_files.emplace(std::move(key), std::move(created));
      return raw;
    }
    stage = it->second.get();
  }
  // Known files: read them again now, so that a caller starts on files no
  // older than it was given. Files caught mid-renewal (a new key beside
  // the old certificate) leave the last good ones, which the next refresh
  // replaces.
  if (absl::Status s = stage->Refresh(); !s.ok()) {
    log::Warning("TLS files not reloaded; the last good ones stay in service",
                 {{"error", std::string(s.message())}});
  }
  return stage;
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
