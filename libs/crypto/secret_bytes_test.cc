#include "libs/crypto/secret_bytes.h"

#include <catch2/catch.hpp>
#include <sstream>

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

TEST_CASE("SecretBytesAssignmentReplacesContents", "[secret_bytes]") {
  SecretBytes a(absl::string_view("first"));
  SecretBytes b(absl::string_view("second value"));
  a = b;
  CHECK(a.view() == "second value");
  CHECK(a.data() != b.data());
  const SecretBytes& same = a;
  a = same;  // Self-assignment keeps the contents.
  CHECK(a.view() == "second value");
  SecretBytes c(absl::string_view("third"));
  a = std::move(c);
  CHECK(a.view() == "third");
  CHECK(c.empty());  // NOLINT(bugprone-use-after-move): documented state.
}

TEST_CASE("SecretBytesHoldsEmbeddedNuls", "[secret_bytes]") {
  const std::string bytes("a\0b\0", 4);
  SecretBytes secret{absl::string_view(bytes)};
  CHECK(secret.size() == 4);
  CHECK(secret.view() == bytes);
}

TEST_CASE("SecretBytesEqualityNeedsSameLength", "[secret_bytes]") {
  CHECK(SecretBytes(absl::string_view("abc")) ==
        SecretBytes(absl::string_view("abc")));
  CHECK_FALSE(SecretBytes(absl::string_view("abc")) ==
              SecretBytes(absl::string_view("abd")));
  CHECK_FALSE(SecretBytes(absl::string_view("abc")) == SecretBytes());
}

}  // namespace
}  // namespace certplane::crypto
