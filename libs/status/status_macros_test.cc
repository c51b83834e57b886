#include "libs/status/status_macros.h"

#include <catch2/catch.hpp>
#include <string>

#include "libs/testing/status_matchers.h"

namespace certplane {
namespace {

using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;

absl::StatusOr<int> Half(int value) {
  if (value % 2 != 0) return absl::InvalidArgumentError("odd value");
  return value / 2;
}

absl::StatusOr<int> Quarter(int value) {
  CERTPLANE_ASSIGN_OR_RETURN(int half, Half(value));
  CERTPLANE_ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

absl::Status CheckEven(int value) {
  CERTPLANE_RETURN_IF_ERROR(Half(value).status());
  return absl::OkStatus();
}

TEST_CASE("AssignOrReturnPassesValuesAndReturnsFirstError", "[status]") {
  CHECK(*Quarter(8) == 2);
  CHECK_THAT(Quarter(6),
             StatusIs(absl::StatusCode::kInvalidArgument, "odd value"));
}

TEST_CASE("ReturnIfErrorReturnsTheErrorUnchanged", "[status]") {
  CHECK_THAT(CheckEven(4), IsOk());
  CHECK_THAT(CheckEven(3),
             StatusIs(absl::StatusCode::kInvalidArgument, "odd value"));
}

}  // namespace
}  // namespace certplane
