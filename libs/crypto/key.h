// Private and public keys: generation, encoding, fingerprints.
//
// PrivateKey is move-only and owns its key; its encodings come back as
// SecretBytes, never as std::string. PublicKey is a copyable value.
// Instances are immutable after creation and safe to use from several
// threads at once.
#ifndef CERTPLANE_LIBS_CRYPTO_KEY_H_
#define CERTPLANE_LIBS_CRYPTO_KEY_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/crypto/handles.h"
#include "libs/crypto/secret_bytes.h"

namespace certplane::crypto {

// The key types certplane generates.
enum class KeyType {
  kRsa2048,
  kRsa3072,
  kRsa4096,
  kEcdsaP256,
  kEcdsaP384,
  kEd25519,
};

// "rsa-2048", "rsa-3072", "rsa-4096", "ecdsa-p256", "ecdsa-p384", "ed25519".
absl::string_view KeyTypeName(KeyType type);
// Inverse of KeyTypeName (case-insensitive); INVALID_ARGUMENT otherwise.
absl::StatusOr<KeyType> ParseKeyType(absl::string_view name);

enum class KeyAlgorithm { kUnknown, kRsa, kEcdsa, kEd25519 };
absl::string_view KeyAlgorithmName(KeyAlgorithm algorithm);  // "RSA", ...

// What a key is, as shown to people and checked by policy.
struct KeyInfo {
  KeyAlgorithm algorithm = KeyAlgorithm::kUnknown;
  int bits = 0;       // RSA modulus bits, EC field bits, 256 for Ed25519.
  std::string curve;  // "P-256", "P-384", "P-521" or another curve's
                      // short name; empty for RSA and Ed25519.
  bool explicit_curve_parameters = false;  // EC key with explicit params.
};

// The PEM ("PUBLIC KEY") of a DER SubjectPublicKeyInfo, re-encoded without
// decoding the key: for keys already validated when they were stored. The
// DER must be one strict SubjectPublicKeyInfo (INVALID_ARGUMENT otherwise).
absl::StatusOr<std::string> SpkiDerToPem(absl::string_view der);

class PublicKey {
 public:
  // SubjectPublicKeyInfo, DER or PEM ("PUBLIC KEY").
  static absl::StatusOr<PublicKey> FromDer(absl::string_view der);
  static absl::StatusOr<PublicKey> FromPem(absl::string_view pem);

  PublicKey(const PublicKey& other);
  PublicKey& operator=(const PublicKey& other);
  PublicKey(PublicKey&&) noexcept = default;
  PublicKey& operator=(PublicKey&&) noexcept = default;
  ~PublicKey() = default;

  std::string ToDer() const;  // SubjectPublicKeyInfo.
  std::string ToPem() const;
  KeyInfo info() const;
  // SHA-256 over the DER SubjectPublicKeyInfo (32 raw bytes).
  std::string SpkiSha256() const;
  bool operator==(const PublicKey& other) const;

  // For libs/crypto internals.
  evp_pkey_st* native() const { return pkey_.get(); }
  static PublicKey Adopt(EvpPkeyHandle pkey) {
    return PublicKey(std::move(pkey));
  }

 private:
  explicit PublicKey(EvpPkeyHandle pkey) : pkey_(std::move(pkey)) {}
  EvpPkeyHandle pkey_;
};

class PrivateKey {
 public:
  static absl::StatusOr<PrivateKey> Generate(KeyType type);

  // Reads a private key. PEM: PKCS#8 "PRIVATE KEY", "ENCRYPTED PRIVATE KEY"
  // (password required) and traditional "RSA PRIVATE KEY" / "EC PRIVATE
  // KEY", also legacy-encrypted (Proc-Type/DEK-Info); PEM blocks before the
  // key (certificates, "EC PARAMETERS") are skipped. DER: PKCS#8 (plain or
  // encrypted) and traditional RSA/EC, with nothing after it. The password
  // is used byte for byte (it may contain NULs) and ignored for plain keys.
  // Errors, all INVALID_ARGUMENT and naming which: "not a private key: ..."
  // (garbage, truncated, empty), trailing bytes, "private key is encrypted;
  // a password is required", "wrong password for encrypted private key",
  // explicit EC curve parameters (refused before any parser sees them),
  // key types other than RSA, ECDSA and Ed25519, and PBKDF2 iteration counts
  // above 5,000,000. The BoringSSL build decrypts PBES2 only with PBKDF2
  // and returns UNIMPLEMENTED for other KDFs (scrypt) and ciphers.
  static absl::StatusOr<PrivateKey> FromPem(
      absl::string_view pem, std::optional<absl::string_view> password = {});
  static absl::StatusOr<PrivateKey> FromDer(
      absl::string_view der, std::optional<absl::string_view> password = {});

  PrivateKey(PrivateKey&&) noexcept = default;
  PrivateKey& operator=(PrivateKey&&) noexcept = default;
  ~PrivateKey() = default;

  // Unencrypted PKCS#8.
  absl::StatusOr<SecretBytes> ToPkcs8Der() const;
  absl::StatusOr<SecretBytes> ToPkcs8Pem() const;
  // Password-encrypted PKCS#8 (PBES2: AES-256-CBC, PBKDF2-HMAC-SHA256).
  // An empty password is INVALID_ARGUMENT.
  absl::StatusOr<SecretBytes> ToEncryptedPkcs8Der(
      absl::string_view password) const;
  absl::StatusOr<SecretBytes> ToEncryptedPkcs8Pem(
      absl::string_view password) const;
  // "RSA PRIVATE KEY" / "EC PRIVATE KEY"; UNIMPLEMENTED for Ed25519, which
  // has no traditional form.
  absl::StatusOr<SecretBytes> ToTraditionalPem() const;

  PublicKey public_key() const;
  KeyInfo info() const { return public_key().info(); }

  // Signs `data` with the key's natural scheme: RSA PKCS#1 v1.5 or ECDSA
  // (DER signature) over SHA-256/384/512 as `digest` names ("sha256",
  // "sha384", "sha512"); Ed25519 ignores `digest` (pure EdDSA).
  absl::StatusOr<std::string> Sign(absl::string_view data,
                                   absl::string_view digest = "sha256") const;

  // Signs a precomputed `digest_value` of the `digest` hash ("sha256",
  // "sha384", "sha512"): RSA PKCS#1 v1.5 (with that digest's DigestInfo) or
  // ECDSA (DER signature), the same signature Sign(data, digest) makes when
  // `digest_value` is the hash of `data`. INVALID_ARGUMENT for an unknown
  // digest, a `digest_value` that is not that digest's length (naming the
  // expected length), or an Ed25519 key (Ed25519 signs messages only).
  absl::StatusOr<std::string> SignDigest(absl::string_view digest_value,
                                         absl::string_view digest) const;

  // For libs/crypto internals.
  evp_pkey_st* native() const { return pkey_.get(); }
  static PrivateKey Adopt(EvpPkeyHandle pkey) {
    return PrivateKey(std::move(pkey));
  }

 private:
  explicit PrivateKey(EvpPkeyHandle pkey) : pkey_(std::move(pkey)) {}
  EvpPkeyHandle pkey_;
};

// Verifies a signature made by PrivateKey::Sign. OK, or INVALID_ARGUMENT
// "signature does not verify".
absl::Status VerifySignature(const PublicKey& key, absl::string_view data,
                             absl::string_view signature,
                             absl::string_view digest = "sha256");

// Lowercase hex of `bytes`, optionally with ':' between bytes.
// For RSA keys, checks the public exponent as Baseline Requirements 6.1.6
// asks: odd, at least 3 and below 2^256; with `public_trust`, also at least
// 65537. INVALID_ARGUMENT naming the exponent otherwise; OK for other keys.
absl::Status CheckRsaPublicExponent(const PublicKey& key,
                                    bool public_trust = false);

std::string HexEncode(absl::string_view bytes, bool colons = false);

}  // namespace certplane::crypto

#endif  // CERTPLANE_LIBS_CRYPTO_KEY_H_
