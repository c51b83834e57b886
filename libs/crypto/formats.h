// Certificate and key file formats: reading whatever a person or another
// tool hands certplane (PEM with many blocks and text around them, DER,
// PKCS#7 "certs-only" bundles in PEM or DER, PKCS#12/PFX files, modern and
// legacy) and writing the formats servers and clients expect (PEM, DER,
// PKCS#7, PKCS#12, an NGINX fullchain + key pair).
//
// Promises:
//  - A read returns either the whole bundle or an error; never a partial
//    result. Errors are INVALID_ARGUMENT for bad input (naming what is wrong:
//    empty, truncated, bad base64 in PEM block N, wrong or missing password,
//    no certificates), FAILED_PRECONDITION when the crypto library lacks what
//    the input needs (OpenSSL's legacy provider), UNIMPLEMENTED when the
//    backend (BoringSSL) cannot produce a requested format.
//  - Work is bounded: inputs over kMaxInputBytes and PEM inputs with more than
//    kMaxPemBlocks blocks are refused up front.
//  - Private keys come back as PrivateKey and are written only as
//    SecretBytes; passwords are never copied into std::string or messages.
//  - All functions are thread-safe. OpenSSL's legacy provider is loaded at
//    most once, and only when a PKCS#12 file being read uses an RC2/RC4
//    scheme or a legacy file is written. It is loaded into the default
//    library context (OpenSSL 3.0's PKCS12_parse takes no OSSL_LIB_CTX), so
//    from then on the whole process can fetch legacy algorithms, and the
//    "default" provider is loaded explicitly alongside it.
#ifndef CERTPLANE_LIBS_CRYPTO_FORMATS_H_
#define CERTPLANE_LIBS_CRYPTO_FORMATS_H_

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "libs/crypto/certificate.h"
#include "libs/crypto/key.h"
#include "libs/crypto/secret_bytes.h"

namespace certplane::crypto {

enum class Format { kPem, kDer, kPkcs7Pem, kPkcs7Der, kPkcs12 };

// "PEM", "DER", "PKCS#7 (PEM)", "PKCS#7 (DER)", "PKCS#12".
absl::string_view FormatName(Format format);

// Limits on the work a read does.
inline constexpr size_t kMaxInputBytes = 16 * 1024 * 1024;
inline constexpr int kMaxPemBlocks = 1000;

// What a file held. Move-only (it owns private keys).
struct ParsedBundle {
  Format format = Format::kPem;
  // In file order, except that a PKCS#12's certificate matching its key comes
  // first. PKCS#7 certificates are unordered by definition.
  std::vector<Certificate> certificates;
  std::vector<PrivateKey> keys;
  // Things skipped along the way, for showing to people, e.g.
  // "skipped PEM block 3 'CERTIFICATE REQUEST'".
  std::vector<std::string> notes;
};

// Detects the format and reads it: PEM (any number of CERTIFICATE, PKCS7 and
// private key blocks, in any order, with text between them; other blocks are
// skipped with a note), a DER certificate, a DER private key, PKCS#7 DER, or
// PKCS#12. `password` decrypts encrypted PEM/DER keys and PKCS#12 files.
// The result holds at least one certificate or key.
absl::StatusOr<ParsedBundle> ReadBundle(
    absl::string_view data, std::optional<absl::string_view> password = {});

// The explicit readers; each accepts only its format.
absl::StatusOr<ParsedBundle> ReadPem(
    absl::string_view data, std::optional<absl::string_view> password = {});
// Exactly one DER certificate.
absl::StatusOr<ParsedBundle> ReadDer(absl::string_view data);
// A PKCS#7 SignedData in DER or PEM ("PKCS7" block); only its certificates
// are read. One without certificates is INVALID_ARGUMENT.
absl::StatusOr<ParsedBundle> ReadPkcs7(absl::string_view data);
// PKCS#12 / PFX, DER. Without `password`, files protected by an empty
// password open; others are INVALID_ARGUMENT "PKCS#12 needs a password".
// Legacy files (RC2-40/3DES) need OpenSSL's legacy provider:
// FAILED_PRECONDITION when it cannot be loaded.
// Work is bounded before anything is decrypted: the MAC and every key
// derivation (encrypted SafeContents, shrouded key bags) may ask for at most
// 5,000,000 PBKDF2 / PKCS#12 KDF iterations (scrypt: N*r <=
// 2^23, p <= 16), and only known schemes are run; more is INVALID_ARGUMENT,
// other schemes UNIMPLEMENTED. With OpenSSL every bag is checked (encrypted
// SafeContents are decrypted, with their checked algorithm, to reach the
// bags inside). With BoringSSL only what is visible without decrypting is
// checked (MAC, encrypted SafeContents, shrouded key bags in plain
// SafeContents), so a shrouded key bag inside encrypted SafeContents is
// bounded only by BoringSSL itself; and BER-encoded files (some Java tools)
// are refused with INVALID_ARGUMENT, since they cannot be walked first.
absl::StatusOr<ParsedBundle> ReadPkcs12(
    absl::string_view data, std::optional<absl::string_view> password = {});

// Concatenated "CERTIFICATE" PEM blocks, in the given order.
std::string WritePem(absl::Span<const Certificate> certificates);
// The DER of one certificate (the same bytes as Certificate::der()).
std::string WriteDer(const Certificate& certificate);
// A certs-only PKCS#7 SignedData (like `openssl crl2pkcs7 -nocrl`), DER or,
// with `pem`, a "PKCS7" PEM block. Empty input is INVALID_ARGUMENT.
// BoringSSL writes the certificates in DER SET OF order, not input order.
absl::StatusOr<std::string> WritePkcs7(
    absl::Span<const Certificate> certificates, bool pem);

struct Pkcs12Options {
  // false: key and certificates encrypted with AES-256-CBC under PBES2
  // (PBKDF2-HMAC-SHA256), SHA-256 MAC. true: pbeWithSHA1And3-KeyTripleDES for
  // the key, pbeWithSHA1And40BitRC2 for the certificates, SHA-1 MAC, for old
  // Windows and Java.
  bool legacy = false;
  // Set on the key and leaf certificate bags when not empty.
  std::string friendly_name;
  // KDF and MAC iteration count; 0 means the default: kPkcs12Iterations for
  // modern files, 2048 (what OpenSSL writes) for legacy ones.
  int iterations = 0;
};
inline constexpr int kPkcs12Iterations = 600000;

// PKCS#12 with `key` (may be null, for a certificates-only file) and `chain`
// (leaf first; the leaf must match `key`). An empty password is
// INVALID_ARGUMENT. On BoringSSL only legacy files can be written (it has no
// SHA-256 MAC); modern ones are UNIMPLEMENTED.
absl::StatusOr<std::string> WritePkcs12(const PrivateKey* key,
                                        absl::Span<const Certificate> chain,
                                        absl::string_view password,
                                        const Pkcs12Options& options = {});

// What NGINX's ssl_certificate and ssl_certificate_key want.
struct NginxBundle {
  std::string fullchain_pem;  // Leaf, then intermediates up to (excluding)
                              // the self-signed root.
  SecretBytes key_pem;        // Unencrypted PKCS#8; empty if no key given.
};

// Orders `chain` (any order) from the leaf up, drops self-signed roots, and
// checks that `key` (when not null) matches the leaf. INVALID_ARGUMENT when
// the certificates do not form one chain or the key does not match.
absl::StatusOr<NginxBundle> WriteNginxBundle(
    absl::Span<const Certificate> chain, const PrivateKey* key);

}  // namespace certplane::crypto

#endif  // CERTPLANE_LIBS_CRYPTO_FORMATS_H_
