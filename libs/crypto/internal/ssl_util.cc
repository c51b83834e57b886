#include "libs/crypto/internal/ssl_util.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <climits>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace certplane::crypto::internal {

absl::Status SslError(absl::StatusCode code, absl::string_view what) {
  std::string message(what);
  bool first = true;
  // Reasons only (no file/line), deduplicated order preserved, bounded.
  int count = 0;
  while (unsigned long err = ERR_get_error()) {
    if (++count > 4) continue;
    const char* reason = ERR_reason_error_string(err);
    absl::StrAppend(
        &message, first ? ": " : "; ",
        reason != nullptr ? reason : absl::StrCat("error ", err).c_str());
    first = false;
  }
  return absl::Status(code, message);
}

absl::Status SslInternal(absl::string_view what) {
  return SslError(absl::StatusCode::kInternal, what);
}

void ClearSslErrors() { ERR_clear_error(); }

SslPtr<BIO> MemoryBio(absl::string_view data) {
  if (data.size() > static_cast<size_t>(INT_MAX)) return nullptr;
  return SslPtr<BIO>(
      BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

absl::Status InputTooLargeOr(absl::string_view data, absl::string_view what) {
  if (data.size() > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input too large (", data.size(), " bytes; at most ", INT_MAX, ")"));
  }
  return SslInternal(what);
}

std::string BioContents(BIO* bio) {
  const uint8_t* contents = nullptr;
  size_t length = 0;
#if defined(CERTPLANE_BORINGSSL)
  if (!BIO_mem_contents(bio, &contents, &length)) return {};
#else
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  contents = reinterpret_cast<const uint8_t*>(data);
  length = size > 0 ? static_cast<size_t>(size) : 0;
#endif
  return std::string(reinterpret_cast<const char*>(contents), length);
}

std::optional<std::string> FirstPemBlock(
    absl::string_view pem, std::initializer_list<absl::string_view> labels) {
  SslPtr<BIO> bio = MemoryBio(pem);
  if (bio == nullptr) return std::nullopt;
  while (true) {
    char* name = nullptr;
    char* header = nullptr;
    uint8_t* data = nullptr;
    long length = 0;
    if (PEM_read_bio(bio.get(), &name, &header, &data, &length) != 1) {
      ClearSslErrors();
      return std::nullopt;
    }
    bool wanted = false;
    for (absl::string_view label : labels) wanted |= (label == name);
    std::optional<std::string> der;
    if (wanted) {
      der.emplace(reinterpret_cast<const char*>(data),
                  static_cast<size_t>(length));
    }
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    if (der.has_value()) return der;
  }
}

std::string PemEncode(absl::string_view label, absl::string_view der) {
  std::string base64 = absl::Base64Escape(der);
  std::string out = absl::StrCat("-----BEGIN ", label, "-----\n");
  for (size_t i = 0; i < base64.size(); i += 64) {
    absl::StrAppend(&out, base64.substr(i, 64), "\n");
  }
  absl::StrAppend(&out, "-----END ", label, "-----\n");
  return out;
}

}  // namespace certplane::crypto::internal
