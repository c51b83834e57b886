// Early-return helpers for absl::Status / absl::StatusOr<T>, so that code
// which calls several fallible steps reads top to bottom:
//
//   CERTPLANE_RETURN_IF_ERROR(store.Put(row));
//   CERTPLANE_ASSIGN_OR_RETURN(Certificate cert, Certificate::FromDer(der));
//
// Both work in functions returning absl::Status or absl::StatusOr<U>. The
// error is returned unchanged (same code, same message).
#ifndef CERTPLANE_LIBS_STATUS_STATUS_MACROS_H_
#define CERTPLANE_LIBS_STATUS_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define CERTPLANE_RETURN_IF_ERROR(expr)                                       \
  do {                                                                        \
    if (::absl::Status certplane_status_ = (expr); !certplane_status_.ok()) { \
      return certplane_status_;                                               \
    }                                                                         \
  } while (false)

#define CERTPLANE_STATUS_CONCAT_INNER_(a, b) a##b
#define CERTPLANE_STATUS_CONCAT_(a, b) CERTPLANE_STATUS_CONCAT_INNER_(a, b)

#define CERTPLANE_ASSIGN_OR_RETURN(lhs, expr) \
  CERTPLANE_ASSIGN_OR_RETURN_IMPL_(           \
      CERTPLANE_STATUS_CONCAT_(certplane_statusor_, __LINE__), lhs, expr)

#define CERTPLANE_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                     \
  if (!statusor.ok()) return std::move(statusor).status();    \
  lhs = *std::move(statusor)

#endif  // CERTPLANE_LIBS_STATUS_STATUS_MACROS_H_
