#include "libs/crypto/aead.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/testing/status_matchers.h"

namespace certplane::crypto {
namespace {

using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;

Aes256Gcm NewAead() {
  return ValueOrDie(Aes256Gcm::Create(ValueOrDie(Aes256Gcm::GenerateKey())));
}

TEST_CASE("GeneratesDistinct32ByteKeys", "[aead]") {
  SecretBytes a = ValueOrDie(Aes256Gcm::GenerateKey());
  SecretBytes b = ValueOrDie(Aes256Gcm::GenerateKey());
  CHECK(a.size() == Aes256Gcm::kKeySize);
  CHECK_FALSE(a == b);
}

TEST_CASE("RejectsKeysThatAreNot32Bytes", "[aead]") {
  CHECK_THAT(Aes256Gcm::Create(SecretBytes(size_t{16})),
             StatusIs(absl::StatusCode::kInvalidArgument, "32 bytes, got 16"));
  CHECK_THAT(Aes256Gcm::Create(SecretBytes()),
             StatusIs(absl::StatusCode::kInvalidArgument, "got 0"));
  CHECK_THAT(Aes256Gcm::Create(SecretBytes(size_t{33})),
             StatusIs(absl::StatusCode::kInvalidArgument, "got 33"));
  CHECK_THAT(Aes256Gcm::Create(SecretBytes(size_t{32})), IsOk());
}

TEST_CASE("RoundTripsEmptySmallAndLargePlaintexts", "[aead]") {
  Aes256Gcm aead = NewAead();
  std::string large(3 * 1024 * 1024 + 7, '\0');
  for (size_t i = 0; i < large.size(); ++i) {
    large[i] = static_cast<char>(i * 131 + 7);
  }
  for (const std::string& plaintext :
       {std::string(), std::string("x"), std::string("a data key"), large}) {
    INFO("plaintext size " << plaintext.size());
    std::string sealed = ValueOrDie(aead.Seal(plaintext, "row 42"));
    CHECK(sealed.size() == plaintext.size() + Aes256Gcm::kOverhead);
    CHECK(sealed[0] == '\x01');
    SecretBytes opened = ValueOrDie(aead.Open(sealed, "row 42"));
    CHECK(opened.view() == plaintext);
  }
}

TEST_CASE("RoundTripsWithEmptyAssociatedData", "[aead]") {
  Aes256Gcm aead = NewAead();
  std::string sealed = ValueOrDie(aead.Seal("secret", ""));
  CHECK(ValueOrDie(aead.Open(sealed, "")).view() == "secret");
  CHECK_THAT(aead.Open(sealed, "x"),
             StatusIs(absl::StatusCode::kDataLoss, "authentication"));
}

TEST_CASE("CiphertextDoesNotContainPlaintext", "[aead]") {
  Aes256Gcm aead = NewAead();
  std::string sealed = ValueOrDie(aead.Seal("very recognisable secret", ""));
  CHECK(sealed.find("recognisable") == std::string::npos);
}

TEST_CASE("TwoSealsOfTheSamePlaintextDiffer", "[aead]") {
  Aes256Gcm aead = NewAead();
  std::string a = ValueOrDie(aead.Seal("same", "ad"));
  std::string b = ValueOrDie(aead.Seal("same", "ad"));
  CHECK(a != b);
  // The nonces differ, not only the ciphertexts.
  CHECK(a.substr(1, Aes256Gcm::kNonceSize) !=
        b.substr(1, Aes256Gcm::kNonceSize));
}

TEST_CASE("RefusesEverySingleBitFlip", "[aead]") {
  Aes256Gcm aead = NewAead();
  const std::string sealed = ValueOrDie(aead.Seal("the data key", "tenant-1"));
  for (size_t byte = 0; byte < sealed.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string tampered = sealed;
      tampered[byte] = static_cast<char>(tampered[byte] ^ (1 << bit));
      auto opened = aead.Open(tampered, "tenant-1");
      if (opened.ok())
        FAIL("bit flip accepted at byte " << byte << " bit " << bit);
      CHECK(opened.status().code() == absl::StatusCode::kDataLoss);
    }
  }
}

TEST_CASE("RefusesWrongAssociatedData", "[aead]") {
  Aes256Gcm aead = NewAead();
  std::string sealed = ValueOrDie(aead.Seal("secret", "tenant-1"));
  CHECK_THAT(aead.Open(sealed, "tenant-2"),
             StatusIs(absl::StatusCode::kDataLoss, "failed authentication"));
}

TEST_CASE("RefusesWrongKey", "[aead]") {
  Aes256Gcm aead = NewAead();
  Aes256Gcm other = NewAead();
  std::string sealed = ValueOrDie(aead.Seal("secret", "ad"));
  CHECK_THAT(other.Open(sealed, "ad"),
             StatusIs(absl::StatusCode::kDataLoss, "failed authentication"));
}

TEST_CASE("RefusesTruncatedSealedData", "[aead]") {
  Aes256Gcm aead = NewAead();
  std::string sealed = ValueOrDie(aead.Seal("secret", "ad"));
  for (size_t length = 0; length < sealed.size(); ++length) {
    INFO("length " << length);
    auto opened = aead.Open(sealed.substr(0, length), "ad");
    CHECK(opened.status().code() == absl::StatusCode::kDataLoss);
  }
  CHECK_THAT(aead.Open("", "ad"),
             StatusIs(absl::StatusCode::kDataLoss, "too short"));
  CHECK_THAT(aead.Open(sealed.substr(0, Aes256Gcm::kOverhead - 1), "ad"),
             StatusIs(absl::StatusCode::kDataLoss, "too short"));
}

TEST_CASE("RefusesUnknownVersionByte", "[aead]") {
  Aes256Gcm aead = NewAead();
  std::string sealed = ValueOrDie(aead.Seal("secret", "ad"));
  sealed[0] = '\x02';
  CHECK_THAT(aead.Open(sealed, "ad"), StatusIs(absl::StatusCode::kDataLoss,
                                               "unknown version byte 0x02"));
}

TEST_CASE("OpensWithACopyOfTheKey", "[aead]") {
  SecretBytes key = ValueOrDie(Aes256Gcm::GenerateKey());
  Aes256Gcm a = ValueOrDie(Aes256Gcm::Create(key));
  Aes256Gcm b = ValueOrDie(Aes256Gcm::Create(key));
  CHECK(ValueOrDie(b.Open(ValueOrDie(a.Seal("shared", "")), "")).view() ==
        "shared");
}

}  // namespace
}  // namespace certplane::crypto

namespace certplane::crypto {
namespace {

TEST_CASE("SealsAndOpensFromManyThreadsWithOneInstance", "[aead]") {
  auto key = Aes256Gcm::GenerateKey();
  REQUIRE(key.ok());
  auto aead = Aes256Gcm::Create(*std::move(key));
  REQUIRE(aead.ok());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        std::string plaintext = absl::StrCat("thread ", t, " message ", i);
        std::string aad = absl::StrCat("ad", t);
        auto sealed = aead->Seal(plaintext, aad);
        if (!sealed.ok()) {
          ++failures;
          continue;
        }
        auto opened = aead->Open(*sealed, aad);
        if (!opened.ok() || opened->view() != plaintext) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(failures.load() == 0);
}

}  // namespace
}  // namespace certplane::crypto
