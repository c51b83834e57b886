// Fuzzes PEM reading (ReadPem, and ReadBundle's detection): every block type,
// text around blocks, encrypted keys (password "secret"). A successful read
// must survive a WritePem round trip unchanged.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "libs/crypto/formats.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace certplane::crypto;
  const absl::string_view input = certplane::fuzz::AsView(data, size);
  absl::StatusOr<ParsedBundle> bundle = ReadPem(input, "secret");
  (void)ReadBundle(input);
  if (!bundle.ok()) {
    CERTPLANE_FUZZ_CHECK(!bundle.status().message().empty());
    return 0;
  }
  CERTPLANE_FUZZ_CHECK(!bundle->certificates.empty() || !bundle->keys.empty());
  if (bundle->certificates.empty()) return 0;
  absl::StatusOr<ParsedBundle> again = ReadPem(WritePem(bundle->certificates));
  CERTPLANE_FUZZ_CHECK(again.ok());
  CERTPLANE_FUZZ_CHECK(again->certificates == bundle->certificates);
  for (const Certificate& cert : bundle->certificates) (void)cert.Describe();
  return 0;
}
