#include "libs/crypto/issue.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <iterator>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/crypto/internal/der.h"
#include "libs/crypto/internal/ssl_util.h"

namespace certplane::crypto {
namespace {

using internal::SslError;
using internal::SslInternal;
using internal::SslPtr;

// Certificates bigger than this are refused while assembling (a sanity bound
// for the DER writer; real certificates are a few KB).
constexpr size_t kMaxCertificateBytes = 1 << 20;

struct NamedBit {
  absl::string_view name;
  int bit;
};
constexpr NamedBit kKeyUsageBits[] = {
    {"digitalSignature", 0}, {"nonRepudiation", 1},   {"contentCommitment", 1},
    {"keyEncipherment", 2},  {"dataEncipherment", 3}, {"keyAgreement", 4},
    {"keyCertSign", 5},      {"cRLSign", 6},          {"encipherOnly", 7},
    {"decipherOnly", 8},
};

struct NamedNid {
  absl::string_view name;
  int nid;
};
constexpr NamedNid kExtendedKeyUsages[] = {
    {"serverAuth", NID_server_auth},  {"clientAuth", NID_client_auth},
    {"codeSigning", NID_code_sign},   {"emailProtection", NID_email_protect},
    {"timeStamping", NID_time_stamp}, {"OCSPSigning", NID_OCSP_sign},
};

// How a key signs certificates.
struct SigningAlgorithm {
  int nid;                   // Signature algorithm OID.
  bool null_parameters;      // RSA PKCS#1 v1.5 has NULL parameters.
  absl::string_view digest;  // For Signer::Sign.
};

absl::StatusOr<SigningAlgorithm> SigningAlgorithmFor(const PublicKey& key) {
  KeyInfo info = key.info();
  switch (info.algorithm) {
    case KeyAlgorithm::kRsa:
      return SigningAlgorithm{NID_sha256WithRSAEncryption, true, "sha256"};
    case KeyAlgorithm::kEcdsa:
      if (info.curve == "P-256") {
        return SigningAlgorithm{NID_ecdsa_with_SHA256, false, "sha256"};
      }
      if (info.curve == "P-384") {
        return SigningAlgorithm{NID_ecdsa_with_SHA384, false, "sha384"};
      }
      if (info.curve == "P-521") {
        return SigningAlgorithm{NID_ecdsa_with_SHA512, false, "sha512"};
      }
      return absl::InvalidArgumentError(
          absl::StrCat("cannot sign certificates with an ECDSA key on curve ",
                       info.curve, "; use P-256, P-384 or P-521"));
    case KeyAlgorithm::kEd25519:
      return SigningAlgorithm{NID_ED25519, false, "sha256"};
    case KeyAlgorithm::kUnknown:
      break;
  }
  return absl::InvalidArgumentError(
      "cannot sign certificates with this key type; use RSA, ECDSA or "
      "Ed25519");
}

// The AlgorithmIdentifier of `algorithm`.
absl::StatusOr<SslPtr<X509_ALGOR>> NewAlgorithm(
    const SigningAlgorithm& algorithm) {
  SslPtr<X509_ALGOR> algor(X509_ALGOR_new());
  if (algor == nullptr) return SslInternal("X509_ALGOR_new");
  if (!X509_ALGOR_set0(algor.get(), OBJ_nid2obj(algorithm.nid),
                       algorithm.null_parameters ? V_ASN1_NULL : V_ASN1_UNDEF,
                       nullptr)) {
    return SslInternal("X509_ALGOR_set0");
  }
  return algor;
}

absl::StatusOr<const EVP_MD*> DigestByName(absl::string_view name) {
  std::string lower = absl::AsciiStrToLower(name);
  if (lower == "sha256") return EVP_sha256();
  if (lower == "sha384") return EVP_sha384();
  if (lower == "sha512") return EVP_sha512();
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown digest \"", name, "\"; expected sha256, sha384 or sha512"));
}

// Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm,
//                            signatureValue BIT STRING }
std::string AssembleCertificate(absl::string_view tbs,
                                absl::string_view algorithm,
                                absl::string_view signature) {
  std::string bit_string(1, '\0');  // No unused bits.
  bit_string.append(signature.data(), signature.size());
  std::string body(tbs);
  body.append(algorithm.data(), algorithm.size());
  internal::AppendDerTlv(&body, 0x03, bit_string);
  std::string out;
  internal::AppendDerTlv(&out, 0x30, body);
  return out;
}

template <typename Fn>
absl::StatusOr<std::string> I2d(Fn fn, absl::string_view what) {
  uint8_t* der = nullptr;
  int length = fn(&der);
  if (length <= 0) return SslInternal(what);
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(length));
  OPENSSL_free(der);
  return out;
}

absl::Status CheckUri(absl::string_view what, absl::string_view uri) {
  absl::Status status = ValidateSan({SanType::kUri, std::string(uri)});
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("profile ", what, " \"", uri,
                     "\" is not a valid URI: ", status.message()));
  }
  return absl::OkStatus();
}

absl::Status ValidateProfile(const CertificateProfile& profile) {
  if (profile.not_after <= profile.not_before) {
    return absl::InvalidArgumentError(
        absl::StrCat("profile not_after (", absl::FormatTime(profile.not_after),
                     ") must be after not_before (",
                     absl::FormatTime(profile.not_before), ")"));
  }
  if (profile.path_length < -1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "profile path_length ", profile.path_length, " is negative"));
  }
  if (!profile.is_ca && profile.path_length >= 0) {
    return absl::InvalidArgumentError(
        "profile path_length is set but is_ca is false");
  }
  for (const std::string& name : profile.key_usage) {
    bool known = false;
    for (const auto& entry : kKeyUsageBits) known |= entry.name == name;
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown key usage \"", name,
          "\"; expected digitalSignature, nonRepudiation, keyEncipherment, "
          "dataEncipherment, keyAgreement, keyCertSign, cRLSign, "
          "encipherOnly or decipherOnly"));
    }
    if (name == "keyCertSign" && !profile.is_ca) {
      return absl::InvalidArgumentError(
          "key usage keyCertSign requires is_ca (RFC 5280 4.2.1.3)");
    }
  }
  for (const std::string& name : profile.extended_key_usage) {
    bool known = false;
    for (const auto& entry : kExtendedKeyUsages) known |= entry.name == name;
    if (!known && !name.empty() && absl::ascii_isdigit(name[0])) {
      SslPtr<ASN1_OBJECT> obj(OBJ_txt2obj(name.c_str(), 1));
      internal::ClearSslErrors();
      known = obj != nullptr;
    }
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown extended key usage \"", name,
          "\"; expected serverAuth, clientAuth, codeSigning, "
          "emailProtection, timeStamping, OCSPSigning or a dotted OID"));
    }
  }
  for (const auto& uri : profile.crl_distribution_points) {
    if (auto s = CheckUri("CRL distribution point", uri); !s.ok()) return s;
  }
  for (const auto& uri : profile.ocsp_urls) {
    if (auto s = CheckUri("OCSP URL", uri); !s.ok()) return s;
  }
  for (const auto& uri : profile.ca_issuer_urls) {
    if (auto s = CheckUri("CA issuers URL", uri); !s.ok()) return s;
  }
  for (const auto& policy : profile.policies) {
    SslPtr<ASN1_OBJECT> obj(OBJ_txt2obj(policy.oid.c_str(), 1));
    internal::ClearSslErrors();
    if (obj == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "certificate policy \"", policy.oid, "\" is not a dotted OID"));
    }
    for (const auto& uri : policy.cps_uris) {
      if (auto s = CheckUri("CPS URI", uri); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateIssuer(const Certificate& issuer,
                            const CertificateProfile& profile,
                            const PublicKey& signer_key) {
  X509* x509 = issuer.native();
  uint32_t flags = X509_get_extension_flags(x509);
  if ((flags & EXFLAG_CA) == 0) {
    return absl::InvalidArgumentError(
        "issuer certificate is not a CA (basicConstraints cA is not true)");
  }
  if ((X509_get_key_usage(x509) & KU_KEY_CERT_SIGN) == 0) {
    return absl::InvalidArgumentError(
        "issuer certificate's key usage does not allow keyCertSign");
  }
  if (profile.is_ca && X509_get_pathlen(x509) == 0) {
    return absl::InvalidArgumentError(
        "issuer's pathLenConstraint of 0 forbids issuing a CA certificate");
  }
  if (!(issuer.public_key() == signer_key)) {
    return absl::InvalidArgumentError(
        "signer's public key does not match the issuer certificate's key");
  }
  return absl::OkStatus();
}

absl::StatusOr<SslPtr<GENERAL_NAME>> UriName(absl::string_view uri) {
  SslPtr<ASN1_STRING> ia5(ASN1_IA5STRING_new());
  if (ia5 == nullptr) return SslInternal("ASN1_IA5STRING_new");
  if (!ASN1_STRING_set(ia5.get(), uri.data(), static_cast<int>(uri.size()))) {
    return SslInternal("ASN1_STRING_set");
  }
  SslPtr<GENERAL_NAME> name(GENERAL_NAME_new());
  if (name == nullptr) return SslInternal("GENERAL_NAME_new");
  GENERAL_NAME_set0_value(name.get(), GEN_URI, ia5.release());
  return name;
}

absl::Status AddExtension(X509* x509, int nid, void* value, bool critical,
                          absl::string_view what) {
  if (X509_add1_ext_i2d(x509, nid, value, critical ? 1 : 0,
                        X509V3_ADD_DEFAULT) != 1) {
    return SslInternal(absl::StrCat("X509_add1_ext_i2d (", what, ")"));
  }
  return absl::OkStatus();
}

absl::Status AddBasicConstraints(X509* x509, const CertificateProfile& p) {
  SslPtr<BASIC_CONSTRAINTS> bc(BASIC_CONSTRAINTS_new());
  if (bc == nullptr) return SslInternal("BASIC_CONSTRAINTS_new");
  bc->ca = p.is_ca ? 0xff : 0;
  if (p.is_ca && p.path_length >= 0) {
    bc->pathlen = ASN1_INTEGER_new();
    if (bc->pathlen == nullptr) return SslInternal("ASN1_INTEGER_new");
    if (!ASN1_INTEGER_set(bc->pathlen, p.path_length)) {
      return SslInternal("ASN1_INTEGER_set");
    }
  }
  return AddExtension(x509, NID_basic_constraints, bc.get(), true,
                      "basicConstraints");
}

absl::Status AddKeyUsage(X509* x509, const CertificateProfile& p) {
  if (p.key_usage.empty()) return absl::OkStatus();
  SslPtr<ASN1_STRING> bits(ASN1_BIT_STRING_new());
  if (bits == nullptr) return SslInternal("ASN1_BIT_STRING_new");
  for (const std::string& name : p.key_usage) {
    for (const auto& entry : kKeyUsageBits) {
      if (entry.name == name &&
          !ASN1_BIT_STRING_set_bit(bits.get(), entry.bit, 1)) {
        return SslInternal("ASN1_BIT_STRING_set_bit");
      }
    }
  }
  return AddExtension(x509, NID_key_usage, bits.get(), true, "keyUsage");
}

absl::Status AddExtendedKeyUsage(X509* x509, const CertificateProfile& p) {
  if (p.extended_key_usage.empty()) return absl::OkStatus();
  SslPtr<EXTENDED_KEY_USAGE> eku(sk_ASN1_OBJECT_new_null());
  if (eku == nullptr) return SslInternal("sk_ASN1_OBJECT_new_null");
  for (const std::string& name : p.extended_key_usage) {
    SslPtr<ASN1_OBJECT> obj;
    for (const auto& entry : kExtendedKeyUsages) {
      if (entry.name == name) obj.reset(OBJ_nid2obj(entry.nid));
    }
    if (obj == nullptr) obj.reset(OBJ_txt2obj(name.c_str(), 1));
    if (obj == nullptr) return SslInternal("OBJ_txt2obj (extended key usage)");
    if (!sk_ASN1_OBJECT_push(eku.get(), obj.get())) {
      return SslInternal("sk_ASN1_OBJECT_push");
    }
    obj.release();
  }
  return AddExtension(x509, NID_ext_key_usage, eku.get(), false, "extKeyUsage");
}

absl::StatusOr<SslPtr<ASN1_STRING>> KeyIdOf(X509* x509) {
  uint8_t digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (!X509_pubkey_digest(x509, EVP_sha1(), digest, &length)) {
    return SslInternal("X509_pubkey_digest");
  }
  SslPtr<ASN1_STRING> id(ASN1_OCTET_STRING_new());
  if (id == nullptr) return SslInternal("ASN1_OCTET_STRING_new");
  if (!ASN1_OCTET_STRING_set(id.get(), digest, static_cast<int>(length))) {
    return SslInternal("ASN1_OCTET_STRING_set");
  }
  return id;
}

absl::Status AddKeyIdentifiers(X509* x509, const Certificate* issuer) {
  auto ski = KeyIdOf(x509);
  if (!ski.ok()) return ski.status();
  if (auto s = AddExtension(x509, NID_subject_key_identifier, ski->get(), false,
                            "subjectKeyIdentifier");
      !s.ok()) {
    return s;
  }
  SslPtr<AUTHORITY_KEYID> aki(AUTHORITY_KEYID_new());
  if (aki == nullptr) return SslInternal("AUTHORITY_KEYID_new");
  if (issuer == nullptr) {
    aki->keyid = ski->release();
  } else {
    const ASN1_OCTET_STRING* issuer_ski =
        X509_get0_subject_key_id(issuer->native());
    if (issuer_ski != nullptr) {
      aki->keyid = ASN1_OCTET_STRING_dup(issuer_ski);
      if (aki->keyid == nullptr) return SslInternal("ASN1_OCTET_STRING_dup");
    } else {
      // An issuer without SKI: use its key's method-1 identifier.
      auto issuer_id = KeyIdOf(issuer->native());
      if (!issuer_id.ok()) return issuer_id.status();
      aki->keyid = issuer_id->release();
    }
  }
  return AddExtension(x509, NID_authority_key_identifier, aki.get(), false,
                      "authorityKeyIdentifier");
}

absl::Status AddSubjectAltNames(X509* x509, const IssueRequest& request) {
  if (request.sans.empty()) return absl::OkStatus();
  auto der = internal::EncodeSubjectAltNames(request.sans);
  if (!der.ok()) return der.status();
  const auto* p = reinterpret_cast<const uint8_t*>(der->data());
  SslPtr<GENERAL_NAMES> names(
      d2i_GENERAL_NAMES(nullptr, &p, static_cast<long>(der->size())));
  if (names == nullptr) return SslInternal("d2i_GENERAL_NAMES");
  // RFC 5280 4.2.1.6: critical when the subject is empty.
  return AddExtension(x509, NID_subject_alt_name, names.get(),
                      request.subject.attributes.empty(), "subjectAltName");
}

absl::Status AddCrlDistributionPoints(X509* x509, const CertificateProfile& p) {
  if (p.crl_distribution_points.empty()) return absl::OkStatus();
  SslPtr<CRL_DIST_POINTS> points(sk_DIST_POINT_new_null());
  if (points == nullptr) return SslInternal("sk_DIST_POINT_new_null");
  for (const std::string& uri : p.crl_distribution_points) {
    SslPtr<DIST_POINT> point(DIST_POINT_new());
    if (point == nullptr) return SslInternal("DIST_POINT_new");
    point->distpoint = DIST_POINT_NAME_new();
    if (point->distpoint == nullptr) return SslInternal("DIST_POINT_NAME_new");
    point->distpoint->type = 0;  // fullName
    point->distpoint->name.fullname = GENERAL_NAMES_new();
    if (point->distpoint->name.fullname == nullptr) {
      return SslInternal("GENERAL_NAMES_new");
    }
    auto name = UriName(uri);
    if (!name.ok()) return name.status();
    if (!sk_GENERAL_NAME_push(point->distpoint->name.fullname, name->get())) {
      return SslInternal("sk_GENERAL_NAME_push");
    }
    name->release();
    if (!sk_DIST_POINT_push(points.get(), point.get())) {
      return SslInternal("sk_DIST_POINT_push");
    }
    point.release();
  }
  return AddExtension(x509, NID_crl_distribution_points, points.get(), false,
                      "cRLDistributionPoints");
}

absl::Status AddAuthorityInfoAccess(X509* x509, const CertificateProfile& p) {
  if (p.ocsp_urls.empty() && p.ca_issuer_urls.empty()) {
    return absl::OkStatus();
  }
  SslPtr<AUTHORITY_INFO_ACCESS> aia(sk_ACCESS_DESCRIPTION_new_null());
  if (aia == nullptr) return SslInternal("sk_ACCESS_DESCRIPTION_new_null");
  auto add = [&](int method, const std::string& uri) -> absl::Status {
    SslPtr<ACCESS_DESCRIPTION> ad(ACCESS_DESCRIPTION_new());
    if (ad == nullptr) return SslInternal("ACCESS_DESCRIPTION_new");
    auto name = UriName(uri);
    if (!name.ok()) return name.status();
    ASN1_OBJECT_free(ad->method);
    ad->method = OBJ_nid2obj(method);
    GENERAL_NAME_free(ad->location);
    ad->location = name->release();
    if (!sk_ACCESS_DESCRIPTION_push(aia.get(), ad.get())) {
      return SslInternal("sk_ACCESS_DESCRIPTION_push");
    }
    ad.release();
    return absl::OkStatus();
  };
  for (const auto& uri : p.ocsp_urls) {
    if (auto s = add(NID_ad_OCSP, uri); !s.ok()) return s;
  }
  for (const auto& uri : p.ca_issuer_urls) {
    if (auto s = add(NID_ad_ca_issuers, uri); !s.ok()) return s;
  }
  return AddExtension(x509, NID_info_access, aia.get(), false,
                      "authorityInfoAccess");
}

absl::Status AddPolicies(X509* x509, const CertificateProfile& p) {
  if (p.policies.empty()) return absl::OkStatus();
  SslPtr<CERTIFICATEPOLICIES> policies(sk_POLICYINFO_new_null());
  if (policies == nullptr) return SslInternal("sk_POLICYINFO_new_null");
  for (const CertificatePolicy& policy : p.policies) {
    SslPtr<POLICYINFO> info(POLICYINFO_new());
    if (info == nullptr) return SslInternal("POLICYINFO_new");
    ASN1_OBJECT_free(info->policyid);
    info->policyid = OBJ_txt2obj(policy.oid.c_str(), 1);
    if (info->policyid == nullptr) return SslInternal("OBJ_txt2obj (policy)");
    if (!policy.cps_uris.empty()) {
      info->qualifiers = sk_POLICYQUALINFO_new_null();
      if (info->qualifiers == nullptr) {
        return SslInternal("sk_POLICYQUALINFO_new_null");
      }
    }
    for (const std::string& uri : policy.cps_uris) {
      SslPtr<POLICYQUALINFO> qualifier(POLICYQUALINFO_new());
      if (qualifier == nullptr) return SslInternal("POLICYQUALINFO_new");
      ASN1_OBJECT_free(qualifier->pqualid);
      qualifier->pqualid = OBJ_nid2obj(NID_id_qt_cps);
      qualifier->d.cpsuri = ASN1_IA5STRING_new();
      if (qualifier->d.cpsuri == nullptr) {
        return SslInternal("ASN1_IA5STRING_new");
      }
      if (!ASN1_STRING_set(qualifier->d.cpsuri, uri.data(),
                           static_cast<int>(uri.size()))) {
        return SslInternal("ASN1_STRING_set");
      }
      if (!sk_POLICYQUALINFO_push(info->qualifiers, qualifier.get())) {
        return SslInternal("sk_POLICYQUALINFO_push");
      }
      qualifier.release();
    }
    if (!sk_POLICYINFO_push(policies.get(), info.get())) {
      return SslInternal("sk_POLICYINFO_push");
    }
    info.release();
  }
  return AddExtension(x509, NID_certificate_policies, policies.get(), false,
                      "certificatePolicies");
}

// A positive INTEGER with 128 random bits (17 DER content octets when the
// top bit is set, which keeps it positive; RFC 5280 allows up to 20).
absl::Status SetRandomSerial(X509* x509) {
  uint8_t bytes[16];
  SslPtr<BIGNUM> bn;
  do {
    if (RAND_bytes(bytes, sizeof(bytes)) != 1) return SslInternal("RAND_bytes");
    bn.reset(BN_bin2bn(bytes, sizeof(bytes), nullptr));
    if (bn == nullptr) return SslInternal("BN_bin2bn");
  } while (BN_is_zero(bn.get()));
  SslPtr<ASN1_STRING> serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (serial == nullptr) return SslInternal("BN_to_ASN1_INTEGER");
  if (!X509_set_serialNumber(x509, serial.get())) {
    return SslInternal("X509_set_serialNumber");
  }
  return absl::OkStatus();
}

absl::Status SetTime(ASN1_TIME* field, absl::Time time,
                     absl::string_view what) {
  if (ASN1_TIME_set(field, absl::ToTimeT(time)) == nullptr) {
    return SslError(absl::StatusCode::kInvalidArgument,
                    absl::StrCat(what, " ", absl::FormatTime(time),
                                 " cannot be encoded (ASN1_TIME_set)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<SslPtr<X509_NAME>> NameFromDn(const DistinguishedName& dn) {
  auto der = internal::EncodeDistinguishedName(dn);
  if (!der.ok()) return der.status();
  const auto* p = reinterpret_cast<const uint8_t*>(der->data());
  SslPtr<X509_NAME> name(
      d2i_X509_NAME(nullptr, &p, static_cast<long>(der->size())));
  if (name == nullptr) return SslInternal("d2i_X509_NAME");
  return name;
}

// Sets the TBSCertificate's signature AlgorithmIdentifier (and, where the
// library does it in one step, the outer one too).
// The certificate `der` (tbs || algorithm || signature) as a Certificate.
// On OpenSSL 3 the signature goes into the X509 that was built, since
// parsing `der` again would run the 3.0 key decoder (about a million
// instructions); the result must encode to exactly `der`, or it is parsed
// after all.
absl::StatusOr<Certificate> AdoptSigned(SslPtr<X509> x509,
                                        const SslPtr<X509_ALGOR>& algorithm,
                                        absl::string_view signature,
                                        absl::string_view der) {
#if !defined(CERTPLANE_BORINGSSL)
  const ASN1_BIT_STRING* stored_signature = nullptr;
  const X509_ALGOR* outer_algorithm = nullptr;
  X509_get0_signature(&stored_signature, &outer_algorithm, x509.get());
  // Both fields live inside the (non-const) X509 owned here.
  auto* bits = const_cast<ASN1_BIT_STRING*>(stored_signature);
  if (bits != nullptr && outer_algorithm != nullptr &&
      X509_ALGOR_copy(const_cast<X509_ALGOR*>(outer_algorithm),
                      algorithm.get()) &&
      ASN1_BIT_STRING_set(
          bits,
          reinterpret_cast<unsigned char*>(const_cast<char*>(signature.data())),
          static_cast<int>(signature.size()))) {
    // No unused bits in the last octet.
    bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
    bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    uint8_t* encoded = nullptr;
    const int length = i2d_X509(x509.get(), &encoded);
    const bool same =
        length > 0 && absl::string_view(reinterpret_cast<char*>(encoded),
                                        static_cast<size_t>(length)) == der;
    OPENSSL_free(encoded);
    if (same) return Certificate::Adopt(X509Handle(x509.release()));
  }
  internal::ClearSslErrors();
#else
  (void)x509;
  (void)algorithm;
  (void)signature;
#endif
  return Certificate::FromDer(der);
}

absl::Status SetSignatureAlgorithm(X509* x509, const X509_ALGOR* algorithm) {
#if defined(CERTPLANE_BORINGSSL)
  if (!X509_set1_signature_algo(x509, algorithm)) {
    return SslInternal("X509_set1_signature_algo");
  }
#else
  // OpenSSL 3 has no setter short of signing with a local private key. The
  // field lives inside the (non-const) X509 this function was given, so
  // writing through the const accessor is sound; i2d_re_X509_tbs re-encodes
  // it afterwards.
  auto* tbs_algorithm = const_cast<X509_ALGOR*>(X509_get0_tbs_sigalg(x509));
  if (tbs_algorithm == nullptr) return SslInternal("X509_get0_tbs_sigalg");
  if (!X509_ALGOR_copy(tbs_algorithm, algorithm)) {
    return SslInternal("X509_ALGOR_copy");
  }
#endif
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> PrivateKeySigner::Sign(
    absl::string_view data, absl::string_view digest) const {
  EVP_PKEY* pkey = key_->native();
  const EVP_MD* md = nullptr;
  if (EVP_PKEY_id(pkey) != EVP_PKEY_ED25519) {
    auto found = DigestByName(digest);
    if (!found.ok()) return found.status();
    md = *found;
  }
  SslPtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  if (ctx == nullptr) return SslInternal("EVP_MD_CTX_new");
  if (EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, pkey) != 1) {
    return SslInternal("EVP_DigestSignInit");
  }
  const auto* in = reinterpret_cast<const uint8_t*>(data.data());
  size_t length = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &length, in, data.size()) != 1) {
    return SslInternal("EVP_DigestSign (size)");
  }
  std::string signature(length, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<uint8_t*>(signature.data()),
                     &length, in, data.size()) != 1) {
    return SslInternal("EVP_DigestSign");
  }
  signature.resize(length);
  return signature;
}

absl::StatusOr<IssueRequest> IssueRequestFromCsr(
    const CertificateRequest& csr) {
  if (auto s = csr.VerifySignature(); !s.ok()) return s;
  if (auto s = CheckSingleCommonName(csr.subject()); !s.ok()) return s;
  if (auto s = CheckRsaPublicExponent(csr.public_key()); !s.ok()) return s;
  return IssueRequest{csr.subject(), csr.public_key(), csr.sans()};
}

absl::StatusOr<std::string> SignatureAlgorithmFor(const PublicKey& key) {
  auto algorithm = SigningAlgorithmFor(key);
  if (!algorithm.ok()) return algorithm.status();
  return std::string(OBJ_nid2ln(algorithm->nid));
}

absl::StatusOr<Certificate> IssueCertificate(const IssueRequest& request,
                                             const CertificateProfile& profile,
                                             const Certificate* issuer,
                                             const Signer& signer) {
  if (auto s = ValidateProfile(profile); !s.ok()) return s;
  if (request.subject.attributes.empty() && request.sans.empty()) {
    return absl::InvalidArgumentError(
        "certificate request has neither a subject nor any SAN");
  }
  if (auto s = CheckSingleCommonName(request.subject); !s.ok()) return s;
  if (auto s = CheckRsaPublicExponent(request.public_key); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("request public key: ", s.message()));
  }
  PublicKey signer_key = signer.public_key();
  if (signer_key.native() == nullptr) {
    return absl::InvalidArgumentError("signer has no public key");
  }
  if (auto s = CheckRsaPublicExponent(signer_key); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("signer key: ", s.message()));
  }
  if (issuer == nullptr) {
    if (!(signer_key == request.public_key)) {
      return absl::InvalidArgumentError(
          "self-signed certificate: the signer's key does not match the "
          "request's public key");
    }
  } else if (auto s = ValidateIssuer(*issuer, profile, signer_key); !s.ok()) {
    return s;
  }
  auto algorithm = SigningAlgorithmFor(signer_key);
  if (!algorithm.ok()) return algorithm.status();

  SslPtr<X509> x509(X509_new());
  if (x509 == nullptr) return SslInternal("X509_new");
  X509* x = x509.get();
  if (!X509_set_version(x, 2)) return SslInternal("X509_set_version");
  if (auto s = SetRandomSerial(x); !s.ok()) return s;
  auto subject = NameFromDn(request.subject);
  if (!subject.ok()) return subject.status();
  if (!X509_set_subject_name(x, subject->get())) {
    return SslInternal("X509_set_subject_name");
  }
  X509_NAME* issuer_name = issuer == nullptr
                               ? subject->get()
                               : X509_get_subject_name(issuer->native());
  if (!X509_set_issuer_name(x, issuer_name)) {
    return SslInternal("X509_set_issuer_name");
  }
  if (auto s =
          SetTime(X509_getm_notBefore(x), profile.not_before, "not_before");
      !s.ok()) {
    return s;
  }
  if (auto s = SetTime(X509_getm_notAfter(x), profile.not_after, "not_after");
      !s.ok()) {
    return s;
  }
  if (request.public_key.native() == nullptr) {
    return absl::InvalidArgumentError("request has no public key");
  }
  if (!X509_set_pubkey(x, request.public_key.native())) {
    return SslError(absl::StatusCode::kInvalidArgument,
                    "request public key cannot be encoded (X509_set_pubkey)");
  }

  for (auto* add : {AddBasicConstraints, AddKeyUsage, AddExtendedKeyUsage}) {
    if (auto s = add(x, profile); !s.ok()) return s;
  }
  if (auto s = AddKeyIdentifiers(x, issuer); !s.ok()) return s;
  if (auto s = AddSubjectAltNames(x, request); !s.ok()) return s;
  for (auto* add :
       {AddCrlDistributionPoints, AddAuthorityInfoAccess, AddPolicies}) {
    if (auto s = add(x, profile); !s.ok()) return s;
  }

  auto algor = NewAlgorithm(*algorithm);
  if (!algor.ok()) return algor.status();
  if (auto s = SetSignatureAlgorithm(x, algor->get()); !s.ok()) return s;
  auto algor_der =
      I2d([&](uint8_t** out) { return i2d_X509_ALGOR(algor->get(), out); },
          "i2d_X509_ALGOR");
  if (!algor_der.ok()) return algor_der.status();
  auto tbs = I2d([&](uint8_t** out) { return i2d_re_X509_tbs(x, out); },
                 "i2d_re_X509_tbs");
  if (!tbs.ok()) return tbs.status();

  auto signature = signer.Sign(*tbs, algorithm->digest);
  if (!signature.ok()) return signature.status();
  if (tbs->size() + algor_der->size() + signature->size() >
      kMaxCertificateBytes) {
    return absl::InternalError("signer returned an oversized signature");
  }
  std::string der = AssembleCertificate(*tbs, *algor_der, *signature);
  auto cert = AdoptSigned(std::move(x509), *algor, *signature, der);
  if (!cert.ok()) {
    return absl::InternalError(absl::StrCat(
        "assembled certificate does not parse: ", cert.status().message()));
  }
  if (X509_verify(cert->native(), signer_key.native()) != 1) {
    internal::ClearSslErrors();
    return absl::InternalError(
        "signature returned by the signer does not verify with the signer's "
        "public key; no certificate issued");
  }
  return cert;
}

namespace {

constexpr absl::string_view kCrlReasons[] = {
    "unspecified",     "keyCompromise",
    "cACompromise",    "affiliationChanged",
    "superseded",      "cessationOfOperation",
    "certificateHold", "",
    "removeFromCRL",   "privilegeWithdrawn",
    "aACompromise"};

absl::StatusOr<std::string> TimeDer(absl::Time time, absl::string_view what) {
  SslPtr<ASN1_TIME> t(ASN1_TIME_new());
  if (t == nullptr) return SslInternal("ASN1_TIME_new");
  if (auto s = SetTime(t.get(), time, what); !s.ok()) return s;
  return I2d([&](uint8_t** out) { return i2d_ASN1_TIME(t.get(), out); },
             "i2d_ASN1_TIME");
}

// DER of an Extension with `value` (an ASN.1 object of `nid`'s type).
absl::StatusOr<std::string> ExtensionDer(int nid, void* value,
                                         absl::string_view what) {
  SslPtr<X509_EXTENSION> ext(X509V3_EXT_i2d(nid, 0, value));
  if (ext == nullptr) {
    return SslInternal(absl::StrCat("X509V3_EXT_i2d(", what, ")"));
  }
  return I2d([&](uint8_t** out) { return i2d_X509_EXTENSION(ext.get(), out); },
             "i2d_X509_EXTENSION");
}

absl::StatusOr<SslPtr<ASN1_INTEGER>> SerialFromHex(absl::string_view hex) {
  const bool ok = !hex.empty() && hex.size() <= 40 &&
                  std::all_of(hex.begin(), hex.end(),
                              [](char c) { return absl::ascii_isxdigit(c); });
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("revoked serial \"", absl::CHexEscape(hex.substr(0, 64)),
                     "\" is not 1-40 hex digits"));
  }
  BIGNUM* raw = nullptr;
  const std::string text(hex);
  if (BN_hex2bn(&raw, text.c_str()) == 0) return SslInternal("BN_hex2bn");
  SslPtr<BIGNUM> bn(raw);
  SslPtr<ASN1_INTEGER> serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (serial == nullptr) return SslInternal("BN_to_ASN1_INTEGER");
  return serial;
}

}  // namespace

int CrlReasonCode(absl::string_view reason) {
  if (reason.empty()) return -1;
  for (size_t i = 0; i < std::size(kCrlReasons); ++i) {
    if (kCrlReasons[i] == reason) return static_cast<int>(i);
  }
  return -1;
}

absl::StatusOr<std::string> IssueCrl(const CrlRequest& request,
                                     const Certificate& issuer,
                                     const Signer& signer) {
  if (request.crl_number < 0) {
    return absl::InvalidArgumentError("crl_number must not be negative");
  }
  if (request.next_update <= request.this_update) {
    return absl::InvalidArgumentError(
        "CRL nextUpdate must be after thisUpdate");
  }
  X509* ca = issuer.native();
  if ((X509_get_extension_flags(ca) & EXFLAG_CA) == 0) {
    return absl::InvalidArgumentError(
        "CRL issuer is not a CA (basicConstraints cA is not true)");
  }
  if ((X509_get_extension_flags(ca) & EXFLAG_KUSAGE) != 0 &&
      (X509_get_key_usage(ca) & KU_CRL_SIGN) == 0) {
    return absl::InvalidArgumentError(
        "CRL issuer's key usage does not allow cRLSign");
  }
  PublicKey signer_key = signer.public_key();
  if (signer_key.native() == nullptr || !(issuer.public_key() == signer_key)) {
    return absl::InvalidArgumentError(
        "signer's public key does not match the CRL issuer's key");
  }
  auto algorithm = SigningAlgorithmFor(signer_key);
  if (!algorithm.ok()) return algorithm.status();
  auto algor = NewAlgorithm(*algorithm);
  if (!algor.ok()) return algor.status();
  auto algor_der =
      I2d([&](uint8_t** out) { return i2d_X509_ALGOR(algor->get(), out); },
          "i2d_X509_ALGOR");
  if (!algor_der.ok()) return algor_der.status();

  // TBSCertList (RFC 5280 section 5.1), built field by field: OpenSSL 3.0
  // cannot set a CRL's inner signature algorithm without signing it with a
  // local key.
  std::string tbs;
  internal::AppendDerTlv(&tbs, 0x02, std::string(1, '\x01'));  // version v2
  tbs += *algor_der;
  auto issuer_name = I2d(
      [&](uint8_t** out) {
        return i2d_X509_NAME(X509_get_subject_name(ca), out);
      },
      "i2d_X509_NAME");
  if (!issuer_name.ok()) return issuer_name.status();
  tbs += *issuer_name;
  for (const auto& [time, what] :
       {std::pair{request.this_update, "thisUpdate"},
        std::pair{request.next_update, "nextUpdate"}}) {
    auto der = TimeDer(time, what);
    if (!der.ok()) return der.status();
    tbs += *der;
  }
  std::string entries;
  for (const RevokedCertificate& revoked : request.revoked) {
    const int code = CrlReasonCode(revoked.reason);
    if (code < 0 || revoked.reason == "removeFromCRL") {
      return absl::InvalidArgumentError(
          absl::StrCat("revocation reason \"", absl::CHexEscape(revoked.reason),
                       "\" is not an RFC 5280 reason"));
    }
    auto serial = SerialFromHex(revoked.serial_hex);
    if (!serial.ok()) return serial.status();
    std::string entry;
    auto serial_der =
        I2d([&](uint8_t** out) { return i2d_ASN1_INTEGER(serial->get(), out); },
            "i2d_ASN1_INTEGER");
    if (!serial_der.ok()) return serial_der.status();
    entry += *serial_der;
    auto date = TimeDer(revoked.revocation_time, "revocationDate");
    if (!date.ok()) return date.status();
    entry += *date;
    if (code != 0) {
      SslPtr<ASN1_ENUMERATED> reason(ASN1_ENUMERATED_new());
      if (reason == nullptr || !ASN1_ENUMERATED_set(reason.get(), code)) {
        return SslInternal("ASN1_ENUMERATED_set");
      }
      auto ext = ExtensionDer(NID_crl_reason, reason.get(), "reasonCode");
      if (!ext.ok()) return ext.status();
      internal::AppendDerTlv(&entry, 0x30, *ext);
    }
    internal::AppendDerTlv(&entries, 0x30, entry);
  }
  if (!entries.empty()) internal::AppendDerTlv(&tbs, 0x30, entries);

  std::string extensions;
  auto key_id = KeyIdOf(ca);
  if (!key_id.ok()) return key_id.status();
  SslPtr<AUTHORITY_KEYID> aki(AUTHORITY_KEYID_new());
  if (aki == nullptr) return SslInternal("AUTHORITY_KEYID_new");
  aki->keyid = key_id->release();
  auto aki_der = ExtensionDer(NID_authority_key_identifier, aki.get(),
                              "authorityKeyIdentifier");
  if (!aki_der.ok()) return aki_der.status();
  extensions += *aki_der;
  SslPtr<ASN1_INTEGER> number(ASN1_INTEGER_new());
  if (number == nullptr ||
      !ASN1_INTEGER_set_uint64(number.get(),
                               static_cast<uint64_t>(request.crl_number))) {
    return SslInternal("ASN1_INTEGER_set_uint64");
  }
  auto number_der = ExtensionDer(NID_crl_number, number.get(), "cRLNumber");
  if (!number_der.ok()) return number_der.status();
  extensions += *number_der;
  std::string extension_seq;
  internal::AppendDerTlv(&extension_seq, 0x30, extensions);
  internal::AppendDerTlv(&tbs, 0xa0, extension_seq);
  std::string tbs_seq;
  internal::AppendDerTlv(&tbs_seq, 0x30, tbs);

  auto signature = signer.Sign(tbs_seq, algorithm->digest);
  if (!signature.ok()) return signature.status();
  std::string der = AssembleCertificate(tbs_seq, *algor_der, *signature);
  const auto* p = reinterpret_cast<const uint8_t*>(der.data());
  SslPtr<X509_CRL> crl(
      d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
  if (crl == nullptr)
    return SslInternal("assembled CRL does not parse (d2i_X509_CRL)");
  if (X509_CRL_verify(crl.get(), signer_key.native()) != 1) {
    internal::ClearSslErrors();
    return absl::InternalError(
        "CRL signature returned by the signer does not verify with the "
        "signer's public key; no CRL issued");
  }
  return der;
}

}  // namespace certplane::crypto
