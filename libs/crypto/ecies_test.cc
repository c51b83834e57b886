#include "libs/crypto/ecies.h"

#include <catch2/catch.hpp>
#include <string>

#include "absl/strings/escaping.h"
#include "libs/crypto/key.h"
#include "libs/testing/status_matchers.h"

namespace certplane::crypto {
namespace {

using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;

std::string Hex(absl::string_view hex) { return absl::HexStringToBytes(hex); }

TEST_CASE("HkdfSha256MatchesRfc5869TestCase1") {
  SecretBytes okm = ValueOrDie(HkdfSha256(std::string(22, '\x0b'),
                                          Hex("000102030405060708090a0b0c"),
                                          Hex("f0f1f2f3f4f5f6f7f8f9"), 42));
  CHECK(HexEncode(okm.view()) ==
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        "34007208d5b887185865");
}

TEST_CASE("HkdfSha256MatchesRfc5869TestCase3WithEmptySaltAndInfo") {
  SecretBytes okm = ValueOrDie(HkdfSha256(std::string(22, '\x0b'), "", "", 42));
  CHECK(HexEncode(okm.view()) ==
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
        "9d201395faa4b61a96c8");
}

TEST_CASE("HkdfSha256RefusesZeroAndOversizedLengths") {
  CHECK_THAT(HkdfSha256("k", "", "", 0),
             StatusIs(absl::StatusCode::kInvalidArgument));
  CHECK_THAT(HkdfSha256("k", "", "", 255 * 32 + 1),
             StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_CASE("EciesRoundTripsToTheRecipientOnly") {
  PrivateKey recipient = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  PrivateKey other = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  std::string sealed =
      ValueOrDie(EciesSeal(recipient.public_key(), "the secret", "ctx"));
  CHECK(sealed.find("the secret") == std::string::npos);
  CHECK(ValueOrDie(EciesOpen(recipient, sealed, "ctx")).view() == "the secret");
  CHECK_THAT(EciesOpen(other, sealed, "ctx"),
             StatusIs(absl::StatusCode::kDataLoss));
  CHECK_THAT(EciesOpen(recipient, sealed, "other context"),
             StatusIs(absl::StatusCode::kDataLoss));
}

TEST_CASE("EciesSealsAreFreshEachTime") {
  PrivateKey recipient = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  CHECK(ValueOrDie(EciesSeal(recipient.public_key(), "x", "")) !=
        ValueOrDie(EciesSeal(recipient.public_key(), "x", "")));
}

TEST_CASE("EciesRefusesEveryFlippedByteAndEveryTruncation") {
  PrivateKey recipient = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  std::string sealed =
      ValueOrDie(EciesSeal(recipient.public_key(), "payload", "ctx"));
  for (size_t i = 0; i < sealed.size(); ++i) {
    std::string tampered = sealed;
    tampered[i] = static_cast<char>(tampered[i] ^ 0x01);
    INFO("byte " << i);
    CHECK_THAT(EciesOpen(recipient, tampered, "ctx"),
               StatusIs(absl::StatusCode::kDataLoss));
  }
  for (size_t n = 0; n < sealed.size(); ++n) {
    INFO("length " << n);
    CHECK_THAT(EciesOpen(recipient, sealed.substr(0, n), "ctx"),
               StatusIs(absl::StatusCode::kDataLoss));
  }
}

TEST_CASE("EciesRefusesRecipientsThatAreNotP256") {
  PrivateKey rsa = ValueOrDie(PrivateKey::Generate(KeyType::kRsa2048));
  PrivateKey p384 = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP384));
  CHECK_THAT(EciesSeal(rsa.public_key(), "x", ""),
             StatusIs(absl::StatusCode::kInvalidArgument, "P-256"));
  CHECK_THAT(EciesSeal(p384.public_key(), "x", ""),
             StatusIs(absl::StatusCode::kInvalidArgument, "P-256"));
  CHECK_THAT(EciesOpen(p384, "anything", ""),
             StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace certplane::crypto
