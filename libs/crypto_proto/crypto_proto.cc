#include "libs/crypto_proto/crypto_proto.h"

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace certplane::crypto_proto {
namespace {

namespace common = ::certplane::common::v1;

// Timestamp's documented range: 0001-01-01T00:00:00Z to
// 9999-12-31T23:59:59.999999999Z.
constexpr int64_t kMinTimestampSeconds = -62135596800;
constexpr int64_t kMaxTimestampSeconds = 253402300799;

}  // namespace

common::KeyAlgorithm KeyAlgorithmToProto(crypto::KeyAlgorithm algorithm) {
  switch (algorithm) {
    case crypto::KeyAlgorithm::kRsa:
      return common::RSA;
    case crypto::KeyAlgorithm::kEcdsa:
      return common::ECDSA;
    case crypto::KeyAlgorithm::kEd25519:
      return common::EDDSA_ED25519;
    case crypto::KeyAlgorithm::kUnknown:
      break;
  }
  return common::KEY_ALGORITHM_UNSPECIFIED;
}

common::KeyAlgorithm KeyAlgorithmNameToProto(absl::string_view name) {
  for (crypto::KeyAlgorithm algorithm :
       {crypto::KeyAlgorithm::kRsa, crypto::KeyAlgorithm::kEcdsa,
        crypto::KeyAlgorithm::kEd25519}) {
    if (name == crypto::KeyAlgorithmName(algorithm)) {
      return KeyAlgorithmToProto(algorithm);
    }
  }
  return common::KEY_ALGORITHM_UNSPECIFIED;
}

common::KeyInfo KeyInfoToProto(const crypto::KeyInfo& info) {
  common::KeyInfo out;
  out.set_algorithm(KeyAlgorithmToProto(info.algorithm));
  out.set_bits(info.bits);
  out.set_curve(info.curve);
  out.set_explicit_curve_parameters(info.explicit_curve_parameters);
  return out;
}

common::DistinguishedName DistinguishedNameToProto(
    const crypto::DistinguishedName& name) {
  common::DistinguishedName out;
  for (const crypto::NameAttribute& attribute : name.attributes) {
    common::NameAttribute* added = out.add_attributes();
    added->set_type(attribute.type);
    added->set_oid(attribute.oid);
    added->set_value(attribute.value);
  }
  out.set_display(name.ToString());
  return out;
}

common::SubjectAltName::Type SanTypeToProto(crypto::SanType type) {
  switch (type) {
    case crypto::SanType::kDns:
      return common::SubjectAltName::DNS;
    case crypto::SanType::kIp:
      return common::SubjectAltName::IP;
    case crypto::SanType::kEmail:
      return common::SubjectAltName::EMAIL;
    case crypto::SanType::kUri:
      return common::SubjectAltName::URI;
  }
  return common::SubjectAltName::TYPE_UNSPECIFIED;
}

common::SubjectAltName SubjectAltNameToProto(
    const crypto::SubjectAltName& san) {
  common::SubjectAltName out;
  out.set_type(SanTypeToProto(san.type));
  out.set_value(san.value);
  return out;
}

common::CertificateDetails CertificateDetailsToProto(
    const crypto::CertificateInfo& info) {
  common::CertificateDetails out;
  out.set_version(info.version);
  out.set_serial_hex(info.serial_hex);
  *out.mutable_subject() = DistinguishedNameToProto(info.subject);
  *out.mutable_issuer() = DistinguishedNameToProto(info.issuer);
  *out.mutable_not_before() = TimeToProto(info.not_before);
  *out.mutable_not_after() = TimeToProto(info.not_after);
  for (const crypto::SubjectAltName& san : info.sans) {
    *out.add_sans() = SubjectAltNameToProto(san);
  }
  *out.mutable_key() = KeyInfoToProto(info.key);
  out.set_signature_algorithm(info.signature_algorithm);
  out.set_has_basic_constraints(info.has_basic_constraints);
  out.set_is_ca(info.is_ca);
  out.set_path_length(info.path_length);
  for (const std::string& usage : info.key_usage) out.add_key_usage(usage);
  for (const std::string& usage : info.extended_key_usage) {
    out.add_extended_key_usage(usage);
  }
  out.set_subject_key_id_hex(info.subject_key_id_hex);
  out.set_authority_key_id_hex(info.authority_key_id_hex);
  for (const std::string& url : info.ocsp_urls) out.add_ocsp_urls(url);
  for (const std::string& url : info.ca_issuer_urls) {
    out.add_ca_issuer_urls(url);
  }
  for (const std::string& point : info.crl_distribution_points) {
    out.add_crl_distribution_points(point);
  }
  for (const crypto::CertificatePolicy& policy : info.policies) {
    common::CertificatePolicy* added = out.add_policies();
    added->set_oid(policy.oid);
    for (const std::string& uri : policy.cps_uris) added->add_cps_uris(uri);
  }
  out.set_sct_count(info.sct_count);
  out.set_sha1_fingerprint_hex(info.sha1_fingerprint_hex);
  out.set_sha256_fingerprint_hex(info.sha256_fingerprint_hex);
  out.set_spki_sha256_hex(info.spki_sha256_hex);
  out.set_self_signed(info.self_signed);
  return out;
}

google::protobuf::Timestamp TimeToProto(absl::Time time) {
  google::protobuf::Timestamp out;
  if (time <= absl::FromUnixSeconds(kMinTimestampSeconds)) {
    out.set_seconds(kMinTimestampSeconds);
    return out;
  }
  if (time >= absl::FromUnixSeconds(kMaxTimestampSeconds + 1)) {
    out.set_seconds(kMaxTimestampSeconds);
    out.set_nanos(999999999);
    return out;
  }
  // ToUnixSeconds rounds towards negative infinity, so nanos is in
  // [0, 1e9).
  int64_t seconds = absl::ToUnixSeconds(time);
  out.set_seconds(seconds);
  out.set_nanos(static_cast<int32_t>((time - absl::FromUnixSeconds(seconds)) /
                                     absl::Nanoseconds(1)));
  return out;
}

absl::Time TimeFromProto(const google::protobuf::Timestamp& timestamp) {
  return absl::FromUnixSeconds(timestamp.seconds()) +
         absl::Nanoseconds(timestamp.nanos());
}

absl::StatusOr<crypto::KeyType> KeyTypeFromProto(int type,
                                                 absl::string_view field) {
  switch (type) {
    case common::RSA_2048:
      return crypto::KeyType::kRsa2048;
    case common::RSA_3072:
      return crypto::KeyType::kRsa3072;
    case common::RSA_4096:
      return crypto::KeyType::kRsa4096;
    case common::ECDSA_P256:
      return crypto::KeyType::kEcdsaP256;
    case common::ECDSA_P384:
      return crypto::KeyType::kEcdsaP384;
    case common::ED25519:
      return crypto::KeyType::kEd25519;
    default:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      field, ": ", type,
      " is not a key type certplane generates; use RSA_2048, RSA_3072, "
      "RSA_4096, ECDSA_P256, ECDSA_P384 or ED25519"));
}

absl::StatusOr<crypto::DistinguishedName> DistinguishedNameFromProto(
    const common::DistinguishedName& name, absl::string_view field) {
  crypto::DistinguishedName out;
  for (int i = 0; i < name.attributes_size(); ++i) {
    const common::NameAttribute& attribute = name.attributes(i);
    if (attribute.type().empty() && attribute.oid().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".attributes[", i, "]: type or oid is required"));
    }
    out.attributes.push_back(
        {attribute.type(), attribute.oid(), attribute.value()});
  }
  return out;
}

absl::StatusOr<std::vector<crypto::SubjectAltName>> SubjectAltNamesFromProto(
    const google::protobuf::RepeatedPtrField<common::SubjectAltName>& sans,
    absl::string_view field) {
  std::vector<crypto::SubjectAltName> out;
  out.reserve(static_cast<size_t>(sans.size()));
  for (int i = 0; i < sans.size(); ++i) {
    crypto::SanType type;
    switch (sans[i].type()) {
      case common::SubjectAltName::DNS:
        type = crypto::SanType::kDns;
        break;
      case common::SubjectAltName::IP:
        type = crypto::SanType::kIp;
        break;
      case common::SubjectAltName::EMAIL:
        type = crypto::SanType::kEmail;
        break;
      case common::SubjectAltName::URI:
        type = crypto::SanType::kUri;
        break;
      default:
        return absl::InvalidArgumentError(absl::StrCat(
            field, "[", i, "].type: must be DNS, IP, EMAIL or URI"));
    }
    out.push_back({type, sans[i].value()});
  }
  return out;
}

}  // namespace certplane::crypto_proto
