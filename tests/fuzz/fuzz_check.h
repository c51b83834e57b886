// Shared by the libFuzzer targets in tests/fuzz: a property check that makes
// libFuzzer record the input as a crash when the property does not hold.
#ifndef CERTPLANE_TESTS_FUZZ_FUZZ_CHECK_H_
#define CERTPLANE_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/string_view.h"

#define CERTPLANE_FUZZ_CHECK(condition)                                        \
  do {                                                                         \
    if (!(condition)) {                                                        \
      std::fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, \
                   #condition);                                                \
      std::abort();                                                            \
    }                                                                          \
  } while (false)

namespace certplane::fuzz {

inline absl::string_view AsView(const uint8_t* data, size_t size) {
  return absl::string_view(reinterpret_cast<const char*>(data), size);
}

}  // namespace certplane::fuzz

#endif  // CERTPLANE_TESTS_FUZZ_FUZZ_CHECK_H_
