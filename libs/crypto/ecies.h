// Public-key encryption to a P-256 recipient (ECIES): how the vault hands a
// private key to exactly one agent, so that nothing in between (the
// gateway, logs, a proxy) can read it.
//
// Scheme (v1): a fresh ephemeral P-256 key pair per message; the shared
// secret is ECDH(ephemeral private, recipient public) (the x coordinate,
// 32 bytes); the message key is HKDF-SHA256 (RFC 5869) with an empty salt,
// that secret as input keying material, and info =
//   "certplane-ecies-v1" || u16(len(E)) || E || u16(len(R)) || R
// where E and R are the DER SubjectPublicKeyInfo of the ephemeral and the
// recipient key; the plaintext is then sealed with AES-256-GCM
// (libs/crypto/aead.h) under that key, authenticating the caller's
// `context` as associated data. The sealed message is
//
//   0x01 || u16 big-endian len(E) || E || Aes256Gcm v1 blob
//
// Promises: EciesOpen returns the plaintext only if the message was sealed
// to the holder of `recipient` with the same `context`; every failure to
// open (truncation, a flipped bit, another recipient, another context) is
// DATA_LOSS, and no plaintext is released without a verified tag. The
// plaintext comes back as SecretBytes. Stateless and thread-safe.
#ifndef CERTPLANE_LIBS_CRYPTO_ECIES_H_
#define CERTPLANE_LIBS_CRYPTO_ECIES_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/crypto/key.h"
#include "libs/crypto/secret_bytes.h"

namespace certplane::crypto {

inline constexpr char kEciesInfoPrefix[] = "certplane-ecies-v1";

// Seals `plaintext` to `recipient`, which must be an ECDSA P-256 key with a
// named curve (INVALID_ARGUMENT "recipient key must be ECDSA P-256"
// otherwise).
absl::StatusOr<std::string> EciesSeal(const PublicKey& recipient,
                                      absl::string_view plaintext,
                                      absl::string_view context);

// Opens a message sealed by EciesSeal with `recipient`'s public half and the
// same `context`. INVALID_ARGUMENT when `recipient` is not a P-256 key;
// DATA_LOSS for anything that does not authenticate.
absl::StatusOr<SecretBytes> EciesOpen(const PrivateKey& recipient,
                                      absl::string_view sealed,
                                      absl::string_view context);

// HKDF-SHA256 (RFC 5869): `length` bytes (1..8160) of output keying
// material. Exposed for the test vectors.
absl::StatusOr<SecretBytes> HkdfSha256(absl::string_view input_key,
                                       absl::string_view salt,
                                       absl::string_view info, size_t length);

}  // namespace certplane::crypto

#endif  // CERTPLANE_LIBS_CRYPTO_ECIES_H_
