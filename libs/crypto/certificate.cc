#include "libs/crypto/certificate.h"

#include <arpa/inet.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "libs/crypto/digest.h"
#include "libs/crypto/internal/der.h"
#include "libs/crypto/internal/ssl_util.h"

namespace certplane::crypto {

using internal::SslError;
using internal::SslInternal;
using internal::SslPtr;

namespace {

absl::Status RejectExplicitCurve(X509* x509) {
  X509_PUBKEY* spki = X509_get_X509_PUBKEY(x509);
  ASN1_OBJECT* algorithm_oid = nullptr;
  X509_ALGOR* algorithm = nullptr;
  if (spki == nullptr || !X509_PUBKEY_get0_param(&algorithm_oid, nullptr,
                                                 nullptr, &algorithm, spki)) {
    return SslError(absl::StatusCode::kInvalidArgument,
                    "certificate has no readable public key "
                    "(X509_PUBKEY_get0_param)");
  }
  if (OBJ_obj2nid(algorithm_oid) != NID_X9_62_id_ecPublicKey) {
    return absl::OkStatus();
  }
  int parameter_type = V_ASN1_UNDEF;
  const void* parameter = nullptr;
  X509_ALGOR_get0(nullptr, &parameter_type, &parameter, algorithm);
  if (parameter_type != V_ASN1_OBJECT) {
    return absl::InvalidArgumentError(
        "explicit EC curve parameters are not supported; use a named curve");
  }
  return absl::OkStatus();
}

// Lowercase, without one trailing dot.
std::string NormalizeDnsName(absl::string_view name) {
  if (absl::EndsWith(name, ".")) name.remove_suffix(1);
  return absl::AsciiStrToLower(name);
}

// The 4 or 16 bytes of an IP address in text form ("[::1]" accepted).
std::optional<std::string> IpAddressBytes(absl::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  std::string copy(text);
  unsigned char bytes[16];
  if (inet_pton(AF_INET, copy.c_str(), bytes) == 1) {
    return std::string(reinterpret_cast<char*>(bytes), 4);
  }
  if (inet_pton(AF_INET6, copy.c_str(), bytes) == 1) {
    return std::string(reinterpret_cast<char*>(bytes), 16);
  }
  return std::nullopt;
}

// A host name certplane would look up: non-empty labels, no wildcard.
bool IsPlausibleHost(absl::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  size_t label = 0;
  for (char c : host) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (c == '*' || c == ' ' || c == '\0' || c == '/') {
      return false;
    } else {
      ++label;
    }
  }
  return label > 0;
}

// `host` is normalized and plausible.
bool MatchesDnsPattern(absl::string_view raw_pattern, absl::string_view host) {
  std::string pattern = NormalizeDnsName(raw_pattern);
  if (pattern.empty()) return false;
  size_t star = pattern.find('*');
  if (star == std::string::npos) return pattern == host;
  // Only "*." as the whole left-most label, nothing else wild, and at least
  // two labels after it.
  if (star != 0 || pattern.size() < 2 || pattern[1] != '.') return false;
  absl::string_view rest = absl::string_view(pattern).substr(2);
  if (rest.find('*') != absl::string_view::npos ||
      rest.find('.') == absl::string_view::npos || rest.front() == '.') {
    return false;
  }
  size_t dot = host.find('.');
  if (dot == absl::string_view::npos || dot == 0) return false;
  return host.substr(dot + 1) == rest;
}

}  // namespace

namespace {

// CA certificates parsed before, by their DER. The same few issuers come
// back in every chain, and each parse costs OpenSSL 3.0 a key decode (about
// a million instructions); a Certificate never changes once made, so one
// can be handed out again. Bounded: when full, it starts over.
class CaParseCache {
 public:
  std::optional<Certificate> Find(absl::string_view der) {
    absl::MutexLock lock(&mu_);
    auto it = by_der_.find(der);
    if (it == by_der_.end()) return std::nullopt;
    return it->second;
  }

  void Put(const Certificate& cert) {
    if (!cert.info().is_ca) return;
    absl::MutexLock lock(&mu_);
    if (by_der_.size() >= kCapacity) by_der_.clear();
    by_der_.emplace(cert.der(), cert);
  }

 private:
  static constexpr size_t kCapacity = 256;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Certificate> by_der_ ABSL_GUARDED_BY(mu_);
};

CaParseCache& CaCache() {
  static auto* cache = new CaParseCache;
  return *cache;
}

absl::StatusOr<Certificate> Remembered(absl::StatusOr<Certificate> cert) {
  if (cert.ok()) CaCache().Put(*cert);
  return cert;
}

}  // namespace

absl::StatusOr<Certificate> Certificate::FromDer(absl::string_view der) {
  if (der.empty()) return absl::InvalidArgumentError("empty certificate");
  if (std::optional<Certificate> known = CaCache().Find(der)) {
    return *std::move(known);
  }
  // Refuse explicit EC parameters before d2i_X509 decodes the curve.
  if (auto status = internal::CheckCertificateDerKey(der); !status.ok()) {
    return internal::WithMalformedContext(
        status, "not a DER X.509 certificate (d2i_X509)");
  }
  const auto* p = reinterpret_cast<const uint8_t*>(der.data());
  X509Handle x509(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (x509 == nullptr) {
    return SslError(absl::StatusCode::kInvalidArgument,
                    "not a DER X.509 certificate (d2i_X509)");
  }
  if (p != reinterpret_cast<const uint8_t*>(der.data()) + der.size()) {
    return absl::InvalidArgumentError(
        "trailing bytes after DER X.509 certificate");
  }
  return Remembered(Adopt(std::move(x509)));
}

absl::StatusOr<Certificate> Certificate::FromPem(absl::string_view pem) {
  if (pem.size() > static_cast<size_t>(INT_MAX)) {
    return internal::InputTooLargeOr(pem, "PEM");
  }
  // As PEM_read_bio_X509, but the key is checked before anything decodes it.
  std::optional<std::string> der =
      internal::FirstPemBlock(pem, {"CERTIFICATE", "X509 CERTIFICATE"});
  if (!der.has_value()) {
    return absl::InvalidArgumentError(
        "no valid PEM \"CERTIFICATE\" block (PEM_read_bio_X509)");
  }
  if (std::optional<Certificate> known = CaCache().Find(*der)) {
    return *std::move(known);
  }
  if (auto status = internal::CheckCertificateDerKey(*der); !status.ok()) {
    return internal::WithMalformedContext(
        status, "no valid PEM \"CERTIFICATE\" block (PEM_read_bio_X509)");
  }
  const auto* p = reinterpret_cast<const uint8_t*>(der->data());
  X509Handle x509(d2i_X509(nullptr, &p, static_cast<long>(der->size())));
  if (x509 == nullptr) {
    return SslError(absl::StatusCode::kInvalidArgument,
                    "no valid PEM \"CERTIFICATE\" block (PEM_read_bio_X509)");
  }
  if (p != reinterpret_cast<const uint8_t*>(der->data()) + der->size()) {
    // Parsed, but not all of the block: fine to return, not to remember.
    return Adopt(std::move(x509));
  }
  return Remembered(Adopt(std::move(x509)));
}

absl::StatusOr<Certificate> Certificate::Adopt(X509Handle x509) {
  if (x509 == nullptr) return absl::InternalError("null certificate");
  uint8_t* der = nullptr;
  int length = i2d_X509(x509.get(), &der);
  if (length <= 0) return SslInternal("i2d_X509");
  std::string encoded(reinterpret_cast<char*>(der),
                      static_cast<size_t>(length));
  OPENSSL_free(der);
  // Explicit EC parameters are refused before the key is decoded, so hostile
  // parameters (CVE-2022-0778) never reach the library's curve code.
  if (absl::Status status = RejectExplicitCurve(x509.get()); !status.ok()) {
    return status;
  }
  // Parse checks that the public key is usable for anything certplane does
  // with it.
  auto info = Parse(x509.get(), encoded);
  if (!info.ok()) return info.status();
  return Certificate(std::move(x509), std::move(encoded),
                     std::make_shared<const CertificateInfo>(*std::move(info)));
}

absl::StatusOr<CertificateInfo> Certificate::Describe() const {
  if (info_ == nullptr) {
    return absl::FailedPreconditionError("certificate was moved from");
  }
  return *info_;
}

Certificate::Certificate(const Certificate& other)
    : der_(other.der_), info_(other.info_) {
  // A moved-from certificate holds nothing; its copy holds nothing either.
  if (other.x509_ != nullptr) X509_up_ref(other.x509_.get());
  x509_.reset(other.x509_.get());
}

Certificate& Certificate::operator=(const Certificate& other) {
  if (this != &other) {
    if (other.x509_ != nullptr) X509_up_ref(other.x509_.get());
    x509_.reset(other.x509_.get());
    der_ = other.der_;
    info_ = other.info_;
  }
  return *this;
}

std::string Certificate::ToPem() const {
  // The bytes as parsed, never a re-encoding (see CertificateRequest::ToPem).
  return internal::PemEncode("CERTIFICATE", der_);
}

PublicKey Certificate::public_key() const {
  return PublicKey::Adopt(EvpPkeyHandle(X509_get_pubkey(x509_.get())));
}

std::string CertificateDerToPem(absl::string_view der) {
  return internal::PemEncode("CERTIFICATE", der);
}

std::string Sha256Hex(absl::string_view data) {
  return HexEncode(Sha256(data));
}

std::string Certificate::Sha256Fingerprint() const { return Sha256(der_); }

absl::Status Certificate::CheckKeyMatches(const PrivateKey& key) const {
  if (public_key() == key.public_key()) return absl::OkStatus();
  return absl::InvalidArgumentError("private key does not match certificate");
}

bool Certificate::MatchesHostname(absl::string_view host) const {
  if (info_ == nullptr || host.empty()) return false;
  const CertificateInfo& info = *info_;
  if (std::optional<std::string> ip = IpAddressBytes(host)) {
    for (const SubjectAltName& san : info.sans) {
      if (san.type == SanType::kIp && IpAddressBytes(san.value) == ip) {
        return true;
      }
    }
    return false;
  }
  std::string name = NormalizeDnsName(host);
  // "192.0.2.1." is neither a usable IP address nor a DNS name.
  if (!IsPlausibleHost(name) || IpAddressBytes(name).has_value()) return false;
  // A SAN extension that is present but unreadable still rules out the CN.
  bool has_san_extension =
      X509_get_ext_by_NID(x509_.get(), NID_subject_alt_name, -1) >= 0;
  if (!info.sans.empty() || has_san_extension) {
    for (const SubjectAltName& san : info.sans) {
      if (san.type == SanType::kDns && MatchesDnsPattern(san.value, name)) {
        return true;
      }
    }
    return false;
  }
  // No SANs at all: the most specific (last) CN, as RFC 6125 allows.
  std::string common_name;
  for (const NameAttribute& attribute : info.subject.attributes) {
    if (attribute.type == "CN") common_name = attribute.value;
  }
  return !common_name.empty() && !IpAddressBytes(common_name).has_value() &&
         MatchesDnsPattern(common_name, name);
}

bool Certificate::IsIssuedBy(const Certificate& issuer) const {
  if (X509_NAME_cmp(X509_get_issuer_name(x509_.get()),
                    X509_get_subject_name(issuer.x509_.get())) != 0) {
    return false;
  }
  EvpPkeyHandle key(X509_get_pubkey(issuer.x509_.get()));
  bool ok = key != nullptr && X509_verify(x509_.get(), key.get()) == 1;
  internal::ClearSslErrors();
  return ok;
}

}  // namespace certplane::crypto
