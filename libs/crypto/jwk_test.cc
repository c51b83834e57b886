#include "libs/crypto/jwk.h"

#include <catch2/catch.hpp>
#include <string>

#include "libs/testing/status_matchers.h"

namespace certplane::crypto {
namespace {

using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;

TEST_CASE("JwkParametersRoundTripForRsaAndEcKeys") {
  for (KeyType type :
       {KeyType::kRsa2048, KeyType::kEcdsaP256, KeyType::kEcdsaP384}) {
    PrivateKey key = ValueOrDie(PrivateKey::Generate(type));
    JwkParams jwk = ValueOrDie(JwkOfPublicKey(key.public_key()));
    PublicKey back = ValueOrDie(PublicKeyFromJwk(jwk));
    CHECK(back == key.public_key());
    // A signature made by the key verifies with the key rebuilt from JWK.
    std::string sig = ValueOrDie(key.Sign("payload", "sha256"));
    CHECK_THAT(VerifySignature(back, "payload", sig, "sha256"), IsOk());
  }
  CHECK_THAT(
      JwkOfPublicKey(
          ValueOrDie(PrivateKey::Generate(KeyType::kEd25519)).public_key())
          .status(),
      StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_CASE("BadJwksAreRefusedWithTheReason") {
  JwkParams jwk = ValueOrDie(JwkOfPublicKey(
      ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256)).public_key()));
  JwkParams off_curve = jwk;
  off_curve.y[31] ^= 1;
  CHECK_THAT(PublicKeyFromJwk(off_curve).status(),
             StatusIs(absl::StatusCode::kInvalidArgument, "JWK EC key"));
  JwkParams short_x = jwk;
  short_x.x.pop_back();
  CHECK_THAT(PublicKeyFromJwk(short_x).status(),
             StatusIs(absl::StatusCode::kInvalidArgument, "32 bytes"));
  JwkParams curve = jwk;
  curve.crv = "secp256k1";
  CHECK_THAT(PublicKeyFromJwk(curve).status(),
             StatusIs(absl::StatusCode::kInvalidArgument, "not P-256"));
  JwkParams small;
  small.kty = "RSA";
  small.n = std::string(128, '\xff');
  small.e = "\x01\x00\x01";
  CHECK_THAT(PublicKeyFromJwk(small).status(),
             StatusIs(absl::StatusCode::kInvalidArgument, "1024 bits"));
  JwkParams oct;
  oct.kty = "oct";
  CHECK_THAT(PublicKeyFromJwk(oct).status(),
             StatusIs(absl::StatusCode::kInvalidArgument, "not RSA or EC"));
}

TEST_CASE("EcdsaSignaturesConvertBetweenDerAndJwsForms") {
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  for (int i = 0; i < 50; ++i) {
    std::string der = ValueOrDie(key.Sign("message", "sha256"));
    std::string raw = ValueOrDie(EcdsaDerToRaw(der, 32));
    REQUIRE(raw.size() == 64);
    std::string again = ValueOrDie(EcdsaRawToDer(raw, 32));
    CHECK(again == der);
    CHECK_THAT(VerifySignature(key.public_key(), "message", again, "sha256"),
               IsOk());
  }
  CHECK_FALSE(EcdsaRawToDer(std::string(63, 'x'), 32).ok());
  CHECK_FALSE(EcdsaDerToRaw("junk", 32).ok());
}

}  // namespace
}  // namespace certplane::crypto
