// Catch2 matchers and helpers for absl::Status and absl::StatusOr<T>.
//
//   REQUIRE_THAT(DoThing(), IsOk());
//   REQUIRE_THAT(Parse("junk"), StatusIs(absl::StatusCode::kInvalidArgument,
//                                        "not PEM"));
//   auto value = ValueOrDie(Parse(good));   // fails the test with the status
#ifndef CERTPLANE_LIBS_TESTING_STATUS_MATCHERS_H_
#define CERTPLANE_LIBS_TESTING_STATUS_MATCHERS_H_

#include <optional>
#include <sstream>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include <catch2/catch.hpp>

namespace certplane::testing {

inline const absl::Status& GetStatus(const absl::Status& status) {
  return status;
}
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

// Matches an absl::Status or absl::StatusOr<T> (Catch2 v2 only needs match()
// and toString()). With only a code, matches the code; with a substring, the
// message must contain it too.
class StatusMatcher {
 public:
  StatusMatcher(absl::StatusCode code, std::optional<std::string> substring)
      : code_(code), substring_(std::move(substring)) {}

  template <typename T>
  bool match(const T& value) const {
    const absl::Status& status = GetStatus(value);
    last_ = status.ToString();
    if (status.code() != code_) return false;
    return !substring_ || absl::StrContains(status.message(), *substring_);
  }

  std::string toString() const {
    std::string out =
        absl::StrCat("has status ", absl::StatusCodeToString(code_));
    if (substring_) absl::StrAppend(&out, " containing \"", *substring_, "\"");
    absl::StrAppend(&out, " (actual: ", last_, ")");
    return out;
  }

 private:
  absl::StatusCode code_;
  std::optional<std::string> substring_;
  mutable std::string last_;
};

inline StatusMatcher StatusIs(absl::StatusCode code) { return {code, {}}; }
inline StatusMatcher StatusIs(absl::StatusCode code, std::string substring) {
  return {code, std::move(substring)};
}
inline StatusMatcher IsOk() { return {absl::StatusCode::kOk, {}}; }

// Unwraps a StatusOr, failing the current test (with the status) if it holds
// an error.
template <typename T>
T ValueOrDie(absl::StatusOr<T> status_or) {
  if (!status_or.ok()) FAIL("expected OK, got " << status_or.status());
  return *std::move(status_or);
}

}  // namespace certplane::testing

#endif  // CERTPLANE_LIBS_TESTING_STATUS_MATCHERS_H_
