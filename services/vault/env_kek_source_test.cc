#include "services/vault/env_kek_source.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/crypto/aead.h"
#include "libs/testing/status_matchers.h"
#include "services/vault/kek_source.h"

namespace certplane::vault {
namespace {

using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;

constexpr char kKey1[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
constexpr char kKey2[] = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
constexpr char kVar[] = "CERTPLANE_TEST_ENV_KEK";

// Sets kVar for the test's duration.
class ScopedEnv {
 public:
  explicit ScopedEnv(const std::string& value) {
    ::setenv(kVar, value.c_str(), 1);
  }
  ~ScopedEnv() { ::unsetenv(kVar); }
};

crypto::SecretBytes Dek() {
  return ValueOrDie(crypto::Aes256Gcm::GenerateKey());
}

TEST_CASE("EnvKekSource wraps under the current version and unwraps older",
          "[env_kek]") {
  ScopedEnv env(absl::StrCat("v1:", kKey1, ",v2:", kKey2));
  auto source = ValueOrDie(CreateKekSource(absl::StrCat("env:", kVar)));
  CHECK(source->Describe() == absl::StrCat("env:", kVar));
  CHECK(dynamic_cast<RotatableKekSource*>(source.get()) == nullptr);
  std::vector<int> versions = ValueOrDie(source->Versions());
  REQUIRE(versions == std::vector<int>{1, 2});
  crypto::SecretBytes dek = Dek();
  for (int version : versions) {
    std::string wrapped = ValueOrDie(source->Wrap(version, dek, "key-9/v1"));
    CHECK(ValueOrDie(source->Unwrap(version, wrapped, "key-9/v1")) == dek);
  }
}

TEST_CASE("EnvKekSource reads the variable once, at construction",
          "[env_kek]") {
  ::setenv(kVar, absl::StrCat("v1:", kKey1).c_str(), 1);
  auto source = ValueOrDie(EnvKekSource::Open(kVar));
  crypto::SecretBytes dek = Dek();
  std::string wrapped = ValueOrDie(source->Wrap(1, dek, "ad"));
  ::setenv(kVar, absl::StrCat("v1:", kKey2).c_str(), 1);
  CHECK(ValueOrDie(source->Unwrap(1, wrapped, "ad")) == dek);
  ::unsetenv(kVar);
  CHECK(ValueOrDie(source->Unwrap(1, wrapped, "ad")) == dek);
}

TEST_CASE("EnvKekSource refuses tampering, other AD and other versions",
          "[env_kek]") {
  ScopedEnv env(absl::StrCat("v1:", kKey1, ", v2:", kKey2));
  auto source = ValueOrDie(EnvKekSource::Open(kVar));
  std::string wrapped = ValueOrDie(source->Wrap(1, Dek(), "ad"));
  for (size_t i = 0; i < wrapped.size(); ++i) {
    std::string tampered = wrapped;
    tampered[i] ^= 0x80;
    INFO("byte " << i);
    CHECK_THAT(source->Unwrap(1, tampered, "ad"),
               StatusIs(absl::StatusCode::kDataLoss));
  }
  CHECK_THAT(source->Unwrap(1, wrapped, "ae"),
             StatusIs(absl::StatusCode::kDataLoss));
  CHECK_THAT(source->Unwrap(2, wrapped, "ad"),
             StatusIs(absl::StatusCode::kDataLoss));
  CHECK_THAT(source->Unwrap(3, wrapped, "ad"),
             StatusIs(absl::StatusCode::kFailedPrecondition, "version 3"));
  CHECK_THAT(source->Wrap(0, Dek(), "ad"),
             StatusIs(absl::StatusCode::kFailedPrecondition, "version 0"));
}

TEST_CASE("EnvKekSource refuses an unset variable or a bad name", "[env_kek]") {
  ::unsetenv(kVar);
  CHECK_THAT(EnvKekSource::Open(kVar),
             StatusIs(absl::StatusCode::kFailedPrecondition, "is not set"));
  CHECK_THAT(CreateKekSource("env:"),
             StatusIs(absl::StatusCode::kInvalidArgument, "variable name"));
  CHECK_THAT(CreateKekSource("env:BAD-NAME"),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "not an environment variable name"));
}

TEST_CASE("EnvKekSource refuses malformed values naming the problem",
          "[env_kek]") {
  struct Case {
    std::string value;
    std::string message;
  };
  std::vector<Case> cases = {
      {"", "value is empty"},
      {"  ", "value is empty"},
      {kKey1, "entry 1 is not of the form"},
      {absl::StrCat("1:", kKey1), "entry 1 is not of the form"},
      {absl::StrCat("v0:", kKey1), "N >= 1"},
      {absl::StrCat("v1:", kKey1, ","), "entry 2 is not of the form"},
      {"v1:%%%%", "entry 1 (v1): base64 value has an invalid character"},
      {"v1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxw=", "key is 29 bytes"},
      {absl::StrCat("v1:", kKey1, ",v1:", kKey2),
       "entry 2: duplicate version v1"},
  };
  for (const Case& c : cases) {
    INFO("value: " << c.value);
    ScopedEnv env(c.value);
    absl::StatusOr<std::unique_ptr<EnvKekSource>> source =
        EnvKekSource::Open(kVar);
    CHECK_THAT(source,
               StatusIs(absl::StatusCode::kFailedPrecondition, c.message));
    if (!source.ok()) {
      CHECK(source.status().message().find(kKey1) == std::string::npos);
    }
    CHECK_THAT(ParseKekEnvValue(c.value),
               StatusIs(absl::StatusCode::kInvalidArgument, c.message));
  }
}

}  // namespace
}  // namespace certplane::vault
