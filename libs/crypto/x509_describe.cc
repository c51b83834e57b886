// Certificate::Parse: turns an X509 into a CertificateInfo. Written to the
// API OpenSSL 3 and BoringSSL share; extensions that are present but cannot
// be decoded are left out of the description rather than failing it.
#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/sha.h>

#include <cstdint>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/crypto/certificate.h"
#include "libs/crypto/internal/ssl_util.h"

namespace certplane::crypto {

using internal::SslError;
using internal::SslInternal;
using internal::SslPtr;

namespace {

// The RFC 6962 embedded SCT list extension.
constexpr char kSctListOid[] = "1.3.6.1.4.1.11129.2.4.2";

std::string ObjectOid(const ASN1_OBJECT* object) {
  char buffer[128];
  int length = OBJ_obj2txt(buffer, sizeof(buffer), object, /*no_name=*/1);
  if (length <= 0) {
    internal::ClearSslErrors();
    return "";
  }
  if (static_cast<size_t>(length) >= sizeof(buffer)) {
    std::string big(static_cast<size_t>(length) + 1, '\0');
    OBJ_obj2txt(big.data(), static_cast<int>(big.size()), object, 1);
    big.resize(static_cast<size_t>(length));
    return big;
  }
  return std::string(buffer, static_cast<size_t>(length));
}

// Short name when the library knows the object, else the dotted OID.
std::string ObjectShortName(const ASN1_OBJECT* object) {
  int nid = OBJ_obj2nid(object);
  if (nid != NID_undef) {
    if (const char* sn = OBJ_nid2sn(nid); sn != nullptr) return sn;
  }
  return ObjectOid(object);
}

std::string StringBytes(const ASN1_STRING* string) {
  if (string == nullptr) return "";
  int length = ASN1_STRING_length(string);
  const uint8_t* data = ASN1_STRING_get0_data(string);
  if (data == nullptr || length <= 0) return "";
  return std::string(reinterpret_cast<const char*>(data),
                     static_cast<size_t>(length));
}

// UTF-8 of a directory string; undecodable values (a BMPString with an odd
// length, say) come back as "#" and the hex of their bytes, as RFC 4514 does.
std::string StringUtf8(const ASN1_STRING* string) {
  unsigned char* utf8 = nullptr;
  int length = ASN1_STRING_to_UTF8(&utf8, string);
  if (length < 0) {
    internal::ClearSslErrors();
    return absl::StrCat("#", HexEncode(StringBytes(string)));
  }
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(length));
  OPENSSL_free(utf8);
  return out;
}

DistinguishedName ParseName(const X509_NAME* name) {
  DistinguishedName out;
  if (name == nullptr) return out;
  int count = X509_NAME_entry_count(name);
  for (int i = 0; i < count; ++i) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(name, i);
    if (entry == nullptr) continue;
    const ASN1_OBJECT* object = X509_NAME_ENTRY_get_object(entry);
    NameAttribute attribute;
    attribute.type = ObjectShortName(object);
    attribute.oid = ObjectOid(object);
    attribute.value = StringUtf8(X509_NAME_ENTRY_get_data(entry));
    out.attributes.push_back(std::move(attribute));
  }
  return out;
}

// Seconds since the epoch of an ASN1_TIME (UTCTime or GeneralizedTime).
absl::StatusOr<absl::Time> ParseTime(const ASN1_TIME* time,
                                     absl::string_view which) {
  if (time == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate has no ", which));
  }
  SslPtr<ASN1_STRING> epoch(ASN1_TIME_set(nullptr, 0));
  if (epoch == nullptr) return SslInternal("ASN1_TIME_set");
  int days = 0;
  int seconds = 0;
  if (!ASN1_TIME_diff(&days, &seconds, epoch.get(), time)) {
    return SslError(
        absl::StatusCode::kInvalidArgument,
        absl::StrCat("certificate ", which, " \"", StringBytes(time),
                     "\" is not a valid time (ASN1_TIME_diff)"));
  }
  return absl::UnixEpoch() + absl::Hours(24) * days + absl::Seconds(seconds);
}

std::string SerialHex(const ASN1_INTEGER* serial) {
  if (serial == nullptr) return "";
  SslPtr<BIGNUM> bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (bn == nullptr) {
    internal::ClearSslErrors();
    return "";
  }
  char* hex = BN_bn2hex(bn.get());
  if (hex == nullptr) {
    internal::ClearSslErrors();
    return "";
  }
  std::string out = absl::AsciiStrToLower(hex);
  OPENSSL_free(hex);
  // BN_bn2hex pads to whole bytes; the description has no leading zeros.
  bool negative = !out.empty() && out[0] == '-';
  size_t start = negative ? 1 : 0;
  size_t first = out.find_first_not_of('0', start);
  if (first == std::string::npos) return "0";
  return absl::StrCat(negative ? "-" : "", out.substr(first));
}

std::string IpText(const ASN1_OCTET_STRING* ip) {
  std::string bytes = StringBytes(ip);
  char text[INET6_ADDRSTRLEN] = {};
  if (bytes.size() == 4 &&
      inet_ntop(AF_INET, bytes.data(), text, sizeof(text))) {
    return text;
  }
  if (bytes.size() == 16 &&
      inet_ntop(AF_INET6, bytes.data(), text, sizeof(text))) {
    return text;
  }
  // Name constraints put address/mask pairs here; not a host address.
  return "";
}

template <typename T>
SslPtr<T> ExtensionD2i(X509* x509, int nid) {
  int critical = 0;
  auto* value =
      static_cast<T*>(X509_get_ext_d2i(x509, nid, &critical, nullptr));
  internal::ClearSslErrors();
  return SslPtr<T>(value);
}

void AddUris(const GENERAL_NAMES* names, std::vector<std::string>* out) {
  if (names == nullptr) return;
  for (int i = 0; i < static_cast<int>(sk_GENERAL_NAME_num(names)); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name != nullptr && name->type == GEN_URI) {
      out->push_back(StringBytes(name->d.uniformResourceIdentifier));
    }
  }
}

void ParseSans(X509* x509, CertificateInfo* info) {
  auto names = ExtensionD2i<GENERAL_NAMES>(x509, NID_subject_alt_name);
  if (names == nullptr) return;
  for (int i = 0; i < static_cast<int>(sk_GENERAL_NAME_num(names.get())); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name == nullptr) continue;
    switch (name->type) {
      case GEN_DNS:
        info->sans.push_back({SanType::kDns, StringBytes(name->d.dNSName)});
        break;
      case GEN_IPADD: {
        std::string text = IpText(name->d.iPAddress);
        if (!text.empty()) info->sans.push_back({SanType::kIp, text});
        break;
      }
      case GEN_EMAIL:
        info->sans.push_back(
            {SanType::kEmail, StringBytes(name->d.rfc822Name)});
        break;
      case GEN_URI:
        info->sans.push_back(
            {SanType::kUri, StringBytes(name->d.uniformResourceIdentifier)});
        break;
      default:
        break;  // otherName, directoryName, ...: not shown.
    }
  }
}

void ParseBasicConstraints(X509* x509, CertificateInfo* info) {
  auto constraints =
      ExtensionD2i<BASIC_CONSTRAINTS>(x509, NID_basic_constraints);
  if (constraints == nullptr) return;
  info->has_basic_constraints = true;
  info->is_ca = constraints->ca != 0;
  if (constraints->pathlen != nullptr) {
    long length = ASN1_INTEGER_get(constraints->pathlen);
    info->path_length =
        length >= 0 && length <= 1 << 20 ? static_cast<int>(length) : -1;
    internal::ClearSslErrors();
  }
}

void ParseKeyUsage(X509* x509, CertificateInfo* info) {
  static constexpr const char* kNames[] = {
      "digitalSignature", "nonRepudiation", "keyEncipherment",
      "dataEncipherment", "keyAgreement",   "keyCertSign",
      "cRLSign",          "encipherOnly",   "decipherOnly"};
  auto usage = ExtensionD2i<ASN1_STRING>(x509, NID_key_usage);
  if (usage == nullptr) return;
  for (int bit = 0; bit < static_cast<int>(std::size(kNames)); ++bit) {
    if (ASN1_BIT_STRING_get_bit(usage.get(), bit)) {
      info->key_usage.push_back(kNames[bit]);
    }
  }
}

void ParseExtendedKeyUsage(X509* x509, CertificateInfo* info) {
  auto usage = ExtensionD2i<EXTENDED_KEY_USAGE>(x509, NID_ext_key_usage);
  if (usage == nullptr) return;
  for (int i = 0; i < static_cast<int>(sk_ASN1_OBJECT_num(usage.get())); ++i) {
    info->extended_key_usage.push_back(
        ObjectShortName(sk_ASN1_OBJECT_value(usage.get(), i)));
  }
}

void ParseKeyIds(X509* x509, CertificateInfo* info) {
  if (auto ski = ExtensionD2i<ASN1_STRING>(x509, NID_subject_key_identifier)) {
    info->subject_key_id_hex = HexEncode(StringBytes(ski.get()));
  }
  if (auto aki =
          ExtensionD2i<AUTHORITY_KEYID>(x509, NID_authority_key_identifier)) {
    info->authority_key_id_hex = HexEncode(StringBytes(aki->keyid));
  }
}

void ParseAuthorityInfoAccess(X509* x509, CertificateInfo* info) {
  auto access = ExtensionD2i<AUTHORITY_INFO_ACCESS>(x509, NID_info_access);
  if (access == nullptr) return;
  for (int i = 0; i < static_cast<int>(sk_ACCESS_DESCRIPTION_num(access.get()));
       ++i) {
    const ACCESS_DESCRIPTION* description =
        sk_ACCESS_DESCRIPTION_value(access.get(), i);
    if (description == nullptr || description->location == nullptr ||
        description->location->type != GEN_URI) {
      continue;
    }
    std::string url =
        StringBytes(description->location->d.uniformResourceIdentifier);
    switch (OBJ_obj2nid(description->method)) {
      case NID_ad_OCSP:
        info->ocsp_urls.push_back(std::move(url));
        break;
      case NID_ad_ca_issuers:
        info->ca_issuer_urls.push_back(std::move(url));
        break;
      default:
        break;
    }
  }
}

void ParseCrlDistributionPoints(X509* x509, CertificateInfo* info) {
  auto points =
      ExtensionD2i<CRL_DIST_POINTS>(x509, NID_crl_distribution_points);
  if (points == nullptr) return;
  for (int i = 0; i < static_cast<int>(sk_DIST_POINT_num(points.get())); ++i) {
    const DIST_POINT* point = sk_DIST_POINT_value(points.get(), i);
    // type 0 is fullName; 1 (nameRelativeToCRLIssuer) has no URL.
    if (point == nullptr || point->distpoint == nullptr ||
        point->distpoint->type != 0) {
      continue;
    }
    AddUris(point->distpoint->name.fullname, &info->crl_distribution_points);
  }
}

void ParsePolicies(X509* x509, CertificateInfo* info) {
  auto policies =
      ExtensionD2i<CERTIFICATEPOLICIES>(x509, NID_certificate_policies);
  if (policies == nullptr) return;
  for (int i = 0; i < static_cast<int>(sk_POLICYINFO_num(policies.get()));
       ++i) {
    const POLICYINFO* policy = sk_POLICYINFO_value(policies.get(), i);
    if (policy == nullptr) continue;
    CertificatePolicy out;
    out.oid = ObjectOid(policy->policyid);
    for (int j = 0;
         j < static_cast<int>(sk_POLICYQUALINFO_num(policy->qualifiers)); ++j) {
      const POLICYQUALINFO* qualifier =
          sk_POLICYQUALINFO_value(policy->qualifiers, j);
      if (qualifier != nullptr &&
          OBJ_obj2nid(qualifier->pqualid) == NID_id_qt_cps) {
        out.cps_uris.push_back(StringBytes(qualifier->d.cpsuri));
      }
    }
    info->policies.push_back(std::move(out));
  }
}

// Reads a DER length at data[*pos]; false when malformed or out of bounds.
bool ReadDerLength(absl::string_view data, size_t* pos, size_t* length) {
  if (*pos >= data.size()) return false;
  auto first = static_cast<uint8_t>(data[(*pos)++]);
  if (first < 0x80) {
    *length = first;
  } else {
    size_t octets = first & 0x7f;
    if (octets == 0 || octets > 4 || data.size() - *pos < octets) return false;
    *length = 0;
    for (size_t i = 0; i < octets; ++i) {
      *length = (*length << 8) | static_cast<uint8_t>(data[(*pos)++]);
    }
  }
  return *length <= data.size() - *pos;
}

uint16_t ReadU16(absl::string_view data, size_t pos) {
  return static_cast<uint16_t>((static_cast<uint8_t>(data[pos]) << 8) |
                               static_cast<uint8_t>(data[pos + 1]));
}

// Counts the SCTs in the extension value: an OCTET STRING holding the TLS
// SignedCertificateTimestampList (uint16 total length, then uint16-length
// prefixed entries). Malformed lists count as zero.
int CountScts(absl::string_view value) {
  size_t pos = 0;
  size_t length = 0;
  if (value.empty() || static_cast<uint8_t>(value[pos++]) != 0x04 ||
      !ReadDerLength(value, &pos, &length) || pos + length != value.size()) {
    return 0;
  }
  absl::string_view list = value.substr(pos, length);
  if (list.size() < 2 || ReadU16(list, 0) != list.size() - 2) return 0;
  int count = 0;
  for (size_t at = 2; at < list.size();) {
    if (list.size() - at < 2) return 0;
    size_t entry = ReadU16(list, at);
    at += 2;
    if (entry == 0 || list.size() - at < entry) return 0;
    at += entry;
    ++count;
  }
  return count;
}

absl::Status ParseScts(X509* x509, CertificateInfo* info) {
  SslPtr<ASN1_OBJECT> oid(OBJ_txt2obj(kSctListOid, /*dont_search_names=*/1));
  if (oid == nullptr) return SslInternal("OBJ_txt2obj");
  int index = X509_get_ext_by_OBJ(x509, oid.get(), -1);
  if (index < 0) return absl::OkStatus();
  X509_EXTENSION* extension = X509_get_ext(x509, index);
  if (extension == nullptr) return SslInternal("X509_get_ext");
  info->sct_count = CountScts(StringBytes(X509_EXTENSION_get_data(extension)));
  return absl::OkStatus();
}

std::string SignatureAlgorithm(const X509* x509) {
  const X509_ALGOR* algorithm = nullptr;
  X509_get0_signature(nullptr, &algorithm, x509);
  if (algorithm == nullptr) return "";
  const ASN1_OBJECT* object = nullptr;
  X509_ALGOR_get0(&object, nullptr, nullptr, algorithm);
  if (object == nullptr) return "";
  int nid = OBJ_obj2nid(object);
  if (nid != NID_undef) {
    if (const char* name = OBJ_nid2ln(nid); name != nullptr) return name;
  }
  return ObjectOid(object);
}

std::string Sha1Hex(absl::string_view data) {
  uint8_t digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const uint8_t*>(data.data()), data.size(), digest);
  return HexEncode(
      absl::string_view(reinterpret_cast<char*>(digest), sizeof(digest)));
}

// Escapes an attribute value as RFC 4514 asks.
std::string EscapeValue(absl::string_view value) {
  std::string out;
  for (size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    bool special = c == ',' || c == '+' || c == '"' || c == '\\' || c == '<' ||
                   c == '>' || c == ';' || c == '=' ||
                   (i == 0 && (c == '#' || c == ' ')) ||
                   (i + 1 == value.size() && c == ' ');
    if (c == '\0') {
      out += "\\00";
      continue;
    }
    if (special) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

}  // namespace

absl::string_view SanTypeName(SanType type) {
  switch (type) {
    case SanType::kDns:
      return "DNS";
    case SanType::kIp:
      return "IP";
    case SanType::kEmail:
      return "email";
    case SanType::kUri:
      return "URI";
  }
  return "unknown";
}

std::string DistinguishedName::ToString() const {
  std::vector<std::string> parts;
  parts.reserve(attributes.size());
  for (auto it = attributes.rbegin(); it != attributes.rend(); ++it) {
    parts.push_back(absl::StrCat(it->type, "=", EscapeValue(it->value)));
  }
  return absl::StrJoin(parts, ",");
}

std::string DistinguishedName::Get(absl::string_view type) const {
  for (const NameAttribute& attribute : attributes) {
    if (attribute.type == type) return attribute.value;
  }
  return "";
}

absl::StatusOr<CertificateInfo> Certificate::Parse(X509* x509,
                                                   absl::string_view der) {
  CertificateInfo info;
  // The raw field is 0 for v1 .. 2 for v3; both libraries refuse others.
  info.version = static_cast<int>(X509_get_version(x509)) + 1;
  info.serial_hex = SerialHex(X509_get0_serialNumber(x509));
  info.subject = ParseName(X509_get_subject_name(x509));
  info.issuer = ParseName(X509_get_issuer_name(x509));
  auto not_before = ParseTime(X509_get0_notBefore(x509), "notBefore");
  if (!not_before.ok()) return not_before.status();
  info.not_before = *not_before;
  auto not_after = ParseTime(X509_get0_notAfter(x509), "notAfter");
  if (!not_after.ok()) return not_after.status();
  info.not_after = *not_after;

  EvpPkeyHandle key(X509_get_pubkey(x509));
  if (key == nullptr) {
    return SslError(absl::StatusCode::kInvalidArgument,
                    "certificate public key is unreadable (X509_get_pubkey)");
  }
  PublicKey public_key = PublicKey::Adopt(std::move(key));
  info.key = public_key.info();
  // Hashes the certificate's own SubjectPublicKeyInfo bytes (what SPKI pins
  // hash) instead of re-encoding the key: i2d_PUBKEY goes through OpenSSL 3's
  // encoder lookup, which cost more than the rest of this function.
  uint8_t* spki = nullptr;
  const int spki_length = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x509), &spki);
  if (spki_length <= 0) {
    return SslError(absl::StatusCode::kInvalidArgument,
                    "certificate public key is unreadable (i2d_X509_PUBKEY)");
  }
  info.spki_sha256_hex = Sha256Hex(absl::string_view(
      reinterpret_cast<const char*>(spki), static_cast<size_t>(spki_length)));
  OPENSSL_free(spki);
  info.signature_algorithm = SignatureAlgorithm(x509);

  ParseSans(x509, &info);
  ParseBasicConstraints(x509, &info);
  ParseKeyUsage(x509, &info);
  ParseExtendedKeyUsage(x509, &info);
  ParseKeyIds(x509, &info);
  ParseAuthorityInfoAccess(x509, &info);
  ParseCrlDistributionPoints(x509, &info);
  ParsePolicies(x509, &info);
  if (absl::Status status = ParseScts(x509, &info); !status.ok()) {
    return status;
  }

  info.sha1_fingerprint_hex = Sha1Hex(der);
  info.sha256_fingerprint_hex = Sha256Hex(der);
  if (X509_NAME_cmp(X509_get_subject_name(x509), X509_get_issuer_name(x509)) ==
      0) {
    info.self_signed = X509_verify(x509, public_key.native()) == 1;
  }
  internal::ClearSslErrors();
  return info;
}

}  // namespace certplane::crypto
