#include "libs/crypto/secret_bytes.h"

#include <openssl/crypto.h>

#include <cstring>
#include <ostream>

namespace certplane::crypto {

SecretBytes::SecretBytes(size_t size)
    : data_(size > 0 ? new uint8_t[size]() : nullptr), size_(size) {}

SecretBytes::SecretBytes(absl::string_view bytes) : SecretBytes(bytes.size()) {
  if (size_ > 0) std::memcpy(data_.get(), bytes.data(), size_);
}

SecretBytes::SecretBytes(const SecretBytes& other)
    : SecretBytes(other.view()) {}

SecretBytes& SecretBytes::operator=(const SecretBytes& other) {
  if (this != &other) {
    SecretBytes copy(other);
    *this = std::move(copy);
  }
  return *this;
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::move(other.data_)), size_(other.size_) {
  other.size_ = 0;
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    Wipe();
    data_ = std::move(other.data_);
    size_ = other.size_;
    other.size_ = 0;
  }
  return *this;
}

SecretBytes::~SecretBytes() { Wipe(); }

void SecretBytes::Wipe() {
  if (data_ != nullptr && size_ > 0) OPENSSL_cleanse(data_.get(), size_);
  data_.reset();
  size_ = 0;
}

void SecretBytes::Truncate(size_t new_size) {
  if (new_size >= size_) return;
  OPENSSL_cleanse(data_.get() + new_size, size_ - new_size);
  size_ = new_size;
}

bool operator==(const SecretBytes& a, const SecretBytes& b) {
  if (a.size() != b.size()) return false;
  if (a.size() == 0) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::ostream& operator<<(std::ostream& os, const SecretBytes&) {
  return os << "[redacted]";
}

}  // namespace certplane::crypto
