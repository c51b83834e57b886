#include "libs/crypto/internal/ssl_util.h"

#include <openssl/err.h>

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
    absl::StrAppend(&message, first ? ": " : "; ",
                    reason != nullptr ? reason
                                      : absl::StrCat("error ", err).c_str());
    first = false;
  }
  return absl::Status(code, message);
}

absl::Status SslInternal(absl::string_view what) {
  return SslError(absl::StatusCode::kInternal, what);
}

void ClearSslErrors() { ERR_clear_error(); }

SslPtr<BIO> MemoryBio(absl::string_view data) {
  return SslPtr<BIO>(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
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

}  // namespace certplane::crypto::internal
