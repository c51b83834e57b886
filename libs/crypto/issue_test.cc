#include "libs/crypto/issue.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/crypto/csr.h"
#include "libs/crypto/testing/test_pki.h"
#include "libs/testing/scratch_dir.h"
#include "libs/testing/status_matchers.h"

namespace certplane::crypto {
namespace {

using ::Catch::Matchers::Contains;
using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;

// Whole seconds, as certificates store them.
absl::Time Seconds(absl::Time t) {
  return absl::FromUnixSeconds(absl::ToUnixSeconds(t));
}

DistinguishedName Dn(const std::string& cn, const std::string& o = "") {
  DistinguishedName dn;
  if (!o.empty()) dn.attributes.push_back({"O", "2.5.4.10", o});
  dn.attributes.push_back({"CN", "2.5.4.3", cn});
  return dn;
}

CertificateProfile CaProfile(absl::Time now) {
  CertificateProfile profile;
  profile.not_before = now - absl::Hours(1);
  profile.not_after = now + absl::Hours(24 * 3650);
  profile.is_ca = true;
  profile.key_usage = {"keyCertSign", "cRLSign"};
  return profile;
}

CertificateProfile LeafProfile(absl::Time now) {
  CertificateProfile profile;
  profile.not_before = now - absl::Hours(1);
  profile.not_after = now + absl::Hours(24 * 90);
  profile.key_usage = {"digitalSignature"};
  profile.extended_key_usage = {"serverAuth"};
  return profile;
}

struct Issued {
  Certificate cert;
  PrivateKey key;
};

Issued SelfSigned(KeyType type, absl::Time now) {
  PrivateKey key = ValueOrDie(PrivateKey::Generate(type));
  IssueRequest request{Dn("Root"), key.public_key(), {}};
  Certificate cert = ValueOrDie(IssueCertificate(
      request, CaProfile(now), nullptr, PrivateKeySigner(key)));
  return Issued{std::move(cert), std::move(key)};
}

// RFC 5280 4.2.1.2 method 1, computed independently: SHA-1 over the BIT
// STRING contents of the SubjectPublicKeyInfo.
std::string Method1KeyId(const PublicKey& key) {
  std::string spki = key.ToDer();
  size_t pos = 0;
  auto read_header = [&](size_t* length) {
    ++pos;  // tag
    auto first = static_cast<uint8_t>(spki[pos++]);
    if (first < 0x80) {
      *length = first;
      return;
    }
    *length = 0;
    for (int i = 0; i < (first & 0x7f); ++i) {
      *length = (*length << 8) | static_cast<uint8_t>(spki[pos++]);
    }
  };
  size_t length = 0;
  read_header(&length);  // SubjectPublicKeyInfo SEQUENCE
  read_header(&length);  // AlgorithmIdentifier
  pos += length;
  read_header(&length);  // BIT STRING
  ++pos;                 // unused-bits octet
  --length;
  uint8_t digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const uint8_t*>(spki.data()) + pos, length, digest);
  return HexEncode(
      std::string(reinterpret_cast<char*>(digest), sizeof(digest)));
}

bool IsCritical(const Certificate& cert, int nid) {
  int index = X509_get_ext_by_NID(cert.native(), nid, -1);
  REQUIRE(index >= 0);
  return X509_EXTENSION_get_critical(X509_get_ext(cert.native(), index)) == 1;
}

bool HasExtension(const Certificate& cert, int nid) {
  return X509_get_ext_by_NID(cert.native(), nid, -1) >= 0;
}

TEST_CASE("TestPkiChainLinksRootIntermediateAndLeaf") {
  testing::TestCertOptions options;
  options.common_name = "www.example.com";
  auto chain = ValueOrDie(testing::MakeChain(options));
  CHECK(chain.root.cert.IsIssuedBy(chain.root.cert));
  CHECK(chain.intermediate.cert.IsIssuedBy(chain.root.cert));
  CHECK(chain.leaf.cert.IsIssuedBy(chain.intermediate.cert));
  CHECK_FALSE(chain.leaf.cert.IsIssuedBy(chain.root.cert));
  CHECK_THAT(chain.leaf.cert.CheckKeyMatches(chain.leaf.key), IsOk());
  CHECK(chain.leaf.cert.MatchesHostname("www.example.com"));
  auto info = ValueOrDie(chain.leaf.cert.Describe());
  CHECK(info.extended_key_usage == std::vector<std::string>{"serverAuth"});
  CHECK_FALSE(info.is_ca);
}

TEST_CASE("IssuesRootIntermediateAndLeafWithEveryProfileField") {
  absl::Time now = absl::Now();
  PrivateKey root_key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP384));
  CertificateProfile root_profile = CaProfile(now);
  root_profile.path_length = 1;
  Certificate root = ValueOrDie(
      IssueCertificate({Dn("Root CA", "certplane"), root_key.public_key(), {}},
                       root_profile, nullptr, PrivateKeySigner(root_key)));

  PrivateKey intermediate_key =
      ValueOrDie(PrivateKey::Generate(KeyType::kRsa2048));
  CertificateProfile intermediate_profile = CaProfile(now);
  intermediate_profile.path_length = 0;
  intermediate_profile.key_usage = {"digitalSignature", "keyCertSign",
                                    "cRLSign"};
  intermediate_profile.crl_distribution_points = {
      "http://crl.example.com/root.crl"};
  intermediate_profile.ca_issuer_urls = {"http://ca.example.com/root.cer"};
  Certificate intermediate = ValueOrDie(IssueCertificate(
      {Dn("Intermediate CA", "certplane"), intermediate_key.public_key(), {}},
      intermediate_profile, &root, PrivateKeySigner(root_key)));

  PrivateKey leaf_key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  CertificateProfile leaf_profile = LeafProfile(now);
  leaf_profile.not_before = now - absl::Minutes(5);
  leaf_profile.not_after = now + absl::Hours(24 * 30);
  leaf_profile.key_usage = {"digitalSignature", "keyAgreement"};
  leaf_profile.extended_key_usage = {"serverAuth", "clientAuth",
                                     "1.3.6.1.4.1.55555.1"};
  leaf_profile.crl_distribution_points = {"http://crl.example.com/int.crl",
                                          "ldap://ldap.example.com/cn=crl"};
  leaf_profile.ocsp_urls = {"http://ocsp.example.com"};
  leaf_profile.ca_issuer_urls = {"http://ca.example.com/int.cer"};
  leaf_profile.policies = {
      {"2.23.140.1.2.1", {}},
      {"1.3.6.1.4.1.55555.2", {"https://example.com/cps"}}};
  std::vector<SubjectAltName> sans = {{SanType::kDns, "www.example.com"},
                                      {SanType::kDns, "*.api.example.com"},
                                      {SanType::kIp, "192.0.2.10"},
                                      {SanType::kIp, "2001:db8::1"},
                                      {SanType::kEmail, "ops@example.com"},
                                      {SanType::kUri, "spiffe://example/web"}};
  Certificate leaf = ValueOrDie(IssueCertificate(
      {Dn("www.example.com"), leaf_key.public_key(), sans}, leaf_profile,
      &intermediate, PrivateKeySigner(intermediate_key)));

  CHECK(intermediate.IsIssuedBy(root));
  CHECK(leaf.IsIssuedBy(intermediate));

  auto root_info = ValueOrDie(root.Describe());
  CHECK(root_info.version == 3);
  CHECK(root_info.self_signed);
  CHECK(root_info.is_ca);
  CHECK(root_info.path_length == 1);
  CHECK(root_info.subject == root_info.issuer);
  CHECK(root_info.subject.ToString() == "CN=Root CA,O=certplane");
  CHECK(root_info.signature_algorithm == "ecdsa-with-SHA384");
  CHECK(root_info.key_usage ==
        std::vector<std::string>{"keyCertSign", "cRLSign"});
  CHECK(root_info.extended_key_usage.empty());
  CHECK(root_info.subject_key_id_hex == Method1KeyId(root_key.public_key()));
  CHECK(root_info.authority_key_id_hex == root_info.subject_key_id_hex);
  CHECK(root_info.sans.empty());
  CHECK(root_info.crl_distribution_points.empty());
  CHECK(root_info.ocsp_urls.empty());
  CHECK(root_info.policies.empty());
  CHECK(IsCritical(root, NID_basic_constraints));
  CHECK(IsCritical(root, NID_key_usage));
  CHECK_FALSE(IsCritical(root, NID_subject_key_identifier));

  auto int_info = ValueOrDie(intermediate.Describe());
  CHECK_FALSE(int_info.self_signed);
  CHECK(int_info.is_ca);
  CHECK(int_info.path_length == 0);
  CHECK(int_info.issuer == root_info.subject);
  CHECK(int_info.signature_algorithm == "ecdsa-with-SHA384");
  CHECK(int_info.key.algorithm == KeyAlgorithm::kRsa);
  CHECK(int_info.key.bits == 2048);
  CHECK(int_info.subject_key_id_hex ==
        Method1KeyId(intermediate_key.public_key()));
  CHECK(int_info.authority_key_id_hex == root_info.subject_key_id_hex);
  CHECK(int_info.crl_distribution_points ==
        std::vector<std::string>{"http://crl.example.com/root.crl"});
  CHECK(int_info.ca_issuer_urls ==
        std::vector<std::string>{"http://ca.example.com/root.cer"});
  CHECK(int_info.ocsp_urls.empty());

  auto leaf_info = ValueOrDie(leaf.Describe());
  CHECK(leaf_info.version == 3);
  CHECK(leaf_info.subject.ToString() == "CN=www.example.com");
  CHECK(leaf_info.issuer == int_info.subject);
  CHECK(leaf_info.not_before == Seconds(leaf_profile.not_before));
  CHECK(leaf_info.not_after == Seconds(leaf_profile.not_after));
  CHECK(leaf_info.sans == sans);
  CHECK(leaf_info.key.algorithm == KeyAlgorithm::kEcdsa);
  CHECK(leaf_info.key.curve == "P-256");
  CHECK(leaf_info.signature_algorithm == "sha256WithRSAEncryption");
  CHECK(leaf_info.has_basic_constraints);
  CHECK_FALSE(leaf_info.is_ca);
  CHECK(leaf_info.path_length == -1);
  CHECK(leaf_info.key_usage ==
        std::vector<std::string>{"digitalSignature", "keyAgreement"});
  CHECK(leaf_info.extended_key_usage ==
        std::vector<std::string>{"serverAuth", "clientAuth",
                                 "1.3.6.1.4.1.55555.1"});
  CHECK(leaf_info.subject_key_id_hex == Method1KeyId(leaf_key.public_key()));
  CHECK(leaf_info.authority_key_id_hex == int_info.subject_key_id_hex);
  CHECK(leaf_info.crl_distribution_points ==
        leaf_profile.crl_distribution_points);
  CHECK(leaf_info.ocsp_urls == leaf_profile.ocsp_urls);
  CHECK(leaf_info.ca_issuer_urls == leaf_profile.ca_issuer_urls);
  REQUIRE(leaf_info.policies.size() == 2);
  CHECK(leaf_info.policies[0].oid == "2.23.140.1.2.1");
  CHECK(leaf_info.policies[0].cps_uris.empty());
  CHECK(leaf_info.policies[1].oid == "1.3.6.1.4.1.55555.2");
  CHECK(leaf_info.policies[1].cps_uris ==
        std::vector<std::string>{"https://example.com/cps"});
  CHECK(leaf_info.sct_count == 0);
  CHECK(IsCritical(leaf, NID_basic_constraints));
  CHECK(IsCritical(leaf, NID_key_usage));
  CHECK_FALSE(IsCritical(leaf, NID_ext_key_usage));
  // The subject is not empty, so the SAN extension is not critical.
  CHECK_FALSE(IsCritical(leaf, NID_subject_alt_name));

  // What IssueCertificate returns (the X509 it built, signed in place) is
  // the certificate its DER holds, down to every parsed field.
  for (const Certificate* issued : {&root, &intermediate, &leaf}) {
    Certificate reparsed = ValueOrDie(Certificate::FromDer(issued->der()));
    auto a = ValueOrDie(issued->Describe());
    auto b = ValueOrDie(reparsed.Describe());
    CHECK(a.sha256_fingerprint_hex == b.sha256_fingerprint_hex);
    CHECK(a.sha1_fingerprint_hex == b.sha1_fingerprint_hex);
    CHECK(a.spki_sha256_hex == b.spki_sha256_hex);
    CHECK(a.serial_hex == b.serial_hex);
    CHECK(a.signature_algorithm == b.signature_algorithm);
    CHECK(a.self_signed == b.self_signed);
    CHECK(a.key_usage == b.key_usage);
    CHECK(a.sans == b.sans);
    CHECK(issued->ToPem() == reparsed.ToPem());
    CHECK(X509_cmp(issued->native(), reparsed.native()) == 0);
  }
  CHECK(Certificate::FromDer(leaf.der())->IsIssuedBy(intermediate));
}

TEST_CASE("LeavesOutExtensionsTheProfileDoesNotAskFor") {
  absl::Time now = absl::Now();
  Issued root = SelfSigned(KeyType::kEcdsaP256, now);
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  CertificateProfile profile = LeafProfile(now);
  profile.key_usage.clear();
  profile.extended_key_usage.clear();
  Certificate leaf =
      ValueOrDie(IssueCertificate({Dn("plain"), key.public_key(), {}}, profile,
                                  &root.cert, PrivateKeySigner(root.key)));
  CHECK_FALSE(HasExtension(leaf, NID_key_usage));
  CHECK_FALSE(HasExtension(leaf, NID_ext_key_usage));
  CHECK_FALSE(HasExtension(leaf, NID_subject_alt_name));
  CHECK_FALSE(HasExtension(leaf, NID_crl_distribution_points));
  CHECK_FALSE(HasExtension(leaf, NID_info_access));
  CHECK_FALSE(HasExtension(leaf, NID_certificate_policies));
  CHECK(HasExtension(leaf, NID_subject_key_identifier));
  CHECK(HasExtension(leaf, NID_authority_key_identifier));
}

TEST_CASE("MarksSanCriticalWhenSubjectIsEmpty") {
  absl::Time now = absl::Now();
  Issued root = SelfSigned(KeyType::kEcdsaP256, now);
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  Certificate leaf = ValueOrDie(IssueCertificate(
      {DistinguishedName{},
       key.public_key(),
       {{SanType::kDns, "svc.example.com"}}},
      LeafProfile(now), &root.cert, PrivateKeySigner(root.key)));
  auto info = ValueOrDie(leaf.Describe());
  CHECK(info.subject.attributes.empty());
  CHECK(IsCritical(leaf, NID_subject_alt_name));
}

TEST_CASE("SerialsAreRandomPositiveAndAtMost128Bits") {
  absl::Time now = absl::Now();
  Issued root = SelfSigned(KeyType::kEcdsaP256, now);
  std::set<std::string> serials;
  size_t longest = 0;
  for (int i = 0; i < 24; ++i) {
    Certificate cert = ValueOrDie(IssueCertificate(
        {Dn("leaf"), root.key.public_key(), {}}, LeafProfile(now), &root.cert,
        PrivateKeySigner(root.key)));
    const ASN1_INTEGER* serial = X509_get0_serialNumber(cert.native());
    CHECK(ASN1_STRING_type(serial) == V_ASN1_INTEGER);  // Not negative.
    auto info = ValueOrDie(cert.Describe());
    CHECK(info.serial_hex.size() <= 32);
    CHECK(info.serial_hex != "0");
    longest = std::max(longest, info.serial_hex.size());
    serials.insert(info.serial_hex);
  }
  CHECK(serials.size() == 24);
  // 24 serials whose top 8 bits are all zero would mean the entropy is not
  // used (chance 2^-192).
  CHECK(longest > 30);
}

TEST_CASE("SignatureAlgorithmFollowsTheCaKeyType") {
  struct Case {
    KeyType type;
    std::string algorithm;
  };
  auto [type, algorithm] =
      GENERATE(Case{KeyType::kRsa2048, "sha256WithRSAEncryption"},
               Case{KeyType::kEcdsaP256, "ecdsa-with-SHA256"},
               Case{KeyType::kEcdsaP384, "ecdsa-with-SHA384"},
               Case{KeyType::kEd25519, "ED25519"});
  CAPTURE(KeyTypeName(type));
  absl::Time now = absl::Now();
  Issued root = SelfSigned(type, now);
  CHECK(ValueOrDie(SignatureAlgorithmFor(root.key.public_key())) == algorithm);
  CHECK(ValueOrDie(root.cert.Describe()).signature_algorithm == algorithm);
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  Certificate leaf = ValueOrDie(IssueCertificate(
      {Dn("leaf.example.com"),
       key.public_key(),
       {{SanType::kDns, "leaf.example.com"}}},
      LeafProfile(now), &root.cert, PrivateKeySigner(root.key)));
  CHECK(leaf.IsIssuedBy(root.cert));
  auto info = ValueOrDie(leaf.Describe());
  CHECK(info.signature_algorithm == algorithm);
  CHECK(info.authority_key_id_hex ==
        ValueOrDie(root.cert.Describe()).subject_key_id_hex);
}

TEST_CASE("EncodesValidityAfter2049AsGeneralizedTime") {
  absl::Time now = absl::Now();
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  CertificateProfile profile = CaProfile(now);
  profile.not_after = absl::FromCivil(absl::CivilSecond(2061, 3, 4, 5, 6, 7),
                                      absl::UTCTimeZone());
  Certificate cert =
      ValueOrDie(IssueCertificate({Dn("Long Root"), key.public_key(), {}},
                                  profile, nullptr, PrivateKeySigner(key)));
  CHECK(ValueOrDie(cert.Describe()).not_after == profile.not_after);
  CHECK(ASN1_STRING_type(X509_get0_notAfter(cert.native())) ==
        V_ASN1_GENERALIZEDTIME);
  CHECK(ASN1_STRING_type(X509_get0_notBefore(cert.native())) == V_ASN1_UTCTIME);
}

TEST_CASE("RefusesSelfSignedCertificateWithMismatchedKey") {
  absl::Time now = absl::Now();
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  PrivateKey other = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  CHECK_THAT(IssueCertificate({Dn("Root"), key.public_key(), {}},
                              CaProfile(now), nullptr, PrivateKeySigner(other)),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "signer's key does not match the request's public key"));
}

TEST_CASE("RefusesIssuingFromANonCaCertificate") {
  absl::Time now = absl::Now();
  testing::TestCertOptions options;
  options.common_name = "leaf.example.com";
  auto chain = ValueOrDie(testing::MakeChain(options));
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  CHECK_THAT(
      IssueCertificate({Dn("x"), key.public_key(), {}}, LeafProfile(now),
                       &chain.leaf.cert, PrivateKeySigner(chain.leaf.key)),
      StatusIs(absl::StatusCode::kInvalidArgument, "is not a CA"));
}

TEST_CASE("RefusesIssuingFromCaWithoutKeyCertSign") {
  absl::Time now = absl::Now();
  PrivateKey ca_key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  CertificateProfile profile = CaProfile(now);
  profile.key_usage = {"cRLSign"};
  Certificate crl_only =
      ValueOrDie(IssueCertificate({Dn("CRL signer"), ca_key.public_key(), {}},
                                  profile, nullptr, PrivateKeySigner(ca_key)));
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  CHECK_THAT(IssueCertificate({Dn("x"), key.public_key(), {}}, LeafProfile(now),
                              &crl_only, PrivateKeySigner(ca_key)),
             StatusIs(absl::StatusCode::kInvalidArgument, "keyCertSign"));
}

TEST_CASE("RefusesSignerWhoseKeyIsNotTheIssuers") {
  absl::Time now = absl::Now();
  Issued root = SelfSigned(KeyType::kEcdsaP256, now);
  PrivateKey stranger = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  CHECK_THAT(
      IssueCertificate({Dn("x"), stranger.public_key(), {}}, LeafProfile(now),
                       &root.cert, PrivateKeySigner(stranger)),
      StatusIs(absl::StatusCode::kInvalidArgument,
               "does not match the issuer certificate's key"));
}

TEST_CASE("RefusesCaUnderIssuerWithPathLengthZero") {
  absl::Time now = absl::Now();
  PrivateKey root_key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  CertificateProfile profile = CaProfile(now);
  profile.path_length = 0;
  Certificate root = ValueOrDie(
      IssueCertificate({Dn("Root"), root_key.public_key(), {}}, profile,
                       nullptr, PrivateKeySigner(root_key)));
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  CHECK_THAT(
      IssueCertificate({Dn("Sub CA"), key.public_key(), {}}, CaProfile(now),
                       &root, PrivateKeySigner(root_key)),
      StatusIs(absl::StatusCode::kInvalidArgument, "pathLenConstraint of 0"));
  // A leaf is still fine.
  CHECK_THAT(
      IssueCertificate({Dn("leaf"), key.public_key(), {}}, LeafProfile(now),
                       &root, PrivateKeySigner(root_key)),
      IsOk());
}

// A signer that returns fixed bytes, as a broken or hostile vault might.
class FixedSigner final : public Signer {
 public:
  FixedSigner(PublicKey key, absl::StatusOr<std::string> result)
      : key_(std::move(key)), result_(std::move(result)) {}
  PublicKey public_key() const override { return key_; }
  absl::StatusOr<std::string> Sign(absl::string_view,
                                   absl::string_view) const override {
    return result_;
  }

 private:
  PublicKey key_;
  absl::StatusOr<std::string> result_;
};

TEST_CASE("RefusesSubjectsWithMoreThanOneCommonName") {
  absl::Time now = absl::Now();
  Issued root = SelfSigned(KeyType::kEcdsaP256, now);
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  DistinguishedName subject = Dn("a.example.com");
  subject.attributes.push_back({"CN", "2.5.4.3", "b.example.com"});
  CHECK_THAT(IssueCertificate({subject, key.public_key(), {}}, LeafProfile(now),
                              &root.cert, PrivateKeySigner(root.key)),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "CN rule: subject has 2 common names"));
  CertificateRequest csr = ValueOrDie(CreateCsr(key, {subject, {}}));
  CHECK_THAT(IssueRequestFromCsr(csr),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "CN rule: subject has 2 common names"));
}

TEST_CASE("RefusesIssuingForAnRsaKeyWithExponentOne") {
  absl::Time now = absl::Now();
  Issued root = SelfSigned(KeyType::kEcdsaP256, now);
  // The public half of an RSA key with e = 1, built with the library.
  PrivateKey real = ValueOrDie(PrivateKey::Generate(KeyType::kRsa2048));
  const BIGNUM* n = nullptr;
  RSA_get0_key(EVP_PKEY_get0_RSA(real.native()), &n, nullptr, nullptr);
  RSA* rsa = RSA_new();
  BIGNUM* e = BN_new();
  REQUIRE(rsa != nullptr);
  REQUIRE(e != nullptr);
  REQUIRE(BN_set_word(e, 1) == 1);
  REQUIRE(RSA_set0_key(rsa, BN_dup(n), e, nullptr) == 1);
  EVP_PKEY* pkey = EVP_PKEY_new();
  REQUIRE(pkey != nullptr);
  REQUIRE(EVP_PKEY_assign_RSA(pkey, rsa) == 1);
  PublicKey weak = PublicKey::Adopt(EvpPkeyHandle(pkey));
  CHECK_THAT(IssueCertificate({Dn("weak"), weak, {}}, LeafProfile(now),
                              &root.cert, PrivateKeySigner(root.key)),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "request public key: RSA public exponent 1 is not "
                      "allowed"));
}

TEST_CASE("SignerReturningGarbageYieldsAnErrorNotACertificate") {
  absl::Time now = absl::Now();
  Issued root = SelfSigned(KeyType::kEcdsaP256, now);
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  IssueRequest request{Dn("leaf"), key.public_key(), {}};
  // A valid signature over other bytes.
  std::string other_signature =
      ValueOrDie(PrivateKeySigner(root.key).Sign("other bytes", "sha256"));
  std::string garbage =
      GENERATE(std::string(), std::string("garbage"), std::string(72, '\xff'));
  for (const std::string& bytes : {garbage, other_signature}) {
    CHECK_THAT(IssueCertificate(request, LeafProfile(now), &root.cert,
                                FixedSigner(root.key.public_key(), bytes)),
               StatusIs(absl::StatusCode::kInternal, "does not verify"));
  }
}

TEST_CASE("SignerFailureIsPassedThrough") {
  absl::Time now = absl::Now();
  Issued root = SelfSigned(KeyType::kEcdsaP256, now);
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  FixedSigner signer(root.key.public_key(),
                     absl::UnavailableError("vault is sealed"));
  CHECK_THAT(IssueCertificate({Dn("leaf"), key.public_key(), {}},
                              LeafProfile(now), &root.cert, signer),
             StatusIs(absl::StatusCode::kUnavailable, "vault is sealed"));
}

TEST_CASE("PrivateKeySignerRejectsUnknownDigest") {
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  CHECK_THAT(PrivateKeySigner(key).Sign("data", "md5"),
             StatusIs(absl::StatusCode::kInvalidArgument, "unknown digest"));
  std::string signature =
      ValueOrDie(PrivateKeySigner(key).Sign("data", "sha384"));
  CHECK_THAT(VerifySignature(key.public_key(), "data", signature, "sha384"),
             IsOk());
}

TEST_CASE("RejectsBadProfiles") {
  absl::Time now = absl::Now();
  Issued root = SelfSigned(KeyType::kEcdsaP256, now);
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  IssueRequest request{Dn("leaf"), key.public_key(), {}};
  struct Case {
    std::string name;
    void (*mutate)(CertificateProfile*);
    std::string message;
  };
  std::vector<Case> cases = {
      {"validity reversed",
       [](CertificateProfile* p) { p->not_after = p->not_before; },
       "must be after not_before"},
      {"unknown key usage",
       [](CertificateProfile* p) { p->key_usage = {"signEverything"}; },
       "unknown key usage \"signEverything\""},
      {"unknown extended key usage",
       [](CertificateProfile* p) { p->extended_key_usage = {"webAuth"}; },
       "unknown extended key usage \"webAuth\""},
      {"keyCertSign without CA",
       [](CertificateProfile* p) { p->key_usage = {"keyCertSign"}; },
       "keyCertSign requires is_ca"},
      {"path length without CA",
       [](CertificateProfile* p) { p->path_length = 2; },
       "path_length is set but is_ca is false"},
      {"bad CRL URI",
       [](CertificateProfile* p) {
         p->crl_distribution_points = {"not a uri"};
       },
       "CRL distribution point \"not a uri\""},
      {"bad OCSP URL",
       [](CertificateProfile* p) { p->ocsp_urls = {"ocsp.example.com"}; },
       "OCSP URL \"ocsp.example.com\""},
      {"bad policy OID",
       [](CertificateProfile* p) {
         p->policies = {{"anyPolicy?", {}}};
       },
       "certificate policy \"anyPolicy?\" is not a dotted OID"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    CertificateProfile profile = LeafProfile(now);
    c.mutate(&profile);
    CHECK_THAT(IssueCertificate(request, profile, &root.cert,
                                PrivateKeySigner(root.key)),
               StatusIs(absl::StatusCode::kInvalidArgument, c.message));
  }
}

TEST_CASE("RejectsRequestWithoutSubjectOrSansAndWithBadSans") {
  absl::Time now = absl::Now();
  Issued root = SelfSigned(KeyType::kEcdsaP256, now);
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  CHECK_THAT(IssueCertificate({DistinguishedName{}, key.public_key(), {}},
                              LeafProfile(now), &root.cert,
                              PrivateKeySigner(root.key)),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "neither a subject nor any SAN"));
  CHECK_THAT(
      IssueCertificate(
          {Dn("x"), key.public_key(), {{SanType::kIp, "300.1.1.1"}}},
          LeafProfile(now), &root.cert, PrivateKeySigner(root.key)),
      StatusIs(absl::StatusCode::kInvalidArgument, "SAN IP:\"300.1.1.1\""));
  DistinguishedName bad_dn;
  bad_dn.attributes.push_back({"notAnAttribute", "", "x"});
  CHECK_THAT(IssueCertificate({bad_dn, key.public_key(), {}}, LeafProfile(now),
                              &root.cert, PrivateKeySigner(root.key)),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "unknown name attribute type \"notAnAttribute\""));
}

TEST_CASE("IssuesFromAVerifiedCsr") {
  absl::Time now = absl::Now();
  Issued root = SelfSigned(KeyType::kEcdsaP384, now);
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kRsa2048));
  CsrOptions options{
      Dn("api.example.com", "Example"),
      {{SanType::kDns, "api.example.com"}, {SanType::kIp, "198.51.100.7"}}};
  CertificateRequest csr = ValueOrDie(CreateCsr(key, options));
  IssueRequest request = ValueOrDie(IssueRequestFromCsr(csr));
  CHECK(request.subject == csr.subject());
  CHECK(request.public_key == key.public_key());
  CHECK(request.sans == options.sans);
  Certificate cert = ValueOrDie(IssueCertificate(
      request, LeafProfile(now), &root.cert, PrivateKeySigner(root.key)));
  CHECK_THAT(cert.CheckKeyMatches(key), IsOk());
  auto info = ValueOrDie(cert.Describe());
  CHECK(info.sans == options.sans);
  CHECK(info.subject.ToString() == "CN=api.example.com,O=Example");
}

TEST_CASE("RefusesRequestFromCsrWithBadSignature") {
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  CertificateRequest csr = ValueOrDie(CreateCsr(
      key, {Dn("a.example.com"), {{SanType::kDns, "a.example.com"}}}));
  std::string der = csr.der();
  size_t at = der.find("a.example.com");
  REQUIRE(at != std::string::npos);
  der[at] = 'b';
  CertificateRequest tampered = ValueOrDie(CertificateRequest::FromDer(der));
  CHECK_THAT(IssueRequestFromCsr(tampered),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "CSR signature does not verify"));
}

}  // namespace
}  // namespace certplane::crypto

namespace certplane::crypto {
namespace {

TEST_CASE("IssuesACrlThatOpensslVerifiesWithEveryEntryAndReason") {
  using ::certplane::testing::ScratchDir;
  testing::TestCertOptions options;
  options.common_name = "CRL Test CA";
  testing::TestIdentity ca = ValueOrDie(testing::MakeRootCa(options));
  PrivateKeySigner signer(ca.key);
  const absl::Time now = absl::FromUnixSeconds(1796300000);
  CrlRequest request;
  request.crl_number = 7;
  request.this_update = now;
  request.next_update = now + absl::Hours(24 * 7);
  request.revoked = {
      {"0a1b2c3d", now - absl::Hours(2), "keyCompromise"},
      {"ff", now - absl::Hours(1), "unspecified"},
      {"7fffffffffffffffffffffffffffffffffffffff", now, "superseded"}};
  std::string der = ValueOrDie(IssueCrl(request, ca.cert, signer));

  ScratchDir dir("certplane-crl");
  dir.Write("crl.der", der);
  dir.Write("ca.pem", ca.cert.ToPem());
  ::certplane::testing::CommandResult r = dir.Run(
      "openssl crl -inform DER -in crl.der -CAfile ca.pem -noout -text");
  INFO(r.out << r.err);
  REQUIRE(r.ok());
  CHECK_THAT(r.err + r.out, Contains("verify OK"));
  CHECK_THAT(r.out, Contains("Version 2"));
  CHECK_THAT(r.out, Contains("CN = CRL Test CA"));
  CHECK_THAT(r.out, Contains("X509v3 CRL Number"));
  CHECK_THAT(r.out, Contains("X509v3 Authority Key Identifier"));
  CHECK_THAT(r.out, Contains("0A1B2C3D"));
  CHECK_THAT(r.out, Contains("Key Compromise"));
  CHECK_THAT(r.out, Contains("Superseded"));
  CHECK_THAT(r.out, Contains("7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"));
  // "unspecified" has no reasonCode entry (RFC 5280 5.3.1).
  CHECK_THAT(r.out, !Contains("Unspecified"));

  // An empty CRL is valid too.
  request.revoked.clear();
  dir.Write("empty.der", ValueOrDie(IssueCrl(request, ca.cert, signer)));
  ::certplane::testing::CommandResult empty = dir.Run(
      "openssl crl -inform DER -in empty.der -CAfile ca.pem -noout -text");
  INFO(empty.err);
  REQUIRE(empty.ok());
  CHECK_THAT(empty.out, Contains("No Revoked Certificates"));
}

TEST_CASE("IssueCrlRefusesBadRequestsIssuersAndSigners") {
  testing::TestCertOptions options;
  testing::TestIdentity ca = ValueOrDie(testing::MakeRootCa(options));
  testing::TestIdentity leaf = ValueOrDie(testing::MakeLeaf(ca, options));
  PrivateKeySigner signer(ca.key);
  const absl::Time now = absl::FromUnixSeconds(1796300000);
  CrlRequest ok;
  ok.crl_number = 1;
  ok.this_update = now;
  ok.next_update = now + absl::Hours(1);
  CrlRequest r = ok;
  r.next_update = now;
  CHECK_THAT(IssueCrl(r, ca.cert, signer),
             StatusIs(absl::StatusCode::kInvalidArgument, "nextUpdate"));
  r = ok;
  r.crl_number = -1;
  CHECK_THAT(IssueCrl(r, ca.cert, signer),
             StatusIs(absl::StatusCode::kInvalidArgument, "crl_number"));
  for (const char* serial :
       {"", "xyz", "-1", "0123456789012345678901234567890123456789a"}) {
    INFO(serial);
    r = ok;
    r.revoked = {{serial, now, "keyCompromise"}};
    CHECK_THAT(IssueCrl(r, ca.cert, signer),
               StatusIs(absl::StatusCode::kInvalidArgument, "serial"));
  }
  for (const char* reason : {"", "stolen", "removeFromCRL"}) {
    INFO(reason);
    r = ok;
    r.revoked = {{"01", now, reason}};
    CHECK_THAT(IssueCrl(r, ca.cert, signer),
               StatusIs(absl::StatusCode::kInvalidArgument, "reason"));
  }
  CHECK_THAT(IssueCrl(ok, leaf.cert, PrivateKeySigner(leaf.key)),
             StatusIs(absl::StatusCode::kInvalidArgument, "not a CA"));
  CHECK_THAT(IssueCrl(ok, ca.cert, PrivateKeySigner(leaf.key)),
             StatusIs(absl::StatusCode::kInvalidArgument, "does not match"));
  CHECK(CrlReasonCode("keyCompromise") == 1);
  CHECK(CrlReasonCode("aACompromise") == 10);
  CHECK(CrlReasonCode("") == -1);
}

}  // namespace
}  // namespace certplane::crypto
