#include "libs/crypto/aead.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <climits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/crypto/internal/ssl_util.h"

namespace certplane::crypto {
namespace {

using internal::SslInternal;
using internal::SslPtr;

// EVP_*Update take int lengths; larger inputs go through in chunks.
constexpr size_t kMaxChunk = size_t{1} << 30;

const uint8_t* Bytes(absl::string_view s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

// Feeds `aad` into an initialised GCM context.
absl::Status AddAssociatedData(EVP_CIPHER_CTX* ctx, absl::string_view aad,
                               bool encrypt) {
  while (!aad.empty()) {
    size_t n = std::min(aad.size(), kMaxChunk);
    int out_len = 0;
    int ok = encrypt ? EVP_EncryptUpdate(ctx, nullptr, &out_len, Bytes(aad),
                                         static_cast<int>(n))
                     : EVP_DecryptUpdate(ctx, nullptr, &out_len, Bytes(aad),
                                         static_cast<int>(n));
    if (ok != 1) {
      return SslInternal(encrypt ? "EVP_EncryptUpdate (associated data)"
                                 : "EVP_DecryptUpdate (associated data)");
    }
    aad.remove_prefix(n);
  }
  return absl::OkStatus();
}

// A fresh context for one Seal/Open: a copy of the keyed context with
// `nonce` set.
absl::StatusOr<SslPtr<EVP_CIPHER_CTX>> NewContext(const EVP_CIPHER_CTX* keyed,
                                                  const uint8_t* nonce,
                                                  bool encrypt) {
  SslPtr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  if (ctx == nullptr) return SslInternal("EVP_CIPHER_CTX_new");
  if (EVP_CIPHER_CTX_copy(ctx.get(), keyed) != 1) {
    return SslInternal("EVP_CIPHER_CTX_copy");
  }
  if (EVP_CipherInit_ex(ctx.get(), nullptr, nullptr, nullptr, nonce,
                        encrypt ? 1 : 0) != 1) {
    return SslInternal("EVP_CipherInit_ex (nonce)");
  }
  return ctx;
}

}  // namespace

absl::StatusOr<SecretBytes> Aes256Gcm::GenerateKey() {
  SecretBytes key(kKeySize);
  if (RAND_bytes(key.data(), kKeySize) != 1) return SslInternal("RAND_bytes");
  return key;
}

absl::StatusOr<Aes256Gcm> Aes256Gcm::Create(SecretBytes key) {
  if (key.size() != kKeySize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "AES-256-GCM key must be ", kKeySize, " bytes, got ", key.size()));
  }
  SslPtr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  if (ctx == nullptr) return SslInternal("EVP_CIPHER_CTX_new");
  if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr,
                         nullptr) != 1) {
    return SslInternal("EVP_EncryptInit_ex (cipher)");
  }
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN,
                          static_cast<int>(kNonceSize), nullptr) != 1) {
    return SslInternal("EVP_CIPHER_CTX_ctrl (EVP_CTRL_GCM_SET_IVLEN)");
  }
  if (EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), nullptr) !=
      1) {
    return SslInternal("EVP_EncryptInit_ex (key)");
  }
  return Aes256Gcm(KeyedContext(ctx.release(), [](const EVP_CIPHER_CTX* c) {
    EVP_CIPHER_CTX_free(const_cast<EVP_CIPHER_CTX*>(c));
  }));
}

absl::StatusOr<std::string> Aes256Gcm::Seal(
    absl::string_view plaintext, absl::string_view associated_data) const {
  std::string sealed(kOverhead + plaintext.size(), '\0');
  auto* out = reinterpret_cast<uint8_t*>(sealed.data());
  out[0] = kVersion;
  uint8_t* nonce = out + 1;
  if (RAND_bytes(nonce, kNonceSize) != 1) return SslInternal("RAND_bytes");

  auto ctx_or = NewContext(keyed_.get(), nonce, /*encrypt=*/true);
  if (!ctx_or.ok()) return ctx_or.status();
  SslPtr<EVP_CIPHER_CTX> ctx = *std::move(ctx_or);
  if (auto status = AddAssociatedData(ctx.get(), associated_data, true);
      !status.ok()) {
    return status;
  }
  uint8_t* ciphertext = nonce + kNonceSize;
  size_t written = 0;
  while (written < plaintext.size()) {
    size_t n = std::min(plaintext.size() - written, kMaxChunk);
    int out_len = 0;
    if (EVP_EncryptUpdate(ctx.get(), ciphertext + written, &out_len,
                          Bytes(plaintext) + written,
                          static_cast<int>(n)) != 1) {
      return SslInternal("EVP_EncryptUpdate");
    }
    written += static_cast<size_t>(out_len);
    if (static_cast<size_t>(out_len) != n) {
      return absl::InternalError("EVP_EncryptUpdate: short GCM output");
    }
  }
  int final_len = 0;
  if (EVP_EncryptFinal_ex(ctx.get(), ciphertext + written, &final_len) != 1 ||
      final_len != 0) {
    return SslInternal("EVP_EncryptFinal_ex");
  }
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG,
                          static_cast<int>(kTagSize),
                          ciphertext + plaintext.size()) != 1) {
    return SslInternal("EVP_CIPHER_CTX_ctrl (EVP_CTRL_GCM_GET_TAG)");
  }
  return sealed;
}

absl::StatusOr<SecretBytes> Aes256Gcm::Open(
    absl::string_view sealed, absl::string_view associated_data) const {
  if (sealed.size() < kOverhead) {
    return absl::DataLossError(absl::StrCat(
        "sealed data is too short: ", sealed.size(),
        " bytes, an AES-256-GCM v1 blob has at least ", kOverhead));
  }
  if (static_cast<uint8_t>(sealed[0]) != kVersion) {
    return absl::DataLossError(absl::StrCat(
        "sealed data has unknown version byte 0x",
        absl::Hex(static_cast<uint8_t>(sealed[0]), absl::kZeroPad2),
        "; expected 0x01 (AES-256-GCM v1)"));
  }
  const uint8_t* nonce = Bytes(sealed) + 1;
  absl::string_view ciphertext =
      sealed.substr(1 + kNonceSize, sealed.size() - kOverhead);
  // EVP_CTRL_GCM_SET_TAG takes a non-const pointer; copy the tag out.
  uint8_t tag[kTagSize];
  std::copy_n(Bytes(sealed) + sealed.size() - kTagSize, kTagSize, tag);

  auto ctx_or = NewContext(keyed_.get(), nonce, /*encrypt=*/false);
  if (!ctx_or.ok()) return ctx_or.status();
  SslPtr<EVP_CIPHER_CTX> ctx = *std::move(ctx_or);
  if (auto status = AddAssociatedData(ctx.get(), associated_data, false);
      !status.ok()) {
    return status;
  }
  // Decrypt into a SecretBytes so that unverified plaintext is wiped on any
  // failure below.
  SecretBytes plaintext(ciphertext.size());
  size_t written = 0;
  while (written < ciphertext.size()) {
    size_t n = std::min(ciphertext.size() - written, kMaxChunk);
    int out_len = 0;
    if (EVP_DecryptUpdate(ctx.get(), plaintext.data() + written, &out_len,
                          Bytes(ciphertext) + written,
                          static_cast<int>(n)) != 1) {
      return SslInternal("EVP_DecryptUpdate");
    }
    written += static_cast<size_t>(out_len);
    if (static_cast<size_t>(out_len) != n) {
      return absl::InternalError("EVP_DecryptUpdate: short GCM output");
    }
  }
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG,
                          static_cast<int>(kTagSize), tag) != 1) {
    return SslInternal("EVP_CIPHER_CTX_ctrl (EVP_CTRL_GCM_SET_TAG)");
  }
  int final_len = 0;
  // An empty plaintext leaves plaintext.data() null; the final call writes
  // nothing for GCM but needs a valid pointer.
  uint8_t unused[1];
  uint8_t* final_out = plaintext.empty() ? unused : plaintext.data() + written;
  if (EVP_DecryptFinal_ex(ctx.get(), final_out, &final_len) != 1) {
    internal::ClearSslErrors();
    return absl::DataLossError(
        "sealed data failed authentication: wrong key, different associated "
        "data, or the data was tampered with");
  }
  return plaintext;
}

}  // namespace certplane::crypto
