#include "libs/db/internal/url.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace certplane::db::internal {

namespace {

// Half-open [begin, end) ranges of `url` that hold passwords, sorted and
// merged.
std::vector<std::pair<size_t, size_t>> PasswordSpans(absl::string_view url) {
  std::vector<std::pair<size_t, size_t>> spans;
  // userinfo: libpq ends it at the first '@' or '/', but a password with an
  // unencoded '@' or '/' is then split across user, host, dbname and query,
  // all of which libpq may quote. Taking everything from the first ':' after
  // "://" to the last '@' hides such a password whole.
  size_t scheme_end = url.find("://");
  if (scheme_end != absl::string_view::npos) {
    size_t authority_start = scheme_end + 3;
    size_t at = url.rfind('@');
    if (at != absl::string_view::npos && at >= authority_start) {
      size_t colon = url.find(':', authority_start);
      if (colon != absl::string_view::npos && colon < at) {
        spans.emplace_back(colon + 1, at);
      }
    }
  }
  // password=... (and sslpassword=...) parameters; libpq ends a value only
  // at '&'.
  constexpr absl::string_view kKey = "password=";
  for (size_t pos = url.find(kKey); pos != absl::string_view::npos;
       pos = url.find(kKey, pos + kKey.size())) {
    size_t value_start = pos + kKey.size();
    size_t value_end = url.find('&', value_start);
    if (value_end == absl::string_view::npos) value_end = url.size();
    spans.emplace_back(value_start, value_end);
  }
  std::sort(spans.begin(), spans.end());
  std::vector<std::pair<size_t, size_t>> merged;
  for (const auto& span : spans) {
    if (!merged.empty() && span.first <= merged.back().second) {
      merged.back().second = std::max(merged.back().second, span.second);
    } else {
      merged.push_back(span);
    }
  }
  return merged;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// libpq's percent-decoding; nullopt for a malformed escape.
std::optional<std::string> PercentDecode(absl::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    int hi = HexValue(text[i + 1]);
    int lo = HexValue(text[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

}  // namespace

std::string RedactUrl(absl::string_view url) {
  std::string out(url);
  std::vector<std::pair<size_t, size_t>> spans = PasswordSpans(url);
  for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
    out.replace(it->first, it->second - it->first, "***");
  }
  return out;
}

std::vector<std::string> UrlSecrets(absl::string_view url) {
  std::vector<std::string> secrets;
  auto add = [&secrets](std::string secret) {
    if (secret.empty()) return;
    if (std::find(secrets.begin(), secrets.end(), secret) != secrets.end()) {
      return;
    }
    secrets.push_back(std::move(secret));
  };
  for (const auto& [begin, end] : PasswordSpans(url)) {
    absl::string_view raw = url.substr(begin, end - begin);
    add(std::string(raw));
    if (std::optional<std::string> decoded = PercentDecode(raw)) {
      add(*std::move(decoded));
    }
    // A merged span may join a userinfo password and a query one.
    for (absl::string_view part : absl::StrSplit(raw, '&')) {
      if (size_t eq = part.find("password="); eq != absl::string_view::npos) {
        part.remove_prefix(eq + 9);
      }
      add(std::string(part));
      if (std::optional<std::string> decoded = PercentDecode(part)) {
        add(*std::move(decoded));
      }
    }
  }
  std::stable_sort(secrets.begin(), secrets.end(),
                   [](const std::string& a, const std::string& b) {
                     return a.size() > b.size();
                   });
  return secrets;
}

std::string ScrubSecrets(absl::string_view text,
                         const std::vector<std::string>& secrets) {
  std::string out(text);
  for (const std::string& secret : secrets) {
    if (secret.empty()) continue;
    out = absl::StrReplaceAll(out, {{secret, "***"}});
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
    return ParsedUrl{Dialect::kPostgres, std::string(url), RedactUrl(url),
                     UrlSecrets(url)};
  }
  if (scheme == "sqlite") {
    absl::string_view rest = url.substr(colon + 1);
    if (rest == ":memory:") {
      return ParsedUrl{Dialect::kSqlite, ":memory:", std::string(url), {}};
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
    return ParsedUrl{Dialect::kSqlite, path, std::string(url), {}};
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported database URL scheme \"", scheme,
                   "\"; use postgresql:// or sqlite://"));
}

}  // namespace certplane::db::internal
