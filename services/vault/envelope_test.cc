#include "services/vault/envelope.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "libs/crypto/key.h"
#include "libs/testing/status_matchers.h"
#include "services/vault/file_kek_source.h"
#include "services/vault/kek_source.h"

namespace certplane::vault {
namespace {

using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;

// A real key-file KEK source in a fresh temporary directory.
struct FileKek {
  FileKek() {
    static int counter = 0;
    dir = std::filesystem::temp_directory_path() /
          ("vault_envelope_test_" + std::to_string(::getpid()) + "_" +
           std::to_string(counter++));
    std::filesystem::create_directories(dir);
    std::string path = (dir / "kek").string();
    REQUIRE_THAT(CreateKekFile(path), IsOk());
    source = ValueOrDie(FileKekSource::Open(path));
  }
  ~FileKek() { std::filesystem::remove_all(dir); }

  std::filesystem::path dir;
  std::unique_ptr<FileKekSource> source;
};

KeyRecord SealedRecord(const Envelope& envelope, const crypto::PrivateKey& key,
                       const std::string& key_id, const std::string& owner) {
  SealedKey sealed = ValueOrDie(envelope.Seal(key, key_id, 1, owner));
  KeyRecord record;
  record.key_id = key_id;
  record.version = 1;
  record.owner = owner;
  record.public_key_der = key.public_key().ToDer();
  record.sealed_key = sealed.sealed_key;
  record.wrapped_dek = sealed.wrapped_dek;
  record.kek_version = sealed.kek_version;
  return record;
}

constexpr char kKeyA[] = "k0123456789abcdef0123456789abcdef";
constexpr char kKeyB[] = "kfedcba9876543210fedcba9876543210";

TEST_CASE("AssociatedDataLengthPrefixesEveryField") {
  CHECK(KeyAssociatedData("k1", 7, "payments") ==
        "certplane-vault-key|v1|2:k1|1:7|8:payments");
  // Tuples that would collide if the fields were only joined by '|'.
  CHECK(KeyAssociatedData("a|1", 1, "b") != KeyAssociatedData("a", 1, "1|b"));
  CHECK(KeyAssociatedData("a", 11, "") != KeyAssociatedData("a", 1, "1"));
}

TEST_CASE("EnvelopeSealsAndOpensEveryKeyType") {
  FileKek kek;
  Envelope envelope(*kek.source);
  for (crypto::KeyType type :
       {crypto::KeyType::kRsa2048, crypto::KeyType::kEcdsaP256,
        crypto::KeyType::kEcdsaP384, crypto::KeyType::kEd25519}) {
    INFO(crypto::KeyTypeName(type));
    crypto::PrivateKey key = ValueOrDie(crypto::PrivateKey::Generate(type));
    KeyRecord record = SealedRecord(envelope, key, kKeyA, "payments");
    CHECK(record.kek_version == 1);
    crypto::SecretBytes der = ValueOrDie(key.ToPkcs8Der());
    CHECK_FALSE(absl::StrContains(record.sealed_key, der.view()));
    crypto::PrivateKey opened = ValueOrDie(envelope.Open(record));
    CHECK(opened.public_key() == key.public_key());
  }
}

TEST_CASE("EnvelopeRefusesEveryTamperedRecordWithDataLoss") {
  FileKek kek;
  Envelope envelope(*kek.source);
  crypto::PrivateKey key_a =
      ValueOrDie(crypto::PrivateKey::Generate(crypto::KeyType::kEcdsaP256));
  crypto::PrivateKey key_b =
      ValueOrDie(crypto::PrivateKey::Generate(crypto::KeyType::kEcdsaP256));
  const KeyRecord a = SealedRecord(envelope, key_a, kKeyA, "payments");
  const KeyRecord b = SealedRecord(envelope, key_b, kKeyB, "payments");

  for (size_t i = 0; i < a.sealed_key.size(); ++i) {
    KeyRecord tampered = a;
    tampered.sealed_key[i] = static_cast<char>(tampered.sealed_key[i] ^ 0x80);
    INFO("sealed_key byte " << i);
    CHECK_THAT(envelope.Open(tampered), StatusIs(absl::StatusCode::kDataLoss));
  }
  for (size_t i = 0; i < a.wrapped_dek.size(); ++i) {
    KeyRecord tampered = a;
    tampered.wrapped_dek[i] = static_cast<char>(tampered.wrapped_dek[i] ^ 1);
    INFO("wrapped_dek byte " << i);
    CHECK_THAT(envelope.Open(tampered), StatusIs(absl::StatusCode::kDataLoss));
  }
  KeyRecord swapped_sealed = a;
  swapped_sealed.sealed_key = b.sealed_key;
  CHECK_THAT(envelope.Open(swapped_sealed),
             StatusIs(absl::StatusCode::kDataLoss));
  KeyRecord swapped_both = a;
  swapped_both.sealed_key = b.sealed_key;
  swapped_both.wrapped_dek = b.wrapped_dek;
  CHECK_THAT(envelope.Open(swapped_both),
             StatusIs(absl::StatusCode::kDataLoss));
  KeyRecord other_owner = a;
  other_owner.owner = "payment";
  CHECK_THAT(envelope.Open(other_owner), StatusIs(absl::StatusCode::kDataLoss));
  KeyRecord other_version = a;
  other_version.version = 2;
  CHECK_THAT(envelope.Open(other_version),
             StatusIs(absl::StatusCode::kDataLoss));
  KeyRecord other_public_key = a;
  other_public_key.public_key_der = b.public_key_der;
  CHECK_THAT(envelope.Open(other_public_key),
             StatusIs(absl::StatusCode::kDataLoss));
  KeyRecord truncated = a;
  truncated.sealed_key.resize(5);
  CHECK_THAT(envelope.Open(truncated), StatusIs(absl::StatusCode::kDataLoss));
  // The untouched records still open.
  CHECK_THAT(envelope.Open(a), IsOk());
  CHECK_THAT(envelope.Open(b), IsOk());
}

TEST_CASE("EnvelopeRefusesDestroyedKeys") {
  FileKek kek;
  Envelope envelope(*kek.source);
  crypto::PrivateKey key =
      ValueOrDie(crypto::PrivateKey::Generate(crypto::KeyType::kEd25519));
  KeyRecord record = SealedRecord(envelope, key, kKeyA, "ops");
  record.state = KeyState::kDestroyed;
  record.sealed_key.clear();
  record.wrapped_dek.clear();
  CHECK_THAT(envelope.Open(record),
             StatusIs(absl::StatusCode::kFailedPrecondition, "destroyed"));
}

TEST_CASE("EnvelopeRewrapsUnderANewKekVersionAndOldVersionsStillOpen") {
  FileKek kek;
  Envelope envelope(*kek.source);
  crypto::PrivateKey key =
      ValueOrDie(crypto::PrivateKey::Generate(crypto::KeyType::kEcdsaP256));
  KeyRecord old_record = SealedRecord(envelope, key, kKeyA, "ops");
  REQUIRE(ValueOrDie(kek.source->CreateVersion()) == 2);

  KeyRecord rewrapped = old_record;
  rewrapped.wrapped_dek = ValueOrDie(envelope.Rewrap(old_record, 2));
  rewrapped.kek_version = 2;
  CHECK(ValueOrDie(envelope.Open(rewrapped)).public_key() == key.public_key());
  CHECK_THAT(envelope.Open(old_record), IsOk());
  // A DEK wrapped under v2 does not open as v1.
  KeyRecord wrong_version = rewrapped;
  wrong_version.kek_version = 1;
  CHECK_THAT(envelope.Open(wrong_version),
             StatusIs(absl::StatusCode::kDataLoss));
  // New seals use the current version.
  CHECK(SealedRecord(envelope, key, kKeyB, "ops").kek_version == 2);
  // Rewrap refuses a record whose sealed key was tampered with.
  KeyRecord tampered = old_record;
  tampered.sealed_key.back() =
      static_cast<char>(tampered.sealed_key.back() ^ 1);
  CHECK_THAT(envelope.Rewrap(tampered, 2),
             StatusIs(absl::StatusCode::kDataLoss));
}

}  // namespace
}  // namespace certplane::vault
