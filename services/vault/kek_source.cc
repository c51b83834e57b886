#include "services/vault/kek_source.h"

#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "services/vault/env_kek_source.h"
#include "services/vault/file_kek_source.h"
#include "services/vault/pkcs11_kek_source.h"

namespace certplane::vault {

std::string KekAssociatedData(int version, absl::string_view associated_data) {
  const auto v = static_cast<uint32_t>(version);
  std::string out;
  out.reserve(4 + associated_data.size());
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
  out.append(associated_data.data(), associated_data.size());
  return out;
}

absl::StatusOr<std::unique_ptr<KekSource>> CreateKekSource(
    absl::string_view spec) {
  if (spec.empty()) {
    return absl::InvalidArgumentError(
        "KEK source spec is empty; expected file:<path>, env:<NAME> or "
        "pkcs11:module=<path>;token=<label>;pin-env=<VAR>");
  }
  size_t colon = spec.find(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KEK source spec has no kind; expected file:, env: or pkcs11:"));
  }
  absl::string_view kind = spec.substr(0, colon);
  absl::string_view rest = spec.substr(colon + 1);
  if (kind == "file") {
    if (rest.empty()) {
      return absl::InvalidArgumentError("KEK source file: needs a path");
    }
    absl::StatusOr<std::unique_ptr<FileKekSource>> source =
        FileKekSource::Open(rest);
    if (!source.ok()) return source.status();
    return std::unique_ptr<KekSource>(*std::move(source));
  }
  if (kind == "env") {
    if (rest.empty()) {
      return absl::InvalidArgumentError(
          "KEK source env: needs a variable name");
    }
    absl::StatusOr<std::unique_ptr<EnvKekSource>> source =
        EnvKekSource::Open(rest);
    if (!source.ok()) return source.status();
    return std::unique_ptr<KekSource>(*std::move(source));
  }
  if (kind == "pkcs11") {
    absl::StatusOr<Pkcs11KekConfig> config = Pkcs11KekConfig::Parse(rest);
    if (!config.ok()) return config.status();
    absl::StatusOr<std::unique_ptr<Pkcs11KekSource>> source =
        Pkcs11KekSource::Open(*config);
    if (!source.ok()) return source.status();
    return std::unique_ptr<KekSource>(*std::move(source));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown KEK source kind \"", kind, "\"; expected file, env or pkcs11"));
}

}  // namespace certplane::vault
