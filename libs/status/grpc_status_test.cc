#include "libs/status/grpc_status.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "libs/testing/status_matchers.h"

namespace certplane {
namespace {

using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;

const std::vector<std::pair<absl::StatusCode, grpc::StatusCode>>&
AllErrorCodes() {
  static const auto* const kCodes =
      new std::vector<std::pair<absl::StatusCode, grpc::StatusCode>>{
          {absl::StatusCode::kCancelled, grpc::StatusCode::CANCELLED},
          {absl::StatusCode::kUnknown, grpc::StatusCode::UNKNOWN},
          {absl::StatusCode::kInvalidArgument,
           grpc::StatusCode::INVALID_ARGUMENT},
          {absl::StatusCode::kDeadlineExceeded,
           grpc::StatusCode::DEADLINE_EXCEEDED},
          {absl::StatusCode::kNotFound, grpc::StatusCode::NOT_FOUND},
          {absl::StatusCode::kAlreadyExists, grpc::StatusCode::ALREADY_EXISTS},
          {absl::StatusCode::kPermissionDenied,
           grpc::StatusCode::PERMISSION_DENIED},
          {absl::StatusCode::kResourceExhausted,
           grpc::StatusCode::RESOURCE_EXHAUSTED},
          {absl::StatusCode::kFailedPrecondition,
           grpc::StatusCode::FAILED_PRECONDITION},
          {absl::StatusCode::kAborted, grpc::StatusCode::ABORTED},
          {absl::StatusCode::kOutOfRange, grpc::StatusCode::OUT_OF_RANGE},
          {absl::StatusCode::kUnimplemented, grpc::StatusCode::UNIMPLEMENTED},
          {absl::StatusCode::kInternal, grpc::StatusCode::INTERNAL},
          {absl::StatusCode::kUnavailable, grpc::StatusCode::UNAVAILABLE},
          {absl::StatusCode::kDataLoss, grpc::StatusCode::DATA_LOSS},
          {absl::StatusCode::kUnauthenticated,
           grpc::StatusCode::UNAUTHENTICATED},
      };
  return *kCodes;
}

TEST_CASE("EveryCanonicalErrorCodeMapsToTheSameGrpcCodeKeepingTheMessage") {
  for (const auto& [absl_code, grpc_code] : AllErrorCodes()) {
    INFO(absl::StatusCodeToString(absl_code));
    const std::string message =
        "certificate \"a.example\" not found: check the name";
    grpc::Status out = ToGrpcStatus(absl::Status(absl_code, message));
    CHECK(out.error_code() == grpc_code);
    CHECK(out.error_message() == message);
    CHECK(static_cast<int>(out.error_code()) == static_cast<int>(absl_code));
  }
}

TEST_CASE("EveryGrpcErrorCodeMapsToTheSameCanonicalCodeKeepingTheMessage") {
  for (const auto& [absl_code, grpc_code] : AllErrorCodes()) {
    INFO(absl::StatusCodeToString(absl_code));
    const std::string message = "deadline of 5s exceeded calling vault";
    CHECK_THAT(FromGrpcStatus(grpc::Status(grpc_code, message)),
               StatusIs(absl_code, message));
  }
}

TEST_CASE("OkMapsToOkBothWays") {
  CHECK(ToGrpcStatus(absl::OkStatus()).ok());
  CHECK_THAT(FromGrpcStatus(grpc::Status::OK), IsOk());
  CHECK_THAT(FromGrpcStatus(grpc::Status(grpc::StatusCode::OK, "fine")),
             IsOk());
}

TEST_CASE("RoundTripPreservesCodeMessageAndErrorDetails") {
  absl::Status original(absl::StatusCode::kFailedPrecondition,
                        "order 42 is not approved yet");
  original.SetPayload(kGrpcErrorDetailsPayloadUrl, absl::Cord("\x08\x09"));
  grpc::Status wire = ToGrpcStatus(original);
  CHECK(wire.error_details() == "\x08\x09");
  absl::Status back = FromGrpcStatus(wire);
  CHECK(back == original);
}

TEST_CASE("UnrecognisedAbslCodeBecomesUnknownAndSaysSo") {
  grpc::Status out =
      ToGrpcStatus(absl::Status(static_cast<absl::StatusCode>(42), "boom"));
  CHECK(out.error_code() == grpc::StatusCode::UNKNOWN);
  CHECK(out.error_message() == "boom (unrecognised status code 42)");
}

TEST_CASE("UnrecognisedGrpcCodeBecomesUnknownAndSaysSo") {
  CHECK_THAT(
      FromGrpcStatus(grpc::Status(static_cast<grpc::StatusCode>(99), "odd")),
      StatusIs(absl::StatusCode::kUnknown,
               "odd (unrecognised gRPC status code 99)"));
}

}  // namespace
}  // namespace certplane
