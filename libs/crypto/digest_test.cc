#include "libs/crypto/digest.h"

#include <catch2/catch.hpp>
#include <string>

#include "libs/crypto/key.h"
#include "libs/testing/status_matchers.h"

namespace certplane::crypto {
namespace {

using ::certplane::testing::ValueOrDie;

TEST_CASE("Sha256MatchesFips180Vectors") {
  CHECK(HexEncode(Sha256("")) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(HexEncode(Sha256("abc")) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("Sha256OfPartsEqualsSha256OfTheirConcatenation") {
  CHECK(Sha256Of({"a", "", "bc"}) == Sha256("abc"));
  CHECK(Sha256Of({}) == Sha256(""));
}

TEST_CASE("RandomBytesHaveTheAskedSizeAndDiffer") {
  std::string a = ValueOrDie(RandomBytes(32));
  std::string b = ValueOrDie(RandomBytes(32));
  CHECK(a.size() == 32);
  CHECK(a != b);
  CHECK(ValueOrDie(RandomBytes(0)).empty());
}

TEST_CASE("ConstantTimeEqualsComparesContentAndSize") {
  CHECK(ConstantTimeEquals("", ""));
  CHECK(ConstantTimeEquals("secret", "secret"));
  CHECK_FALSE(ConstantTimeEquals("secret", "secreT"));
  CHECK_FALSE(ConstantTimeEquals("secret", "secret!"));
}

}  // namespace
}  // namespace certplane::crypto
