#ifndef CERTPLANE_LIBS_CRYPTO_INTERNAL_DER_H_
#define CERTPLANE_LIBS_CRYPTO_INTERNAL_DER_H_

// A small, bounded, strict DER reader. It is used to look at untrusted bytes
// (private keys, public keys, certificates, CSRs, PKCS#12 parameters) before
// any library parser decodes them, so that dangerous contents (explicit EC
// curve parameters, huge key derivation work factors) are refused first.
//
// Everything here fails closed: high tag numbers, indefinite (BER) lengths,
// non-minimal lengths and elements that overrun their parent are malformed.

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace certplane::crypto::internal {

inline constexpr uint8_t kDerInteger = 0x02;
inline constexpr uint8_t kDerBitString = 0x03;
inline constexpr uint8_t kDerOctetString = 0x04;
inline constexpr uint8_t kDerNull = 0x05;
inline constexpr uint8_t kDerOid = 0x06;
inline constexpr uint8_t kDerSequence = 0x30;
inline constexpr uint8_t kDerSet = 0x31;
inline constexpr uint8_t kDerContext0 = 0xa0;

// Nesting deeper than this is refused by IsStrictDer.
inline constexpr int kMaxDerDepth = 32;

struct Tlv {
  uint8_t tag = 0;
  absl::string_view contents;
};

// Appends the DER element tag || length || `contents` to `*out`.
void AppendDerTlv(std::string* out, uint8_t tag, absl::string_view contents);

// Reads one strict DER element from the front of `*in` and advances past it.
// False (and `*in` unchanged) if the element is not strict DER.
bool ReadTlv(absl::string_view* in, Tlv* out);

// Like ReadTlv, but also false when the element's tag is not `tag`.
bool ReadTlvWithTag(absl::string_view* in, uint8_t tag, Tlv* out);

// True if `der` is a sequence of strict DER elements, and every constructed
// element's contents are too, all the way down (to kMaxDerDepth levels).
// Constructed encodings of primitive universal types (BER) are refused.
bool IsStrictDer(absl::string_view der);

// Reads the value of a non-negative INTEGER that fits in a long. False for
// negative, non-minimal or larger values.
bool SmallInteger(absl::string_view contents, long* value);

// Checks the AlgorithmIdentifier of a DER SubjectPublicKeyInfo without
// decoding the key: id-ecPublicKey must name its curve by OID. `what` names
// the key in error messages ("certificate key", "CSR key", "public key").
absl::Status CheckSpkiAlgorithm(absl::string_view spki_der,
                                absl::string_view what);

// Finds the SubjectPublicKeyInfo inside a DER certificate, or a DER PKCS#10
// CSR, and checks it with CheckSpkiAlgorithm. Also fails (INVALID_ARGUMENT,
// "malformed DER ...") when the structure is not strict DER.
absl::Status CheckCertificateDerKey(absl::string_view der);
// `status` unchanged, unless it is a "malformed DER ..." error: then
// "<context>: malformed DER ...", so callers keep naming their structure.
absl::Status WithMalformedContext(const absl::Status& status,
                                  absl::string_view context);
absl::Status CheckCsrDerKey(absl::string_view der);

// Largest PBKDF2 / PKCS#12 KDF iteration count certplane runs on input it is
// given, so that a hostile file cannot pin a CPU.
inline constexpr long kMaxKdfIterations = 5'000'000;
// Largest scrypt work certplane runs on input it is given: N * r at most
// 2^23 (1 GiB of memory at most), p at most 16.
inline constexpr uint64_t kMaxScryptNTimesR = uint64_t{1} << 23;
inline constexpr uint64_t kMaxScryptP = 16;

// The short name of a DER OBJECT IDENTIFIER's contents, for messages.
std::string OidName(absl::string_view oid_contents);

// Checks the DER AlgorithmIdentifier (complete encoding) of a password-based
// encryption scheme before anything decrypts with it:
//   PBES2 with PBKDF2 (at most kMaxKdfIterations) or scrypt (bounded as
//   above), and AES-CBC or DES-EDE3-CBC;
//   PKCS#12 PBE (pbeWithSHAAnd...) with at most kMaxKdfIterations.
// Anything unreadable is INVALID_ARGUMENT ("malformed DER ..."), excessive
// work factors INVALID_ARGUMENT, and other schemes (PKCS#5 v1.5 DES/RC2 with
// MD2/MD5/SHA-1, unknown KDFs and ciphers) UNIMPLEMENTED naming the scheme.
// `what` names the protected thing in messages ("encrypted private key").
absl::Status CheckPbeAlgorithm(absl::string_view algorithm_der,
                               absl::string_view what);

// Walks a strict-DER PKCS#12 PFX without decrypting anything and checks
// the MAC iteration count (at most `max_mac_iterations`) and, with
// CheckPbeAlgorithm, the algorithm of every encrypted SafeContents and of
// every shrouded key bag in the unencrypted SafeContents (also inside nested
// SafeContents bags). Bags inside encrypted SafeContents cannot be seen
// without the password and are not checked. Not strict DER (BER, as some
// tools write): INVALID_ARGUMENT.
absl::Status CheckPkcs12Der(absl::string_view der, long max_mac_iterations);

}  // namespace certplane::crypto::internal

#endif  // CERTPLANE_LIBS_CRYPTO_INTERNAL_DER_H_
