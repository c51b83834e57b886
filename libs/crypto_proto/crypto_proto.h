// Conversions from libs/crypto's descriptions (CertificateInfo, KeyInfo,
// DistinguishedName, SubjectAltName) to the certplane.common.v1 messages
// every API returns, and from the request messages back (checked, with
// errors that name the request field). certificate.proto mirrors
// CertificateInfo field for field; these functions are the one place that
// copies them, so a field added to both is added here once.
//
// Pure functions over values: no I/O, no OpenSSL calls, thread-safe.
#ifndef CERTPLANE_LIBS_CRYPTO_PROTO_CRYPTO_PROTO_H_
#define CERTPLANE_LIBS_CRYPTO_PROTO_CRYPTO_PROTO_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "certplane/common/v1/certificate.pb.h"
#include "certplane/common/v1/key.pb.h"
#include "certplane/common/v1/name.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "libs/crypto/certificate.h"
#include "libs/crypto/key.h"

namespace certplane::crypto_proto {

// kUnknown maps to KEY_ALGORITHM_UNSPECIFIED.
common::v1::KeyAlgorithm KeyAlgorithmToProto(crypto::KeyAlgorithm algorithm);
// The same from the names crypto::KeyAlgorithmName() gives ("RSA", "ECDSA",
// "Ed25519"), as stores keep them; anything else is
// KEY_ALGORITHM_UNSPECIFIED.
common::v1::KeyAlgorithm KeyAlgorithmNameToProto(absl::string_view name);

common::v1::KeyInfo KeyInfoToProto(const crypto::KeyInfo& info);

// Attributes in certificate order; `display` is DistinguishedName::ToString().
common::v1::DistinguishedName DistinguishedNameToProto(
    const crypto::DistinguishedName& name);

common::v1::SubjectAltName::Type SanTypeToProto(crypto::SanType type);
common::v1::SubjectAltName SubjectAltNameToProto(
    const crypto::SubjectAltName& san);

// Every field of `info`.
common::v1::CertificateDetails CertificateDetailsToProto(
    const crypto::CertificateInfo& info);

// An absl::Time as a Timestamp (seconds and nanoseconds; times before 1970
// keep non-negative nanos, as Timestamp requires). InfiniteFuture/Past are
// clamped to Timestamp's range (0001-01-01 .. 9999-12-31).
google::protobuf::Timestamp TimeToProto(absl::Time time);
absl::Time TimeFromProto(const google::protobuf::Timestamp& timestamp);

// From request messages. INVALID_ARGUMENT naming `field` (e.g. "spec.type",
// "subject", "sans") and what is wrong: a key type certplane does not
// generate, a name attribute without type or OID, a SAN type other than
// DNS, IP, EMAIL or URI. SAN values are not checked here (see
// crypto::ValidateSan).
absl::StatusOr<crypto::KeyType> KeyTypeFromProto(int type,
                                                 absl::string_view field);
absl::StatusOr<crypto::DistinguishedName> DistinguishedNameFromProto(
    const common::v1::DistinguishedName& name, absl::string_view field);
absl::StatusOr<std::vector<crypto::SubjectAltName>> SubjectAltNamesFromProto(
    const google::protobuf::RepeatedPtrField<common::v1::SubjectAltName>& sans,
    absl::string_view field);

}  // namespace certplane::crypto_proto

#endif  // CERTPLANE_LIBS_CRYPTO_PROTO_CRYPTO_PROTO_H_
