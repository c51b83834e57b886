#include "libs/crypto/secret_bytes.h"

#include <sstream>

#include <catch2/catch.hpp>

namespace certplane::crypto {
namespace {

TEST_CASE("SecretBytesPrintsRedacted", "[secret_bytes]") {
  SecretBytes secret(absl::string_view("hunter2"));
  std::ostringstream out;
  out << secret;
  CHECK(out.str() == "[redacted]");
  CHECK(out.str().find("hunter2") == std::string::npos);
}

TEST_CASE("SecretBytesCopiesDeepAndComparesByContent", "[secret_bytes]") {
  SecretBytes a(absl::string_view("abc"));
  SecretBytes b = a;
  CHECK(a == b);
  CHECK(a.data() != b.data());
  b.data()[0] = 'x';
  CHECK_FALSE(a == b);
  CHECK_FALSE(a == SecretBytes(absl::string_view("ab")));
}

TEST_CASE("SecretBytesMoveLeavesSourceEmpty", "[secret_bytes]") {
  SecretBytes a(absl::string_view("key material"));
  SecretBytes b = std::move(a);
  CHECK(b.view() == "key material");
  CHECK(a.empty());  // NOLINT(bugprone-use-after-move): documented state.
}

TEST_CASE("SecretBytesTruncateKeepsPrefix", "[secret_bytes]") {
  SecretBytes a(absl::string_view("abcdef"));
  a.Truncate(3);
  CHECK(a.view() == "abc");
  a.Truncate(10);
  CHECK(a.size() == 3);
}

TEST_CASE("SecretBytesZeroSizedIsEmpty", "[secret_bytes]") {
  SecretBytes empty;
  CHECK(empty.empty());
  CHECK(empty == SecretBytes(size_t{0}));
  SecretBytes zeros(size_t{4});
  CHECK(zeros.view() == absl::string_view("\0\0\0\0", 4));
}

}  // namespace
}  // namespace certplane::crypto
