#include "services/gateway/tokens.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "libs/crypto/digest.h"

namespace certplane::gateway {

bool ValidTokenId(absl::string_view id) {
  if (id.size() != 16) return false;
  for (char c : id) {
    if (!absl::ascii_isdigit(c) && !(c >= 'a' && c <= 'f')) return false;
  }
  return true;
}

absl::StatusOr<NewToken> GenerateToken() {
  absl::StatusOr<std::string> id_bytes = crypto::RandomBytes(8);
  if (!id_bytes.ok()) return id_bytes.status();
  absl::StatusOr<std::string> secret = crypto::RandomBytes(32);
  if (!secret.ok()) return secret.status();
  NewToken out;
  out.id = absl::BytesToHexString(*id_bytes);
  out.token = absl::StrCat(kTokenPrefix, out.id, "_",
                           absl::WebSafeBase64Escape(*secret));
  return out;
}

absl::StatusOr<std::string> TokenId(absl::string_view token) {
  // cpt_ + 16 + _ + 43.
  if (!absl::ConsumePrefix(&token, kTokenPrefix) || token.size() != 60 ||
      token[16] != '_' || !ValidTokenId(token.substr(0, 16))) {
    return absl::InvalidArgumentError("not a certplane API token");
  }
  for (char c : token.substr(17)) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_') {
      return absl::InvalidArgumentError("not a certplane API token");
    }
  }
  return std::string(token.substr(0, 16));
}

std::string TokenHash(absl::string_view token) {
  return absl::BytesToHexString(crypto::Sha256(token));
}

}  // namespace certplane::gateway
