#include "libs/crypto/digest.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstdint>
#include <memory>

#include "libs/crypto/internal/ssl_util.h"

namespace certplane::crypto {

// The one-shot SHA256() of OpenSSL 3 fetches the algorithm on every call
// (about as costly as hashing a few KiB); the context API does not.
std::string Sha256(absl::string_view data) { return Sha256Of({data}); }

std::string Sha256Of(std::initializer_list<absl::string_view> parts) {
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  for (absl::string_view part : parts) {
    SHA256_Update(&ctx, part.data(), part.size());
  }
  std::string digest(kSha256Size, '\0');
  SHA256_Final(reinterpret_cast<uint8_t*>(digest.data()), &ctx);
  return digest;
}

absl::StatusOr<std::string> RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(reinterpret_cast<uint8_t*>(out.data()),
                          static_cast<int>(n)) != 1) {
    return internal::SslInternal("RAND_bytes");
  }
  return out;
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace certplane::crypto
