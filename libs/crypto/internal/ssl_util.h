// Internal to libs/crypto: owning pointers for OpenSSL/BoringSSL objects and
// the conversion of the library's error queue into absl::Status. Only
// libs/crypto .cc files include this header (it pulls in OpenSSL headers).
#ifndef CERTPLANE_LIBS_CRYPTO_INTERNAL_SSL_UTIL_H_
#define CERTPLANE_LIBS_CRYPTO_INTERNAL_SSL_UTIL_H_

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/pkcs7.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <initializer_list>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace certplane::crypto::internal {

// One deleter per OpenSSL type; SslPtr<T> owns a T through it.
template <typename T>
struct SslDeleter;

#define CERTPLANE_SSL_DELETER(type, free_fn)           \
  template <>                                          \
  struct SslDeleter<type> {                            \
    void operator()(type* ptr) const { free_fn(ptr); } \
  }

CERTPLANE_SSL_DELETER(BIO, BIO_free_all);
CERTPLANE_SSL_DELETER(BIGNUM, BN_free);
CERTPLANE_SSL_DELETER(BN_CTX, BN_CTX_free);
CERTPLANE_SSL_DELETER(EVP_PKEY, EVP_PKEY_free);
CERTPLANE_SSL_DELETER(EVP_PKEY_CTX, EVP_PKEY_CTX_free);
CERTPLANE_SSL_DELETER(EVP_MD_CTX, EVP_MD_CTX_free);
CERTPLANE_SSL_DELETER(EVP_CIPHER_CTX, EVP_CIPHER_CTX_free);
CERTPLANE_SSL_DELETER(EC_KEY, EC_KEY_free);
CERTPLANE_SSL_DELETER(RSA, RSA_free);
CERTPLANE_SSL_DELETER(EC_POINT, EC_POINT_free);
CERTPLANE_SSL_DELETER(X509, X509_free);
CERTPLANE_SSL_DELETER(X509_REQ, X509_REQ_free);
CERTPLANE_SSL_DELETER(X509_CRL, X509_CRL_free);
CERTPLANE_SSL_DELETER(X509_NAME, X509_NAME_free);
CERTPLANE_SSL_DELETER(X509_EXTENSION, X509_EXTENSION_free);
CERTPLANE_SSL_DELETER(X509_STORE, X509_STORE_free);
CERTPLANE_SSL_DELETER(X509_STORE_CTX, X509_STORE_CTX_free);
CERTPLANE_SSL_DELETER(X509_SIG, X509_SIG_free);
CERTPLANE_SSL_DELETER(PKCS8_PRIV_KEY_INFO, PKCS8_PRIV_KEY_INFO_free);
CERTPLANE_SSL_DELETER(PKCS12, PKCS12_free);
CERTPLANE_SSL_DELETER(PKCS7, PKCS7_free);
// ASN1_INTEGER, ASN1_TIME, ASN1_OCTET_STRING, ASN1_BIT_STRING, ... are all
// ASN1_STRING.
CERTPLANE_SSL_DELETER(ASN1_STRING, ASN1_STRING_free);
CERTPLANE_SSL_DELETER(ASN1_OBJECT, ASN1_OBJECT_free);
CERTPLANE_SSL_DELETER(GENERAL_NAMES, GENERAL_NAMES_free);
CERTPLANE_SSL_DELETER(GENERAL_NAME, GENERAL_NAME_free);
CERTPLANE_SSL_DELETER(BASIC_CONSTRAINTS, BASIC_CONSTRAINTS_free);
CERTPLANE_SSL_DELETER(AUTHORITY_KEYID, AUTHORITY_KEYID_free);
CERTPLANE_SSL_DELETER(AUTHORITY_INFO_ACCESS, AUTHORITY_INFO_ACCESS_free);
CERTPLANE_SSL_DELETER(CRL_DIST_POINTS, CRL_DIST_POINTS_free);
CERTPLANE_SSL_DELETER(CERTIFICATEPOLICIES, CERTIFICATEPOLICIES_free);
CERTPLANE_SSL_DELETER(EXTENDED_KEY_USAGE, EXTENDED_KEY_USAGE_free);
CERTPLANE_SSL_DELETER(DIST_POINT, DIST_POINT_free);
CERTPLANE_SSL_DELETER(ACCESS_DESCRIPTION, ACCESS_DESCRIPTION_free);
CERTPLANE_SSL_DELETER(POLICYINFO, POLICYINFO_free);
CERTPLANE_SSL_DELETER(POLICYQUALINFO, POLICYQUALINFO_free);
CERTPLANE_SSL_DELETER(X509_ALGOR, X509_ALGOR_free);

#undef CERTPLANE_SSL_DELETER

template <typename T>
using SslPtr = std::unique_ptr<T, SslDeleter<T>>;

// STACK_OF(X509) that frees its certificates too.
struct X509StackDeleter {
  void operator()(STACK_OF(X509) * stack) const {
    sk_X509_pop_free(stack, X509_free);
  }
};
using X509StackPtr = std::unique_ptr<STACK_OF(X509), X509StackDeleter>;

// STACK_OF(X509_EXTENSION) that frees its extensions too.
struct X509ExtensionStackDeleter {
  void operator()(STACK_OF(X509_EXTENSION) * stack) const {
    sk_X509_EXTENSION_pop_free(stack, X509_EXTENSION_free);
  }
};
using X509ExtensionStackPtr =
    std::unique_ptr<STACK_OF(X509_EXTENSION), X509ExtensionStackDeleter>;

// Builds a status with `code` whose message names the failed call (`what`,
// for example "EVP_PKEY_keygen") followed by the library's reasons, and
// clears the thread's error queue.
absl::Status SslError(absl::StatusCode code, absl::string_view what);
// Same as SslError(absl::StatusCode::kInternal, what).
absl::Status SslInternal(absl::string_view what);
// Discards whatever is on the thread's error queue.
void ClearSslErrors();

// A read-only memory BIO over `data` (which must outlive the BIO); nullptr
// if `data` is larger than INT_MAX bytes (or on allocation failure).
SslPtr<BIO> MemoryBio(absl::string_view data);
// For a null MemoryBio: INVALID_ARGUMENT "input too large ..." when `data`
// is over INT_MAX bytes, else SslInternal(what).
absl::Status InputTooLargeOr(absl::string_view data, absl::string_view what);
// Everything written to a memory BIO, as bytes.
std::string BioContents(BIO* bio);

// The DER of the first PEM block in `pem` whose label is one of `labels`
// (other blocks are skipped), or nullopt (errors cleared) if there is none.
std::optional<std::string> FirstPemBlock(
    absl::string_view pem, std::initializer_list<absl::string_view> labels);

// `der` as a PEM block with `label`: base64 in 64-character lines. Encodes
// the given bytes as they are (re-encoding a parsed object through OpenSSL
// may normalize it and change its bytes).
std::string PemEncode(absl::string_view label, absl::string_view der);

}  // namespace certplane::crypto::internal

#endif  // CERTPLANE_LIBS_CRYPTO_INTERNAL_SSL_UTIL_H_
