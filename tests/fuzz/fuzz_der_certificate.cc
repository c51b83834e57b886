// Fuzzes DER X.509 parsing (Certificate::FromDer and ReadDer) and the full
// description of what parses. A parsed certificate must re-read from its PEM.
#include <cstddef>
#include <cstdint>

#include "libs/crypto/certificate.h"
#include "libs/crypto/formats.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace certplane::crypto;
  const absl::string_view input = certplane::fuzz::AsView(data, size);
  absl::StatusOr<Certificate> cert = Certificate::FromDer(input);
  absl::StatusOr<ParsedBundle> bundle = ReadDer(input);
  if (!cert.ok()) return 0;
  // der() is the library's re-encoding; it must read back to itself.
  absl::StatusOr<Certificate> reread = Certificate::FromDer(cert->der());
  CERTPLANE_FUZZ_CHECK(reread.ok() && *reread == *cert);
  CERTPLANE_FUZZ_CHECK(bundle.ok() && bundle->certificates.size() == 1);
  absl::StatusOr<Certificate> from_pem = Certificate::FromPem(cert->ToPem());
  CERTPLANE_FUZZ_CHECK(from_pem.ok() && *from_pem == *cert);
  (void)cert->Describe();
  (void)cert->MatchesHostname("www.example.com");
  (void)cert->MatchesHostname("192.0.2.1");
  (void)cert->IsIssuedBy(*cert);
  return 0;
}
