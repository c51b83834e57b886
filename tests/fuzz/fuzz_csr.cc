// Fuzzes CSR parsing (CertificateRequest::FromDer and FromPem) and signature
// verification. A parsed CSR must re-read from its own PEM.
#include <cstddef>
#include <cstdint>

#include "libs/crypto/csr.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using certplane::crypto::CertificateRequest;
  const absl::string_view input = certplane::fuzz::AsView(data, size);
  (void)CertificateRequest::FromPem(input);
  absl::StatusOr<CertificateRequest> csr = CertificateRequest::FromDer(input);
  if (!csr.ok()) return 0;
  absl::StatusOr<CertificateRequest> reread =
      CertificateRequest::FromDer(csr->der());
  CERTPLANE_FUZZ_CHECK(reread.ok() && *reread == *csr);
  (void)csr->VerifySignature();
  absl::StatusOr<CertificateRequest> again =
      CertificateRequest::FromPem(csr->ToPem());
  CERTPLANE_FUZZ_CHECK(again.ok() && *again == *csr);
  return 0;
}
