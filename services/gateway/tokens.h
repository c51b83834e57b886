// API token strings: "cpt_<id>_<secret>", with a 16-hex-digit id (the row
// key) and 32 random bytes of secret in unpadded base64url. Only the
// SHA-256 of the whole string is stored (gateway_store.h), so a database
// leak yields no usable token.
//
// Pure functions; thread-safe.
#ifndef CERTPLANE_SERVICES_GATEWAY_TOKENS_H_
#define CERTPLANE_SERVICES_GATEWAY_TOKENS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace certplane::gateway {

inline constexpr char kTokenPrefix[] = "cpt_";

struct NewToken {
  std::string id;
  std::string token;  // The secret string handed to the user once.
};

absl::StatusOr<NewToken> GenerateToken();

// The id of a well-formed token string; INVALID_ARGUMENT otherwise (the
// caller turns it into UNAUTHENTICATED without detail).
absl::StatusOr<std::string> TokenId(absl::string_view token);

// Hex SHA-256 of the token string, as stored.
std::string TokenHash(absl::string_view token);

// Whether `id` is 16 lowercase hex digits.
bool ValidTokenId(absl::string_view id);

}  // namespace certplane::gateway

#endif  // CERTPLANE_SERVICES_GATEWAY_TOKENS_H_
