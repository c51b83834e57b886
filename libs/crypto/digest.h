// Hashes, secure random bytes and constant-time comparison: the small
// primitives that code outside libs/crypto needs without touching OpenSSL
// (token secrets, Merkle tree hashes, JWT signing inputs).
//
// Stateless and thread-safe.
#ifndef CERTPLANE_LIBS_CRYPTO_DIGEST_H_
#define CERTPLANE_LIBS_CRYPTO_DIGEST_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace certplane::crypto {

inline constexpr size_t kSha256Size = 32;

// The raw 32-byte SHA-256 of `data`.
std::string Sha256(absl::string_view data);

// SHA-256 over the concatenation of `parts`, without building it.
std::string Sha256Of(std::initializer_list<absl::string_view> parts);

// `n` bytes from the CSPRNG; INTERNAL naming RAND_bytes if it fails.
absl::StatusOr<std::string> RandomBytes(size_t n);

// Whether `a` and `b` are equal, in time that depends only on their sizes.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace certplane::crypto

#endif  // CERTPLANE_LIBS_CRYPTO_DIGEST_H_
