#include "services/vault/file_kek_source.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "libs/server/private_file.h"

namespace certplane::vault {
namespace {

constexpr char kAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int DecodeChar(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

absl::Status ErrnoStatus(int err, absl::string_view what) {
  std::string message = absl::StrCat(what, ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EEXIST:
      return absl::AlreadyExistsError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    default:
      return absl::InternalError(message);
  }
}

// The KEK file's bytes, after libs/server/private_file.h checked that it is
// a private regular file; every refusal is FAILED_PRECONDITION (the vault
// cannot start without it).
absl::StatusOr<crypto::SecretBytes> ReadPrivateFile(absl::string_view path) {
  absl::StatusOr<crypto::SecretBytes> contents =
      server::ReadPrivateFile(std::string(path), "KEK file");
  if (absl::IsNotFound(contents.status())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "KEK file ", path,
        " does not exist (create one with certplane-vault's flag for a "
        "new key file, or fix the path)"));
  }
  if (!contents.ok() && !absl::IsFailedPrecondition(contents.status())) {
    return absl::FailedPreconditionError(contents.status().message());
  }
  return contents;
}

absl::StatusOr<std::map<int, crypto::SecretBytes>> ReadKekFile(
    absl::string_view path) {
  absl::StatusOr<crypto::SecretBytes> contents = ReadPrivateFile(path);
  if (!contents.ok()) return contents.status();
  absl::StatusOr<std::map<int, crypto::SecretBytes>> keys =
      ParseKekFileContents(*contents);
  if (!keys.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("KEK file ", path, ": ", keys.status().message()));
  }
  return keys;
}

// Appends "v<version> <base64 key>\n" to `out`.
void AppendKeyLine(int version, const crypto::SecretBytes& key,
                   crypto::SecretBytes& out) {
  std::string prefix = absl::StrCat("v", version, " ");
  crypto::SecretBytes encoded = EncodeSecretBase64(key);
  crypto::SecretBytes joined(out.size() + prefix.size() + encoded.size() + 1);
  uint8_t* p = joined.data();
  if (!out.empty()) std::memcpy(p, out.data(), out.size());
  p += out.size();
  std::memcpy(p, prefix.data(), prefix.size());
  p += prefix.size();
  std::memcpy(p, encoded.data(), encoded.size());
  p += encoded.size();
  *p = '\n';
  out = std::move(joined);
}

}  // namespace

absl::StatusOr<crypto::SecretBytes> DecodeSecretBase64(
    absl::string_view encoded) {
  if (encoded.empty() || encoded.size() % 4 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "base64 value has length ", encoded.size(),
        "; expected a non-zero multiple of 4 (standard padded base64)"));
  }
  size_t padding = 0;
  if (encoded.back() == '=') ++padding;
  if (encoded.size() >= 2 && encoded[encoded.size() - 2] == '=') ++padding;
  crypto::SecretBytes out(encoded.size() / 4 * 3 - padding);
  size_t o = 0;
  for (size_t i = 0; i < encoded.size(); i += 4) {
    bool last = i + 4 == encoded.size();
    uint32_t acc = 0;
    for (size_t j = 0; j < 4; ++j) {
      char c = encoded[i + j];
      int v;
      if (c == '=' && last && j >= 4 - padding) {
        v = 0;
      } else {
        v = DecodeChar(c);
        if (v < 0) {
          return absl::InvalidArgumentError(absl::StrCat(
              "base64 value has an invalid character at offset ", i + j));
        }
      }
      acc = (acc << 6) | static_cast<uint32_t>(v);
    }
    uint8_t bytes[3] = {static_cast<uint8_t>(acc >> 16),
                        static_cast<uint8_t>(acc >> 8),
                        static_cast<uint8_t>(acc)};
    size_t n = last ? 3 - padding : 3;
    // Non-canonical encodings (stray bits in the padding) are refused.
    if (last && padding > 0 && bytes[n] != 0) {
      return absl::InvalidArgumentError(
          "base64 value is not canonical (non-zero bits before padding)");
    }
    for (size_t j = 0; j < n; ++j) out.data()[o++] = bytes[j];
    acc = 0;
    bytes[0] = bytes[1] = bytes[2] = 0;
  }
  return out;
}

crypto::SecretBytes EncodeSecretBase64(const crypto::SecretBytes& secret) {
  const size_t n = secret.size();
  crypto::SecretBytes out((n + 2) / 3 * 4);
  const uint8_t* in = secret.data();
  uint8_t* o = out.data();
  for (size_t i = 0; i < n; i += 3) {
    uint32_t acc = static_cast<uint32_t>(in[i]) << 16;
    if (i + 1 < n) acc |= static_cast<uint32_t>(in[i + 1]) << 8;
    if (i + 2 < n) acc |= in[i + 2];
    *o++ = kAlphabet[(acc >> 18) & 63];
    *o++ = kAlphabet[(acc >> 12) & 63];
    *o++ = i + 1 < n ? kAlphabet[(acc >> 6) & 63] : '=';
    *o++ = i + 2 < n ? kAlphabet[acc & 63] : '=';
    acc = 0;
  }
  return out;
}

// ---------------------------------------------------------------- KekRing

absl::StatusOr<KekRing> KekRing::Create(
    std::map<int, crypto::SecretBytes> keys) {
  if (keys.empty()) {
    return absl::InvalidArgumentError("no KEK versions given");
  }
  std::map<int, crypto::Aes256Gcm> aeads;
  for (auto& [version, key] : keys) {
    if (version < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("KEK version ", version, " is not positive"));
    }
    if (key.size() != crypto::Aes256Gcm::kKeySize) {
      return absl::InvalidArgumentError(
          absl::StrCat("KEK v", version, " is ", key.size(),
                       " bytes; expected ", crypto::Aes256Gcm::kKeySize));
    }
    absl::StatusOr<crypto::Aes256Gcm> aead =
        crypto::Aes256Gcm::Create(std::move(key));
    if (!aead.ok()) return aead.status();
    aeads.emplace(version, *std::move(aead));
  }
  KekRing ring;
  {
    absl::MutexLock lock(&ring.mu_);
    ring.aeads_ = std::move(aeads);
  }
  return ring;
}

KekRing::KekRing(KekRing&& other) noexcept {
  absl::MutexLock lock(&other.mu_);
  aeads_ = std::move(other.aeads_);
}

std::vector<int> KekRing::Versions() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<int> versions;
  versions.reserve(aeads_.size());
  for (const auto& [version, unused] : aeads_) versions.push_back(version);
  return versions;
}

int KekRing::CurrentVersion() const {
  absl::ReaderMutexLock lock(&mu_);
  return aeads_.rbegin()->first;
}

absl::StatusOr<crypto::Aes256Gcm> KekRing::Find(int version) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = aeads_.find(version);
  if (it == aeads_.end()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "KEK version ", version, " is not available (have v",
        aeads_.begin()->first, "..v", aeads_.rbegin()->first, ")"));
  }
  return it->second;
}

absl::StatusOr<std::string> KekRing::Wrap(
    int version, const crypto::SecretBytes& dek,
    absl::string_view associated_data) const {
  absl::StatusOr<crypto::Aes256Gcm> aead = Find(version);
  if (!aead.ok()) return aead.status();
  return aead->Seal(dek.view(), KekAssociatedData(version, associated_data));
}

absl::StatusOr<crypto::SecretBytes> KekRing::Unwrap(
    int version, absl::string_view wrapped,
    absl::string_view associated_data) const {
  absl::StatusOr<crypto::Aes256Gcm> aead = Find(version);
  if (!aead.ok()) return aead.status();
  absl::StatusOr<crypto::SecretBytes> dek =
      aead->Open(wrapped, KekAssociatedData(version, associated_data));
  if (!dek.ok()) {
    return absl::DataLossError(
        absl::StrCat("wrapped DEK does not open under KEK v", version, ": ",
                     dek.status().message()));
  }
  return dek;
}

absl::Status KekRing::AddVersion(int version, crypto::SecretBytes key) {
  absl::StatusOr<crypto::Aes256Gcm> aead =
      crypto::Aes256Gcm::Create(std::move(key));
  if (!aead.ok()) return aead.status();
  absl::MutexLock lock(&mu_);
  if (!aeads_.empty() && version <= aeads_.rbegin()->first) {
    return absl::InvalidArgumentError(
        absl::StrCat("KEK version ", version, " is not above the current v",
                     aeads_.rbegin()->first));
  }
  aeads_.emplace(version, *std::move(aead));
  return absl::OkStatus();
}

// ---------------------------------------------------------- file parsing

absl::StatusOr<std::map<int, crypto::SecretBytes>> ParseKekFileContents(
    const crypto::SecretBytes& contents) {
  std::map<int, crypto::SecretBytes> keys;
  absl::string_view rest = contents.view();
  int line_number = 0;
  while (!rest.empty()) {
    ++line_number;
    size_t newline = rest.find('\n');
    absl::string_view line = rest.substr(0, newline);
    rest = newline == absl::string_view::npos ? absl::string_view()
                                              : rest.substr(newline + 1);
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    size_t space = line.find(' ');
    if (line[0] != 'v' || space == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "line ", line_number, " is not of the form \"v<N> <base64 key>\""));
    }
    int version = 0;
    if (!absl::SimpleAtoi(line.substr(1, space - 1), &version) || version < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "line ", line_number, " does not start with a version v<N>, N >= 1"));
    }
    absl::StatusOr<crypto::SecretBytes> key = DecodeSecretBase64(
        absl::StripLeadingAsciiWhitespace(line.substr(space + 1)));
    if (!key.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "line ", line_number, " (v", version, "): ", key.status().message()));
    }
    if (key->size() != crypto::Aes256Gcm::kKeySize) {
      return absl::InvalidArgumentError(absl::StrCat(
          "line ", line_number, " (v", version, "): key is ", key->size(),
          " bytes; expected ", crypto::Aes256Gcm::kKeySize));
    }
    if (!keys.emplace(version, *std::move(key)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_number, ": duplicate version v", version));
    }
  }
  if (keys.empty()) {
    return absl::InvalidArgumentError("no KEK versions (empty key file)");
  }
  return keys;
}

// ---------------------------------------------------------- FileKekSource

absl::StatusOr<std::unique_ptr<FileKekSource>> FileKekSource::Open(
    absl::string_view path) {
  if (path.empty()) {
    return absl::InvalidArgumentError("KEK file path is empty");
  }
  absl::StatusOr<std::map<int, crypto::SecretBytes>> keys = ReadKekFile(path);
  if (!keys.ok()) return keys.status();
  absl::StatusOr<KekRing> ring = KekRing::Create(*std::move(keys));
  if (!ring.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("KEK file ", path, ": ", ring.status().message()));
  }
  return std::unique_ptr<FileKekSource>(
      new FileKekSource(std::string(path), *std::move(ring)));
}

std::string FileKekSource::Describe() const {
  return absl::StrCat("file:", path_);
}

absl::StatusOr<std::vector<int>> FileKekSource::Versions() const {
  return ring_.Versions();
}

absl::StatusOr<std::string> FileKekSource::Wrap(
    int version, const crypto::SecretBytes& dek,
    absl::string_view associated_data) const {
  return ring_.Wrap(version, dek, associated_data);
}

absl::StatusOr<crypto::SecretBytes> FileKekSource::Unwrap(
    int version, absl::string_view wrapped,
    absl::string_view associated_data) const {
  return ring_.Unwrap(version, wrapped, associated_data);
}

// Holds an exclusive flock(2) on the KEK file's directory while alive, so
// that vault processes sharing one KEK file rotate it one at a time
// (rotate_mu_ only orders threads of one process). The directory, not the
// file, is locked because rotation renames a new file over the old one.
class FileRotationLock {
 public:
  static absl::StatusOr<FileRotationLock> Acquire(const std::string& path) {
    const std::string lock_path =
        std::filesystem::path(path).parent_path().string();
    int fd = ::open(lock_path.empty() ? "." : lock_path.c_str(),
                    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus(errno, absl::StrCat("opening ", lock_path));
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      absl::Status status =
          ErrnoStatus(errno, absl::StrCat("locking ", lock_path));
      ::close(fd);
      return status;
    }
    return FileRotationLock(fd);
  }
  FileRotationLock(FileRotationLock&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)) {}
  FileRotationLock& operator=(FileRotationLock&&) = delete;
  ~FileRotationLock() {
    if (fd_ >= 0) ::close(fd_);  // Closing releases the flock.
  }

 private:
  explicit FileRotationLock(int fd) : fd_(fd) {}
  int fd_;
};

absl::StatusOr<int> FileKekSource::CreateVersion() {
  absl::MutexLock lock(&rotate_mu_);
  absl::StatusOr<FileRotationLock> file_lock = FileRotationLock::Acquire(path_);
  if (!file_lock.ok()) return file_lock.status();
  // Start from what is on disk, so that the file stays the source of truth;
  // it must still hold every version this process uses.
  absl::StatusOr<crypto::SecretBytes> contents = ReadPrivateFile(path_);
  if (!contents.ok()) return contents.status();
  absl::StatusOr<std::map<int, crypto::SecretBytes>> on_disk =
      ParseKekFileContents(*contents);
  if (!on_disk.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("KEK file ", path_, ": ", on_disk.status().message()));
  }
  int next = 0;
  for (int version : ring_.Versions()) {
    if (!on_disk->contains(version)) {
      return absl::FailedPreconditionError(
          absl::StrCat("KEK file ", path_, " no longer holds v", version,
                       "; refusing to rotate"));
    }
  }
  next = std::max(on_disk->rbegin()->first, ring_.CurrentVersion()) + 1;

  absl::StatusOr<crypto::SecretBytes> key = crypto::Aes256Gcm::GenerateKey();
  if (!key.ok()) return key.status();

  crypto::SecretBytes updated;
  for (const auto& [version, existing] : *on_disk) {
    AppendKeyLine(version, existing, updated);
  }
  AppendKeyLine(next, *key, updated);

  if (absl::Status s = server::WritePrivateFile(path_, updated); !s.ok()) {
    return s;
  }

  // Versions added on disk by someone else become usable here too.
  for (auto& [version, existing] : *on_disk) {
    if (version > ring_.CurrentVersion()) {
      if (absl::Status s = ring_.AddVersion(version, std::move(existing));
          !s.ok()) {
        return s;
      }
    }
  }
  if (absl::Status s = ring_.AddVersion(next, *std::move(key)); !s.ok()) {
    return s;
  }
  return next;
}

absl::Status CreateKekFile(absl::string_view path) {
  if (path.empty()) {
    return absl::InvalidArgumentError("KEK file path is empty");
  }
  std::string p(path);
  struct stat st;
  if (::lstat(p.c_str(), &st) == 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("KEK file ", path, " already exists; not overwriting it"));
  }
  absl::StatusOr<crypto::SecretBytes> key = crypto::Aes256Gcm::GenerateKey();
  if (!key.ok()) return key.status();
  crypto::SecretBytes contents;
  AppendKeyLine(1, *key, contents);
  // Never overwrites, even when another process creates it meanwhile.
  absl::Status created = server::CreatePrivateFile(p, contents);
  if (absl::IsAlreadyExists(created)) {
    return absl::AlreadyExistsError(
        absl::StrCat("KEK file ", path, " already exists; not overwriting it"));
  }
  return created;
}

}  // namespace certplane::vault
