#include "libs/db/internal/errors.h"

#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>
#include <soci/sqlite3/soci-sqlite3.h>

#include <exception>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace certplane::db::internal {
namespace {

// SQLite primary result codes (sqlite3.h), repeated here because SOCI wraps
// sqlite3.h in its own namespace.
constexpr int kSqliteBusy = 5;
constexpr int kSqliteLocked = 6;
constexpr int kSqliteIoErr = 10;
constexpr int kSqliteCantOpen = 14;
constexpr int kSqliteConstraint = 19;
constexpr int kSqliteNotADb = 26;

std::string Message(absl::string_view context, absl::string_view detail) {
  std::string trimmed(absl::StripAsciiWhitespace(detail));
  return context.empty() ? trimmed : absl::StrCat(context, ": ", trimmed);
}

DbError FromPostgres(const soci::postgresql_soci_error& e,
                     absl::string_view context) {
  // get_error_message() leaves out SOCI's context, which can quote the
  // statement; the server's message is what a person needs.
  std::string msg = Message(context, e.get_error_message());
  std::string state = e.sqlstate();
  if (state == "23505") return {absl::AlreadyExistsError(msg)};
  if (state == "23503") return {absl::FailedPreconditionError(msg)};
  if (state == "40001" || state == "40P01") {
    return {absl::AbortedError(msg), /*retryable=*/true};
  }
  if (absl::StartsWith(state, "08") || state == "57P01" || state == "57P02" ||
      state == "57P03" || state == "53300" ||
      e.get_error_category() == soci::soci_error::connection_error) {
    return {absl::UnavailableError(msg), false, /*connection_lost=*/true};
  }
  return {absl::InternalError(msg)};
}

DbError FromSqlite(const soci::sqlite3_soci_error& e,
                   absl::string_view context) {
  std::string msg = Message(context, e.get_error_message());
  switch (e.result() & 0xff) {
    case kSqliteConstraint:
      if (absl::StrContains(msg, "UNIQUE constraint failed") ||
          absl::StrContains(msg, "PRIMARY KEY")) {
        return {absl::AlreadyExistsError(msg)};
      }
      if (absl::StrContains(msg, "FOREIGN KEY constraint failed")) {
        return {absl::FailedPreconditionError(msg)};
      }
      return {absl::InternalError(msg)};
    case kSqliteBusy:
    case kSqliteLocked:
      return {absl::UnavailableError(msg), /*retryable=*/true};
    case kSqliteCantOpen:
    case kSqliteIoErr:
    case kSqliteNotADb:
      return {absl::UnavailableError(msg), false, /*connection_lost=*/true};
    default:
      return {absl::InternalError(msg)};
  }
}

}  // namespace

DbError ClassifyException(const std::exception& e, absl::string_view context) {
  if (const auto* pg = dynamic_cast<const soci::postgresql_soci_error*>(&e)) {
    return FromPostgres(*pg, context);
  }
  if (const auto* lite = dynamic_cast<const soci::sqlite3_soci_error*>(&e)) {
    return FromSqlite(*lite, context);
  }
  if (const auto* soci_e = dynamic_cast<const soci::soci_error*>(&e)) {
    std::string msg = Message(context, soci_e->get_error_message());
    // Some SOCI paths throw the base class; recognise SQLite's wording.
    if (absl::StrContains(msg, "UNIQUE constraint failed")) {
      return {absl::AlreadyExistsError(msg)};
    }
    if (absl::StrContains(msg, "FOREIGN KEY constraint failed")) {
      return {absl::FailedPreconditionError(msg)};
    }
    if (absl::StrContains(msg, "database is locked")) {
      return {absl::UnavailableError(msg), /*retryable=*/true};
    }
    if (soci_e->get_error_category() == soci::soci_error::connection_error) {
      return {absl::UnavailableError(msg), false, /*connection_lost=*/true};
    }
    return {absl::InternalError(msg)};
  }
  return {absl::InternalError(Message(context, e.what()))};
}

DbError ClassifyCurrentException(absl::string_view context) {
  try {
    throw;
  } catch (const std::exception& e) {
    return ClassifyException(e, context);
  } catch (...) {
    return {absl::InternalError(
        Message(context, "unknown non-standard exception"))};
  }
}

}  // namespace certplane::db::internal
