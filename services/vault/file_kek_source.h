// KEKs held in memory as AES-256 keys: the key-file source (`file:/path`) and
// the keyring it shares with the environment-variable source.
//
// The key file is text, one line per KEK version, ascending or not:
//
//   v1 <base64 of 32 random bytes>
//   v2 <base64 of 32 random bytes>
//
// It must be a regular file (not a symbolic link) that neither group nor
// others can read or write (mode 0600 or stricter); anything else is refused
// with FAILED_PRECONDITION naming the mode. Wrap/Unwrap use crypto::Aes256Gcm
// under the version's key with KekAssociatedData(version, associated_data), so
// the sealed format is Aes256Gcm's v1 format.
//
// FileKekSource::CreateVersion appends a fresh random version crash-safely:
// the new contents go to a temporary file in the same directory, which is
// fsynced, renamed over the key file, and the directory fsynced; a crash at
// any point leaves either the old file or the new one, never a torn one. Only
// one process should rotate a given key file at a time.
//
// Thread safety: every class here is safe to call from several threads.
// Key bytes live only in crypto::SecretBytes and never appear in errors.
#ifndef CERTPLANE_SERVICES_VAULT_FILE_KEK_SOURCE_H_
#define CERTPLANE_SERVICES_VAULT_FILE_KEK_SOURCE_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "libs/crypto/aead.h"
#include "libs/crypto/secret_bytes.h"
#include "services/vault/kek_source.h"

namespace certplane::vault {

// Strict standard base64 (RFC 4648 alphabet, '=' padding required) of a
// secret, decoded straight into SecretBytes. INVALID_ARGUMENT on bad input;
// the message never quotes the input.
absl::StatusOr<crypto::SecretBytes> DecodeSecretBase64(
    absl::string_view encoded);
// Standard base64 of a secret, into SecretBytes.
crypto::SecretBytes EncodeSecretBase64(const crypto::SecretBytes& secret);

// Versioned AES-256-GCM KEKs in memory. Immutable apart from AddVersion.
class KekRing {
 public:
  // Builds a ring from version -> 32-byte key. INVALID_ARGUMENT for an empty
  // map, a version < 1, or a key that is not 32 bytes.
  static absl::StatusOr<KekRing> Create(
      std::map<int, crypto::SecretBytes> keys);

  KekRing(KekRing&& other) noexcept;
  KekRing& operator=(KekRing&& other) = delete;

  // Ascending, never empty.
  std::vector<int> Versions() const;
  int CurrentVersion() const;
  absl::StatusOr<std::string> Wrap(int version, const crypto::SecretBytes& dek,
                                   absl::string_view associated_data) const;
  absl::StatusOr<crypto::SecretBytes> Unwrap(
      int version, absl::string_view wrapped,
      absl::string_view associated_data) const;
  // INVALID_ARGUMENT unless `version` is above every existing version and
  // `key` is 32 bytes.
  absl::Status AddVersion(int version, crypto::SecretBytes key);

 private:
  KekRing() = default;
  absl::StatusOr<crypto::Aes256Gcm> Find(int version) const;

  mutable absl::Mutex mu_;
  std::map<int, crypto::Aes256Gcm> aeads_ ABSL_GUARDED_BY(mu_);
};

// Parses key-file contents ("v<N> <base64>" lines; blank lines ignored).
// INVALID_ARGUMENT naming the line for malformed lines, bad base64, a key
// that is not 32 bytes, a duplicate version, or no versions at all.
absl::StatusOr<std::map<int, crypto::SecretBytes>> ParseKekFileContents(
    const crypto::SecretBytes& contents);

class FileKekSource final : public KekSource, public RotatableKekSource {
 public:
  // Reads `path`. FAILED_PRECONDITION when the file is missing, not a regular
  // file, readable or writable by group or others, or malformed.
  static absl::StatusOr<std::unique_ptr<FileKekSource>> Open(
      absl::string_view path);

  std::string Describe() const override;
  absl::StatusOr<std::vector<int>> Versions() const override;
  absl::StatusOr<std::string> Wrap(
      int version, const crypto::SecretBytes& dek,
      absl::string_view associated_data) const override;
  absl::StatusOr<crypto::SecretBytes> Unwrap(
      int version, absl::string_view wrapped,
      absl::string_view associated_data) const override;
  absl::StatusOr<int> CreateVersion() override;

 private:
  FileKekSource(std::string path, KekRing ring)
      : path_(std::move(path)), ring_(std::move(ring)) {}

  const std::string path_;
  absl::Mutex rotate_mu_;  // Serializes CreateVersion.
  KekRing ring_;
};

// Creates a key file at `path` holding version 1 with a fresh random key,
// mode 0600, durably. ALREADY_EXISTS if `path` exists (it is never
// overwritten); the file appears complete or not at all.
absl::Status CreateKekFile(absl::string_view path);

}  // namespace certplane::vault

#endif  // CERTPLANE_SERVICES_VAULT_FILE_KEK_SOURCE_H_
