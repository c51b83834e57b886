#include "libs/crypto/ecies.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "libs/crypto/aead.h"
#include "libs/crypto/internal/ssl_util.h"

namespace certplane::crypto {
namespace {

using internal::SslInternal;
using internal::SslPtr;

constexpr uint8_t kEciesVersion = 0x01;
constexpr size_t kSha256Size = 32;

bool IsP256(const KeyInfo& info) {
  return info.algorithm == KeyAlgorithm::kEcdsa && info.curve == "P-256" &&
         !info.explicit_curve_parameters;
}

void AppendU16(std::string& out, size_t value) {
  out.push_back(static_cast<char>((value >> 8) & 0xff));
  out.push_back(static_cast<char>(value & 0xff));
}

// HMAC-SHA256(key, data) into `out` (32 bytes).
absl::Status HmacSha256(absl::string_view key, absl::string_view data,
                        uint8_t* out) {
  unsigned int out_len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const uint8_t*>(data.data()), data.size(), out,
           &out_len) == nullptr ||
      out_len != kSha256Size) {
    return SslInternal("HMAC (SHA-256)");
  }
  return absl::OkStatus();
}

// ECDH shared secret between `own` (private) and `peer` (public).
absl::StatusOr<SecretBytes> Ecdh(evp_pkey_st* own, evp_pkey_st* peer) {
  SslPtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new(own, nullptr));
  if (ctx == nullptr) return SslInternal("EVP_PKEY_CTX_new (ECDH)");
  if (EVP_PKEY_derive_init(ctx.get()) != 1) {
    return SslInternal("EVP_PKEY_derive_init");
  }
  if (EVP_PKEY_derive_set_peer(ctx.get(), peer) != 1) {
    return SslInternal("EVP_PKEY_derive_set_peer");
  }
  size_t length = 0;
  if (EVP_PKEY_derive(ctx.get(), nullptr, &length) != 1 || length == 0) {
    return SslInternal("EVP_PKEY_derive (length)");
  }
  SecretBytes secret(length);
  if (EVP_PKEY_derive(ctx.get(), secret.data(), &length) != 1) {
    return SslInternal("EVP_PKEY_derive");
  }
  secret.Truncate(length);
  return secret;
}

std::string Info(absl::string_view ephemeral_der,
                 absl::string_view recipient_der) {
  std::string info(kEciesInfoPrefix);
  AppendU16(info, ephemeral_der.size());
  info.append(ephemeral_der.data(), ephemeral_der.size());
  AppendU16(info, recipient_der.size());
  info.append(recipient_der.data(), recipient_der.size());
  return info;
}

absl::StatusOr<Aes256Gcm> MessageCipher(const SecretBytes& shared,
                                        absl::string_view ephemeral_der,
                                        absl::string_view recipient_der) {
  absl::StatusOr<SecretBytes> key =
      HkdfSha256(shared.view(), "", Info(ephemeral_der, recipient_der),
                 Aes256Gcm::kKeySize);
  if (!key.ok()) return key.status();
  return Aes256Gcm::Create(*std::move(key));
}

}  // namespace

absl::StatusOr<SecretBytes> HkdfSha256(absl::string_view input_key,
                                       absl::string_view salt,
                                       absl::string_view info, size_t length) {
  if (length == 0 || length > 255 * kSha256Size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "HKDF-SHA256 output length must be 1..8160, not ", length));
  }
  // Extract: PRK = HMAC(salt, IKM); an empty salt is HashLen zero bytes.
  std::string zero_salt(kSha256Size, '\0');
  SecretBytes prk(kSha256Size);
  absl::Status status =
      HmacSha256(salt.empty() ? absl::string_view(zero_salt) : salt, input_key,
                 prk.data());
  if (!status.ok()) return status;
  // Expand: T(i) = HMAC(PRK, T(i-1) || info || i).
  SecretBytes okm(length);
  SecretBytes block(kSha256Size);
  size_t done = 0;
  for (uint8_t counter = 1; done < length; ++counter) {
    SecretBytes input((counter == 1 ? 0 : kSha256Size) + info.size() + 1);
    size_t at = 0;
    if (counter != 1) {
      std::copy(block.data(), block.data() + kSha256Size, input.data());
      at = kSha256Size;
    }
    std::copy(info.begin(), info.end(), input.data() + at);
    input.data()[input.size() - 1] = counter;
    status = HmacSha256(prk.view(), input.view(), block.data());
    if (!status.ok()) return status;
    size_t take = std::min(kSha256Size, length - done);
    std::copy(block.data(), block.data() + take, okm.data() + done);
    done += take;
  }
  return okm;
}

absl::StatusOr<std::string> EciesSeal(const PublicKey& recipient,
                                      absl::string_view plaintext,
                                      absl::string_view context) {
  if (!IsP256(recipient.info())) {
    return absl::InvalidArgumentError("recipient key must be ECDSA P-256");
  }
  absl::StatusOr<PrivateKey> ephemeral =
      PrivateKey::Generate(KeyType::kEcdsaP256);
  if (!ephemeral.ok()) return ephemeral.status();
  absl::StatusOr<SecretBytes> shared =
      Ecdh(ephemeral->native(), recipient.native());
  if (!shared.ok()) return shared.status();
  std::string ephemeral_der = ephemeral->public_key().ToDer();
  absl::StatusOr<Aes256Gcm> cipher =
      MessageCipher(*shared, ephemeral_der, recipient.ToDer());
  if (!cipher.ok()) return cipher.status();
  absl::StatusOr<std::string> sealed = cipher->Seal(plaintext, context);
  if (!sealed.ok()) return sealed.status();
  std::string out;
  out.reserve(3 + ephemeral_der.size() + sealed->size());
  out.push_back(static_cast<char>(kEciesVersion));
  AppendU16(out, ephemeral_der.size());
  out.append(ephemeral_der);
  out.append(*sealed);
  return out;
}

absl::StatusOr<SecretBytes> EciesOpen(const PrivateKey& recipient,
                                      absl::string_view sealed,
                                      absl::string_view context) {
  if (!IsP256(recipient.info())) {
    return absl::InvalidArgumentError("recipient key must be ECDSA P-256");
  }
  if (sealed.size() < 3) {
    return absl::DataLossError("ECIES message is truncated");
  }
  if (static_cast<uint8_t>(sealed[0]) != kEciesVersion) {
    return absl::DataLossError("ECIES message has an unknown version");
  }
  size_t ephemeral_size =
      (static_cast<size_t>(static_cast<uint8_t>(sealed[1])) << 8) |
      static_cast<uint8_t>(sealed[2]);
  sealed.remove_prefix(3);
  if (sealed.size() < ephemeral_size + Aes256Gcm::kOverhead) {
    return absl::DataLossError("ECIES message is truncated");
  }
  absl::string_view ephemeral_der = sealed.substr(0, ephemeral_size);
  sealed.remove_prefix(ephemeral_size);
  absl::StatusOr<PublicKey> ephemeral = PublicKey::FromDer(ephemeral_der);
  if (!ephemeral.ok() || !IsP256(ephemeral->info()) ||
      ephemeral->ToDer() != ephemeral_der) {
    internal::ClearSslErrors();
    return absl::DataLossError(
        "ECIES message has a malformed ephemeral public key");
  }
  absl::StatusOr<SecretBytes> shared =
      Ecdh(recipient.native(), ephemeral->native());
  if (!shared.ok()) {
    return absl::DataLossError(
        "ECIES message's ephemeral key does not agree with the recipient key");
  }
  absl::StatusOr<Aes256Gcm> cipher =
      MessageCipher(*shared, ephemeral_der, recipient.public_key().ToDer());
  if (!cipher.ok()) return cipher.status();
  absl::StatusOr<SecretBytes> plaintext = cipher->Open(sealed, context);
  if (!plaintext.ok()) {
    return absl::DataLossError(
        "ECIES message does not authenticate (wrong recipient, context, or "
        "tampered)");
  }
  return plaintext;
}

}  // namespace certplane::crypto
