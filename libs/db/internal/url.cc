#include "libs/db/internal/url.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace certplane::db::internal {

std::string RedactUrl(absl::string_view url) {
  std::string out(url);
  // userinfo: between "://" and the last '@' before the path.
  size_t scheme_end = out.find("://");
  if (scheme_end != std::string::npos) {
    size_t authority_start = scheme_end + 3;
    size_t authority_end = out.find_first_of("/?#", authority_start);
    if (authority_end == std::string::npos) authority_end = out.size();
    size_t at = out.rfind('@', authority_end);
    if (at != std::string::npos && at >= authority_start) {
      size_t colon = out.find(':', authority_start);
      if (colon != std::string::npos && colon < at) {
        out.replace(colon + 1, at - colon - 1, "***");
      }
    }
  }
  // password=... query or keyword parameters.
  size_t pos = 0;
  while ((pos = out.find("password=", pos)) != std::string::npos) {
    size_t value_start = pos + 9;
    size_t value_end = out.find_first_of("&# ", value_start);
    if (value_end == std::string::npos) value_end = out.size();
    out.replace(value_start, value_end - value_start, "***");
    pos = value_start + 3;
  }
  return out;
}

absl::StatusOr<ParsedUrl> ParseDatabaseUrl(absl::string_view url) {
  if (url.empty()) {
    return absl::InvalidArgumentError(
        "database URL is empty; use postgresql://... or sqlite://...");
  }
  size_t colon = url.find(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(
        "database URL has no scheme; use postgresql://user@host:port/dbname "
        "or sqlite:///path/to/file.db");
  }
  std::string scheme = absl::AsciiStrToLower(url.substr(0, colon));
  if (scheme == "postgresql" || scheme == "postgres") {
    if (!absl::StartsWith(url.substr(colon), "://")) {
      return absl::InvalidArgumentError(
          absl::StrCat("database URL with scheme \"", scheme,
                       "\" must look like postgresql://user@host:port/dbname"));
    }
    return ParsedUrl{Dialect::kPostgres, std::string(url), RedactUrl(url)};
  }
  if (scheme == "sqlite") {
    absl::string_view rest = url.substr(colon + 1);
    if (rest == ":memory:") {
      return ParsedUrl{Dialect::kSqlite, ":memory:", std::string(url)};
    }
    if (!absl::StartsWith(rest, "//") || rest.size() == 2) {
      return absl::InvalidArgumentError(
          "SQLite database URL must be sqlite:///absolute/path.db, "
          "sqlite://relative/path.db or sqlite::memory:");
    }
    std::string path(rest.substr(2));
    if (path.find_first_of("?#") != std::string::npos) {
      return absl::InvalidArgumentError(
          "SQLite database URL takes no query parameters");
    }
    for (char c : path) {
      if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
        return absl::InvalidArgumentError(absl::StrCat(
            "SQLite database path \"", path,
            "\" contains whitespace, which "
            "SOCI's connection string cannot carry; choose another path"));
      }
    }
    return ParsedUrl{Dialect::kSqlite, path, std::string(url)};
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported database URL scheme \"", scheme,
                   "\"; use postgresql:// or sqlite://"));
}

}  // namespace certplane::db::internal
