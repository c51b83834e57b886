// Parsing and redaction of certplane database URLs (see libs/db/database.h).
// Pure functions, thread-safe.
#ifndef CERTPLANE_LIBS_DB_INTERNAL_URL_H_
#define CERTPLANE_LIBS_DB_INTERNAL_URL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/db/database.h"

namespace certplane::db::internal {

struct ParsedUrl {
  Dialect dialect;
  // PostgreSQL: the URL as libpq takes it. SQLite: the file path, or
  // ":memory:".
  std::string target;
  // The URL with any password replaced by "***".
  std::string redacted;
  // The passwords in the URL, as written and percent-decoded, longest first:
  // strings that must be scrubbed from any driver message (see
  // ScrubSecrets) because libpq may quote parts of the URL in its errors.
  std::vector<std::string> secrets;
};

// INVALID_ARGUMENT naming the scheme (never the whole URL) when the URL is
// neither postgresql:// / postgres:// nor sqlite:.
absl::StatusOr<ParsedUrl> ParseDatabaseUrl(absl::string_view url);

// Replaces the password in "scheme://user:password@..." and any
// "password=..." query parameter with "***". The userinfo runs from after
// "://" to the last '@' in the URL, so a password holding an unencoded '@',
// '/', '?', '#' or '%' is still hidden whole; a URL without a password but
// with '@' in a query value is over-redacted, never under-redacted.
std::string RedactUrl(absl::string_view url);

// The passwords RedactUrl hides, as written and percent-decoded (when that
// differs and decodes), without duplicates, longest first.
std::vector<std::string> UrlSecrets(absl::string_view url);

// `text` with every occurrence of each secret replaced by "***".
std::string ScrubSecrets(absl::string_view text,
                         const std::vector<std::string>& secrets);

}  // namespace certplane::db::internal

#endif  // CERTPLANE_LIBS_DB_INTERNAL_URL_H_
