// JSON Web Key (RFC 7517, RFC 7518 section 6) parameters of public keys,
// and the JWS form of ECDSA signatures, for verifying OIDC tokens (JWTs)
// against a JWKS without a JSON library here: the caller reads the JSON
// members and hands over their base64url-decoded bytes.
//
// Supported: RSA (2048 to 8192 bits) and EC on P-256 and P-384.
// Pure functions; thread-safe.
#ifndef CERTPLANE_LIBS_CRYPTO_JWK_H_
#define CERTPLANE_LIBS_CRYPTO_JWK_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/crypto/key.h"

namespace certplane::crypto {

struct JwkParams {
  std::string kty;  // "RSA" or "EC".
  // RSA: modulus and public exponent, unsigned big-endian bytes.
  std::string n;
  std::string e;
  // EC: "P-256" or "P-384", and the point's coordinates (big-endian, the
  // curve's field size).
  std::string crv;
  std::string x;
  std::string y;
};

// The public key; INVALID_ARGUMENT naming what is wrong (unknown kty or
// crv, a coordinate of the wrong size, a point not on the curve, an RSA
// modulus outside 2048-8192 bits).
absl::StatusOr<PublicKey> PublicKeyFromJwk(const JwkParams& jwk);

// The parameters of an RSA or P-256/P-384 key; INVALID_ARGUMENT for others.
absl::StatusOr<JwkParams> JwkOfPublicKey(const PublicKey& key);

// ECDSA signatures: JWS's fixed-size r || s (each `field_bytes` long: 32
// for ES256, 48 for ES384) from and to DER (as PrivateKey::Sign makes and
// VerifySignature takes). INVALID_ARGUMENT when malformed.
absl::StatusOr<std::string> EcdsaRawToDer(absl::string_view raw,
                                          size_t field_bytes);
absl::StatusOr<std::string> EcdsaDerToRaw(absl::string_view der,
                                          size_t field_bytes);

}  // namespace certplane::crypto

#endif  // CERTPLANE_LIBS_CRYPTO_JWK_H_
