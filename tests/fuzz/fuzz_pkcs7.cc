// Fuzzes PKCS#7 certificate bundles (ReadPkcs7, DER and PEM). What parses
// must survive a WritePkcs7 round trip with the same set of certificates.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "libs/crypto/formats.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace certplane::crypto;
  absl::StatusOr<ParsedBundle> bundle =
      ReadPkcs7(certplane::fuzz::AsView(data, size));
  if (!bundle.ok()) return 0;
  CERTPLANE_FUZZ_CHECK(!bundle->certificates.empty());
  absl::StatusOr<std::string> written = WritePkcs7(bundle->certificates, false);
  CERTPLANE_FUZZ_CHECK(written.ok());
  absl::StatusOr<ParsedBundle> again = ReadPkcs7(*written);
  CERTPLANE_FUZZ_CHECK(again.ok());
  CERTPLANE_FUZZ_CHECK(std::is_permutation(
      again->certificates.begin(), again->certificates.end(),
      bundle->certificates.begin(), bundle->certificates.end()));
  return 0;
}
