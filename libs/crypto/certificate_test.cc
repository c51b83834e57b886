#include "libs/crypto/certificate.h"

#include <catch2/catch.hpp>

#include "libs/testing/status_matchers.h"

namespace certplane::crypto {
namespace {

using ::certplane::testing::StatusIs;

TEST_CASE("RejectsGarbageAndEmptyCertificates", "[certificate]") {
  CHECK_THAT(Certificate::FromDer(""),
             StatusIs(absl::StatusCode::kInvalidArgument, "empty"));
  CHECK_THAT(Certificate::FromDer("\x30\x03\x02\x01"),
             StatusIs(absl::StatusCode::kInvalidArgument, "d2i_X509"));
  CHECK_THAT(Certificate::FromPem("hello"),
             StatusIs(absl::StatusCode::kInvalidArgument, "PEM"));
}

}  // namespace
}  // namespace certplane::crypto
