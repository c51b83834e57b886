// Fuzzes PKCS#12 reading with a fixed password ("secret", as the seed corpus
// from make_corpus.sh uses) and without one. A successful read holds at least
// one certificate or key, and a key's certificate comes first.
#include <cstddef>
#include <cstdint>

#include "libs/crypto/formats.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace certplane::crypto;
  const absl::string_view input = certplane::fuzz::AsView(data, size);
  for (const std::optional<absl::string_view>& password :
       {std::optional<absl::string_view>("secret"),
        std::optional<absl::string_view>()}) {
    absl::StatusOr<ParsedBundle> bundle = ReadPkcs12(input, password);
    if (!bundle.ok()) continue;
    CERTPLANE_FUZZ_CHECK(bundle->format == Format::kPkcs12);
    CERTPLANE_FUZZ_CHECK(!bundle->certificates.empty() ||
                         !bundle->keys.empty());
    (void)ReadBundle(input, password);
  }
  return 0;
}
