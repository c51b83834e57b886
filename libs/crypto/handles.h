// Forward declarations of the OpenSSL/BoringSSL object types that certplane's
// crypto value types own, so that public headers of libs/crypto do not pull in
// OpenSSL headers. Both libraries name these structs the same way.
#ifndef CERTPLANE_LIBS_CRYPTO_HANDLES_H_
#define CERTPLANE_LIBS_CRYPTO_HANDLES_H_

#include <memory>

extern "C" {
struct evp_pkey_st;
struct x509_st;
struct X509_req_st;
}

namespace certplane::crypto {

struct EvpPkeyFree {
  void operator()(evp_pkey_st* pkey) const;
};
struct X509Free {
  void operator()(x509_st* cert) const;
};
struct X509ReqFree {
  void operator()(X509_req_st* req) const;
};

using EvpPkeyHandle = std::unique_ptr<evp_pkey_st, EvpPkeyFree>;
using X509Handle = std::unique_ptr<x509_st, X509Free>;
using X509ReqHandle = std::unique_ptr<X509_req_st, X509ReqFree>;

}  // namespace certplane::crypto

#endif  // CERTPLANE_LIBS_CRYPTO_HANDLES_H_
