#include "services/vault/pkcs11_kek_source.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/crypto/aead.h"
#include "libs/testing/status_matchers.h"
#include "services/vault/kek_source.h"
#include "services/vault/testing/softhsm.h"

namespace certplane::vault {
namespace {

using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;
using ::certplane::vault::testing::SoftHsmToken;

// A fresh SoftHSM2 token; fails the test (never skips) when SoftHSM2 is
// unavailable.
std::unique_ptr<SoftHsmToken> NewToken() {
  absl::StatusOr<std::unique_ptr<SoftHsmToken>> token = SoftHsmToken::Create();
  if (!token.ok()) FAIL("SoftHSM2 token unavailable: " << token.status());
  return *std::move(token);
}

Pkcs11KekConfig Config(const SoftHsmToken& token) {
  return ValueOrDie(Pkcs11KekConfig::Parse(token.SpecParams()));
}

std::unique_ptr<Pkcs11KekSource> OpenWithFirstVersion(
    const SoftHsmToken& token) {
  return ValueOrDie(
      Pkcs11KekSource::Open(Config(token), {.create_first_version = true}));
}

crypto::SecretBytes Dek() {
  return ValueOrDie(crypto::Aes256Gcm::GenerateKey());
}

TEST_CASE("Pkcs11KekSource wraps and unwraps a DEK on a SoftHSM2 token",
          "[pkcs11_kek]") {
  auto token = NewToken();
  auto source = OpenWithFirstVersion(*token);
  REQUIRE(ValueOrDie(source->Versions()) == std::vector<int>{1});
  crypto::SecretBytes dek = Dek();
  std::string wrapped = ValueOrDie(source->Wrap(1, dek, "key-1/v1/team-a"));
  CHECK(wrapped.size() == 1 + 12 + dek.size() + 16);
  CHECK(wrapped[0] == '\x01');
  CHECK(wrapped.find(std::string(dek.view())) == std::string::npos);
  CHECK(ValueOrDie(source->Unwrap(1, wrapped, "key-1/v1/team-a")) == dek);
  // Fresh IVs: the same DEK wraps differently each time.
  CHECK(ValueOrDie(source->Wrap(1, dek, "key-1/v1/team-a")) != wrapped);
  CHECK(source->Describe() == absl::StrCat("pkcs11:", token->SpecParams()));
  CHECK(source->Describe().find(SoftHsmToken::kUserPin) == std::string::npos);
}

TEST_CASE("Pkcs11KekSource refuses every single-byte tamper with DATA_LOSS",
          "[pkcs11_kek]") {
  auto token = NewToken();
  auto source = OpenWithFirstVersion(*token);
  crypto::SecretBytes dek = Dek();
  std::string wrapped = ValueOrDie(source->Wrap(1, dek, "ad"));
  for (size_t i = 0; i < wrapped.size(); ++i) {
    std::string tampered = wrapped;
    tampered[i] ^= 0x01;
    INFO("byte " << i);
    CHECK_THAT(source->Unwrap(1, tampered, "ad"),
               StatusIs(absl::StatusCode::kDataLoss));
  }
  CHECK_THAT(source->Unwrap(1, wrapped.substr(0, 20), "ad"),
             StatusIs(absl::StatusCode::kDataLoss));
  CHECK_THAT(source->Unwrap(1, wrapped.substr(0, 5), "ad"),
             StatusIs(absl::StatusCode::kDataLoss, "too short"));
  // The session is still usable after the failures.
  CHECK(ValueOrDie(source->Unwrap(1, wrapped, "ad")) == dek);
}

TEST_CASE(
    "Pkcs11KekSource refuses other AD with DATA_LOSS and an unknown "
    "version with FAILED_PRECONDITION",
    "[pkcs11_kek]") {
  auto token = NewToken();
  auto source = OpenWithFirstVersion(*token);
  std::string wrapped = ValueOrDie(source->Wrap(1, Dek(), "key-1/v1"));
  CHECK_THAT(source->Unwrap(1, wrapped, "key-2/v1"),
             StatusIs(absl::StatusCode::kDataLoss, "C_Decrypt failed: CKR_"));
  CHECK_THAT(source->Unwrap(1, wrapped, ""),
             StatusIs(absl::StatusCode::kDataLoss));
  CHECK_THAT(
      source->Unwrap(2, wrapped, "key-1/v1"),
      StatusIs(absl::StatusCode::kFailedPrecondition, "certplane-kek-v2"));
  CHECK_THAT(source->Wrap(5, Dek(), "ad"),
             StatusIs(absl::StatusCode::kFailedPrecondition, "version 5"));
}

TEST_CASE("Pkcs11KekSource rotation creates v2 and keeps v1 blobs readable",
          "[pkcs11_kek]") {
  auto token = NewToken();
  crypto::SecretBytes dek = Dek();
  std::string old_wrapped, new_wrapped;
  {
    auto source = OpenWithFirstVersion(*token);
    old_wrapped = ValueOrDie(source->Wrap(1, dek, "ad"));
    CHECK(ValueOrDie(source->CreateVersion()) == 2);
    std::vector<int> versions = ValueOrDie(source->Versions());
    REQUIRE(versions == std::vector<int>{1, 2});
    new_wrapped = ValueOrDie(source->Wrap(versions.back(), dek, "ad"));
    CHECK(ValueOrDie(source->Unwrap(1, old_wrapped, "ad")) == dek);
    CHECK(ValueOrDie(source->Unwrap(2, new_wrapped, "ad")) == dek);
    CHECK_THAT(source->Unwrap(2, old_wrapped, "ad"),
               StatusIs(absl::StatusCode::kDataLoss));
    CHECK_THAT(source->Unwrap(1, new_wrapped, "ad"),
               StatusIs(absl::StatusCode::kDataLoss));
  }
  // Token objects persist: a new session (after C_Finalize) finds both.
  auto reopened =
      ValueOrDie(CreateKekSource(absl::StrCat("pkcs11:", token->SpecParams())));
  CHECK(ValueOrDie(reopened->Versions()) == std::vector<int>{1, 2});
  CHECK(ValueOrDie(reopened->Unwrap(1, old_wrapped, "ad")) == dek);
  CHECK(ValueOrDie(reopened->Unwrap(2, new_wrapped, "ad")) == dek);
  auto* rotatable = dynamic_cast<RotatableKekSource*>(reopened.get());
  REQUIRE(rotatable != nullptr);
  CHECK(ValueOrDie(rotatable->CreateVersion()) == 3);
}

TEST_CASE("Pkcs11KekSource sources on one token see each other's versions",
          "[pkcs11_kek]") {
  auto token = NewToken();
  auto first = OpenWithFirstVersion(*token);
  auto second = ValueOrDie(Pkcs11KekSource::Open(Config(*token)));
  CHECK(ValueOrDie(first->CreateVersion()) == 2);
  // The second source looks at the token again before creating a version.
  CHECK(ValueOrDie(second->CreateVersion()) == 3);
  std::string wrapped = ValueOrDie(second->Wrap(1, Dek(), "ad"));
  CHECK_THAT(first->Unwrap(1, wrapped, "ad"), IsOk());
}

TEST_CASE("Pkcs11KekSource KEK objects are sensitive and not extractable",
          "[pkcs11_kek]") {
  auto token = NewToken();
  auto source = OpenWithFirstVersion(*token);
  REQUIRE(ValueOrDie(source->CreateVersion()) == 2);
  for (int version : {1, 2}) {
    INFO("version " << version);
    Pkcs11KekSource::KeyObjectInfo info =
        ValueOrDie(source->InspectVersion(version));
    CHECK(info.token);
    CHECK(info.sensitive);
    CHECK_FALSE(info.extractable);
    CHECK(info.always_sensitive);
    CHECK(info.never_extractable);
    CHECK(info.value_query_result == "CKR_ATTRIBUTE_SENSITIVE");
  }
}

TEST_CASE("Pkcs11KekSource refuses an empty token unless asked to create v1",
          "[pkcs11_kek]") {
  auto token = NewToken();
  CHECK_THAT(CreateKekSource(absl::StrCat("pkcs11:", token->SpecParams())),
             StatusIs(absl::StatusCode::kFailedPrecondition, "holds no KEK"));
  auto created = OpenWithFirstVersion(*token);
  CHECK(ValueOrDie(created->Versions()) == std::vector<int>{1});
}

TEST_CASE("Pkcs11KekSource refuses a wrong PIN, unknown token or bad module",
          "[pkcs11_kek]") {
  auto token = NewToken();
  Pkcs11KekConfig config = Config(*token);

  ::setenv("CERTPLANE_TEST_WRONG_PIN", "9999", 1);
  Pkcs11KekConfig wrong_pin = config;
  wrong_pin.pin_env = "CERTPLANE_TEST_WRONG_PIN";
  absl::StatusOr<std::unique_ptr<Pkcs11KekSource>> refused =
      Pkcs11KekSource::Open(wrong_pin);
  CHECK_THAT(refused, StatusIs(absl::StatusCode::kFailedPrecondition,
                               "C_Login failed: CKR_PIN_INCORRECT"));
  CHECK(refused.status().message().find("9999") == std::string::npos);
  ::unsetenv("CERTPLANE_TEST_WRONG_PIN");

  Pkcs11KekConfig unset_pin = config;
  unset_pin.pin_env = "CERTPLANE_TEST_UNSET_PIN";
  CHECK_THAT(Pkcs11KekSource::Open(unset_pin),
             StatusIs(absl::StatusCode::kFailedPrecondition, "is not set"));

  Pkcs11KekConfig other_token = config;
  other_token.token = "no-such-token";
  CHECK_THAT(Pkcs11KekSource::Open(other_token),
             StatusIs(absl::StatusCode::kFailedPrecondition,
                      "no token labelled \"no-such-token\""));

  Pkcs11KekConfig bad_module = config;
  bad_module.module = "/nonexistent/libpkcs11.so";
  CHECK_THAT(Pkcs11KekSource::Open(bad_module),
             StatusIs(absl::StatusCode::kFailedPrecondition,
                      "cannot load PKCS#11 module /nonexistent/libpkcs11.so"));

  // Failures leave the module usable.
  CHECK_THAT(Pkcs11KekSource::Open(config, {.create_first_version = true}),
             IsOk());
}

TEST_CASE("Pkcs11KekSource reads the PIN from a private pin-file",
          "[pkcs11_kek]") {
  auto token = NewToken();
  std::string pin_file = absl::StrCat(token->dir(), "/pin");
  {
    std::ofstream out(pin_file);
    out << SoftHsmToken::kUserPin << "\n";
  }
  Pkcs11KekConfig config = ValueOrDie(Pkcs11KekConfig::Parse(
      absl::StrCat("module=", SoftHsmToken::kModule,
                   ";token=", SoftHsmToken::kLabel, ";pin-file=", pin_file)));
  REQUIRE(::chmod(pin_file.c_str(), 0644) == 0);
  CHECK_THAT(Pkcs11KekSource::Open(config, {.create_first_version = true}),
             StatusIs(absl::StatusCode::kFailedPrecondition, "mode 0644"));
  REQUIRE(::chmod(pin_file.c_str(), 0600) == 0);
  auto source =
      ValueOrDie(Pkcs11KekSource::Open(config, {.create_first_version = true}));
  CHECK(ValueOrDie(source->Versions()) == std::vector<int>{1});
  CHECK(source->Describe().find("pin-file=") != std::string::npos);
}

TEST_CASE("Pkcs11KekSource serves wraps from several threads", "[pkcs11_kek]") {
  auto token = NewToken();
  auto source = OpenWithFirstVersion(*token);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        crypto::SecretBytes dek(32);
        dek.data()[0] = static_cast<uint8_t>(t);
        dek.data()[1] = static_cast<uint8_t>(i);
        std::string ad = absl::StrCat("key-", t, "-", i);
        absl::StatusOr<std::string> wrapped = source->Wrap(1, dek, ad);
        if (!wrapped.ok()) {
          ++failures[t];
          continue;
        }
        absl::StatusOr<crypto::SecretBytes> back =
            source->Unwrap(1, *wrapped, ad);
        if (!back.ok() || !(*back == dek)) ++failures[t];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(failures == std::vector<int>(kThreads, 0));
}

TEST_CASE("Pkcs11KekConfig refuses malformed specs naming the problem",
          "[pkcs11_kek]") {
  using Code = absl::StatusCode;
  CHECK_THAT(Pkcs11KekConfig::Parse("token=t;pin-env=P"),
             StatusIs(Code::kInvalidArgument, "missing module"));
  CHECK_THAT(Pkcs11KekConfig::Parse("module=/m.so;pin-env=P"),
             StatusIs(Code::kInvalidArgument, "missing token"));
  CHECK_THAT(Pkcs11KekConfig::Parse("module=/m.so;token=t"),
             StatusIs(Code::kInvalidArgument, "exactly one of pin-env"));
  CHECK_THAT(
      Pkcs11KekConfig::Parse("module=/m.so;token=t;pin-env=P;pin-file=/p"),
      StatusIs(Code::kInvalidArgument, "exactly one of pin-env"));
  CHECK_THAT(Pkcs11KekConfig::Parse("module=/m.so;token=t;pin=1234"),
             StatusIs(Code::kInvalidArgument, "unknown attribute \"pin\""));
  CHECK_THAT(Pkcs11KekConfig::Parse("module=;token=t;pin-env=P"),
             StatusIs(Code::kInvalidArgument, "module is empty"));
  CHECK_THAT(Pkcs11KekConfig::Parse("module=/a.so;module=/b.so;token=t"),
             StatusIs(Code::kInvalidArgument, "module is given twice"));
  CHECK_THAT(Pkcs11KekConfig::Parse("module"),
             StatusIs(Code::kInvalidArgument, "not of the form name=value"));
  CHECK_THAT(CreateKekSource("pkcs11:token=t;pin-env=P"),
             StatusIs(Code::kInvalidArgument, "missing module"));
  Pkcs11KekConfig ok = ValueOrDie(
      Pkcs11KekConfig::Parse("module=/m.so;token=my token;pin-env=P"));
  CHECK(ok.module == "/m.so");
  CHECK(ok.token == "my token");
  CHECK(ok.pin_env == "P");
  CHECK(ok.pin_file.empty());
}

}  // namespace
}  // namespace certplane::vault
