#include "libs/crypto/key.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
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

// DER SubjectPublicKeyInfo of any EVP_PKEY (public half only).
std::string SpkiDer(EVP_PKEY* pkey) {
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

absl::StatusOr<PublicKey> PublicKey::FromDer(absl::string_view der) {
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
  auto bio = internal::MemoryBio(pem);
  if (bio == nullptr) return SslInternal("BIO_new_mem_buf");
  EvpPkeyHandle pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (pkey == nullptr) {
    return SslError(absl::StatusCode::kInvalidArgument,
                    "no PEM \"PUBLIC KEY\" block (PEM_read_bio_PUBKEY)");
  }
  return PublicKey(std::move(pkey));
}

PublicKey::PublicKey(const PublicKey& other) {
  EVP_PKEY_up_ref(other.pkey_.get());
  pkey_.reset(other.pkey_.get());
}

PublicKey& PublicKey::operator=(const PublicKey& other) {
  if (this != &other) {
    EVP_PKEY_up_ref(other.pkey_.get());
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
  return ToDer() == other.ToDer();
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

PublicKey PrivateKey::public_key() const {
  // Round-trip through SPKI so the PublicKey never holds private material.
  std::string der = SpkiDer(pkey_.get());
  const auto* p = reinterpret_cast<const uint8_t*>(der.data());
  return PublicKey::Adopt(
      EvpPkeyHandle(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size()))));
}

}  // namespace certplane::crypto
