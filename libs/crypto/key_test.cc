#include "libs/crypto/key.h"

#include <catch2/catch.hpp>

#include "libs/testing/status_matchers.h"

namespace certplane::crypto {
namespace {

using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;

TEST_CASE("GeneratesEveryKeyType", "[key]") {
  struct Case {
    KeyType type;
    KeyAlgorithm algorithm;
    int bits;
    std::string curve;
  };
  const Case cases[] = {
      {KeyType::kRsa2048, KeyAlgorithm::kRsa, 2048, ""},
      {KeyType::kEcdsaP256, KeyAlgorithm::kEcdsa, 256, "P-256"},
      {KeyType::kEcdsaP384, KeyAlgorithm::kEcdsa, 384, "P-384"},
      {KeyType::kEd25519, KeyAlgorithm::kEd25519, 256, ""},
  };
  for (const auto& c : cases) {
    INFO(KeyTypeName(c.type));
    PrivateKey key = ValueOrDie(PrivateKey::Generate(c.type));
    KeyInfo info = key.info();
    CHECK(info.algorithm == c.algorithm);
    CHECK(info.bits == c.bits);
    CHECK(info.curve == c.curve);
    CHECK_FALSE(info.explicit_curve_parameters);
    CHECK(key.public_key().SpkiSha256().size() == 32);
  }
}

TEST_CASE("ParsesKeyTypeNames", "[key]") {
  CHECK(ValueOrDie(ParseKeyType("ECDSA-P256")) == KeyType::kEcdsaP256);
  CHECK_THAT(ParseKeyType("rsa-1024"),
             StatusIs(absl::StatusCode::kInvalidArgument, "rsa-1024"));
}

TEST_CASE("PublicKeyRoundTripsThroughDerAndPem", "[key]") {
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  PublicKey pub = key.public_key();
  CHECK(ValueOrDie(PublicKey::FromDer(pub.ToDer())) == pub);
  CHECK(ValueOrDie(PublicKey::FromPem(pub.ToPem())) == pub);
  CHECK_THAT(PublicKey::FromDer("garbage"),
             StatusIs(absl::StatusCode::kInvalidArgument));
  CHECK_THAT(PublicKey::FromDer(pub.ToDer() + "x"),
             StatusIs(absl::StatusCode::kInvalidArgument, "trailing"));
}

TEST_CASE("HexEncodes", "[key]") {
  CHECK(HexEncode("\x01\xab") == "01ab");
  CHECK(HexEncode("\x01\xab", true) == "01:ab");
}

}  // namespace
}  // namespace certplane::crypto
