#include "libs/crypto/handles.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

namespace certplane::crypto {

void EvpPkeyFree::operator()(evp_pkey_st* pkey) const { EVP_PKEY_free(pkey); }
void X509Free::operator()(x509_st* cert) const { X509_free(cert); }
void X509ReqFree::operator()(X509_req_st* req) const { X509_REQ_free(req); }

}  // namespace certplane::crypto
