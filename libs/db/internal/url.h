// Parsing and redaction of certplane database URLs (see libs/db/database.h).
// Pure functions, thread-safe.
#ifndef CERTPLANE_LIBS_DB_INTERNAL_URL_H_
#define CERTPLANE_LIBS_DB_INTERNAL_URL_H_

#include <string>

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
};

// INVALID_ARGUMENT naming the scheme (never the whole URL) when the URL is
// neither postgresql:// / postgres:// nor sqlite:.
absl::StatusOr<ParsedUrl> ParseDatabaseUrl(absl::string_view url);

// Replaces the password in "scheme://user:password@..." and any
// "password=..." query parameter with "***".
std::string RedactUrl(absl::string_view url);

}  // namespace certplane::db::internal

#endif  // CERTPLANE_LIBS_DB_INTERNAL_URL_H_
