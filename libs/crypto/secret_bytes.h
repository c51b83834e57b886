// SecretBytes: the only type in certplane that holds secret bytes (private
// keys, data keys, passwords) in memory.
//
// Promises: the buffer is zeroed (with a cleanse the compiler cannot elide)
// whenever it is freed, by destruction, assignment or move; the bytes never
// print: operator<< writes "[redacted]"; equality is constant-time. It is a
// value type (copies are deep). Not thread-safe for concurrent mutation, like
// std::string.
#ifndef CERTPLANE_LIBS_CRYPTO_SECRET_BYTES_H_
#define CERTPLANE_LIBS_CRYPTO_SECRET_BYTES_H_

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <memory>

#include "absl/strings/string_view.h"

namespace certplane::crypto {

class SecretBytes {
 public:
  SecretBytes() = default;
  // Zero-filled buffer of `size` bytes.
  explicit SecretBytes(size_t size);
  // Copies `bytes` in. The caller remains responsible for its own copy.
  explicit SecretBytes(absl::string_view bytes);

  SecretBytes(const SecretBytes& other);
  SecretBytes& operator=(const SecretBytes& other);
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  ~SecretBytes();

  uint8_t* data() { return data_.get(); }
  const uint8_t* data() const { return data_.get(); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // A view of the secret, for passing into crypto calls. Never log it.
  absl::string_view view() const {
    return {reinterpret_cast<const char*>(data_.get()), size_};
  }

  // Shrinks to `new_size` bytes (<= size()), zeroing the tail.
  void Truncate(size_t new_size);

  // Constant-time comparison of contents (lengths are not secret).
  friend bool operator==(const SecretBytes& a, const SecretBytes& b);

 private:
  void Wipe();

  std::unique_ptr<uint8_t[]> data_;
  size_t size_ = 0;
};

// Always prints "[redacted]".
std::ostream& operator<<(std::ostream& os, const SecretBytes& secret);

}  // namespace certplane::crypto

#endif  // CERTPLANE_LIBS_CRYPTO_SECRET_BYTES_H_
