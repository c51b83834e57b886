#include "services/vault/env_kek_source.h"

#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace certplane::vault {
namespace {

bool IsValidVariableName(absl::string_view name) {
  if (name.empty() || absl::ascii_isdigit(name[0])) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_') return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::map<int, crypto::SecretBytes>> ParseKekEnvValue(
    absl::string_view value) {
  std::map<int, crypto::SecretBytes> keys;
  if (absl::StripAsciiWhitespace(value).empty()) {
    return absl::InvalidArgumentError("value is empty; expected v1:<base64>");
  }
  int entry = 0;
  absl::string_view rest = value;
  while (true) {
    ++entry;
    size_t comma = rest.find(',');
    absl::string_view item = absl::StripAsciiWhitespace(rest.substr(0, comma));
    size_t colon = item.find(':');
    if (item.empty() || item[0] != 'v' || colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "entry ", entry, " is not of the form v<N>:<base64 key>"));
    }
    int version = 0;
    if (!absl::SimpleAtoi(item.substr(1, colon - 1), &version) || version < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "entry ", entry, " does not start with a version v<N>, N >= 1"));
    }
    absl::StatusOr<crypto::SecretBytes> key =
        DecodeSecretBase64(item.substr(colon + 1));
    if (!key.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "entry ", entry, " (v", version, "): ", key.status().message()));
    }
    if (key->size() != crypto::Aes256Gcm::kKeySize) {
      return absl::InvalidArgumentError(absl::StrCat(
          "entry ", entry, " (v", version, "): key is ", key->size(),
          " bytes; expected ", crypto::Aes256Gcm::kKeySize));
    }
    if (!keys.emplace(version, *std::move(key)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("entry ", entry, ": duplicate version v", version));
    }
    if (comma == absl::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return keys;
}

absl::StatusOr<std::unique_ptr<EnvKekSource>> EnvKekSource::Open(
    absl::string_view variable) {
  if (!IsValidVariableName(variable)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", variable,
        "\" is not an environment variable name (letters, digits, _)"));
  }
  std::string name(variable);
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("environment variable ", name,
                     " is not set; it must hold v1:<base64 of 32 bytes>"));
  }
  absl::StatusOr<std::map<int, crypto::SecretBytes>> keys =
      ParseKekEnvValue(value);
  if (!keys.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "environment variable ", name, ": ", keys.status().message()));
  }
  absl::StatusOr<KekRing> ring = KekRing::Create(*std::move(keys));
  if (!ring.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "environment variable ", name, ": ", ring.status().message()));
  }
  return std::unique_ptr<EnvKekSource>(
      new EnvKekSource(std::move(name), *std::move(ring)));
}

std::string EnvKekSource::Describe() const {
  return absl::StrCat("env:", variable_);
}

absl::StatusOr<std::vector<int>> EnvKekSource::Versions() const {
  return ring_.Versions();
}

absl::StatusOr<std::string> EnvKekSource::Wrap(
    int version, const crypto::SecretBytes& dek,
    absl::string_view associated_data) const {
  return ring_.Wrap(version, dek, associated_data);
}

absl::StatusOr<crypto::SecretBytes> EnvKekSource::Unwrap(
    int version, absl::string_view wrapped,
    absl::string_view associated_data) const {
  return ring_.Unwrap(version, wrapped, associated_data);
}

}  // namespace certplane::vault
