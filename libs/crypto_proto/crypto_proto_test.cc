#include "libs/crypto_proto/crypto_proto.h"

#include <catch2/catch.hpp>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "libs/crypto/certificate.h"
#include "libs/crypto/testing/test_pki.h"
#include "libs/testing/status_matchers.h"

namespace certplane::crypto_proto {
namespace {

using ::certplane::testing::ValueOrDie;
namespace common = ::certplane::common::v1;

TEST_CASE("CertificateDetailsCopiesEveryFieldOfALeaf") {
  crypto::testing::TestCertOptions options;
  options.common_name = "pay.example.com";
  options.sans = {{crypto::SanType::kDns, "pay.example.com"},
                  {crypto::SanType::kIp, "192.0.2.7"},
                  {crypto::SanType::kIp, "2001:db8::1"},
                  {crypto::SanType::kEmail, "ops@example.com"},
                  {crypto::SanType::kUri, "spiffe://example.com/pay"}};
  options.key_type = crypto::KeyType::kEcdsaP384;
  crypto::testing::TestChain chain =
      ValueOrDie(crypto::testing::MakeChain(options));
  const crypto::CertificateInfo& info = chain.leaf.cert.info();

  common::CertificateDetails details = CertificateDetailsToProto(info);

  CHECK(details.version() == 3);
  CHECK(details.serial_hex() == info.serial_hex);
  CHECK(details.subject().display() == info.subject.ToString());
  REQUIRE(details.subject().attributes_size() ==
          static_cast<int>(info.subject.attributes.size()));
  for (size_t i = 0; i < info.subject.attributes.size(); ++i) {
    const common::NameAttribute& attribute =
        details.subject().attributes(static_cast<int>(i));
    CHECK(attribute.type() == info.subject.attributes[i].type);
    CHECK(attribute.oid() == info.subject.attributes[i].oid);
    CHECK(attribute.value() == info.subject.attributes[i].value);
  }
  CHECK(details.issuer().display() == info.issuer.ToString());
  CHECK(TimeFromProto(details.not_before()) == info.not_before);
  CHECK(TimeFromProto(details.not_after()) == info.not_after);
  REQUIRE(details.sans_size() == 5);
  CHECK(details.sans(0).type() == common::SubjectAltName::DNS);
  CHECK(details.sans(0).value() == "pay.example.com");
  CHECK(details.sans(1).type() == common::SubjectAltName::IP);
  CHECK(details.sans(1).value() == "192.0.2.7");
  CHECK(details.sans(2).type() == common::SubjectAltName::IP);
  CHECK(details.sans(2).value() == "2001:db8::1");
  CHECK(details.sans(3).type() == common::SubjectAltName::EMAIL);
  CHECK(details.sans(3).value() == "ops@example.com");
  CHECK(details.sans(4).type() == common::SubjectAltName::URI);
  CHECK(details.sans(4).value() == "spiffe://example.com/pay");
  CHECK(details.key().algorithm() == common::ECDSA);
  CHECK(details.key().bits() == 384);
  CHECK(details.key().curve() == "P-384");
  CHECK_FALSE(details.key().explicit_curve_parameters());
  CHECK(details.signature_algorithm() == info.signature_algorithm);
  CHECK(details.has_basic_constraints() == info.has_basic_constraints);
  CHECK_FALSE(details.is_ca());
  CHECK(details.path_length() == info.path_length);
  CHECK(details.key_usage_size() == static_cast<int>(info.key_usage.size()));
  REQUIRE(details.extended_key_usage_size() ==
          static_cast<int>(info.extended_key_usage.size()));
  CHECK(details.extended_key_usage(0) == info.extended_key_usage[0]);
  CHECK(details.subject_key_id_hex() == info.subject_key_id_hex);
  CHECK(details.authority_key_id_hex() == info.authority_key_id_hex);
  CHECK(details.sha1_fingerprint_hex() == info.sha1_fingerprint_hex);
  CHECK(details.sha256_fingerprint_hex() == info.sha256_fingerprint_hex);
  CHECK(details.sha256_fingerprint_hex().size() == 64);
  CHECK(details.spki_sha256_hex() == info.spki_sha256_hex);
  CHECK_FALSE(details.self_signed());
}

TEST_CASE("CertificateDetailsMarksCaAndSelfSignedRoots") {
  crypto::testing::TestCertOptions options;
  options.common_name = "Test Root";
  options.key_type = crypto::KeyType::kRsa2048;
  crypto::testing::TestIdentity root =
      ValueOrDie(crypto::testing::MakeRootCa(options));

  common::CertificateDetails details =
      CertificateDetailsToProto(root.cert.info());

  CHECK(details.is_ca());
  CHECK(details.has_basic_constraints());
  CHECK(details.self_signed());
  CHECK(details.key().algorithm() == common::RSA);
  CHECK(details.key().bits() == 2048);
  CHECK(details.key().curve().empty());
  CHECK(details.subject().display() == details.issuer().display());
}

TEST_CASE("CopiesPoliciesAndAccessUrls") {
  crypto::CertificateInfo info;
  info.ocsp_urls = {"http://ocsp.example.com"};
  info.ca_issuer_urls = {"http://ca.example.com/int.der"};
  info.crl_distribution_points = {"http://crl.example.com/int.crl"};
  info.policies = {{"2.23.140.1.2.1", {}},
                   {"1.3.6.1.4.1.99999.1", {"https://cps.example.com"}}};
  info.sct_count = 2;

  common::CertificateDetails details = CertificateDetailsToProto(info);

  REQUIRE(details.ocsp_urls_size() == 1);
  CHECK(details.ocsp_urls(0) == "http://ocsp.example.com");
  CHECK(details.ca_issuer_urls(0) == "http://ca.example.com/int.der");
  CHECK(details.crl_distribution_points(0) == "http://crl.example.com/int.crl");
  REQUIRE(details.policies_size() == 2);
  CHECK(details.policies(0).oid() == "2.23.140.1.2.1");
  CHECK(details.policies(0).cps_uris_size() == 0);
  REQUIRE(details.policies(1).cps_uris_size() == 1);
  CHECK(details.policies(1).cps_uris(0) == "https://cps.example.com");
  CHECK(details.sct_count() == 2);
}

TEST_CASE("KeyAlgorithmsMapByEnumAndByStoredName") {
  CHECK(KeyAlgorithmToProto(crypto::KeyAlgorithm::kRsa) == common::RSA);
  CHECK(KeyAlgorithmToProto(crypto::KeyAlgorithm::kEcdsa) == common::ECDSA);
  CHECK(KeyAlgorithmToProto(crypto::KeyAlgorithm::kEd25519) ==
        common::EDDSA_ED25519);
  CHECK(KeyAlgorithmToProto(crypto::KeyAlgorithm::kUnknown) ==
        common::KEY_ALGORITHM_UNSPECIFIED);
  CHECK(KeyAlgorithmNameToProto("RSA") == common::RSA);
  CHECK(KeyAlgorithmNameToProto("ECDSA") == common::ECDSA);
  CHECK(KeyAlgorithmNameToProto("Ed25519") == common::EDDSA_ED25519);
  CHECK(KeyAlgorithmNameToProto("rsa") == common::KEY_ALGORITHM_UNSPECIFIED);
  CHECK(KeyAlgorithmNameToProto("") == common::KEY_ALGORITHM_UNSPECIFIED);

  crypto::KeyInfo ed25519{crypto::KeyAlgorithm::kEd25519, 256, "", false};
  common::KeyInfo proto = KeyInfoToProto(ed25519);
  CHECK(proto.algorithm() == common::EDDSA_ED25519);
  CHECK(proto.bits() == 256);
  crypto::KeyInfo explicit_ec{crypto::KeyAlgorithm::kEcdsa, 256, "", true};
  CHECK(KeyInfoToProto(explicit_ec).explicit_curve_parameters());
}

TEST_CASE("TimestampsRoundTripAndClampToTheProtoRange") {
  absl::Time now = absl::Now();
  CHECK(TimeFromProto(TimeToProto(now)) == now);

  absl::Time before_epoch = absl::FromUnixMillis(-1500);
  google::protobuf::Timestamp proto = TimeToProto(before_epoch);
  CHECK(proto.seconds() == -2);
  CHECK(proto.nanos() == 500000000);
  CHECK(TimeFromProto(proto) == before_epoch);

  // Certificates may say 99991231235959Z; Timestamp stops there too.
  CHECK(TimeToProto(absl::InfiniteFuture()).seconds() == 253402300799);
  CHECK(TimeToProto(absl::InfiniteFuture()).nanos() == 999999999);
  CHECK(TimeToProto(absl::InfinitePast()).seconds() == -62135596800);
}

TEST_CASE("RequestMessagesConvertOrNameTheBadField") {
  CHECK(ValueOrDie(KeyTypeFromProto(common::ECDSA_P384, "spec.type")) ==
        crypto::KeyType::kEcdsaP384);
  CHECK_THAT(KeyTypeFromProto(common::KEY_TYPE_UNSPECIFIED, "key_spec.type"),
             ::certplane::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                            "key_spec.type: 0"));
  common::DistinguishedName dn;
  common::NameAttribute* cn = dn.add_attributes();
  cn->set_type("CN");
  cn->set_value("a.example.com");
  crypto::DistinguishedName parsed =
      ValueOrDie(DistinguishedNameFromProto(dn, "subject"));
  CHECK(parsed.Get("CN") == "a.example.com");
  dn.add_attributes()->set_value("no type");
  CHECK_THAT(DistinguishedNameFromProto(dn, "subject"),
             ::certplane::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                            "subject.attributes[1]"));
  google::protobuf::RepeatedPtrField<common::SubjectAltName> sans;
  common::SubjectAltName* dns = sans.Add();
  dns->set_type(common::SubjectAltName::DNS);
  dns->set_value("a.example.com");
  common::SubjectAltName* ip = sans.Add();
  ip->set_type(common::SubjectAltName::IP);
  ip->set_value("10.0.0.1");
  std::vector<crypto::SubjectAltName> got =
      ValueOrDie(SubjectAltNamesFromProto(sans, "sans"));
  REQUIRE(got.size() == 2);
  CHECK(got[1].type == crypto::SanType::kIp);
  CHECK(got[1].value == "10.0.0.1");
  sans.Add()->set_value("untyped");
  CHECK_THAT(SubjectAltNamesFromProto(sans, "sans"),
             ::certplane::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                            "sans[2].type"));
}

}  // namespace
}  // namespace certplane::crypto_proto
