// Conversion of exceptions thrown by SOCI (and by transaction bodies) into
// absl::Status, with the extra facts the pool and retry loop need.
// Thread-safe, no state.
#ifndef CERTPLANE_LIBS_DB_INTERNAL_ERRORS_H_
#define CERTPLANE_LIBS_DB_INTERNAL_ERRORS_H_

#include <exception>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace certplane::db::internal {

struct DbError {
  absl::Status status;
  // Serialization failure, deadlock, SQLite busy/locked: running the whole
  // transaction again may succeed.
  bool retryable = false;
  // The session's connection is unusable and must be reopened.
  bool connection_lost = false;
};

// Classifies `e`. `context` says what was being done ("commit", "open
// database") and prefixes the message.
DbError ClassifyException(const std::exception& e, absl::string_view context);

// Classifies the exception currently being handled (call only inside a
// catch block); non-std exceptions become INTERNAL.
DbError ClassifyCurrentException(absl::string_view context);

}  // namespace certplane::db::internal

#endif  // CERTPLANE_LIBS_DB_INTERNAL_ERRORS_H_
