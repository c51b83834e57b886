// Authenticated encryption of small secrets (data keys, private keys at rest)
// with AES-256-GCM.
//
// Aes256Gcm holds one 32-byte key and is immutable after Create(): Seal and
// Open may be called from many threads at once. Every Seal draws a fresh
// random 96-bit nonce, so one key must not seal more than about 2^32
// messages. The sealed format (v1) is
//
//   0x01 || 12-byte nonce || ciphertext || 16-byte GCM tag
//
// and the associated data is authenticated but not stored. Open returns the
// plaintext as SecretBytes; every failure to open is DATA_LOSS naming the
// reason, and no plaintext is released unless the tag verifies.
#ifndef CERTPLANE_LIBS_CRYPTO_AEAD_H_
#define CERTPLANE_LIBS_CRYPTO_AEAD_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/crypto/secret_bytes.h"

extern "C" {
struct evp_cipher_ctx_st;
}

namespace certplane::crypto {

class Aes256Gcm {
 public:
  static constexpr size_t kKeySize = 32;
  static constexpr size_t kNonceSize = 12;
  static constexpr size_t kTagSize = 16;
  static constexpr uint8_t kVersion = 0x01;
  // Bytes a sealed blob adds to its plaintext.
  static constexpr size_t kOverhead = 1 + kNonceSize + kTagSize;

  // A fresh random 32-byte key.
  static absl::StatusOr<SecretBytes> GenerateKey();
  // INVALID_ARGUMENT unless `key` is exactly kKeySize bytes.
  static absl::StatusOr<Aes256Gcm> Create(SecretBytes key);

  Aes256Gcm(const Aes256Gcm&) = default;
  Aes256Gcm& operator=(const Aes256Gcm&) = default;
  Aes256Gcm(Aes256Gcm&&) noexcept = default;
  Aes256Gcm& operator=(Aes256Gcm&&) noexcept = default;
  ~Aes256Gcm() = default;

  // Encrypts `plaintext` and authenticates it together with
  // `associated_data`, in the v1 sealed format.
  absl::StatusOr<std::string> Seal(absl::string_view plaintext,
                                   absl::string_view associated_data) const;

  // Inverse of Seal with the same key and associated data. DATA_LOSS if the
  // blob is too short, has an unknown version byte, or fails authentication
  // (wrong key, tampered ciphertext, different associated data).
  absl::StatusOr<SecretBytes> Open(absl::string_view sealed,
                                   absl::string_view associated_data) const;

 private:
  // Holds an AES-256-GCM context keyed once at Create(); each Seal/Open
  // copies it and sets only the nonce, so the key schedule is computed once.
  // The context is never modified after Create(), so copies of Aes256Gcm
  // share it and concurrent calls only read it. Freeing it cleanses the key.
  using KeyedContext = std::shared_ptr<const evp_cipher_ctx_st>;
  explicit Aes256Gcm(KeyedContext keyed) : keyed_(std::move(keyed)) {}
  KeyedContext keyed_;
};

}  // namespace certplane::crypto

#endif  // CERTPLANE_LIBS_CRYPTO_AEAD_H_
