#include "libs/crypto/key.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/crypto/internal/der.h"
#include "libs/crypto/internal/ssl_util.h"

namespace certplane::crypto {
namespace {

using internal::SslError;
using internal::SslInternal;
using internal::SslPtr;

struct KeyTypeEntry {
  KeyType type;
  absl::string_view name;
};
constexpr KeyTypeEntry kKeyTypes[] = {
    {KeyType::kRsa2048, "rsa-2048"},     {KeyType::kRsa3072, "rsa-3072"},
    {KeyType::kRsa4096, "rsa-4096"},     {KeyType::kEcdsaP256, "ecdsa-p256"},
    {KeyType::kEcdsaP384, "ecdsa-p384"}, {KeyType::kEd25519, "ed25519"},
};

#if !defined(CERTPLANE_BORINGSSL)
// A byte string literal that may hold zero bytes.
template <size_t N>
constexpr absl::string_view Bytes(const char (&literal)[N]) {
  return absl::string_view(literal, N - 1);
}

// SubjectPublicKeyInfo of an Ed25519 key or an EC key on a named curve,
// written here: OpenSSL 3.0's i2d_PUBKEY goes through the encoder framework,
// which costs about a million instructions a call. Empty for other keys.
std::string FastSpkiDer(EVP_PKEY* pkey) {
  // AlgorithmIdentifier contents (OIDs with their tags) and key bytes.
  std::string algorithm;
  std::string key;
  if (EVP_PKEY_id(pkey) == EVP_PKEY_ED25519) {
    uint8_t raw[32];
    size_t length = sizeof(raw);
    if (EVP_PKEY_get_raw_public_key(pkey, raw, &length) != 1) return {};
    algorithm = std::string(Bytes("\x06\x03\x2b\x65\x70"));  // 1.3.101.112
    key.assign(reinterpret_cast<char*>(raw), length);
  } else if (EVP_PKEY_id(pkey) == EVP_PKEY_EC) {
    char encoding[32] = {};
    char format[32] = {};
    char group[32] = {};
    // Named curves with uncompressed points only; the rest as OpenSSL does.
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_ENCODING,
                                       encoding, sizeof(encoding),
                                       nullptr) != 1 ||
        absl::string_view(encoding) != OSSL_PKEY_EC_ENCODING_GROUP ||
        EVP_PKEY_get_utf8_string_param(
            pkey, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, format,
            sizeof(format), nullptr) != 1 ||
        absl::string_view(format) !=
            OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED ||
        EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                       sizeof(group), nullptr) != 1) {
      return {};
    }
    absl::string_view curve_oid;
    const absl::string_view name = group;
    if (name == "prime256v1" || name == "P-256") {
      curve_oid = Bytes("\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07");
    } else if (name == "secp384r1" || name == "P-384") {
      curve_oid = Bytes("\x06\x05\x2b\x81\x04\x00\x22");
    } else if (name == "secp521r1" || name == "P-521") {
      curve_oid = Bytes("\x06\x05\x2b\x81\x04\x00\x23");
    } else {
      return {};
    }
    algorithm = absl::StrCat(Bytes("\x06\x07\x2a\x86\x48\xce\x3d\x02\x01"),
                             curve_oid);  // id-ecPublicKey, the curve
    uint8_t point[1 + 2 * 66];
    size_t length = 0;
    if (EVP_PKEY_get_octet_string_param(pkey,
                                        OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                        point, sizeof(point), &length) != 1) {
      return {};
    }
    key.assign(reinterpret_cast<char*>(point), length);
  } else {
    return {};
  }
  std::string body;
  internal::AppendDerTlv(&body, internal::kDerSequence, algorithm);
  internal::AppendDerTlv(&body, internal::kDerBitString,
                         absl::StrCat(Bytes("\0"), key));
  std::string out;
  internal::AppendDerTlv(&out, internal::kDerSequence, body);
  return out;
}
#endif

// DER SubjectPublicKeyInfo of any EVP_PKEY (public half only).
std::string SpkiDer(EVP_PKEY* pkey) {
#if !defined(CERTPLANE_BORINGSSL)
  if (std::string fast = FastSpkiDer(pkey); !fast.empty()) return fast;
  internal::ClearSslErrors();
#endif
  uint8_t* der = nullptr;
  int length = i2d_PUBKEY(pkey, &der);
  if (length <= 0) {
    internal::ClearSslErrors();
    return {};
  }
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(length));
  OPENSSL_free(der);
  return out;
}

std::string CurveName(int nid) {
  switch (nid) {
    case NID_X9_62_prime256v1:
      return "P-256";
    case NID_secp384r1:
      return "P-384";
    case NID_secp521r1:
      return "P-521";
    default: {
      const char* name = OBJ_nid2sn(nid);
      return name != nullptr ? name : absl::StrCat("nid:", nid);
    }
  }
}

}  // namespace

absl::string_view KeyTypeName(KeyType type) {
  for (const auto& entry : kKeyTypes) {
    if (entry.type == type) return entry.name;
  }
  return "unknown";
}

absl::StatusOr<KeyType> ParseKeyType(absl::string_view name) {
  std::string lower = absl::AsciiStrToLower(name);
  for (const auto& entry : kKeyTypes) {
    if (entry.name == lower) return entry.type;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown key type \"", name,
      "\"; expected one of rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, "
      "ecdsa-p384, ed25519"));
}

absl::string_view KeyAlgorithmName(KeyAlgorithm algorithm) {
  switch (algorithm) {
    case KeyAlgorithm::kRsa:
      return "RSA";
    case KeyAlgorithm::kEcdsa:
      return "ECDSA";
    case KeyAlgorithm::kEd25519:
      return "Ed25519";
    case KeyAlgorithm::kUnknown:
      break;
  }
  return "unknown";
}

std::string HexEncode(absl::string_view bytes, bool colons) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * (colons ? 3 : 2));
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (colons && i > 0) out.push_back(':');
    auto byte = static_cast<uint8_t>(bytes[i]);
    out.push_back(kDigits[byte >> 4]);
    out.push_back(kDigits[byte & 0xf]);
  }
  return out;
}

// ---------------------------------------------------------------- PublicKey

absl::StatusOr<std::string> SpkiDerToPem(absl::string_view der) {
  if (auto status = internal::CheckSpkiAlgorithm(der, "public key");
      !status.ok()) {
    return status;
  }
  absl::string_view rest = der;
  internal::Tlv spki;
  if (!internal::ReadTlvWithTag(&rest, internal::kDerSequence, &spki) ||
      !rest.empty()) {
    return absl::InvalidArgumentError(
        "public key: not exactly one DER SubjectPublicKeyInfo");
  }
  return internal::PemEncode("PUBLIC KEY", der);
}

absl::StatusOr<PublicKey> PublicKey::FromDer(absl::string_view der) {
  // Refuse explicit EC parameters before d2i_PUBKEY decodes the curve.
  if (auto status = internal::CheckSpkiAlgorithm(der, "public key");
      !status.ok()) {
    return internal::WithMalformedContext(
        status, "not a DER SubjectPublicKeyInfo (d2i_PUBKEY)");
  }
  const auto* p = reinterpret_cast<const uint8_t*>(der.data());
  EvpPkeyHandle pkey(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  if (pkey == nullptr) {
    return SslError(absl::StatusCode::kInvalidArgument,
                    "not a DER SubjectPublicKeyInfo (d2i_PUBKEY)");
  }
  if (p != reinterpret_cast<const uint8_t*>(der.data()) + der.size()) {
    return absl::InvalidArgumentError(
        "trailing bytes after DER SubjectPublicKeyInfo");
  }
  return PublicKey(std::move(pkey));
}

absl::StatusOr<PublicKey> PublicKey::FromPem(absl::string_view pem) {
  if (pem.size() > static_cast<size_t>(INT_MAX)) {
    return internal::InputTooLargeOr(pem, "PEM");
  }
  // As PEM_read_bio_PUBKEY, but the key is checked before anything decodes
  // it.
  std::optional<std::string> der = internal::FirstPemBlock(pem, {"PUBLIC KEY"});
  if (!der.has_value()) {
    return absl::InvalidArgumentError(
        "no PEM \"PUBLIC KEY\" block (PEM_read_bio_PUBKEY)");
  }
  if (auto status = internal::CheckSpkiAlgorithm(*der, "public key");
      !status.ok()) {
    return internal::WithMalformedContext(
        status, "no PEM \"PUBLIC KEY\" block (PEM_read_bio_PUBKEY)");
  }
  const auto* p = reinterpret_cast<const uint8_t*>(der->data());
  EvpPkeyHandle pkey(d2i_PUBKEY(nullptr, &p, static_cast<long>(der->size())));
  if (pkey == nullptr) {
    return SslError(absl::StatusCode::kInvalidArgument,
                    "no PEM \"PUBLIC KEY\" block (PEM_read_bio_PUBKEY)");
  }
  return PublicKey(std::move(pkey));
}

PublicKey::PublicKey(const PublicKey& other) {
  // A moved-from key holds nothing; its copy holds nothing either.
  if (other.pkey_ != nullptr) EVP_PKEY_up_ref(other.pkey_.get());
  pkey_.reset(other.pkey_.get());
}

PublicKey& PublicKey::operator=(const PublicKey& other) {
  if (this != &other) {
    if (other.pkey_ != nullptr) EVP_PKEY_up_ref(other.pkey_.get());
    pkey_.reset(other.pkey_.get());
  }
  return *this;
}

std::string PublicKey::ToDer() const { return SpkiDer(pkey_.get()); }

std::string PublicKey::ToPem() const {
  SslPtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || !PEM_write_bio_PUBKEY(bio.get(), pkey_.get())) {
    internal::ClearSslErrors();
    return {};
  }
  return internal::BioContents(bio.get());
}

KeyInfo PublicKey::info() const {
  KeyInfo info;
  EVP_PKEY* pkey = pkey_.get();
  switch (EVP_PKEY_id(pkey)) {
    case EVP_PKEY_RSA:
      info.algorithm = KeyAlgorithm::kRsa;
      info.bits = EVP_PKEY_bits(pkey);
      break;
    case EVP_PKEY_EC: {
      info.algorithm = KeyAlgorithm::kEcdsa;
      info.bits = EVP_PKEY_bits(pkey);
      const EC_KEY* ec = EVP_PKEY_get0_EC_KEY(pkey);
      const EC_GROUP* group = ec != nullptr ? EC_KEY_get0_group(ec) : nullptr;
      int nid = group != nullptr ? EC_GROUP_get_curve_name(group) : NID_undef;
      if (nid == NID_undef) {
        info.explicit_curve_parameters = true;
        info.curve = "explicit";
      } else {
        info.curve = CurveName(nid);
#if !defined(CERTPLANE_BORINGSSL)
        // OpenSSL 3 may recognise explicit parameters as a named curve; the
        // ASN.1 flag still tells how the key was encoded.
        if (EC_GROUP_get_asn1_flag(group) != OPENSSL_EC_NAMED_CURVE) {
          info.explicit_curve_parameters = true;
        }
#endif
      }
      break;
    }
    case EVP_PKEY_ED25519:
      info.algorithm = KeyAlgorithm::kEd25519;
      info.bits = 256;
      break;
    default:
      info.bits = EVP_PKEY_bits(pkey);
      break;
  }
  return info;
}

std::string PublicKey::SpkiSha256() const {
  std::string der = ToDer();
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(der.data()), der.size(), digest);
  return std::string(reinterpret_cast<char*>(digest), sizeof(digest));
}

bool PublicKey::operator==(const PublicKey& other) const {
  if (pkey_ == nullptr || other.pkey_ == nullptr) {
    return pkey_ == other.pkey_;
  }
  // Compares the keys, not their encodings: an EC point may be compressed
  // in one SubjectPublicKeyInfo and not in the other.
  const bool equal = EVP_PKEY_cmp(pkey_.get(), other.pkey_.get()) == 1;
  internal::ClearSslErrors();
  return equal;
}

namespace {

absl::Status CheckRsaExponent(const RSA* rsa, bool public_trust) {
  const BIGNUM* e = nullptr;
  if (rsa != nullptr) RSA_get0_key(rsa, nullptr, &e, nullptr);
  if (e == nullptr) {
    return absl::InvalidArgumentError("RSA key has no public exponent");
  }
  const int bits = BN_num_bits(e);
  const bool odd = BN_is_odd(e);
  // Odd with at least 2 bits: >= 3. Odd with at least 17 bits: >= 65537.
  if (odd && bits >= 2 && bits <= 256 && (!public_trust || bits >= 17)) {
    return absl::OkStatus();
  }
  std::string value = bits <= 64 ? absl::StrCat(BN_get_word(e))
                                 : absl::StrCat("of ", bits, " bits");
  return absl::InvalidArgumentError(absl::StrCat(
      "RSA public exponent ", value, " is not allowed; it must be odd, ",
      public_trust ? "at least 65537" : "at least 3",
      " and below 2^256 (Baseline Requirements 6.1.6)"));
}

}  // namespace

absl::Status CheckRsaPublicExponent(const PublicKey& key, bool public_trust) {
  if (key.native() == nullptr || EVP_PKEY_id(key.native()) != EVP_PKEY_RSA) {
    return absl::OkStatus();
  }
  return CheckRsaExponent(EVP_PKEY_get0_RSA(key.native()), public_trust);
}

// --------------------------------------------------------------- PrivateKey

absl::StatusOr<PrivateKey> PrivateKey::Generate(KeyType type) {
  int id = EVP_PKEY_RSA;
  int rsa_bits = 0;
  int curve = NID_undef;
  switch (type) {
    case KeyType::kRsa2048:
      rsa_bits = 2048;
      break;
    case KeyType::kRsa3072:
      rsa_bits = 3072;
      break;
    case KeyType::kRsa4096:
      rsa_bits = 4096;
      break;
    case KeyType::kEcdsaP256:
      id = EVP_PKEY_EC;
      curve = NID_X9_62_prime256v1;
      break;
    case KeyType::kEcdsaP384:
      id = EVP_PKEY_EC;
      curve = NID_secp384r1;
      break;
    case KeyType::kEd25519:
      id = EVP_PKEY_ED25519;
      break;
  }
  SslPtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_id(id, nullptr));
  if (ctx == nullptr) return SslInternal("EVP_PKEY_CTX_new_id");
  if (EVP_PKEY_keygen_init(ctx.get()) <= 0) {
    return SslInternal("EVP_PKEY_keygen_init");
  }
  if (rsa_bits > 0 &&
      EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), rsa_bits) <= 0) {
    return SslInternal("EVP_PKEY_CTX_set_rsa_keygen_bits");
  }
  if (curve != NID_undef &&
      EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx.get(), curve) <= 0) {
    return SslInternal("EVP_PKEY_CTX_set_ec_paramgen_curve_nid");
  }
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_keygen(ctx.get(), &raw) <= 0) {
    return SslInternal("EVP_PKEY_keygen");
  }
  return PrivateKey(EvpPkeyHandle(raw));
}

namespace {

#if !defined(CERTPLANE_BORINGSSL)
// The public half of `pkey` as a new key, copied through the key manager's
// parameters. OpenSSL 3.0's SPKI encoder and decoder cost about a million
// instructions per call each (they gather every provider's codecs), so this
// is the one to use on hot paths. Null if the key manager cannot do it.
EvpPkeyHandle CopyPublicHalf(EVP_PKEY* pkey) {
  if (EVP_PKEY_id(pkey) == EVP_PKEY_ED25519) {
    uint8_t raw[32];
    size_t length = sizeof(raw);
    if (EVP_PKEY_get_raw_public_key(pkey, raw, &length) != 1) return nullptr;
    return EvpPkeyHandle(
        EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw, length));
  }
  OSSL_PARAM* params = nullptr;
  if (EVP_PKEY_todata(pkey, EVP_PKEY_PUBLIC_KEY, &params) != 1) return nullptr;
  SslPtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  EVP_PKEY* out = nullptr;
  if (ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &out, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    out = nullptr;
  }
  OSSL_PARAM_free(params);
  return EvpPkeyHandle(out);
}
#endif

}  // namespace

PublicKey PrivateKey::public_key() const {
  // A separate key with only the public half, so the PublicKey never holds
  // private material.
#if !defined(CERTPLANE_BORINGSSL)
  if (EvpPkeyHandle copy = CopyPublicHalf(pkey_.get()); copy != nullptr) {
    return PublicKey::Adopt(std::move(copy));
  }
  internal::ClearSslErrors();
#endif
  std::string der = SpkiDer(pkey_.get());
  const auto* p = reinterpret_cast<const uint8_t*>(der.data());
  return PublicKey::Adopt(
      EvpPkeyHandle(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size()))));
}

// ------------------------------------------------- private key encodings

namespace {

// PBKDF2-HMAC-SHA256 iterations for keys we encrypt (OWASP 2023 guidance).
constexpr int kPbkdf2Iterations = 600000;

constexpr absl::string_view kUnsupportedTypeHint =
    "; certplane handles RSA, ECDSA (named curves) and Ed25519 keys";

// DER encodings of the object identifiers the pre-parse check looks for.
constexpr absl::string_view kOidRsaEncryption =
    "\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01";  // 1.2.840.113549.1.1.1
constexpr absl::string_view kOidEcPublicKey = "\x2a\x86\x48\xce\x3d\x02\x01";
constexpr absl::string_view kOidEd25519 = "\x2b\x65\x70";  // 1.3.101.112

constexpr uint8_t kTagInteger = internal::kDerInteger;
constexpr uint8_t kTagOctetString = internal::kDerOctetString;
constexpr uint8_t kTagOid = internal::kDerOid;
constexpr uint8_t kTagSequence = internal::kDerSequence;
constexpr uint8_t kTagContext0 = internal::kDerContext0;

// The strict DER reader in internal/der.h is used to recognise which private
// key structure some bytes hold and to refuse dangerous ones (explicit EC
// parameters, huge key derivation work factors) before any library parser
// sees them. It fails closed: anything it cannot read is refused.
using internal::ReadTlv;
using internal::ReadTlvWithTag;
using internal::SmallInteger;
using internal::Tlv;

absl::Status MalformedDerError(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(
      "not a private key: malformed DER in ", what,
      " (truncated nested element, or indefinite or non-minimal length)"));
}

using internal::OidName;

absl::Status ExplicitCurveError() {
  return absl::InvalidArgumentError(
      "explicit EC curve parameters are not supported; use a named curve");
}

// Checks the optional [0] parameters of an RFC 5915 ECPrivateKey.
absl::Status CheckEcPrivateKey(absl::string_view der) {
  if (!internal::IsStrictDer(der)) return MalformedDerError("EC private key");
  absl::string_view in = der;
  Tlv seq, version, key;
  if (!ReadTlvWithTag(&in, kTagSequence, &seq)) {
    return absl::InvalidArgumentError(
        "not a private key: malformed EC private key");
  }
  absl::string_view body = seq.contents;
  if (!ReadTlvWithTag(&body, kTagInteger, &version) ||
      !ReadTlvWithTag(&body, kTagOctetString, &key)) {
    return absl::InvalidArgumentError(
        "not a private key: malformed EC private key");
  }
  Tlv params;
  if (ReadTlvWithTag(&body, kTagContext0, &params)) {
    absl::string_view inner = params.contents;
    Tlv curve;
    if (!ReadTlv(&inner, &curve) || !inner.empty()) {
      return absl::InvalidArgumentError(
          "not a private key: malformed EC curve parameters");
    }
    if (curve.tag == kTagSequence) return ExplicitCurveError();
    if (curve.tag != kTagOid) {
      return absl::InvalidArgumentError(
          "EC private key does not name its curve; use a named curve");
    }
  }
  return absl::OkStatus();
}

enum class DerKind { kPkcs8, kEncryptedPkcs8, kRsa, kEc };

// Recognises the structure in `der` from its shape:
//   PrivateKeyInfo          SEQUENCE { INTEGER, SEQUENCE, OCTET STRING, ... }
//   EncryptedPrivateKeyInfo SEQUENCE { SEQUENCE, OCTET STRING }
//   RSAPrivateKey           SEQUENCE { INTEGER, INTEGER, ... }
//   ECPrivateKey            SEQUENCE { INTEGER, OCTET STRING, ... }
// and refuses what certplane must not parse.
absl::StatusOr<DerKind> ClassifyPrivateKeyDer(absl::string_view der) {
  if (der.empty()) {
    return absl::InvalidArgumentError("not a private key: empty input");
  }
  absl::string_view in = der;
  Tlv outer;
  if (!ReadTlv(&in, &outer) || outer.tag != kTagSequence) {
    return absl::InvalidArgumentError(
        "not a private key: not a DER SEQUENCE (garbage or truncated input)");
  }
  if (!in.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "trailing bytes after DER private key (", in.size(), " bytes)"));
  }
  if (!internal::IsStrictDer(der)) return MalformedDerError("private key");
  absl::string_view body = outer.contents;
  Tlv first, second;
  if (!ReadTlv(&body, &first) || !ReadTlv(&body, &second)) {
    return absl::InvalidArgumentError(
        "not a private key: DER SEQUENCE is too short or malformed");
  }
  if (first.tag == kTagSequence && second.tag == kTagOctetString) {
    // EncryptedPrivateKeyInfo: only known schemes, with bounded work, are
    // decrypted. The AlgorithmIdentifier is the first element of the body.
    absl::string_view rest = outer.contents;
    Tlv ignored;
    ReadTlv(&rest, &ignored);
    absl::string_view algorithm =
        outer.contents.substr(0, outer.contents.size() - rest.size());
    if (auto status =
            internal::CheckPbeAlgorithm(algorithm, "encrypted private key");
        !status.ok()) {
      return status;
    }
    return DerKind::kEncryptedPkcs8;
  }
  if (first.tag != kTagInteger) {
    return absl::InvalidArgumentError(
        "not a private key: unrecognised DER structure");
  }
  switch (second.tag) {
    case kTagInteger:
      return DerKind::kRsa;
    case kTagOctetString: {
      if (auto status = CheckEcPrivateKey(der); !status.ok()) return status;
      return DerKind::kEc;
    }
    case kTagSequence:
      break;
    default:
      return absl::InvalidArgumentError(
          "not a private key: unrecognised DER structure");
  }
  // PrivateKeyInfo: check the algorithm before any parser sees the key.
  absl::string_view alg = second.contents;
  Tlv oid, private_key;
  if (!ReadTlvWithTag(&alg, kTagOid, &oid) ||
      !ReadTlvWithTag(&body, kTagOctetString, &private_key)) {
    return absl::InvalidArgumentError(
        "not a private key: malformed PKCS#8 PrivateKeyInfo");
  }
  if (oid.contents == kOidRsaEncryption || oid.contents == kOidEd25519) {
    return DerKind::kPkcs8;
  }
  if (oid.contents != kOidEcPublicKey) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported private key type ", OidName(oid.contents),
                     kUnsupportedTypeHint));
  }
  Tlv curve;
  if (!ReadTlv(&alg, &curve) || !alg.empty()) {
    return absl::InvalidArgumentError(
        "EC private key does not name its curve; use a named curve");
  }
  if (curve.tag == kTagSequence) return ExplicitCurveError();
  if (curve.tag != kTagOid) {
    return absl::InvalidArgumentError(
        "EC private key does not name its curve; use a named curve");
  }
  if (auto status = CheckEcPrivateKey(private_key.contents); !status.ok()) {
    return status;
  }
  return DerKind::kPkcs8;
}

const uint8_t* Bytes(absl::string_view s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

// Runs an i2d-style `encode(uint8_t** out)` that allocates its output, and
// moves the bytes into SecretBytes, cleansing the library's buffer.
template <typename Encode>
absl::StatusOr<SecretBytes> EncodeSecret(Encode encode,
                                         absl::string_view what) {
  uint8_t* buffer = nullptr;
  int length = encode(&buffer);
  if (length <= 0 || buffer == nullptr) return SslInternal(what);
  SecretBytes out(absl::string_view(reinterpret_cast<char*>(buffer),
                                    static_cast<size_t>(length)));
  OPENSSL_cleanse(buffer, static_cast<size_t>(length));
  OPENSSL_free(buffer);
  return out;
}

// PEM armour (RFC 7468) around `der`, built directly into SecretBytes.
SecretBytes PemEncode(absl::string_view label, const SecretBytes& der) {
  const std::string begin = absl::StrCat("-----BEGIN ", label, "-----\n");
  const std::string end = absl::StrCat("-----END ", label, "-----\n");
  constexpr size_t kLineBytes = 48;  // 64 base64 characters.
  size_t lines = (der.size() + kLineBytes - 1) / kLineBytes;
  // Each line: 64 characters + '\n'; EVP_EncodeBlock also writes a NUL.
  SecretBytes out(begin.size() + lines * 65 + end.size() + 1);
  uint8_t* p = out.data();
  std::memcpy(p, begin.data(), begin.size());
  p += begin.size();
  for (size_t offset = 0; offset < der.size(); offset += kLineBytes) {
    size_t n = std::min(kLineBytes, der.size() - offset);
    auto written = EVP_EncodeBlock(p, der.data() + offset, n);
    p += written;
    *p++ = '\n';
  }
  std::memcpy(p, end.data(), end.size());
  p += end.size();
  out.Truncate(static_cast<size_t>(p - out.data()));
  return out;
}

// Owns what PEM_read_bio returns; the decoded bytes are cleansed on release.
struct PemBlock {
  char* name = nullptr;
  char* header = nullptr;
  uint8_t* data = nullptr;
  long length = 0;

  PemBlock() = default;
  PemBlock(const PemBlock&) = delete;
  PemBlock& operator=(const PemBlock&) = delete;
  ~PemBlock() { Reset(); }

  void Reset() {
    if (data != nullptr && length > 0) {
      OPENSSL_cleanse(data, static_cast<size_t>(length));
    }
    OPENSSL_free(data);
    OPENSSL_free(header);
    OPENSSL_free(name);
    name = header = nullptr;
    data = nullptr;
    length = 0;
  }
};

// Hands the caller's password to the library by copying exactly its bytes
// (it may contain NULs), rather than relying on a NUL-terminated string.
struct PasswordContext {
  std::optional<absl::string_view> password;
  bool too_long = false;
};

int CopyPasswordCallback(char* buffer, int size, int /*rwflag*/,
                         void* userdata) {
  auto* context = static_cast<PasswordContext*>(userdata);
  if (context == nullptr || !context->password.has_value()) return -1;
  absl::string_view password = *context->password;
  if (size < 0 || password.size() > static_cast<size_t>(size)) {
    context->too_long = true;
    return -1;
  }
  if (!password.empty()) std::memcpy(buffer, password.data(), password.size());
  return static_cast<int>(password.size());
}

absl::Status MissingPasswordError() {
  return absl::InvalidArgumentError(
      "private key is encrypted; a password is required");
}

absl::Status WrongPasswordError() {
  internal::ClearSslErrors();
  return absl::InvalidArgumentError("wrong password for encrypted private key");
}

// True for the errors that bytes which are not a key structure produce. After
// decryption they mean the password was wrong: about one wrong password in
// 256 decrypts to garbage with valid CBC padding.
bool IsMalformedKeyError(const absl::Status& status) {
  return status.code() == absl::StatusCode::kInvalidArgument &&
         (absl::StartsWith(status.message(), "not a private key") ||
          absl::StartsWith(status.message(), "trailing bytes"));
}

absl::Status CheckSupportedType(EVP_PKEY* pkey) {
  int id = EVP_PKEY_id(pkey);
  if (id == EVP_PKEY_EC) {
    // Backstop for the DER pre-parse: whatever the encoding, the key must be
    // on a named curve, and (OpenSSL) must have been encoded as one.
    const EC_KEY* ec = EVP_PKEY_get0_EC_KEY(pkey);
    const EC_GROUP* group = ec != nullptr ? EC_KEY_get0_group(ec) : nullptr;
    if (group == nullptr || EC_GROUP_get_curve_name(group) == NID_undef) {
      return ExplicitCurveError();
    }
#if !defined(CERTPLANE_BORINGSSL)
    if (EC_GROUP_get_asn1_flag(group) != OPENSSL_EC_NAMED_CURVE) {
      return ExplicitCurveError();
    }
#endif
    return absl::OkStatus();
  }
  if (id == EVP_PKEY_RSA)
    return CheckRsaExponent(EVP_PKEY_get0_RSA(pkey), false);
  if (id == EVP_PKEY_ED25519) return absl::OkStatus();
  const char* name = OBJ_nid2sn(id);
  return absl::InvalidArgumentError(absl::StrCat(
      "unsupported private key type ",
      name != nullptr ? name : absl::StrCat("nid ", id), kUnsupportedTypeHint));
}

absl::StatusOr<EvpPkeyHandle> ParsePlainDer(absl::string_view der,
                                            DerKind kind) {
  const uint8_t* p = Bytes(der);
  const long length = static_cast<long>(der.size());
  EvpPkeyHandle pkey;
  switch (kind) {
    case DerKind::kPkcs8: {
      SslPtr<PKCS8_PRIV_KEY_INFO> p8(
          d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, length));
      if (p8 == nullptr) {
        return SslError(absl::StatusCode::kInvalidArgument,
                        "not a private key: d2i_PKCS8_PRIV_KEY_INFO");
      }
      pkey.reset(EVP_PKCS82PKEY(p8.get()));
      if (pkey == nullptr) {
        return SslError(absl::StatusCode::kInvalidArgument,
                        "not a private key: EVP_PKCS82PKEY");
      }
      break;
    }
    case DerKind::kRsa: {
      SslPtr<RSA> rsa(d2i_RSAPrivateKey(nullptr, &p, length));
      if (rsa == nullptr) {
        return SslError(absl::StatusCode::kInvalidArgument,
                        "not a private key: d2i_RSAPrivateKey");
      }
      pkey.reset(EVP_PKEY_new());
      if (pkey == nullptr) return SslInternal("EVP_PKEY_new");
      if (EVP_PKEY_assign_RSA(pkey.get(), rsa.get()) != 1) {
        return SslInternal("EVP_PKEY_assign_RSA");
      }
      rsa.release();  // Now owned by pkey.
      break;
    }
    case DerKind::kEc: {
      SslPtr<EC_KEY> ec(d2i_ECPrivateKey(nullptr, &p, length));
      if (ec == nullptr) {
        return SslError(absl::StatusCode::kInvalidArgument,
                        "not a private key: d2i_ECPrivateKey");
      }
      pkey.reset(EVP_PKEY_new());
      if (pkey == nullptr) return SslInternal("EVP_PKEY_new");
      if (EVP_PKEY_assign_EC_KEY(pkey.get(), ec.get()) != 1) {
        return SslInternal("EVP_PKEY_assign_EC_KEY");
      }
      ec.release();  // Now owned by pkey.
      break;
    }
    case DerKind::kEncryptedPkcs8:
      return absl::InternalError("ParsePlainDer: encrypted input");
  }
  if (p != Bytes(der) + der.size()) {
    return absl::InvalidArgumentError("trailing bytes after DER private key");
  }
  if (auto status = CheckSupportedType(pkey.get()); !status.ok()) return status;
  return pkey;
}

#if defined(CERTPLANE_BORINGSSL)
// BoringSSL's PKCS8_encrypt always uses PBKDF2 with HMAC-SHA1, and its
// PKCS8_decrypt re-parses the key (turning explicit curve parameters that
// match a built-in curve into a named curve, which would hide them from the
// check above). So with BoringSSL, PBES2 (RFC 8018) is done here, from
// PKCS5_PBKDF2_HMAC and EVP_CIPHER, with a small DER writer.

constexpr absl::string_view kOidPbes2 =
    "\x2a\x86\x48\x86\xf7\x0d\x01\x05\x0d";  // 1.2.840.113549.1.5.13
constexpr absl::string_view kOidPbkdf2 =
    "\x2a\x86\x48\x86\xf7\x0d\x01\x05\x0c";  // 1.2.840.113549.1.5.12
constexpr absl::string_view kOidHmacWithSha1 =
    "\x2a\x86\x48\x86\xf7\x0d\x02\x07";
constexpr absl::string_view kOidHmacWithSha256 =
    "\x2a\x86\x48\x86\xf7\x0d\x02\x09";
constexpr absl::string_view kOidHmacWithSha384 =
    "\x2a\x86\x48\x86\xf7\x0d\x02\x0a";
constexpr absl::string_view kOidHmacWithSha512 =
    "\x2a\x86\x48\x86\xf7\x0d\x02\x0b";
constexpr absl::string_view kOidAes128Cbc =
    "\x60\x86\x48\x01\x65\x03\x04\x01\x02";
constexpr absl::string_view kOidAes192Cbc =
    "\x60\x86\x48\x01\x65\x03\x04\x01\x16";
constexpr absl::string_view kOidAes256Cbc =
    "\x60\x86\x48\x01\x65\x03\x04\x01\x2a";
constexpr absl::string_view kOidDesEde3Cbc = "\x2a\x86\x48\x86\xf7\x0d\x03\x07";
constexpr uint8_t kTagNull = 0x05;
constexpr size_t kSaltSize = 16;

std::string DerTlv(uint8_t tag, absl::string_view contents) {
  std::string out(1, static_cast<char>(tag));
  size_t length = contents.size();
  if (length < 0x80) {
    out.push_back(static_cast<char>(length));
  } else {
    std::string bytes;
    for (size_t n = length; n > 0; n >>= 8) {
      bytes.insert(bytes.begin(), static_cast<char>(n & 0xff));
    }
    out.push_back(static_cast<char>(0x80 | bytes.size()));
    out += bytes;
  }
  out.append(contents.data(), contents.size());
  return out;
}

std::string DerInteger(uint64_t value) {
  std::string bytes;
  do {
    bytes.insert(bytes.begin(), static_cast<char>(value & 0xff));
    value >>= 8;
  } while (value > 0);
  if (static_cast<uint8_t>(bytes[0]) & 0x80) bytes.insert(bytes.begin(), '\0');
  return DerTlv(kTagInteger, bytes);
}

absl::string_view AsView(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Runs `cipher` over `in` (CBC with PKCS#7 padding). A padding failure on
// decryption means the password was wrong.
absl::StatusOr<SecretBytes> CbcCrypt(const EVP_CIPHER* cipher,
                                     const SecretBytes& key,
                                     absl::string_view iv, absl::string_view in,
                                     bool encrypt) {
  SslPtr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  if (ctx == nullptr) return SslInternal("EVP_CIPHER_CTX_new");
  if (EVP_CipherInit_ex(ctx.get(), cipher, nullptr, key.data(), Bytes(iv),
                        encrypt ? 1 : 0) != 1) {
    return SslInternal("EVP_CipherInit_ex");
  }
  SecretBytes out(in.size() + EVP_CIPHER_block_size(cipher));
  int length = 0;
  int final_length = 0;
  if (EVP_CipherUpdate(ctx.get(), out.data(), &length, Bytes(in),
                       static_cast<int>(in.size())) != 1) {
    return SslInternal("EVP_CipherUpdate");
  }
  if (EVP_CipherFinal_ex(ctx.get(), out.data() + length, &final_length) != 1) {
    if (!encrypt) return WrongPasswordError();
    return SslInternal("EVP_CipherFinal_ex");
  }
  out.Truncate(static_cast<size_t>(length + final_length));
  return out;
}

absl::StatusOr<SecretBytes> Pbes2Encrypt(const SecretBytes& plain,
                                         absl::string_view password) {
  uint8_t salt[kSaltSize];
  uint8_t iv[16];
  if (RAND_bytes(salt, sizeof(salt)) != 1 || RAND_bytes(iv, sizeof(iv)) != 1) {
    return SslInternal("RAND_bytes");
  }
  SecretBytes key(32);
  if (PKCS5_PBKDF2_HMAC(password.data(), password.size(), salt, sizeof(salt),
                        kPbkdf2Iterations, EVP_sha256(), key.size(),
                        key.data()) != 1) {
    return SslInternal("PKCS5_PBKDF2_HMAC");
  }
  auto ciphertext = CbcCrypt(EVP_aes_256_cbc(), key, AsView(iv, sizeof(iv)),
                             plain.view(), /*encrypt=*/true);
  if (!ciphertext.ok()) return ciphertext.status();
  std::string prf = DerTlv(
      kTagSequence,
      absl::StrCat(DerTlv(kTagOid, kOidHmacWithSha256), DerTlv(kTagNull, "")));
  std::string kdf = DerTlv(
      kTagSequence,
      absl::StrCat(DerTlv(kTagOid, kOidPbkdf2),
                   DerTlv(kTagSequence,
                          absl::StrCat(DerTlv(kTagOctetString,
                                              AsView(salt, sizeof(salt))),
                                       DerInteger(kPbkdf2Iterations), prf))));
  std::string scheme =
      DerTlv(kTagSequence,
             absl::StrCat(DerTlv(kTagOid, kOidAes256Cbc),
                          DerTlv(kTagOctetString, AsView(iv, sizeof(iv)))));
  std::string algorithm =
      DerTlv(kTagSequence,
             absl::StrCat(DerTlv(kTagOid, kOidPbes2),
                          DerTlv(kTagSequence, absl::StrCat(kdf, scheme))));
  return SecretBytes(DerTlv(
      kTagSequence,
      absl::StrCat(algorithm, DerTlv(kTagOctetString, ciphertext->view()))));
}

// Decrypts a PBES2 EncryptedPrivateKeyInfo. Sets *not_pbes2 (and returns an
// error) for other schemes, which the caller hands to PKCS8_decrypt.
absl::StatusOr<SecretBytes> Pbes2Decrypt(absl::string_view der,
                                         absl::string_view password,
                                         bool* not_pbes2) {
  *not_pbes2 = false;
  const absl::Status malformed = absl::InvalidArgumentError(
      "not a private key: malformed EncryptedPrivateKeyInfo");
  absl::string_view in = der;
  Tlv outer, algorithm, oid, params, data;
  if (!ReadTlvWithTag(&in, kTagSequence, &outer)) return malformed;
  absl::string_view body = outer.contents;
  if (!ReadTlvWithTag(&body, kTagSequence, &algorithm) ||
      !ReadTlvWithTag(&body, kTagOctetString, &data) || !body.empty()) {
    return malformed;
  }
  absl::string_view alg = algorithm.contents;
  if (!ReadTlvWithTag(&alg, kTagOid, &oid)) return malformed;
  if (oid.contents != kOidPbes2) {
    *not_pbes2 = true;
    return absl::UnimplementedError("not PBES2");
  }
  Tlv kdf, scheme;
  if (!ReadTlvWithTag(&alg, kTagSequence, &params)) return malformed;
  absl::string_view p = params.contents;
  if (!ReadTlvWithTag(&p, kTagSequence, &kdf) ||
      !ReadTlvWithTag(&p, kTagSequence, &scheme)) {
    return malformed;
  }
  // Key derivation: PBKDF2 only.
  absl::string_view k = kdf.contents;
  Tlv kdf_oid, kdf_params, salt, iterations;
  if (!ReadTlvWithTag(&k, kTagOid, &kdf_oid)) return malformed;
  if (kdf_oid.contents != kOidPbkdf2) {
    return absl::UnimplementedError(absl::StrCat(
        "the BoringSSL build of certplane decrypts PBES2 keys only with "
        "PBKDF2, not ",
        OidName(kdf_oid.contents)));
  }
  if (!ReadTlvWithTag(&k, kTagSequence, &kdf_params)) return malformed;
  absl::string_view kp = kdf_params.contents;
  long count = 0;
  if (!ReadTlvWithTag(&kp, kTagOctetString, &salt) ||
      !ReadTlvWithTag(&kp, kTagInteger, &iterations) ||
      !SmallInteger(iterations.contents, &count) || count < 1) {
    return malformed;
  }
  long key_length = -1;
  Tlv key_length_tlv, prf;
  if (ReadTlvWithTag(&kp, kTagInteger, &key_length_tlv) &&
      !SmallInteger(key_length_tlv.contents, &key_length)) {
    return malformed;
  }
  const EVP_MD* md = EVP_sha1();  // RFC 8018 default PRF.
  if (ReadTlvWithTag(&kp, kTagSequence, &prf)) {
    absl::string_view pr = prf.contents;
    Tlv prf_oid;
    if (!ReadTlvWithTag(&pr, kTagOid, &prf_oid)) return malformed;
    if (prf_oid.contents == kOidHmacWithSha1) {
      md = EVP_sha1();
    } else if (prf_oid.contents == kOidHmacWithSha256) {
      md = EVP_sha256();
    } else if (prf_oid.contents == kOidHmacWithSha384) {
      md = EVP_sha384();
    } else if (prf_oid.contents == kOidHmacWithSha512) {
      md = EVP_sha512();
    } else {
      return absl::UnimplementedError(
          absl::StrCat("unsupported PBKDF2 PRF ", OidName(prf_oid.contents),
                       " in encrypted private key (BoringSSL build)"));
    }
  }
  // Encryption scheme.
  absl::string_view sc = scheme.contents;
  Tlv cipher_oid, iv;
  if (!ReadTlvWithTag(&sc, kTagOid, &cipher_oid)) return malformed;
  const EVP_CIPHER* cipher = nullptr;
  if (cipher_oid.contents == kOidAes256Cbc) {
    cipher = EVP_aes_256_cbc();
  } else if (cipher_oid.contents == kOidAes192Cbc) {
    cipher = EVP_aes_192_cbc();
  } else if (cipher_oid.contents == kOidAes128Cbc) {
    cipher = EVP_aes_128_cbc();
  } else if (cipher_oid.contents == kOidDesEde3Cbc) {
    cipher = EVP_des_ede3_cbc();
  } else {
    return absl::UnimplementedError(
        absl::StrCat("unsupported PBES2 cipher ", OidName(cipher_oid.contents),
                     " in encrypted private key (BoringSSL build)"));
  }
  if (!ReadTlvWithTag(&sc, kTagOctetString, &iv) ||
      iv.contents.size() != EVP_CIPHER_iv_length(cipher) ||
      (key_length != -1 &&
       static_cast<size_t>(key_length) != EVP_CIPHER_key_length(cipher))) {
    return malformed;
  }
  SecretBytes key(EVP_CIPHER_key_length(cipher));
  if (PKCS5_PBKDF2_HMAC(password.data(), password.size(), Bytes(salt.contents),
                        salt.contents.size(), static_cast<unsigned>(count), md,
                        key.size(), key.data()) != 1) {
    return SslInternal("PKCS5_PBKDF2_HMAC");
  }
  return CbcCrypt(cipher, key, iv.contents, data.contents, /*encrypt=*/false);
}
#endif  // CERTPLANE_BORINGSSL

// Decrypts an EncryptedPrivateKeyInfo with the library's PKCS8_decrypt and
// returns the PrivateKeyInfo DER.
absl::StatusOr<SecretBytes> LibraryDecryptPkcs8(absl::string_view der,
                                                absl::string_view password) {
  const uint8_t* p = Bytes(der);
  SslPtr<X509_SIG> sig(
      d2i_X509_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (sig == nullptr) {
    return SslError(absl::StatusCode::kInvalidArgument,
                    "not a private key: malformed EncryptedPrivateKeyInfo "
                    "(d2i_X509_SIG)");
  }
  SslPtr<PKCS8_PRIV_KEY_INFO> p8(
      PKCS8_decrypt(sig.get(), password.empty() ? "" : password.data(),
                    static_cast<int>(password.size())));
  if (p8 == nullptr) {
#if !defined(CERTPLANE_BORINGSSL)
    // A scheme the pre-parse allows that this OpenSSL cannot run (RC2 and
    // RC4 live in the legacy provider) is not a wrong password.
    bool unsupported = false;
    while (unsigned long error = ERR_get_error()) {
      const int reason = ERR_GET_REASON(error);
      if (reason == ERR_R_UNSUPPORTED || reason == ERR_R_FETCH_FAILED) {
        unsupported = true;
      }
    }
    if (unsupported) {
      const X509_ALGOR* algorithm = nullptr;
      X509_SIG_get0(sig.get(), &algorithm, nullptr);
      const ASN1_OBJECT* object = nullptr;
      X509_ALGOR_get0(&object, nullptr, nullptr, algorithm);
      const char* name = OBJ_nid2ln(OBJ_obj2nid(object));
      return absl::UnimplementedError(absl::StrCat(
          "encrypted private key uses ", name != nullptr ? name : "a scheme",
          ", which this OpenSSL cannot run (its legacy provider is not "
          "loaded); re-encrypt the key with PBES2 (PBKDF2, AES-256-CBC)"));
    }
#endif
    return WrongPasswordError();
  }
  return EncodeSecret(
      [&](uint8_t** out) { return i2d_PKCS8_PRIV_KEY_INFO(p8.get(), out); },
      "i2d_PKCS8_PRIV_KEY_INFO");
}

absl::StatusOr<EvpPkeyHandle> ParseEncryptedPkcs8(
    absl::string_view der, std::optional<absl::string_view> password) {
  if (!password.has_value()) return MissingPasswordError();
  if (password->size() > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError("password is too long");
  }
#if defined(CERTPLANE_BORINGSSL)
  bool not_pbes2 = false;
  auto plain = Pbes2Decrypt(der, *password, &not_pbes2);
  // PBES1 (PKCS#12 schemes): BoringSSL's own decoder.
  if (not_pbes2) plain = LibraryDecryptPkcs8(der, *password);
#else
  auto plain = LibraryDecryptPkcs8(der, *password);
#endif
  if (!plain.ok()) return plain.status();
  auto kind = ClassifyPrivateKeyDer(plain->view());
  if (!kind.ok()) {
    // Garbage that happened to decrypt with valid padding: wrong password.
    return IsMalformedKeyError(kind.status()) ? WrongPasswordError()
                                              : kind.status();
  }
  if (*kind != DerKind::kPkcs8) return WrongPasswordError();
  auto pkey = ParsePlainDer(plain->view(), *kind);
  if (!pkey.ok() && IsMalformedKeyError(pkey.status())) {
    return WrongPasswordError();
  }
  return pkey;
}

absl::StatusOr<EvpPkeyHandle> ParseDer(
    absl::string_view der, std::optional<absl::string_view> password) {
  auto kind = ClassifyPrivateKeyDer(der);
  if (!kind.ok()) return kind.status();
  if (*kind == DerKind::kEncryptedPkcs8) {
    return ParseEncryptedPkcs8(der, password);
  }
  return ParsePlainDer(der, *kind);
}

absl::StatusOr<EvpPkeyHandle> ParsePem(
    absl::string_view pem, std::optional<absl::string_view> password) {
  auto bio = internal::MemoryBio(pem);
  if (bio == nullptr) return internal::InputTooLargeOr(pem, "BIO_new_mem_buf");
  PemBlock block;
  // Skips blocks that are not private keys (certificates, "EC PARAMETERS").
  while (true) {
    block.Reset();
    if (PEM_read_bio(bio.get(), &block.name, &block.header, &block.data,
                     &block.length) != 1) {
      return SslError(absl::StatusCode::kInvalidArgument,
                      "not a private key: no PEM private key block found "
                      "(PEM_read_bio)");
    }
    absl::string_view name(block.name);
    if (name == "PRIVATE KEY" || name == "ENCRYPTED PRIVATE KEY" ||
        name == "RSA PRIVATE KEY" || name == "EC PRIVATE KEY") {
      break;
    }
    if (absl::EndsWith(name, "PRIVATE KEY")) {
      return absl::InvalidArgumentError(
          absl::StrCat("unsupported private key type (PEM \"", name, "\")",
                       kUnsupportedTypeHint));
    }
  }
  absl::string_view name(block.name);
  absl::string_view der(reinterpret_cast<const char*>(block.data),
                        static_cast<size_t>(block.length));
  const bool traditional =
      name == "RSA PRIVATE KEY" || name == "EC PRIVATE KEY";
  const bool legacy_encrypted =
      absl::StrContains(block.header, "Proc-Type: 4,ENCRYPTED");
  if (legacy_encrypted) {
    if (!traditional) {
      return absl::InvalidArgumentError(
          absl::StrCat("not a private key: PEM \"", name,
                       "\" block has unexpected Proc-Type: ENCRYPTED headers"));
    }
    if (!password.has_value()) return MissingPasswordError();
    EVP_CIPHER_INFO cipher;
    if (PEM_get_EVP_CIPHER_INFO(block.header, &cipher) != 1) {
      return SslError(absl::StatusCode::kInvalidArgument,
                      "unsupported or malformed DEK-Info header in encrypted "
                      "PEM private key (PEM_get_EVP_CIPHER_INFO)");
    }
    PasswordContext context{password};
    if (PEM_do_header(&cipher, block.data, &block.length, &CopyPasswordCallback,
                      &context) != 1) {
      if (context.too_long) {
        internal::ClearSslErrors();
        return absl::InvalidArgumentError(absl::StrCat(
            "password is too long for a legacy encrypted PEM key (at most ",
            PEM_BUFSIZE, " bytes)"));
      }
      return WrongPasswordError();
    }
    der = absl::string_view(reinterpret_cast<const char*>(block.data),
                            static_cast<size_t>(block.length));
  }
  auto kind = ClassifyPrivateKeyDer(der);
  if (kind.ok()) {
    bool matches = (name == "PRIVATE KEY" && *kind == DerKind::kPkcs8) ||
                   (name == "ENCRYPTED PRIVATE KEY" &&
                    *kind == DerKind::kEncryptedPkcs8) ||
                   (name == "RSA PRIVATE KEY" && *kind == DerKind::kRsa) ||
                   (name == "EC PRIVATE KEY" && *kind == DerKind::kEc);
    if (!matches) {
      kind = absl::InvalidArgumentError(
          absl::StrCat("not a private key: PEM \"", name,
                       "\" block does not hold that structure"));
    }
  }
  // Garbage that decrypted with valid padding means a wrong password.
  auto garbled = [&](const absl::Status& status) {
    return legacy_encrypted && IsMalformedKeyError(status);
  };
  if (!kind.ok()) {
    return garbled(kind.status()) ? WrongPasswordError() : kind.status();
  }
  if (*kind == DerKind::kEncryptedPkcs8) {
    return ParseEncryptedPkcs8(der, password);
  }
  auto pkey = ParsePlainDer(der, *kind);
  if (!pkey.ok() && garbled(pkey.status())) return WrongPasswordError();
  return pkey;
}

const EVP_MD* DigestByName(absl::string_view digest) {
  if (digest == "sha256") return EVP_sha256();
  if (digest == "sha384") return EVP_sha384();
  if (digest == "sha512") return EVP_sha512();
  return nullptr;
}

absl::Status UnknownDigestError(absl::string_view digest) {
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown digest \"", digest, "\"; expected sha256, sha384 or sha512"));
}

// The input pointer for EVP calls: never null, even for empty data.
const uint8_t* DataOrEmpty(absl::string_view data) {
  static const uint8_t kEmpty = 0;
  return data.empty() ? &kEmpty : Bytes(data);
}

}  // namespace

absl::StatusOr<PrivateKey> PrivateKey::FromPem(
    absl::string_view pem, std::optional<absl::string_view> password) {
  if (pem.size() > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError("not a private key: input too large");
  }
  auto pkey = ParsePem(pem, password);
  if (!pkey.ok()) return pkey.status();
  return PrivateKey(*std::move(pkey));
}

absl::StatusOr<PrivateKey> PrivateKey::FromDer(
    absl::string_view der, std::optional<absl::string_view> password) {
  auto pkey = ParseDer(der, password);
  if (!pkey.ok()) return pkey.status();
  return PrivateKey(*std::move(pkey));
}

absl::StatusOr<SecretBytes> PrivateKey::ToPkcs8Der() const {
  SslPtr<PKCS8_PRIV_KEY_INFO> p8(EVP_PKEY2PKCS8(pkey_.get()));
  if (p8 == nullptr) return SslInternal("EVP_PKEY2PKCS8");
  return EncodeSecret(
      [&](uint8_t** out) { return i2d_PKCS8_PRIV_KEY_INFO(p8.get(), out); },
      "i2d_PKCS8_PRIV_KEY_INFO");
}

absl::StatusOr<SecretBytes> PrivateKey::ToPkcs8Pem() const {
  auto der = ToPkcs8Der();
  if (!der.ok()) return der.status();
  return PemEncode("PRIVATE KEY", *der);
}

absl::StatusOr<SecretBytes> PrivateKey::ToEncryptedPkcs8Der(
    absl::string_view password) const {
  if (password.empty()) {
    return absl::InvalidArgumentError(
        "a non-empty password is required to encrypt a private key");
  }
  if (password.size() > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError("password is too long");
  }
  SslPtr<PKCS8_PRIV_KEY_INFO> p8(EVP_PKEY2PKCS8(pkey_.get()));
  if (p8 == nullptr) return SslInternal("EVP_PKEY2PKCS8");
#if defined(CERTPLANE_BORINGSSL)
  auto plain = EncodeSecret(
      [&](uint8_t** out) { return i2d_PKCS8_PRIV_KEY_INFO(p8.get(), out); },
      "i2d_PKCS8_PRIV_KEY_INFO");
  if (!plain.ok()) return plain.status();
  return Pbes2Encrypt(*plain, password);
#else
  // Spell out the PRF rather than rely on OpenSSL's default.
  SslPtr<X509_ALGOR> pbe(PKCS5_pbe2_set_iv(EVP_aes_256_cbc(), kPbkdf2Iterations,
                                           nullptr, 0, nullptr,
                                           NID_hmacWithSHA256));
  if (pbe == nullptr) return SslInternal("PKCS5_pbe2_set_iv");
  SslPtr<X509_SIG> sig(PKCS8_set0_pbe(
      password.data(), static_cast<int>(password.size()), p8.get(), pbe.get()));
  if (sig == nullptr) return SslInternal("PKCS8_set0_pbe");
  pbe.release();  // Now owned by sig.
  return EncodeSecret(
      [&](uint8_t** out) { return i2d_X509_SIG(sig.get(), out); },
      "i2d_X509_SIG");
#endif
}

absl::StatusOr<SecretBytes> PrivateKey::ToEncryptedPkcs8Pem(
    absl::string_view password) const {
  auto der = ToEncryptedPkcs8Der(password);
  if (!der.ok()) return der.status();
  return PemEncode("ENCRYPTED PRIVATE KEY", *der);
}

absl::StatusOr<SecretBytes> PrivateKey::ToTraditionalPem() const {
  switch (EVP_PKEY_id(pkey_.get())) {
    case EVP_PKEY_RSA: {
      const RSA* rsa = EVP_PKEY_get0_RSA(pkey_.get());
      if (rsa == nullptr) return SslInternal("EVP_PKEY_get0_RSA");
      auto der = EncodeSecret(
          [&](uint8_t** out) { return i2d_RSAPrivateKey(rsa, out); },
          "i2d_RSAPrivateKey");
      if (!der.ok()) return der.status();
      return PemEncode("RSA PRIVATE KEY", *der);
    }
    case EVP_PKEY_EC: {
      const EC_KEY* ec = EVP_PKEY_get0_EC_KEY(pkey_.get());
      if (ec == nullptr) return SslInternal("EVP_PKEY_get0_EC_KEY");
      auto der =
          EncodeSecret([&](uint8_t** out) { return i2d_ECPrivateKey(ec, out); },
                       "i2d_ECPrivateKey");
      if (!der.ok()) return der.status();
      return PemEncode("EC PRIVATE KEY", *der);
    }
    case EVP_PKEY_ED25519:
      return absl::UnimplementedError(
          "Ed25519 keys have no traditional PEM form; use PKCS#8");
    default:
      return absl::UnimplementedError(
          "no traditional PEM form for this key type");
  }
}

absl::StatusOr<std::string> PrivateKey::Sign(absl::string_view data,
                                             absl::string_view digest) const {
  const EVP_MD* md = DigestByName(digest);
  if (md == nullptr) return UnknownDigestError(digest);
  if (EVP_PKEY_id(pkey_.get()) == EVP_PKEY_ED25519) md = nullptr;
  SslPtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  if (ctx == nullptr) return SslInternal("EVP_MD_CTX_new");
  if (EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, pkey_.get()) != 1) {
    return SslInternal("EVP_DigestSignInit");
  }
  size_t length = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &length, DataOrEmpty(data),
                     data.size()) != 1) {
    return SslInternal("EVP_DigestSign (size)");
  }
  std::string signature(length, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<uint8_t*>(signature.data()),
                     &length, DataOrEmpty(data), data.size()) != 1) {
    return SslInternal("EVP_DigestSign");
  }
  signature.resize(length);
  return signature;
}

absl::StatusOr<std::string> PrivateKey::SignDigest(
    absl::string_view digest_value, absl::string_view digest) const {
  const EVP_MD* md = DigestByName(digest);
  if (md == nullptr) return UnknownDigestError(digest);
  const int type = EVP_PKEY_id(pkey_.get());
  if (type == EVP_PKEY_ED25519) {
    return absl::InvalidArgumentError(
        "Ed25519 signs messages, not digests; sign the data instead");
  }
  if (type != EVP_PKEY_RSA && type != EVP_PKEY_EC) {
    return absl::InvalidArgumentError(
        "only RSA and ECDSA keys can sign a precomputed digest");
  }
  const size_t expected = static_cast<size_t>(EVP_MD_size(md));
  if (digest_value.size() != expected) {
    return absl::InvalidArgumentError(
        absl::StrCat("digest value is ", digest_value.size(), " bytes; a ",
                     digest, " digest is ", expected, " bytes"));
  }
  SslPtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new(pkey_.get(), nullptr));
  if (ctx == nullptr) return SslInternal("EVP_PKEY_CTX_new");
  if (EVP_PKEY_sign_init(ctx.get()) != 1) {
    return SslInternal("EVP_PKEY_sign_init");
  }
  if (type == EVP_PKEY_RSA &&
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1) {
    return SslInternal("EVP_PKEY_CTX_set_rsa_padding");
  }
  // With the digest set, RSA signs its DigestInfo (PKCS#1 v1.5).
  if (EVP_PKEY_CTX_set_signature_md(ctx.get(), md) != 1) {
    return SslInternal("EVP_PKEY_CTX_set_signature_md");
  }
  size_t length = 0;
  if (EVP_PKEY_sign(ctx.get(), nullptr, &length, Bytes(digest_value),
                    digest_value.size()) != 1) {
    return SslInternal("EVP_PKEY_sign (size)");
  }
  std::string signature(length, '\0');
  if (EVP_PKEY_sign(ctx.get(), reinterpret_cast<uint8_t*>(signature.data()),
                    &length, Bytes(digest_value), digest_value.size()) != 1) {
    return SslInternal("EVP_PKEY_sign");
  }
  signature.resize(length);
  return signature;
}

absl::Status VerifySignature(const PublicKey& key, absl::string_view data,
                             absl::string_view signature,
                             absl::string_view digest) {
  const EVP_MD* md = DigestByName(digest);
  if (md == nullptr) return UnknownDigestError(digest);
  if (EVP_PKEY_id(key.native()) == EVP_PKEY_ED25519) md = nullptr;
  SslPtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  if (ctx == nullptr) return SslInternal("EVP_MD_CTX_new");
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key.native()) !=
      1) {
    return SslInternal("EVP_DigestVerifyInit");
  }
  if (EVP_DigestVerify(ctx.get(), DataOrEmpty(signature), signature.size(),
                       DataOrEmpty(data), data.size()) != 1) {
    internal::ClearSslErrors();
    return absl::InvalidArgumentError("signature does not verify");
  }
  return absl::OkStatus();
}

}  // namespace certplane::crypto
