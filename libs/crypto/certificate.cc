#include "libs/crypto/certificate.h"

#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "libs/crypto/internal/ssl_util.h"

namespace certplane::crypto {

using internal::SslError;
using internal::SslInternal;
using internal::SslPtr;

absl::StatusOr<Certificate> Certificate::FromDer(absl::string_view der) {
  if (der.empty()) return absl::InvalidArgumentError("empty certificate");
  const auto* p = reinterpret_cast<const uint8_t*>(der.data());
  X509Handle x509(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (x509 == nullptr) {
    return SslError(absl::StatusCode::kInvalidArgument,
                    "not a DER X.509 certificate (d2i_X509)");
  }
  if (p != reinterpret_cast<const uint8_t*>(der.data()) + der.size()) {
    return absl::InvalidArgumentError(
        "trailing bytes after DER X.509 certificate");
  }
  return Adopt(std::move(x509));
}

absl::StatusOr<Certificate> Certificate::FromPem(absl::string_view pem) {
  auto bio = internal::MemoryBio(pem);
  if (bio == nullptr) return SslInternal("BIO_new_mem_buf");
  X509Handle x509(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (x509 == nullptr) {
    return SslError(absl::StatusCode::kInvalidArgument,
                    "no valid PEM \"CERTIFICATE\" block (PEM_read_bio_X509)");
  }
  return Adopt(std::move(x509));
}

absl::StatusOr<Certificate> Certificate::Adopt(X509Handle x509) {
  if (x509 == nullptr) return absl::InternalError("null certificate");
  uint8_t* der = nullptr;
  int length = i2d_X509(x509.get(), &der);
  if (length <= 0) return SslInternal("i2d_X509");
  std::string encoded(reinterpret_cast<char*>(der), static_cast<size_t>(length));
  OPENSSL_free(der);
  // The public key must be usable for anything certplane does with it.
  EvpPkeyHandle key(X509_get_pubkey(x509.get()));
  if (key == nullptr) {
    return SslError(absl::StatusCode::kInvalidArgument,
                    "certificate public key is unreadable (X509_get_pubkey)");
  }
  return Certificate(std::move(x509), std::move(encoded));
}

Certificate::Certificate(const Certificate& other) : der_(other.der_) {
  X509_up_ref(other.x509_.get());
  x509_.reset(other.x509_.get());
}

Certificate& Certificate::operator=(const Certificate& other) {
  if (this != &other) {
    X509_up_ref(other.x509_.get());
    x509_.reset(other.x509_.get());
    der_ = other.der_;
  }
  return *this;
}

std::string Certificate::ToPem() const {
  SslPtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || !PEM_write_bio_X509(bio.get(), x509_.get())) {
    internal::ClearSslErrors();
    return {};
  }
  return internal::BioContents(bio.get());
}

PublicKey Certificate::public_key() const {
  return PublicKey::Adopt(EvpPkeyHandle(X509_get_pubkey(x509_.get())));
}

std::string Certificate::Sha256Fingerprint() const {
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(der_.data()), der_.size(), digest);
  return std::string(reinterpret_cast<char*>(digest), sizeof(digest));
}

absl::Status Certificate::CheckKeyMatches(const PrivateKey& key) const {
  if (public_key() == key.public_key()) return absl::OkStatus();
  return absl::InvalidArgumentError("private key does not match certificate");
}

bool Certificate::IsIssuedBy(const Certificate& issuer) const {
  if (X509_NAME_cmp(X509_get_issuer_name(x509_.get()),
                    X509_get_subject_name(issuer.x509_.get())) != 0) {
    return false;
  }
  EvpPkeyHandle key(X509_get_pubkey(issuer.x509_.get()));
  bool ok = key != nullptr && X509_verify(x509_.get(), key.get()) == 1;
  internal::ClearSslErrors();
  return ok;
}

}  // namespace certplane::crypto
