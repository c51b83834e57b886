#include "libs/crypto/jwk.h"

#include "absl/strings/str_cat.h"
#include "libs/crypto/internal/der.h"

namespace certplane::crypto {
namespace {

using internal::AppendDerTlv;
using internal::ReadTlvWithTag;
using internal::Tlv;

constexpr uint8_t kSequence = 0x30;
constexpr uint8_t kInteger = 0x02;
constexpr uint8_t kBitString = 0x03;
constexpr uint8_t kOid = 0x06;
constexpr uint8_t kNull = 0x05;

// 1.2.840.113549.1.1.1, 1.2.840.10045.2.1, P-256 and P-384.
constexpr char kRsaOid[] = "\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01";
constexpr char kEcOid[] = "\x2a\x86\x48\xce\x3d\x02\x01";
constexpr char kP256Oid[] = "\x2a\x86\x48\xce\x3d\x03\x01\x07";
constexpr char kP384Oid[] = "\x2b\x81\x04\x00\x22";

absl::string_view Bytes(const char* literal, size_t size) {
  return absl::string_view(literal, size);
}
#define CERTPLANE_BYTES(literal) Bytes(literal, sizeof(literal) - 1)

// A DER INTEGER's contents for an unsigned big-endian value.
std::string UnsignedInteger(absl::string_view value) {
  while (value.size() > 1 && value[0] == '\0') value.remove_prefix(1);
  std::string out;
  if (value.empty() || (static_cast<uint8_t>(value[0]) & 0x80) != 0) {
    out.push_back('\0');
  }
  out.append(value.data(), value.size());
  return out;
}

// The unsigned big-endian value of a DER INTEGER's contents, left-padded to
// `size` bytes (0: no padding). False when negative or too long.
bool UnsignedValue(absl::string_view contents, size_t size, std::string* out) {
  if (contents.empty() || (static_cast<uint8_t>(contents[0]) & 0x80) != 0) {
    return false;
  }
  while (contents.size() > 1 && contents[0] == '\0') contents.remove_prefix(1);
  if (size == 0) {
    *out = std::string(contents);
    return true;
  }
  if (contents.size() > size) return false;
  *out = std::string(size - contents.size(), '\0') + std::string(contents);
  return true;
}

std::string Spki(absl::string_view algorithm, absl::string_view key_bits) {
  std::string bits(1, '\0');
  bits.append(key_bits.data(), key_bits.size());
  std::string body;
  AppendDerTlv(&body, kSequence, algorithm);
  AppendDerTlv(&body, kBitString, bits);
  std::string out;
  AppendDerTlv(&out, kSequence, body);
  return out;
}

}  // namespace

absl::StatusOr<PublicKey> PublicKeyFromJwk(const JwkParams& jwk) {
  if (jwk.kty == "RSA") {
    std::string n = jwk.n;
    while (!n.empty() && n[0] == '\0') n.erase(0, 1);
    const size_t bits = n.size() * 8;
    if (bits < 2048 || bits > 8192) {
      return absl::InvalidArgumentError(absl::StrCat(
          "JWK RSA modulus is ", bits, " bits; 2048 to 8192 are accepted"));
    }
    if (jwk.e.empty() || jwk.e.size() > 8) {
      return absl::InvalidArgumentError(
          "JWK RSA exponent is missing or too long");
    }
    std::string algorithm;
    AppendDerTlv(&algorithm, kOid, CERTPLANE_BYTES(kRsaOid));
    AppendDerTlv(&algorithm, kNull, "");
    std::string ints;
    AppendDerTlv(&ints, kInteger, UnsignedInteger(n));
    AppendDerTlv(&ints, kInteger, UnsignedInteger(jwk.e));
    std::string rsa_key;
    AppendDerTlv(&rsa_key, kSequence, ints);
    absl::StatusOr<PublicKey> key =
        PublicKey::FromDer(Spki(algorithm, rsa_key));
    if (!key.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("JWK RSA key: ", key.status().message()));
    }
    return key;
  }
  if (jwk.kty == "EC") {
    size_t size = 0;
    absl::string_view curve;
    if (jwk.crv == "P-256") {
      size = 32;
      curve = CERTPLANE_BYTES(kP256Oid);
    } else if (jwk.crv == "P-384") {
      size = 48;
      curve = CERTPLANE_BYTES(kP384Oid);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "JWK curve \"", jwk.crv.substr(0, 20), "\" is not P-256 or P-384"));
    }
    if (jwk.x.size() != size || jwk.y.size() != size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "JWK ", jwk.crv, " coordinates must be ", size, " bytes each"));
    }
    std::string algorithm;
    AppendDerTlv(&algorithm, kOid, CERTPLANE_BYTES(kEcOid));
    AppendDerTlv(&algorithm, kOid, curve);
    absl::StatusOr<PublicKey> key =
        PublicKey::FromDer(Spki(algorithm, absl::StrCat("\x04", jwk.x, jwk.y)));
    if (!key.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("JWK EC key (not a point on ", jwk.crv,
                       "?): ", key.status().message()));
    }
    return key;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("JWK kty \"", jwk.kty.substr(0, 20), "\" is not RSA or EC"));
}

absl::StatusOr<JwkParams> JwkOfPublicKey(const PublicKey& key) {
  const std::string der = key.ToDer();
  absl::string_view in = der;
  Tlv spki, algorithm, oid, bits;
  auto malformed = [] {
    return absl::InvalidArgumentError("malformed SubjectPublicKeyInfo");
  };
  if (!ReadTlvWithTag(&in, kSequence, &spki)) return malformed();
  absl::string_view body = spki.contents;
  if (!ReadTlvWithTag(&body, kSequence, &algorithm) ||
      !ReadTlvWithTag(&body, kBitString, &bits) || bits.contents.empty() ||
      bits.contents[0] != '\0') {
    return malformed();
  }
  absl::string_view alg = algorithm.contents;
  if (!ReadTlvWithTag(&alg, kOid, &oid)) return malformed();
  absl::string_view key_bits = bits.contents.substr(1);
  JwkParams jwk;
  if (oid.contents == CERTPLANE_BYTES(kRsaOid)) {
    Tlv seq, n, e;
    absl::string_view k = key_bits;
    if (!ReadTlvWithTag(&k, kSequence, &seq)) return malformed();
    absl::string_view ints = seq.contents;
    if (!ReadTlvWithTag(&ints, kInteger, &n) ||
        !ReadTlvWithTag(&ints, kInteger, &e) ||
        !UnsignedValue(n.contents, 0, &jwk.n) ||
        !UnsignedValue(e.contents, 0, &jwk.e)) {
      return malformed();
    }
    jwk.kty = "RSA";
    return jwk;
  }
  if (oid.contents == CERTPLANE_BYTES(kEcOid)) {
    Tlv curve;
    if (!ReadTlvWithTag(&alg, kOid, &curve)) return malformed();
    size_t size = 0;
    if (curve.contents == CERTPLANE_BYTES(kP256Oid)) {
      jwk.crv = "P-256";
      size = 32;
    } else if (curve.contents == CERTPLANE_BYTES(kP384Oid)) {
      jwk.crv = "P-384";
      size = 48;
    } else {
      return absl::InvalidArgumentError("EC key is not on P-256 or P-384");
    }
    if (key_bits.size() != 1 + 2 * size || key_bits[0] != '\x04') {
      return absl::InvalidArgumentError("EC point is not uncompressed");
    }
    jwk.kty = "EC";
    jwk.x = std::string(key_bits.substr(1, size));
    jwk.y = std::string(key_bits.substr(1 + size, size));
    return jwk;
  }
  return absl::InvalidArgumentError(
      "only RSA and EC keys have JWK parameters here");
}

absl::StatusOr<std::string> EcdsaRawToDer(absl::string_view raw,
                                          size_t field_bytes) {
  if (field_bytes == 0 || raw.size() != 2 * field_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ECDSA signature is ", raw.size(), " bytes, not ", 2 * field_bytes));
  }
  std::string ints;
  AppendDerTlv(&ints, kInteger, UnsignedInteger(raw.substr(0, field_bytes)));
  AppendDerTlv(&ints, kInteger, UnsignedInteger(raw.substr(field_bytes)));
  std::string out;
  AppendDerTlv(&out, kSequence, ints);
  return out;
}

absl::StatusOr<std::string> EcdsaDerToRaw(absl::string_view der,
                                          size_t field_bytes) {
  Tlv seq, r, s;
  absl::string_view in = der;
  std::string r_raw, s_raw;
  if (!ReadTlvWithTag(&in, kSequence, &seq) || !in.empty()) {
    return absl::InvalidArgumentError("malformed DER ECDSA signature");
  }
  absl::string_view ints = seq.contents;
  if (!ReadTlvWithTag(&ints, kInteger, &r) ||
      !ReadTlvWithTag(&ints, kInteger, &s) || !ints.empty() ||
      !UnsignedValue(r.contents, field_bytes, &r_raw) ||
      !UnsignedValue(s.contents, field_bytes, &s_raw)) {
    return absl::InvalidArgumentError("malformed DER ECDSA signature");
  }
  return r_raw + s_raw;
}

}  // namespace certplane::crypto
