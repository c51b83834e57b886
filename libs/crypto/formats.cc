#include "libs/crypto/formats.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#if defined(CERTPLANE_BORINGSSL)
#include <openssl/bytestring.h>
#else
#include <openssl/provider.h>
#endif

#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/crypto/internal/der.h"
#include "libs/crypto/internal/ssl_util.h"

namespace certplane::crypto {
namespace {

using internal::SslError;
using internal::SslInternal;
using internal::SslPtr;
using internal::X509StackPtr;

constexpr absl::string_view kNotRecognised =
    "not a recognised certificate format (tried PEM, DER, PKCS#7, PKCS#12)";
// Upper bound on a PKCS#12 MAC or KDF iteration count, so a hostile file
// cannot make a read spin for minutes; the same bound applies to writing.
constexpr long kMaxPkcs12Iterations = internal::kMaxKdfIterations;
constexpr int kLegacyPkcs12Iterations = 2048;
// Longer PEM labels than this are not PEM ("ENCRYPTED PRIVATE KEY" is 21).
constexpr size_t kMaxPemLabel = 64;

// Same code, message prefixed with `context`.
absl::Status Annotate(const absl::Status& status, absl::string_view context) {
  return absl::Status(status.code(),
                      absl::StrCat(context, ": ", status.message()));
}

absl::Status CheckSize(absl::string_view data) {
  if (data.empty()) return absl::InvalidArgumentError("empty input");
  if (data.size() > kMaxInputBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("input is ", data.size(), " bytes; the limit is ",
                     kMaxInputBytes / (1024 * 1024), " MiB"));
  }
  return absl::OkStatus();
}

const uint8_t* Bytes(absl::string_view data) {
  return reinterpret_cast<const uint8_t*>(data.data());
}

// ---------------------------------------------------------------------------
// DER sniffing: enough of the outer TLV to pick a parser and to name a
// truncation or trailing garbage before the library sees the bytes.

enum class DerKind { kUnknown, kCertificate, kPkcs7, kPkcs12, kPrivateKey };

struct DerOutline {
  DerKind kind = DerKind::kUnknown;
  bool definite = false;
  size_t total = 0;  // Header + declared content length, when definite.
};

DerOutline OutlineDer(absl::string_view data) {
  DerOutline outline;
  if (data.size() < 2 || static_cast<uint8_t>(data[0]) != 0x30) return outline;
  size_t pos = 2;
  size_t length = 0;
  const uint8_t first = static_cast<uint8_t>(data[1]);
  if (first < 0x80) {
    length = first;
    outline.definite = true;
  } else if (first > 0x80) {
    const size_t count = first & 0x7f;
    if (count > 4 || data.size() < 2 + count) return outline;
    for (size_t i = 0; i < count; ++i) {
      length = (length << 8) | static_cast<uint8_t>(data[2 + i]);
    }
    pos += count;
    outline.definite = true;
  }  // 0x80: BER indefinite length.
  outline.total = pos + length;
  if (pos >= data.size()) return outline;
  const uint8_t inner = static_cast<uint8_t>(data[pos]);
  if (inner == 0x30) {
    outline.kind = DerKind::kCertificate;
  } else if (inner == 0x06) {
    outline.kind = DerKind::kPkcs7;
  } else if (inner == 0x02) {
    // PFX starts with INTEGER 3; private keys with INTEGER 0 or 1.
    const bool pfx = pos + 2 < data.size() &&
                     static_cast<uint8_t>(data[pos + 1]) == 1 &&
                     static_cast<uint8_t>(data[pos + 2]) == 3;
    outline.kind = pfx ? DerKind::kPkcs12 : DerKind::kPrivateKey;
  }
  return outline;
}

// INVALID_ARGUMENT naming a truncation or trailing bytes of a DER `what`.
absl::Status CheckDerExtent(absl::string_view data, absl::string_view what) {
  DerOutline outline = OutlineDer(data);
  if (!outline.definite) return absl::OkStatus();
  if (outline.total > data.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is truncated: its header declares ", outline.total,
                     " bytes but only ", data.size(), " are present"));
  }
  if (outline.total < data.size()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is followed by ",
                                                   data.size() - outline.total,
                                                   " trailing bytes"));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// PEM.

struct PemBlock {
  int index = 0;           // 1-based, in file order.
  std::string label;       // "CERTIFICATE", ...
  absl::string_view text;  // From "-----BEGIN" to the end of the END line.
  absl::string_view body;  // Between the BEGIN and END lines.
};

std::string BlockName(const PemBlock& block) {
  return absl::StrCat("PEM block ", block.index, " '", block.label, "'");
}

// Splits `data` into PEM blocks; text outside blocks is ignored.
absl::StatusOr<std::vector<PemBlock>> SplitPem(absl::string_view data) {
  constexpr absl::string_view kBegin = "-----BEGIN ";
  constexpr absl::string_view kDashes = "-----";
  std::vector<PemBlock> blocks;
  size_t pos = 0;
  while ((pos = data.find(kBegin, pos)) != absl::string_view::npos) {
    PemBlock block;
    block.index = static_cast<int>(blocks.size()) + 1;
    if (block.index > kMaxPemBlocks) {
      return absl::InvalidArgumentError(absl::StrCat(
          "more than ", kMaxPemBlocks, " PEM blocks; refusing to read them"));
    }
    const size_t label_start = pos + kBegin.size();
    const size_t label_end = data.find(kDashes, label_start);
    const size_t line_end = data.find('\n', label_start);
    if (label_end == absl::string_view::npos ||
        (line_end != absl::string_view::npos && line_end < label_end) ||
        label_end - label_start > kMaxPemLabel) {
      return absl::InvalidArgumentError(absl::StrCat(
          "PEM block ", block.index, " has a malformed BEGIN line"));
    }
    block.label =
        std::string(data.substr(label_start, label_end - label_start));
    const size_t body_start = label_end + kDashes.size();
    const std::string end_marker =
        absl::StrCat("-----END ", block.label, "-----");
    const size_t end = data.find(end_marker, body_start);
    if (end == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(BlockName(block), " has no END line (truncated?)"));
    }
    block.body = data.substr(body_start, end - body_start);
    block.text = data.substr(pos, end + end_marker.size() - pos);
    pos = end + end_marker.size();
    blocks.push_back(std::move(block));
  }
  return blocks;
}

absl::StatusOr<std::string> DecodePemBody(const PemBlock& block) {
  std::string compact;
  compact.reserve(block.body.size());
  for (char c : block.body) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c))) continue;
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '+' &&
        c != '/' && c != '=') {
      return absl::InvalidArgumentError(absl::StrCat(
          BlockName(block), " has invalid base64 (unexpected character)"));
    }
    compact.push_back(c);
  }
  std::string der;
  if (compact.empty() || !absl::Base64Unescape(compact, &der) || der.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(BlockName(block), " has invalid base64"));
  }
  return der;
}

using internal::PemEncode;

bool IsCertificateLabel(absl::string_view label) {
  return label == "CERTIFICATE" || label == "X509 CERTIFICATE" ||
         label == "TRUSTED CERTIFICATE";
}
bool IsPkcs7Label(absl::string_view label) {
  return label == "PKCS7" || label == "PKCS #7 SIGNED DATA" || label == "CMS";
}
bool IsKeyLabel(absl::string_view label) {
  return label == "PRIVATE KEY" || label == "ENCRYPTED PRIVATE KEY" ||
         label == "RSA PRIVATE KEY" || label == "EC PRIVATE KEY";
}

// A "TRUSTED CERTIFICATE" is a certificate followed by OpenSSL trust
// settings; only the certificate is kept.
absl::StatusOr<Certificate> TrustedCertificateFromDer(absl::string_view der) {
  const uint8_t* p = Bytes(der);
  X509Handle x509(d2i_X509_AUX(nullptr, &p, static_cast<long>(der.size())));
  if (x509 == nullptr) {
    return SslError(absl::StatusCode::kInvalidArgument,
                    "not a trusted certificate (d2i_X509_AUX)");
  }
  return Certificate::Adopt(std::move(x509));
}

// ---------------------------------------------------------------------------
// PKCS#7.

absl::StatusOr<std::vector<Certificate>> Pkcs7Certificates(
    absl::string_view der) {
  if (absl::Status extent = CheckDerExtent(der, "PKCS#7"); !extent.ok()) {
    return extent;
  }
  X509StackPtr stack;
#if defined(CERTPLANE_BORINGSSL)
  stack.reset(sk_X509_new_null());
  if (stack == nullptr) return SslInternal("sk_X509_new_null");
  CBS cbs;
  CBS_init(&cbs, Bytes(der), der.size());
  if (!PKCS7_get_certificates(stack.get(), &cbs)) {
    return SslError(absl::StatusCode::kInvalidArgument,
                    "not a PKCS#7 SignedData (PKCS7_get_certificates)");
  }
  if (CBS_len(&cbs) != 0) {
    return absl::InvalidArgumentError("PKCS#7 is followed by trailing bytes");
  }
#else
  const uint8_t* p = Bytes(der);
  SslPtr<PKCS7> p7(d2i_PKCS7(nullptr, &p, static_cast<long>(der.size())));
  if (p7 == nullptr) {
    return SslError(absl::StatusCode::kInvalidArgument,
                    "not a PKCS#7 structure (d2i_PKCS7)");
  }
  if (p != Bytes(der) + der.size()) {
    return absl::InvalidArgumentError("PKCS#7 is followed by trailing bytes");
  }
  if (!PKCS7_type_is_signed(p7.get())) {
    const int nid = OBJ_obj2nid(p7->type);
    const char* name = nid == NID_undef ? nullptr : OBJ_nid2sn(nid);
    return absl::InvalidArgumentError(absl::StrCat(
        "PKCS#7 content type is ", name != nullptr ? name : "unknown",
        ", not signedData; only certificate bundles are read"));
  }
  if (p7->d.sign != nullptr && p7->d.sign->cert != nullptr) {
    stack.reset(sk_X509_dup(p7->d.sign->cert));
    if (stack == nullptr) return SslInternal("sk_X509_dup");
    for (size_t i = 0; i < static_cast<size_t>(sk_X509_num(stack.get())); ++i) {
      X509_up_ref(sk_X509_value(stack.get(), static_cast<int>(i)));
    }
  }
#endif
  const int count = stack == nullptr ? 0 : sk_X509_num(stack.get());
  if (count == 0) {
    return absl::InvalidArgumentError("PKCS#7 contains no certificates");
  }
  std::vector<Certificate> certificates;
  certificates.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    X509* x509 = sk_X509_value(stack.get(), i);
    X509_up_ref(x509);
    absl::StatusOr<Certificate> cert = Certificate::Adopt(X509Handle(x509));
    if (!cert.ok()) {
      return Annotate(cert.status(),
                      absl::StrCat("PKCS#7 certificate ", i + 1));
    }
    certificates.push_back(*std::move(cert));
  }
  return certificates;
}

// ---------------------------------------------------------------------------
// PKCS#12.

// A NUL-terminated copy of a password, wiped when done.
absl::StatusOr<SecretBytes> CPassword(absl::string_view password) {
  if (password.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("password contains a NUL byte");
  }
  SecretBytes out(password.size() + 1);
  if (!password.empty())
    std::memcpy(out.data(), password.data(), password.size());
  return out;
}

const char* CStr(const SecretBytes& password) {
  return reinterpret_cast<const char*>(password.data());
}

#if !defined(CERTPLANE_BORINGSSL)
// OpenSSL 3 keeps RC2 (and other legacy algorithms) in its "legacy"
// provider. Loading any provider explicitly stops "default" from being loaded
// implicitly, so both are loaded. Done once per process, and only when a
// PKCS#12 file actually uses a legacy algorithm (or a legacy one is written):
// OpenSSL 3.0's PKCS12_parse takes no OSSL_LIB_CTX, so the providers go into
// the default library context, for the whole process, and stay loaded
// (reachable from this static) for the life of the process.
struct LegacyProviders {
  OSSL_PROVIDER* legacy = nullptr;
  OSSL_PROVIDER* fallback = nullptr;
  absl::Status status;
};

const LegacyProviders& LoadLegacyProviders() {
  static const LegacyProviders* const providers = [] {
    auto* loaded = new LegacyProviders;
    loaded->legacy = OSSL_PROVIDER_load(nullptr, "legacy");
    if (loaded->legacy == nullptr) {
      loaded->status = SslError(
          absl::StatusCode::kFailedPrecondition,
          "OpenSSL's legacy provider could not be loaded "
          "(OSSL_PROVIDER_load \"legacy\"); legacy PKCS#12 (RC2-40/3DES) "
          "needs it: install it or point OPENSSL_MODULES at its directory");
    }
    loaded->fallback = OSSL_PROVIDER_load(nullptr, "default");
    if (loaded->fallback == nullptr && loaded->status.ok()) {
      loaded->status = SslError(absl::StatusCode::kFailedPrecondition,
                                "OpenSSL's default provider could not be "
                                "loaded (OSSL_PROVIDER_load \"default\")");
    }
    internal::ClearSslErrors();
    return loaded;
  }();
  return *providers;
}
#endif

// The parsed pieces of a PKCS#12, before conversion.
struct RawPkcs12 {
  EvpPkeyHandle key;
  X509StackPtr certs;  // The key's certificate first when there is one.
};

#if defined(CERTPLANE_BORINGSSL)
bool IsIncorrectPassword(uint32_t error) {
  return ERR_GET_LIB(error) == ERR_LIB_PKCS8 &&
         ERR_GET_REASON(error) == PKCS8_R_INCORRECT_PASSWORD;
}

absl::StatusOr<RawPkcs12> ParsePkcs12(
    absl::string_view der, std::optional<absl::string_view> password) {
  absl::StatusOr<SecretBytes> pass = CPassword(password.value_or(""));
  if (!pass.ok()) return pass.status();
  // BoringSSL has no iteration limit of its own; check what can be seen
  // without decrypting (see formats.h for what cannot).
  if (auto status = internal::CheckPkcs12Der(der, kMaxPkcs12Iterations);
      !status.ok()) {
    return status;
  }
  RawPkcs12 raw;
  raw.certs.reset(sk_X509_new_null());
  if (raw.certs == nullptr) return SslInternal("sk_X509_new_null");
  CBS cbs;
  CBS_init(&cbs, Bytes(der), der.size());
  EVP_PKEY* key = nullptr;
  internal::ClearSslErrors();
  if (!PKCS12_get_key_and_certs(&key, raw.certs.get(), &cbs, CStr(*pass))) {
    if (IsIncorrectPassword(ERR_peek_last_error())) {
      internal::ClearSslErrors();
      if (!password.has_value()) {
        return absl::InvalidArgumentError("PKCS#12 needs a password");
      }
      return absl::InvalidArgumentError(
          "PKCS#12 MAC verification failed: wrong password");
    }
    return SslError(absl::StatusCode::kInvalidArgument,
                    "not a readable PKCS#12 file (PKCS12_get_key_and_certs)");
  }
  raw.key.reset(key);
  return raw;
}
#else
struct Pkcs7StackDeleter {
  void operator()(STACK_OF(PKCS7) * stack) const {
    sk_PKCS7_pop_free(stack, PKCS7_free);
  }
};
struct SafeBagStackDeleter {
  void operator()(STACK_OF(PKCS12_SAFEBAG) * stack) const {
    sk_PKCS12_SAFEBAG_pop_free(stack, PKCS12_SAFEBAG_free);
  }
};
using SafeBagStackPtr =
    std::unique_ptr<STACK_OF(PKCS12_SAFEBAG), SafeBagStackDeleter>;

absl::Status CheckPbeAlgor(const X509_ALGOR* algorithm,
                           absl::string_view what) {
  uint8_t* der = nullptr;
  int length = algorithm == nullptr ? 0 : i2d_X509_ALGOR(algorithm, &der);
  if (length <= 0) {
    return SslError(absl::StatusCode::kInvalidArgument,
                    absl::StrCat("unreadable encryption algorithm in ", what,
                                 " (i2d_X509_ALGOR)"));
  }
  std::string encoded(reinterpret_cast<char*>(der),
                      static_cast<size_t>(length));
  OPENSSL_free(der);
  return internal::CheckPbeAlgorithm(encoded, what);
}

constexpr int kMaxSafeContentsNesting = 4;

// RC2 and RC4 PKCS#12 PBE schemes, which OpenSSL 3 keeps in its legacy
// provider. The provider is loaded (process-wide) only when one is met.
absl::Status EnsureAlgorithmAvailable(const X509_ALGOR* algorithm,
                                      absl::string_view what) {
  const ASN1_OBJECT* object = nullptr;
  X509_ALGOR_get0(&object, nullptr, nullptr, algorithm);
  const int nid = OBJ_obj2nid(object);
  switch (nid) {
    case NID_pbe_WithSHA1And128BitRC4:
    case NID_pbe_WithSHA1And40BitRC4:
    case NID_pbe_WithSHA1And128BitRC2_CBC:
    case NID_pbe_WithSHA1And40BitRC2_CBC:
      break;
    default:
      return absl::OkStatus();
  }
  const LegacyProviders& providers = LoadLegacyProviders();
  if (providers.status.ok()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat(what, " is encrypted with ", OBJ_nid2ln(nid), ": ",
                   providers.status.message()));
}

absl::Status CheckSafeBags(const STACK_OF(PKCS12_SAFEBAG) * bags, int depth) {
  if (depth > kMaxSafeContentsNesting) {
    return absl::InvalidArgumentError("PKCS#12 nests SafeContents too deeply");
  }
  for (int i = 0; i < sk_PKCS12_SAFEBAG_num(bags); ++i) {
    const PKCS12_SAFEBAG* bag = sk_PKCS12_SAFEBAG_value(bags, i);
    switch (PKCS12_SAFEBAG_get_nid(bag)) {
      case NID_pkcs8ShroudedKeyBag: {
        const X509_ALGOR* algorithm = nullptr;
        const X509_SIG* sig = PKCS12_SAFEBAG_get0_pkcs8(bag);
        if (sig != nullptr) X509_SIG_get0(sig, &algorithm, nullptr);
        if (auto status = CheckPbeAlgor(algorithm, "PKCS#12 shrouded key bag");
            !status.ok()) {
          return status;
        }
        if (auto status =
                EnsureAlgorithmAvailable(algorithm, "PKCS#12 shrouded key bag");
            !status.ok()) {
          return status;
        }
        break;
      }
      case NID_safeContentsBag: {
        const STACK_OF(PKCS12_SAFEBAG)* nested = PKCS12_SAFEBAG_get0_safes(bag);
        if (nested == nullptr) {
          return absl::InvalidArgumentError(
              "PKCS#12 has an unreadable nested SafeContents bag");
        }
        if (auto status = CheckSafeBags(nested, depth + 1); !status.ok()) {
          return status;
        }
        break;
      }
      default:
        break;
    }
  }
  return absl::OkStatus();
}

// Checks the key derivation work of every encryption algorithm in the file
// before PKCS12_parse runs them: encrypted SafeContents (decrypted here, with
// their now-checked algorithm, to reach the bags inside) and shrouded key
// bags. A SafeContents that does not decrypt is left for PKCS12_parse to
// report.
absl::Status CheckPkcs12Work(PKCS12* p12, const char* pass) {
  std::unique_ptr<STACK_OF(PKCS7), Pkcs7StackDeleter> safes(
      PKCS12_unpack_authsafes(p12));
  if (safes == nullptr) {
    return SslError(
        absl::StatusCode::kInvalidArgument,
        "PKCS#12 contents are unreadable (PKCS12_unpack_authsafes)");
  }
  for (int i = 0; i < sk_PKCS7_num(safes.get()); ++i) {
    PKCS7* p7 = sk_PKCS7_value(safes.get(), i);
    SafeBagStackPtr bags;
    switch (OBJ_obj2nid(p7->type)) {
      case NID_pkcs7_data:
        bags.reset(PKCS12_unpack_p7data(p7));
        if (bags == nullptr) {
          return SslError(absl::StatusCode::kInvalidArgument,
                          "PKCS#12 SafeContents are unreadable "
                          "(PKCS12_unpack_p7data)");
        }
        break;
      case NID_pkcs7_encrypted: {
        if (p7->d.encrypted == nullptr ||
            p7->d.encrypted->enc_data == nullptr) {
          return absl::InvalidArgumentError(
              "PKCS#12 encrypted contents are malformed");
        }
        if (auto status = CheckPbeAlgor(p7->d.encrypted->enc_data->algorithm,
                                        "PKCS#12 encrypted contents");
            !status.ok()) {
          return status;
        }
        if (auto status =
                EnsureAlgorithmAvailable(p7->d.encrypted->enc_data->algorithm,
                                         "PKCS#12 encrypted contents");
            !status.ok()) {
          return status;
        }
        bags.reset(PKCS12_unpack_p7encdata(p7, pass, pass == nullptr ? 0 : -1));
        if (bags == nullptr) {
          internal::ClearSslErrors();
          continue;
        }
        break;
      }
      default:
        continue;
    }
    if (auto status = CheckSafeBags(bags.get(), 0); !status.ok()) {
      return status;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<RawPkcs12> ParsePkcs12(
    absl::string_view der, std::optional<absl::string_view> password) {
  const uint8_t* p = Bytes(der);
  SslPtr<PKCS12> p12(d2i_PKCS12(nullptr, &p, static_cast<long>(der.size())));
  if (p12 == nullptr) {
    return SslError(absl::StatusCode::kInvalidArgument,
                    "not a PKCS#12 file (d2i_PKCS12)");
  }
  if (p != Bytes(der) + der.size()) {
    return absl::InvalidArgumentError("PKCS#12 is followed by trailing bytes");
  }
  SecretBytes pass;
  bool null_password = false;
  if (password.has_value()) {
    absl::StatusOr<SecretBytes> copy = CPassword(*password);
    if (!copy.ok()) return copy.status();
    pass = *std::move(copy);
  } else {
    pass = SecretBytes(1);  // "".
  }
  if (PKCS12_mac_present(p12.get())) {
    const ASN1_INTEGER* iterations = nullptr;
    PKCS12_get0_mac(nullptr, nullptr, nullptr, &iterations, p12.get());
    const long count = iterations == nullptr ? 1 : ASN1_INTEGER_get(iterations);
    if (count < 0 || count > kMaxPkcs12Iterations) {
      return absl::InvalidArgumentError(
          absl::StrCat("PKCS#12 MAC iteration count ", count, " is outside 1..",
                       kMaxPkcs12Iterations));
    }
    internal::ClearSslErrors();
    bool verified = PKCS12_verify_mac(p12.get(), CStr(pass), -1) == 1;
    if (!verified && !password.has_value() && ERR_peek_error() == 0) {
      // Some tools protect with a NULL rather than an empty password.
      verified = PKCS12_verify_mac(p12.get(), nullptr, 0) == 1;
      null_password = verified;
    }
    if (!verified) {
      if (ERR_peek_error() != 0) {
        return SslError(
            absl::StatusCode::kInvalidArgument,
            "PKCS#12 MAC could not be computed (PKCS12_verify_mac)");
      }
      if (!password.has_value()) {
        return absl::InvalidArgumentError("PKCS#12 needs a password");
      }
      return absl::InvalidArgumentError(
          "PKCS#12 MAC verification failed: wrong password");
    }
  }
  const char* parse_pass = null_password ? nullptr : CStr(pass);
  if (auto status = CheckPkcs12Work(p12.get(), parse_pass); !status.ok()) {
    return status;
  }
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  STACK_OF(X509)* ca = nullptr;
  if (!PKCS12_parse(p12.get(), null_password ? nullptr : CStr(pass), &key,
                    &cert, &ca)) {
    absl::Status error = SslError(
        absl::StatusCode::kInvalidArgument,
        "PKCS#12 contents could not be decrypted or parsed (PKCS12_parse)");
    return error;
  }
  RawPkcs12 raw;
  raw.key.reset(key);
  X509Handle leaf(cert);
  raw.certs.reset(ca != nullptr ? ca : sk_X509_new_null());
  if (raw.certs == nullptr) return SslInternal("sk_X509_new_null");
  if (leaf != nullptr) {
    if (!sk_X509_insert(raw.certs.get(), leaf.get(), 0)) {
      return SslInternal("sk_X509_insert");
    }
    leaf.release();
  }
  return raw;
}
#endif

}  // namespace

absl::string_view FormatName(Format format) {
  switch (format) {
    case Format::kPem:
      return "PEM";
    case Format::kDer:
      return "DER";
    case Format::kPkcs7Pem:
      return "PKCS#7 (PEM)";
    case Format::kPkcs7Der:
      return "PKCS#7 (DER)";
    case Format::kPkcs12:
      return "PKCS#12";
  }
  return "unknown";
}

absl::StatusOr<ParsedBundle> ReadPem(
    absl::string_view data, std::optional<absl::string_view> password) {
  if (absl::Status size = CheckSize(data); !size.ok()) return size;
  absl::StatusOr<std::vector<PemBlock>> blocks = SplitPem(data);
  if (!blocks.ok()) return blocks.status();
  if (blocks->empty()) {
    return absl::InvalidArgumentError(
        "no PEM blocks found (no \"-----BEGIN\" line)");
  }
  ParsedBundle bundle;
  bool only_pkcs7 = true;
  for (const PemBlock& block : *blocks) {
    if (IsCertificateLabel(block.label)) {
      only_pkcs7 = false;
      absl::StatusOr<std::string> der = DecodePemBody(block);
      if (!der.ok()) return der.status();
      absl::StatusOr<Certificate> cert = block.label == "TRUSTED CERTIFICATE"
                                             ? TrustedCertificateFromDer(*der)
                                             : Certificate::FromDer(*der);
      if (!cert.ok()) return Annotate(cert.status(), BlockName(block));
      bundle.certificates.push_back(*std::move(cert));
    } else if (IsPkcs7Label(block.label)) {
      absl::StatusOr<std::string> der = DecodePemBody(block);
      if (!der.ok()) return der.status();
      absl::StatusOr<std::vector<Certificate>> certs = Pkcs7Certificates(*der);
      if (!certs.ok()) return Annotate(certs.status(), BlockName(block));
      for (Certificate& cert : *certs) {
        bundle.certificates.push_back(std::move(cert));
      }
    } else if (IsKeyLabel(block.label)) {
      only_pkcs7 = false;
      absl::StatusOr<PrivateKey> key =
          PrivateKey::FromPem(block.text, password);
      if (!key.ok()) return Annotate(key.status(), BlockName(block));
      bundle.keys.push_back(*std::move(key));
    } else {
      bundle.notes.push_back(absl::StrCat("skipped ", BlockName(block)));
    }
  }
  if (bundle.certificates.empty() && bundle.keys.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("no certificates or private keys in PEM input (",
                     absl::StrJoin(bundle.notes, "; "), ")"));
  }
  bundle.format = only_pkcs7 ? Format::kPkcs7Pem : Format::kPem;
  return bundle;
}

absl::StatusOr<ParsedBundle> ReadDer(absl::string_view data) {
  if (absl::Status size = CheckSize(data); !size.ok()) return size;
  if (absl::Status extent = CheckDerExtent(data, "DER certificate");
      !extent.ok()) {
    return extent;
  }
  absl::StatusOr<Certificate> cert = Certificate::FromDer(data);
  if (!cert.ok()) return cert.status();
  ParsedBundle bundle;
  bundle.format = Format::kDer;
  bundle.certificates.push_back(*std::move(cert));
  return bundle;
}

absl::StatusOr<ParsedBundle> ReadPkcs7(absl::string_view data) {
  if (absl::Status size = CheckSize(data); !size.ok()) return size;
  if (absl::StrContains(data, "-----BEGIN ")) {
    absl::StatusOr<std::vector<PemBlock>> blocks = SplitPem(data);
    if (!blocks.ok()) return blocks.status();
    ParsedBundle bundle;
    bundle.format = Format::kPkcs7Pem;
    for (const PemBlock& block : *blocks) {
      if (!IsPkcs7Label(block.label)) {
        bundle.notes.push_back(absl::StrCat("skipped ", BlockName(block)));
        continue;
      }
      absl::StatusOr<std::string> der = DecodePemBody(block);
      if (!der.ok()) return der.status();
      absl::StatusOr<std::vector<Certificate>> certs = Pkcs7Certificates(*der);
      if (!certs.ok()) return Annotate(certs.status(), BlockName(block));
      for (Certificate& cert : *certs) {
        bundle.certificates.push_back(std::move(cert));
      }
    }
    if (bundle.certificates.empty()) {
      return absl::InvalidArgumentError("no \"PKCS7\" PEM block found");
    }
    return bundle;
  }
  absl::StatusOr<std::vector<Certificate>> certs = Pkcs7Certificates(data);
  if (!certs.ok()) return certs.status();
  ParsedBundle bundle;
  bundle.format = Format::kPkcs7Der;
  bundle.certificates = *std::move(certs);
  return bundle;
}

absl::StatusOr<ParsedBundle> ReadPkcs12(
    absl::string_view data, std::optional<absl::string_view> password) {
  if (absl::Status size = CheckSize(data); !size.ok()) return size;
  if (absl::Status extent = CheckDerExtent(data, "PKCS#12"); !extent.ok()) {
    return extent;
  }
  absl::StatusOr<RawPkcs12> raw = ParsePkcs12(data, password);
  if (!raw.ok()) return raw.status();
  ParsedBundle bundle;
  bundle.format = Format::kPkcs12;
  const int count = sk_X509_num(raw->certs.get());
  for (int i = 0; i < count; ++i) {
    X509* x509 = sk_X509_value(raw->certs.get(), i);
    X509_up_ref(x509);
    absl::StatusOr<Certificate> cert = Certificate::Adopt(X509Handle(x509));
    if (!cert.ok()) {
      return Annotate(cert.status(),
                      absl::StrCat("PKCS#12 certificate ", i + 1));
    }
    bundle.certificates.push_back(*std::move(cert));
  }
  if (raw->key != nullptr) {
    PrivateKey key = PrivateKey::Adopt(std::move(raw->key));
    // The certificate for the key goes first (BoringSSL keeps file order).
    for (size_t i = 1; i < bundle.certificates.size(); ++i) {
      if (bundle.certificates[i].CheckKeyMatches(key).ok()) {
        std::swap(bundle.certificates[0], bundle.certificates[i]);
        break;
      }
    }
    bundle.keys.push_back(std::move(key));
  }
  if (bundle.certificates.empty() && bundle.keys.empty()) {
    return absl::InvalidArgumentError(
        "PKCS#12 contains no certificates and no private key");
  }
  return bundle;
}

absl::StatusOr<ParsedBundle> ReadBundle(
    absl::string_view data, std::optional<absl::string_view> password) {
  if (absl::Status size = CheckSize(data); !size.ok()) return size;
  // DER when the outer TLV spans the input exactly (DER may by chance
  // contain "-----BEGIN "); otherwise PEM when there is a BEGIN line.
  const DerOutline outline = OutlineDer(data);
  const bool exact_der = outline.kind != DerKind::kUnknown &&
                         (!outline.definite || outline.total == data.size());
  if (!exact_der && absl::StrContains(data, "-----BEGIN ")) {
    return ReadPem(data, password);
  }
  switch (outline.kind) {
    case DerKind::kCertificate:
      return ReadDer(data);
    case DerKind::kPkcs7:
      return ReadPkcs7(data);
    case DerKind::kPkcs12:
      return ReadPkcs12(data, password);
    case DerKind::kPrivateKey: {
      if (absl::Status extent = CheckDerExtent(data, "DER private key");
          !extent.ok()) {
        return extent;
      }
      absl::StatusOr<PrivateKey> key = PrivateKey::FromDer(data, password);
      if (!key.ok()) return key.status();
      ParsedBundle bundle;
      bundle.format = Format::kDer;
      bundle.keys.push_back(*std::move(key));
      return bundle;
    }
    case DerKind::kUnknown:
      break;
  }
  return absl::InvalidArgumentError(kNotRecognised);
}

std::string WritePem(absl::Span<const Certificate> certificates) {
  std::string out;
  for (const Certificate& cert : certificates) {
    absl::StrAppend(&out, PemEncode("CERTIFICATE", cert.der()));
  }
  return out;
}

std::string WriteDer(const Certificate& certificate) {
  return certificate.der();
}

absl::StatusOr<std::string> WritePkcs7(
    absl::Span<const Certificate> certificates, bool pem) {
  if (certificates.empty()) {
    return absl::InvalidArgumentError("PKCS#7 needs at least one certificate");
  }
  std::string der;
#if defined(CERTPLANE_BORINGSSL)
  X509StackPtr stack(sk_X509_new_null());
  if (stack == nullptr) return SslInternal("sk_X509_new_null");
  for (const Certificate& cert : certificates) {
    if (!sk_X509_push(stack.get(), cert.native())) {
      return SslInternal("sk_X509_push");
    }
    X509_up_ref(cert.native());
  }
  CBB cbb;
  if (!CBB_init(&cbb, 0)) return SslInternal("CBB_init");
  uint8_t* out = nullptr;
  size_t length = 0;
  if (!PKCS7_bundle_certificates(&cbb, stack.get()) ||
      !CBB_finish(&cbb, &out, &length)) {
    CBB_cleanup(&cbb);
    return SslInternal("PKCS7_bundle_certificates");
  }
  der.assign(reinterpret_cast<const char*>(out), length);
  OPENSSL_free(out);
#else
  SslPtr<PKCS7> p7(PKCS7_new());
  if (p7 == nullptr) return SslInternal("PKCS7_new");
  if (!PKCS7_set_type(p7.get(), NID_pkcs7_signed)) {
    return SslInternal("PKCS7_set_type");
  }
  // Detached, empty "data" content, as `openssl crl2pkcs7` writes it.
  p7->d.sign->contents->type = OBJ_nid2obj(NID_pkcs7_data);
  for (const Certificate& cert : certificates) {
    if (!PKCS7_add_certificate(p7.get(), cert.native())) {
      return SslInternal("PKCS7_add_certificate");
    }
  }
  uint8_t* out = nullptr;
  const int length = i2d_PKCS7(p7.get(), &out);
  if (length <= 0) return SslInternal("i2d_PKCS7");
  der.assign(reinterpret_cast<const char*>(out), static_cast<size_t>(length));
  OPENSSL_free(out);
#endif
  return pem ? PemEncode("PKCS7", der) : der;
}

absl::StatusOr<std::string> WritePkcs12(const PrivateKey* key,
                                        absl::Span<const Certificate> chain,
                                        absl::string_view password,
                                        const Pkcs12Options& options) {
  if (password.empty()) {
    return absl::InvalidArgumentError("PKCS#12 password must not be empty");
  }
  if (key == nullptr && chain.empty()) {
    return absl::InvalidArgumentError(
        "PKCS#12 needs a private key or at least one certificate");
  }
  if (options.iterations < 0 || options.iterations > kMaxPkcs12Iterations) {
    return absl::InvalidArgumentError(
        absl::StrCat("PKCS#12 iteration count ", options.iterations,
                     " is outside 0..", kMaxPkcs12Iterations));
  }
  if (key != nullptr && !chain.empty()) {
    if (absl::Status match = chain.front().CheckKeyMatches(*key); !match.ok()) {
      return Annotate(match, "PKCS#12 leaf certificate");
    }
  }
#if defined(CERTPLANE_BORINGSSL)
  if (!options.legacy) {
    return absl::UnimplementedError(
        "BoringSSL cannot write a modern PKCS#12 (AES-256-CBC, PBKDF2, "
        "SHA-256 MAC): PKCS12_create has no MAC digest choice; use "
        "Pkcs12Options.legacy");
  }
#endif
  absl::StatusOr<SecretBytes> pass = CPassword(password);
  if (!pass.ok()) return pass.status();
  X509* leaf = nullptr;
  X509StackPtr ca(sk_X509_new_null());
  if (ca == nullptr) return SslInternal("sk_X509_new_null");
  for (size_t i = 0; i < chain.size(); ++i) {
    // Without a key the leaf is just one more certificate.
    if (i == 0 && key != nullptr) {
      leaf = chain[i].native();
      continue;
    }
    if (!sk_X509_push(ca.get(), chain[i].native())) {
      return SslInternal("sk_X509_push");
    }
    X509_up_ref(chain[i].native());
  }
  const char* name =
      options.friendly_name.empty() ? nullptr : options.friendly_name.c_str();
  EVP_PKEY* pkey = key != nullptr ? key->native() : nullptr;
  const int iterations =
      options.iterations != 0
          ? options.iterations
          : (options.legacy ? kLegacyPkcs12Iterations : kPkcs12Iterations);
  SslPtr<PKCS12> p12;
#if defined(CERTPLANE_BORINGSSL)
  p12.reset(PKCS12_create(CStr(*pass), name, pkey, leaf, ca.get(),
                          NID_pbe_WithSHA1And3_Key_TripleDES_CBC,
                          NID_pbe_WithSHA1And40BitRC2_CBC, iterations,
                          iterations, 0));
  if (p12 == nullptr) return SslInternal("PKCS12_create");
#else
  if (options.legacy) {
    const LegacyProviders& providers = LoadLegacyProviders();
    if (!providers.status.ok()) return providers.status;
  }
  // The MAC is added separately: PKCS12_create's MAC digest depends on the
  // OpenSSL release. Legacy: SHA-1, which old Windows and Java need. Modern:
  // PBES2 with AES-256-CBC (PBKDF2's PRF defaults to HMAC-SHA256), SHA-256.
  const int key_nid =
      options.legacy ? NID_pbe_WithSHA1And3_Key_TripleDES_CBC : NID_aes_256_cbc;
  const int cert_nid =
      options.legacy ? NID_pbe_WithSHA1And40BitRC2_CBC : NID_aes_256_cbc;
  p12.reset(PKCS12_create(CStr(*pass), name, pkey, leaf, ca.get(), key_nid,
                          cert_nid, iterations, /*mac_iter=*/-1, 0));
  if (p12 == nullptr) return SslInternal("PKCS12_create");
  if (!PKCS12_set_mac(p12.get(), CStr(*pass), -1, nullptr, 0, iterations,
                      options.legacy ? EVP_sha1() : EVP_sha256())) {
    return SslInternal("PKCS12_set_mac");
  }
#endif
  uint8_t* out = nullptr;
  const int length = i2d_PKCS12(p12.get(), &out);
  if (length <= 0) return SslInternal("i2d_PKCS12");
  std::string der(reinterpret_cast<const char*>(out),
                  static_cast<size_t>(length));
  OPENSSL_free(out);
  return der;
}

absl::StatusOr<NginxBundle> WriteNginxBundle(
    absl::Span<const Certificate> chain, const PrivateKey* key) {
  if (chain.empty()) {
    return absl::InvalidArgumentError(
        "NGINX bundle needs at least one certificate");
  }
  // Self-signed certificates (roots) are never sent by a server.
  std::vector<const Certificate*> pending;
  for (const Certificate& cert : chain) {
    if (!cert.IsIssuedBy(cert)) pending.push_back(&cert);
  }
  if (pending.empty()) {
    return absl::InvalidArgumentError(
        "NGINX bundle has only self-signed certificates; a server needs its "
        "leaf certificate");
  }
  // The leaf is the one certificate that issued none of the others.
  const Certificate* leaf = nullptr;
  for (const Certificate* candidate : pending) {
    bool issues_another = false;
    for (const Certificate* other : pending) {
      if (other != candidate && *other != *candidate &&
          other->IsIssuedBy(*candidate)) {
        issues_another = true;
        break;
      }
    }
    if (issues_another) continue;
    if (leaf != nullptr && *leaf != *candidate) {
      return absl::InvalidArgumentError(
          "NGINX bundle certificates do not form one chain: more than one "
          "certificate issued none of the others");
    }
    leaf = candidate;
  }
  if (leaf == nullptr) {
    return absl::InvalidArgumentError(
        "NGINX bundle certificates do not form one chain (issuer loop)");
  }
  std::vector<Certificate> ordered = {*leaf};
  std::vector<const Certificate*> rest;
  for (const Certificate* cert : pending) {
    if (*cert != *leaf) rest.push_back(cert);
  }
  while (!rest.empty()) {
    auto next = rest.end();
    for (auto it = rest.begin(); it != rest.end(); ++it) {
      if (ordered.back().IsIssuedBy(**it)) {
        next = it;
        break;
      }
    }
    if (next == rest.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "NGINX bundle certificates do not form one chain: ", rest.size(),
          " certificate(s) are not issuers of the "
          "leaf's chain"));
    }
    ordered.push_back(**next);
    // Drop duplicates of the same certificate too.
    const Certificate chosen = **next;
    std::erase_if(rest, [&](const Certificate* c) { return *c == chosen; });
  }
  NginxBundle bundle;
  bundle.fullchain_pem = WritePem(ordered);
  if (key != nullptr) {
    if (absl::Status match = ordered.front().CheckKeyMatches(*key);
        !match.ok()) {
      return Annotate(match, "NGINX bundle leaf certificate");
    }
    absl::StatusOr<SecretBytes> pem = key->ToPkcs8Pem();
    if (!pem.ok()) return pem.status();
    bundle.key_pem = *std::move(pem);
  }
  return bundle;
}

}  // namespace certplane::crypto
