#include "libs/crypto/testing/test_pki.h"

#include <algorithm>
#include <utility>

#include "libs/crypto/issue.h"

namespace certplane::crypto::testing {
namespace {

DistinguishedName CommonName(const std::string& common_name) {
  DistinguishedName dn;
  dn.attributes.push_back({"CN", "2.5.4.3", common_name});
  return dn;
}

absl::StatusOr<TestIdentity> Make(const TestIdentity* issuer,
                                  const TestCertOptions& options,
                                  CertificateProfile profile,
                                  std::vector<SubjectAltName> sans) {
  auto key = PrivateKey::Generate(options.key_type);
  if (!key.ok()) return key.status();
  profile.not_before = options.not_before;
  profile.not_after = options.not_after;
  IssueRequest request{CommonName(options.common_name), key->public_key(),
                       std::move(sans)};
  absl::StatusOr<Certificate> cert =
      issuer == nullptr
          ? IssueCertificate(request, profile, nullptr, PrivateKeySigner(*key))
          : IssueCertificate(request, profile, &issuer->cert,
                             PrivateKeySigner(issuer->key));
  if (!cert.ok()) return cert.status();
  return TestIdentity{*std::move(cert), *std::move(key)};
}

CertificateProfile CaProfile() {
  CertificateProfile profile;
  profile.is_ca = true;
  profile.key_usage = {"digitalSignature", "keyCertSign", "cRLSign"};
  return profile;
}

}  // namespace

absl::StatusOr<TestIdentity> MakeRootCa(const TestCertOptions& options) {
  return Make(nullptr, options, CaProfile(), options.sans);
}

absl::StatusOr<TestIdentity> MakeIntermediateCa(
    const TestIdentity& issuer, const TestCertOptions& options) {
  return Make(&issuer, options, CaProfile(), options.sans);
}

absl::StatusOr<TestIdentity> MakeLeaf(const TestIdentity& issuer,
                                      const TestCertOptions& options) {
  CertificateProfile profile;
  profile.key_usage = {"digitalSignature"};
  KeyType type = options.key_type;
  if (type == KeyType::kRsa2048 || type == KeyType::kRsa3072 ||
      type == KeyType::kRsa4096) {
    profile.key_usage.push_back("keyEncipherment");
  }
  profile.extended_key_usage = {"serverAuth"};
  std::vector<SubjectAltName> sans = options.sans;
  if (sans.empty()) sans.push_back({SanType::kDns, options.common_name});
  return Make(&issuer, options, std::move(profile), std::move(sans));
}

absl::StatusOr<TestChain> MakeChain(const TestCertOptions& leaf_options) {
  // The CAs cover the leaf's validity and today, so an expired or not yet
  // valid leaf still has valid CAs above it.
  absl::Time now = absl::Now();
  TestCertOptions ca_options;
  ca_options.not_before =
      std::min(leaf_options.not_before, now) - absl::Hours(1);
  ca_options.not_after =
      std::max(leaf_options.not_after, now) + absl::Hours(24 * 365);
  ca_options.common_name = "certplane Test Root CA";
  auto root = MakeRootCa(ca_options);
  if (!root.ok()) return root.status();
  ca_options.common_name = "certplane Test Intermediate CA";
  auto intermediate = MakeIntermediateCa(*root, ca_options);
  if (!intermediate.ok()) return intermediate.status();
  auto leaf = MakeLeaf(*intermediate, leaf_options);
  if (!leaf.ok()) return leaf.status();
  return TestChain{*std::move(root), *std::move(intermediate),
                   *std::move(leaf)};
}

}  // namespace certplane::crypto::testing
