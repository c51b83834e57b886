#include "libs/crypto/csr.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/crypto/internal/der.h"
#include "libs/crypto/internal/ssl_util.h"

namespace certplane::crypto {
namespace {

using internal::SslError;
using internal::SslInternal;
using internal::SslPtr;

absl::Status Invalid(const SubjectAltName& san, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("SAN ", SanTypeName(san.type),
                                                 ":\"", san.value, "\" ", why));
}

bool IsLdh(char c) { return absl::ascii_isalnum(c) || c == '-'; }

bool ParseIpv4(absl::string_view text, uint8_t out[4]) {
  std::string copy(text);
  return inet_pton(AF_INET, copy.c_str(), out) == 1;
}
bool ParseIpv6(absl::string_view text, uint8_t out[16]) {
  std::string copy(text);
  return inet_pton(AF_INET6, copy.c_str(), out) == 1;
}

// A hostname (no wildcard): LDH labels of 1..63, total <= 253.
// Returns "" when valid, else what is wrong.
std::string HostnameProblem(absl::string_view name) {
  if (name.empty()) return "is empty";
  if (name.size() > 253) return "is longer than 253 characters";
  if (name.back() == '.') return "has a trailing dot";
  for (absl::string_view label : absl::StrSplit(name, '.')) {
    if (label.empty()) return "has an empty label";
    if (label.size() > 63) {
      return absl::StrCat("has label \"", label,
                          "\" longer than 63 characters");
    }
    for (char c : label) {
      if (!IsLdh(c)) {
        return absl::StrCat("has label \"", label,
                            "\" with a character other than letters, "
                            "digits and '-'");
      }
    }
    if (label.front() == '-' || label.back() == '-') {
      return absl::StrCat("has label \"", label,
                          "\" starting or ending with '-'");
    }
  }
  uint8_t ip[4];
  if (ParseIpv4(name, ip)) return "is an IP address, not a DNS name";
  return "";
}

absl::Status ValidateDnsSan(const SubjectAltName& san) {
  absl::string_view name = san.value;
  if (absl::StrContains(name, '*')) {
    if (!absl::StartsWith(name, "*.") ||
        absl::StrContains(name.substr(1), '*')) {
      return Invalid(san,
                     "has a wildcard that is not the whole left-most label");
    }
    name.remove_prefix(2);
    if (std::count(name.begin(), name.end(), '.') < 1) {
      return Invalid(san, "has a wildcard followed by fewer than two labels");
    }
  }
  if (std::string problem = HostnameProblem(name); !problem.empty()) {
    return Invalid(san, problem);
  }
  return absl::OkStatus();
}

absl::Status ValidateEmailSan(const SubjectAltName& san) {
  absl::string_view value = san.value;
  size_t at = value.rfind('@');
  if (at == absl::string_view::npos) return Invalid(san, "has no '@'");
  absl::string_view local = value.substr(0, at);
  absl::string_view domain = value.substr(at + 1);
  if (local.empty()) return Invalid(san, "has an empty local part");
  if (local.size() > 64) {
    return Invalid(san, "has a local part longer than 64 characters");
  }
  for (char c : local) {
    if (c <= ' ' || c >= 0x7f || c == '@' || c == '*' || c == '"' || c == '(' ||
        c == ')' || c == ',' || c == ':' || c == ';' || c == '<' || c == '>' ||
        c == '[' || c == ']' || c == '\\') {
      return Invalid(san, "has a character not allowed in the local part");
    }
  }
  if (std::string problem = HostnameProblem(domain); !problem.empty()) {
    return Invalid(san, absl::StrCat("has a domain that ", problem));
  }
  return absl::OkStatus();
}

absl::Status ValidateUriSan(const SubjectAltName& san) {
  absl::string_view value = san.value;
  size_t colon = value.find(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return Invalid(san, "has no scheme (expected scheme:rest)");
  }
  absl::string_view scheme = value.substr(0, colon);
  if (!absl::ascii_isalpha(scheme[0])) {
    return Invalid(san, "has a scheme that does not start with a letter");
  }
  for (char c : scheme) {
    if (!absl::ascii_isalnum(c) && c != '+' && c != '-' && c != '.') {
      return Invalid(san, "has a character not allowed in a scheme");
    }
  }
  if (colon + 1 == value.size()) return Invalid(san, "has nothing after ':'");
  for (char c : value) {
    if (static_cast<unsigned char>(c) <= ' ' ||
        static_cast<unsigned char>(c) >= 0x7f) {
      return Invalid(san, "has a space, control or non-ASCII character");
    }
    if (c == '*') return Invalid(san, "has a wildcard");
  }
  return absl::OkStatus();
}

// Adds one SAN to `names`.
absl::Status AppendGeneralName(GENERAL_NAMES* names,
                               const SubjectAltName& san) {
  if (auto s = ValidateSan(san); !s.ok()) return s;
  SslPtr<ASN1_STRING> value;
  int type = GEN_DNS;
  if (san.type == SanType::kIp) {
    type = GEN_IPADD;
    uint8_t bytes[16];
    int length = 0;
    if (ParseIpv4(san.value, bytes)) {
      length = 4;
    } else if (ParseIpv6(san.value, bytes)) {
      length = 16;
    }
    value.reset(ASN1_OCTET_STRING_new());
    if (value == nullptr) return SslInternal("ASN1_OCTET_STRING_new");
    if (!ASN1_OCTET_STRING_set(value.get(), bytes, length)) {
      return SslInternal("ASN1_OCTET_STRING_set");
    }
  } else {
    type = san.type == SanType::kDns     ? GEN_DNS
           : san.type == SanType::kEmail ? GEN_EMAIL
                                         : GEN_URI;
    value.reset(ASN1_IA5STRING_new());
    if (value == nullptr) return SslInternal("ASN1_IA5STRING_new");
    if (!ASN1_STRING_set(value.get(), san.value.data(),
                         static_cast<int>(san.value.size()))) {
      return SslInternal("ASN1_STRING_set");
    }
  }
  SslPtr<GENERAL_NAME> name(GENERAL_NAME_new());
  if (name == nullptr) return SslInternal("GENERAL_NAME_new");
  GENERAL_NAME_set0_value(name.get(), type, value.release());
  if (!sk_GENERAL_NAME_push(names, name.get())) {
    return SslInternal("sk_GENERAL_NAME_push");
  }
  name.release();
  return absl::OkStatus();
}

absl::StatusOr<SslPtr<GENERAL_NAMES>> BuildGeneralNames(
    const std::vector<SubjectAltName>& sans) {
  SslPtr<GENERAL_NAMES> names(GENERAL_NAMES_new());
  if (names == nullptr) return SslInternal("GENERAL_NAMES_new");
  for (const SubjectAltName& san : sans) {
    if (auto s = AppendGeneralName(names.get(), san); !s.ok()) return s;
  }
  return names;
}

absl::StatusOr<SslPtr<X509_NAME>> BuildName(const DistinguishedName& dn) {
  SslPtr<X509_NAME> name(X509_NAME_new());
  if (name == nullptr) return SslInternal("X509_NAME_new");
  for (const NameAttribute& attribute : dn.attributes) {
    const std::string& id =
        attribute.oid.empty() ? attribute.type : attribute.oid;
    SslPtr<ASN1_OBJECT> obj(OBJ_txt2obj(id.c_str(), 0));
    if (obj == nullptr) {
      internal::ClearSslErrors();
      return absl::InvalidArgumentError(
          absl::StrCat("unknown name attribute type \"", id, "\""));
    }
    if (!X509_NAME_add_entry_by_OBJ(
            name.get(), obj.get(), MBSTRING_UTF8,
            reinterpret_cast<const uint8_t*>(attribute.value.data()),
            static_cast<int>(attribute.value.size()), -1, 0)) {
      return SslError(
          absl::StatusCode::kInvalidArgument,
          absl::StrCat("name attribute ", id, "=\"", attribute.value,
                       "\" cannot be encoded (X509_NAME_add_entry_by_OBJ)"));
    }
  }
  return name;
}

std::string ObjectText(const ASN1_OBJECT* obj, bool numeric) {
  char buffer[128];
  int length = OBJ_obj2txt(buffer, sizeof(buffer), obj, numeric ? 1 : 0);
  if (length <= 0 || static_cast<size_t>(length) >= sizeof(buffer)) {
    internal::ClearSslErrors();
    return {};
  }
  return std::string(buffer, static_cast<size_t>(length));
}

absl::StatusOr<DistinguishedName> ParseName(const X509_NAME* name) {
  DistinguishedName dn;
  int count = X509_NAME_entry_count(name);
  for (int i = 0; i < count; ++i) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(name, i);
    const ASN1_OBJECT* obj = X509_NAME_ENTRY_get_object(entry);
    NameAttribute attribute;
    attribute.oid = ObjectText(obj, true);
    int nid = OBJ_obj2nid(obj);
    const char* short_name = nid != NID_undef ? OBJ_nid2sn(nid) : nullptr;
    attribute.type = short_name != nullptr ? short_name : attribute.oid;
    uint8_t* utf8 = nullptr;
    int length = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
    if (length < 0) {
      return SslError(absl::StatusCode::kInvalidArgument,
                      absl::StrCat("subject attribute ", attribute.type,
                                   " is not a valid string "
                                   "(ASN1_STRING_to_UTF8)"));
    }
    attribute.value.assign(reinterpret_cast<char*>(utf8),
                           static_cast<size_t>(length));
    OPENSSL_free(utf8);
    dn.attributes.push_back(std::move(attribute));
  }
  return dn;
}

absl::Status ParseGeneralNames(const GENERAL_NAMES* names,
                               std::vector<SubjectAltName>* sans,
                               int* unsupported) {
  const auto count = static_cast<size_t>(sk_GENERAL_NAME_num(names));
  for (size_t i = 0; i < count; ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    int type = 0;
    const void* value = GENERAL_NAME_get0_value(name, &type);
    if (type == GEN_DNS || type == GEN_EMAIL || type == GEN_URI) {
      const auto* ia5 = static_cast<const ASN1_STRING*>(value);
      SanType san_type = type == GEN_DNS     ? SanType::kDns
                         : type == GEN_EMAIL ? SanType::kEmail
                                             : SanType::kUri;
      sans->push_back(
          {san_type,
           std::string(
               reinterpret_cast<const char*>(ASN1_STRING_get0_data(ia5)),
               static_cast<size_t>(ASN1_STRING_length(ia5)))});
    } else if (type == GEN_IPADD) {
      const auto* octets = static_cast<const ASN1_STRING*>(value);
      int length = ASN1_STRING_length(octets);
      char text[INET6_ADDRSTRLEN];
      const void* bytes = ASN1_STRING_get0_data(octets);
      if ((length != 4 && length != 16) ||
          inet_ntop(length == 4 ? AF_INET : AF_INET6, bytes, text,
                    sizeof(text)) == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(
            "IP address SAN has ", length, " bytes; expected 4 or 16"));
      }
      sans->push_back({SanType::kIp, text});
    } else {
      ++*unsupported;
    }
  }
  return absl::OkStatus();
}

const EVP_MD* CsrDigestFor(const PublicKey& key) {
  KeyInfo info = key.info();
  if (info.algorithm == KeyAlgorithm::kEd25519) return nullptr;
  if (info.curve == "P-384") return EVP_sha384();
  if (info.curve == "P-521") return EVP_sha512();
  return EVP_sha256();
}

bool SameSan(const SubjectAltName& a, const SubjectAltName& b) {
  if (a.type != b.type) return false;
  if (a.type == SanType::kDns || a.type == SanType::kEmail) {
    return absl::EqualsIgnoreCase(a.value, b.value);
  }
  if (a.type == SanType::kIp) {
    uint8_t x[16] = {}, y[16] = {};
    if (ParseIpv4(a.value, x) && ParseIpv4(b.value, y)) {
      return std::equal(x, x + 4, y);
    }
    if (ParseIpv6(a.value, x) && ParseIpv6(b.value, y)) {
      return std::equal(x, x + 16, y);
    }
  }
  return a.value == b.value;
}

// Reserved address ranges that the Baseline Requirements forbid in publicly
// trusted certificates: the IANA IPv4 and IPv6 special-purpose address
// registries (entries not globally reachable, or deprecated), plus the
// reserved IPv6 prefixes of the IPv6 address space registry.
bool IsReservedIp(absl::string_view text) {
  uint8_t b[16] = {};
  if (ParseIpv4(text, b)) {
    return b[0] == 0 || b[0] == 10 || b[0] == 127 || b[0] >= 224 ||
           (b[0] == 100 && (b[1] & 0xc0) == 64) ||
           (b[0] == 169 && b[1] == 254) ||
           (b[0] == 172 && (b[1] & 0xf0) == 16) ||
           (b[0] == 192 && b[1] == 168) ||
           (b[0] == 192 && b[1] == 0 && b[2] == 0) ||    // IETF protocol
           (b[0] == 192 && b[1] == 88 && b[2] == 99) ||  // 6to4 relay
           (b[0] == 192 && b[1] == 0 && b[2] == 2) ||
           (b[0] == 198 && (b[1] & 0xfe) == 18) ||
           (b[0] == 198 && b[1] == 51 && b[2] == 100) ||
           (b[0] == 203 && b[1] == 0 && b[2] == 113);
  }
  if (ParseIpv6(text, b)) {
    bool zero_prefix = std::all_of(b, b + 10, [](uint8_t v) { return v == 0; });
    return (zero_prefix) ||                            // ::, ::1, v4-mapped...
           (b[0] & 0xfe) == 0xfc ||                    // fc00::/7 ULA
           (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) ||  // fe80::/10
           b[0] == 0xff ||                             // multicast
           (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) ||  // fec0::/10 site-local
           // 64:ff9b::/96 NAT64 and 64:ff9b:1::/48 local-use NAT64.
           (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b &&
            (std::all_of(b + 4, b + 12, [](uint8_t v) { return v == 0; }) ||
             (b[4] == 0x00 && b[5] == 0x01))) ||
           // 100::/64 discard-only.
           (b[0] == 0x01 && b[1] == 0x00 &&
            std::all_of(b + 2, b + 8, [](uint8_t v) { return v == 0; })) ||
           // 2001::/23 IETF protocol assignments (Teredo, ORCHID, ...).
           (b[0] == 0x20 && b[1] == 0x01 && b[2] < 0x02) ||
           (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) ||
           (b[0] == 0x20 && b[1] == 0x02) ||                 // 2002::/16 6to4
           (b[0] == 0x3f && b[1] == 0xff && b[2] < 0x10) ||  // 3fff::/20 doc
           (b[0] == 0x5f && b[1] == 0x00);                   // 5f00::/16 SRv6
  }
  return false;
}

absl::Status KeyPolicy(const KeyInfo& key, const CsrPolicy& policy) {
  switch (key.algorithm) {
    case KeyAlgorithm::kRsa:
      if (key.bits < 2048) {
        return absl::InvalidArgumentError(
            absl::StrCat("key rule: RSA key of ", key.bits,
                         " bits is too small; at least 2048 bits required"));
      }
      if (key.bits % 8 != 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("key rule: RSA modulus of ", key.bits,
                         " bits is not a multiple of 8"));
      }
      if (key.bits > 8192) {
        return absl::InvalidArgumentError(
            absl::StrCat("key rule: RSA key of ", key.bits,
                         " bits is larger than the 8192 bits accepted"));
      }
      return absl::OkStatus();
    case KeyAlgorithm::kEcdsa:
      if (key.explicit_curve_parameters) {
        return absl::InvalidArgumentError(
            "key rule: ECDSA key with explicit curve parameters; only named "
            "curves are accepted");
      }
      if (key.curve != "P-256" && key.curve != "P-384" &&
          key.curve != "P-521") {
        return absl::InvalidArgumentError(
            absl::StrCat("key rule: ECDSA curve ", key.curve,
                         " is not allowed; use P-256, P-384 or P-521"));
      }
      return absl::OkStatus();
    case KeyAlgorithm::kEd25519:
      if (policy.public_trust) {
        return absl::InvalidArgumentError(
            "key rule: Ed25519 keys are not allowed for publicly trusted "
            "certificates (Baseline Requirements 6.1.5)");
      }
      return absl::OkStatus();
    case KeyAlgorithm::kUnknown:
      break;
  }
  return absl::InvalidArgumentError(
      "key rule: unsupported key algorithm; use RSA, ECDSA or Ed25519");
}

}  // namespace

// ------------------------------------------------------- CertificateRequest

absl::StatusOr<CertificateRequest> CertificateRequest::FromDer(
    absl::string_view der) {
  if (der.empty()) return absl::InvalidArgumentError("empty CSR");
  // Refuse explicit EC parameters before d2i_X509_REQ decodes the curve.
  if (auto status = internal::CheckCsrDerKey(der); !status.ok()) {
    return internal::WithMalformedContext(
        status, "not a DER PKCS#10 certificate request (d2i_X509_REQ)");
  }
  const auto* p = reinterpret_cast<const uint8_t*>(der.data());
  SslPtr<X509_REQ> req(
      d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));
  if (req == nullptr) {
    return SslError(absl::StatusCode::kInvalidArgument,
                    "not a DER PKCS#10 certificate request (d2i_X509_REQ)");
  }
  if (p != reinterpret_cast<const uint8_t*>(der.data()) + der.size()) {
    return absl::InvalidArgumentError("trailing bytes after DER CSR");
  }
  EvpPkeyHandle pkey(X509_REQ_get_pubkey(req.get()));
  if (pkey == nullptr) {
    return SslError(absl::StatusCode::kInvalidArgument,
                    "CSR public key is unreadable (X509_REQ_get_pubkey)");
  }
  auto subject = ParseName(X509_REQ_get_subject_name(req.get()));
  if (!subject.ok()) return subject.status();

  std::vector<SubjectAltName> sans;
  int unsupported = 0;
  internal::X509ExtensionStackPtr extensions(
      X509_REQ_get_extensions(req.get()));
  // Without an extensionRequest attribute the library returns null and may
  // leave an error behind.
  internal::ClearSslErrors();
  if (extensions != nullptr) {
    int index =
        X509v3_get_ext_by_NID(extensions.get(), NID_subject_alt_name, -1);
    if (index >= 0) {
      SslPtr<GENERAL_NAMES> names(static_cast<GENERAL_NAMES*>(
          X509V3_EXT_d2i(X509v3_get_ext(extensions.get(), index))));
      if (names == nullptr) {
        return SslError(absl::StatusCode::kInvalidArgument,
                        "CSR subjectAltName extension is malformed "
                        "(X509V3_EXT_d2i)");
      }
      if (auto s = ParseGeneralNames(names.get(), &sans, &unsupported);
          !s.ok()) {
        return s;
      }
    }
  }

  const X509_ALGOR* algorithm = nullptr;
  X509_REQ_get0_signature(req.get(), nullptr, &algorithm);
  std::string signature_algorithm;
  if (algorithm != nullptr) {
    const ASN1_OBJECT* obj = nullptr;
    X509_ALGOR_get0(&obj, nullptr, nullptr, algorithm);
    int nid = obj != nullptr ? OBJ_obj2nid(obj) : NID_undef;
    signature_algorithm =
        nid != NID_undef ? OBJ_nid2ln(nid) : ObjectText(obj, true);
  }
  return CertificateRequest(
      std::string(der), *std::move(subject), std::move(sans), unsupported,
      PublicKey::Adopt(std::move(pkey)), std::move(signature_algorithm));
}

absl::StatusOr<CertificateRequest> CertificateRequest::FromPem(
    absl::string_view pem) {
  if (pem.size() > static_cast<size_t>(INT_MAX)) {
    return internal::InputTooLargeOr(pem, "PEM");
  }
  // As PEM_read_bio_X509_REQ, but the key is checked before anything decodes
  // it.
  std::optional<std::string> block = internal::FirstPemBlock(
      pem, {"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"});
  if (!block.has_value()) {
    return absl::InvalidArgumentError(
        "no valid PEM \"CERTIFICATE REQUEST\" block (PEM_read_bio_X509_REQ)");
  }
  if (auto status = internal::CheckCsrDerKey(*block); !status.ok()) {
    return internal::WithMalformedContext(
        status,
        "no valid PEM \"CERTIFICATE REQUEST\" block (PEM_read_bio_X509_REQ)");
  }
  // The block's own bytes, not a re-encoding (see ToPem).
  absl::StatusOr<CertificateRequest> csr = FromDer(*block);
  if (!csr.ok() && absl::StartsWith(csr.status().message(),
                                    "not a DER PKCS#10 certificate request")) {
    return absl::InvalidArgumentError(
        "no valid PEM \"CERTIFICATE REQUEST\" block (PEM_read_bio_X509_REQ)");
  }
  return csr;
}

std::string CertificateRequest::ToPem() const {
  // The bytes as parsed: PEM_write_bio_X509_REQ would re-encode, and OpenSSL
  // normalizes some encodings (a signature BIT STRING's unused bits), so the
  // PEM would no longer hold the same CSR.
  return internal::PemEncode("CERTIFICATE REQUEST", der_);
}

absl::Status CertificateRequest::VerifySignature() const {
  // Once per parsed CSR (copies share the answer): each check costs a
  // parse and a signature verification.
  if (verified_ == nullptr) {
    return absl::FailedPreconditionError("CSR was moved from");
  }
  absl::call_once(verified_->once,
                  [this] { verified_->status = CheckSignature(); });
  return verified_->status;
}

absl::Status CertificateRequest::CheckSignature() const {
  // Re-parsed here so that the value itself holds no library state.
  const auto* p = reinterpret_cast<const uint8_t*>(der_.data());
  SslPtr<X509_REQ> req(
      d2i_X509_REQ(nullptr, &p, static_cast<long>(der_.size())));
  if (req == nullptr) return SslInternal("d2i_X509_REQ");
  int ok = X509_REQ_verify(req.get(), public_key_.native());
  internal::ClearSslErrors();
  if (ok != 1) {
    return absl::InvalidArgumentError("CSR signature does not verify");
  }
  return absl::OkStatus();
}

// ----------------------------------------------------------------- Building

absl::StatusOr<CertificateRequest> CreateCsr(const PrivateKey& key,
                                             const CsrOptions& options) {
  if (key.native() == nullptr) {
    return absl::InvalidArgumentError("CSR key is empty");
  }
  SslPtr<X509_REQ> req(X509_REQ_new());
  if (req == nullptr) return SslInternal("X509_REQ_new");
  if (!X509_REQ_set_version(req.get(), 0)) {
    return SslInternal("X509_REQ_set_version");
  }
  auto name = BuildName(options.subject);
  if (!name.ok()) return name.status();
  if (!X509_REQ_set_subject_name(req.get(), name->get())) {
    return SslInternal("X509_REQ_set_subject_name");
  }
  if (!X509_REQ_set_pubkey(req.get(), key.native())) {
    return SslInternal("X509_REQ_set_pubkey");
  }
  if (!options.sans.empty()) {
    auto names = BuildGeneralNames(options.sans);
    if (!names.ok()) return names.status();
    internal::X509ExtensionStackPtr extensions(sk_X509_EXTENSION_new_null());
    if (extensions == nullptr) return SslInternal("sk_X509_EXTENSION_new_null");
    SslPtr<X509_EXTENSION> extension(X509V3_EXT_i2d(
        NID_subject_alt_name, options.subject.attributes.empty() ? 1 : 0,
        names->get()));
    if (extension == nullptr) return SslInternal("X509V3_EXT_i2d");
    if (!sk_X509_EXTENSION_push(extensions.get(), extension.get())) {
      return SslInternal("sk_X509_EXTENSION_push");
    }
    extension.release();
    if (!X509_REQ_add_extensions(req.get(), extensions.get())) {
      return SslInternal("X509_REQ_add_extensions");
    }
  }
  if (X509_REQ_sign(req.get(), key.native(), CsrDigestFor(key.public_key())) <=
      0) {
    return SslInternal("X509_REQ_sign");
  }
  uint8_t* der = nullptr;
  int length = i2d_X509_REQ(req.get(), &der);
  if (length <= 0) return SslInternal("i2d_X509_REQ");
  std::string encoded(reinterpret_cast<char*>(der),
                      static_cast<size_t>(length));
  OPENSSL_free(der);
  return CertificateRequest::FromDer(encoded);
}

// ------------------------------------------------------------------- Policy

absl::Status ValidateSan(const SubjectAltName& san) {
  switch (san.type) {
    case SanType::kDns:
      return ValidateDnsSan(san);
    case SanType::kIp: {
      uint8_t bytes[16];
      if (ParseIpv4(san.value, bytes) || ParseIpv6(san.value, bytes)) {
        return absl::OkStatus();
      }
      return Invalid(san, "is not an IPv4 or IPv6 address");
    }
    case SanType::kEmail:
      return ValidateEmailSan(san);
    case SanType::kUri:
      return ValidateUriSan(san);
  }
  return Invalid(san, "has an unknown SAN type");
}

absl::Status CheckSingleCommonName(const DistinguishedName& subject) {
  size_t count = std::count_if(
      subject.attributes.begin(), subject.attributes.end(),
      [](const NameAttribute& attribute) { return attribute.type == "CN"; });
  if (count > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CN rule: subject has ", count,
        " common names; at most one is allowed (Baseline Requirements "
        "7.1.4.3)"));
  }
  return absl::OkStatus();
}

absl::Status CheckCsrPolicy(const CertificateRequest& csr,
                            const CsrPolicy& policy) {
  if (auto s = KeyPolicy(csr.public_key().info(), policy); !s.ok()) return s;
  if (auto s = CheckRsaPublicExponent(csr.public_key(), policy.public_trust);
      !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("key rule: ", s.message()));
  }
  if (auto s = CheckSingleCommonName(csr.subject()); !s.ok()) return s;
  const std::vector<SubjectAltName>& sans = csr.sans();
  if (csr.unsupported_san_count() > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("SAN rule: CSR has ", csr.unsupported_san_count(),
                     " SAN(s) of a type other than DNS, IP, email or URI"));
  }
  if (sans.empty()) {
    return absl::InvalidArgumentError(
        "SAN rule: CSR has no subjectAltName; at least one is required");
  }
  if (sans.size() > policy.max_sans) {
    return absl::InvalidArgumentError(
        absl::StrCat("SAN rule: CSR has ", sans.size(), " SANs; at most ",
                     policy.max_sans, " are allowed"));
  }
  for (size_t i = 0; i < sans.size(); ++i) {
    const SubjectAltName& san = sans[i];
    if (auto s = ValidateSan(san); !s.ok()) return s;
    switch (san.type) {
      case SanType::kDns:
        if (absl::StartsWith(san.value, "*.") && !policy.allow_wildcards) {
          return Invalid(san, "is a wildcard; wildcards are not allowed");
        }
        if (policy.public_trust && !absl::StrContains(san.value, '.')) {
          return Invalid(san,
                         "is a single-label (internal) name, not allowed for "
                         "publicly trusted certificates");
        }
        break;
      case SanType::kIp:
        if (!policy.allow_ip_sans) {
          return Invalid(san, "is an IP address; IP SANs are not allowed");
        }
        if (policy.public_trust && IsReservedIp(san.value)) {
          return Invalid(san,
                         "is a reserved IP address, not allowed for publicly "
                         "trusted certificates");
        }
        break;
      case SanType::kEmail:
        if (!policy.allow_email_sans) {
          return Invalid(san,
                         "is an email address; email SANs are not "
                         "allowed");
        }
        break;
      case SanType::kUri:
        if (!policy.allow_uri_sans) {
          return Invalid(san, "is a URI; URI SANs are not allowed");
        }
        break;
    }
    for (size_t j = 0; j < i; ++j) {
      if (SameSan(sans[j], san)) return Invalid(san, "is a duplicate");
    }
  }
  std::string cn = csr.subject().Get("CN");
  if (!cn.empty()) {
    bool found = std::any_of(sans.begin(), sans.end(), [&](const auto& san) {
      return (san.type == SanType::kDns || san.type == SanType::kIp) &&
             SameSan(san, {san.type, cn});
    });
    if (!found) {
      return absl::InvalidArgumentError(
          absl::StrCat("CN rule: common name \"", cn,
                       "\" is not one of the CSR's DNS or IP SANs"));
    }
  }
  return csr.VerifySignature();
}

namespace internal {

absl::StatusOr<std::string> EncodeDistinguishedName(
    const DistinguishedName& dn) {
  auto name = BuildName(dn);
  if (!name.ok()) return name.status();
  uint8_t* der = nullptr;
  int length = i2d_X509_NAME(name->get(), &der);
  if (length <= 0) return SslInternal("i2d_X509_NAME");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(length));
  OPENSSL_free(der);
  return out;
}

absl::StatusOr<std::string> EncodeSubjectAltNames(
    const std::vector<SubjectAltName>& sans) {
  auto names = BuildGeneralNames(sans);
  if (!names.ok()) return names.status();
  uint8_t* der = nullptr;
  int length = i2d_GENERAL_NAMES(names->get(), &der);
  if (length <= 0) return SslInternal("i2d_GENERAL_NAMES");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(length));
  OPENSSL_free(der);
  return out;
}

}  // namespace internal
}  // namespace certplane::crypto
