// The import logic over files in every format, made here with libs/crypto's
// own writers from a freshly generated test PKI.
#include "services/inventory/importer.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "libs/crypto/certificate.h"
#include "libs/crypto/formats.h"
#include "libs/crypto/key.h"
#include "libs/crypto/testing/test_pki.h"
#include "libs/testing/status_matchers.h"

namespace certplane::inventory {
namespace {

using ::certplane::crypto::Certificate;
using ::certplane::crypto::testing::MakeChain;
using ::certplane::crypto::testing::MakeLeaf;
using ::certplane::crypto::testing::TestCertOptions;
using ::certplane::crypto::testing::TestChain;
using ::certplane::crypto::testing::TestIdentity;
using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;
using Code = ::absl::StatusCode;

constexpr char kPassword[] = "correct horse battery";

TestChain Chain(const std::string& common_name,
                crypto::KeyType key_type = crypto::KeyType::kEcdsaP256) {
  TestCertOptions options;
  options.common_name = common_name;
  options.key_type = key_type;
  return ValueOrDie(MakeChain(options));
}

std::string KeyPem(const TestIdentity& identity) {
  return std::string(ValueOrDie(identity.key.ToPkcs8Pem()).view());
}

// A lookup that knows nothing (an empty inventory).
CaLookup NoStoredCas() {
  return [](absl::string_view) -> absl::StatusOr<std::vector<Certificate>> {
    return std::vector<Certificate>();
  };
}

// A lookup over CA certificates "already in the inventory".
CaLookup StoredCas(std::vector<Certificate> stored) {
  return [stored](absl::string_view subject_dn)
             -> absl::StatusOr<std::vector<Certificate>> {
    std::vector<Certificate> found;
    for (const Certificate& certificate : stored) {
      if (certificate.info().subject.ToString() == subject_dn) {
        found.push_back(certificate);
      }
    }
    return found;
  };
}

ImportPlan Plan(const std::vector<ImportFileInput>& files,
                const CaLookup& lookup = NoStoredCas()) {
  return ValueOrDie(Analyze(files, lookup, absl::Now()));
}

std::string Sha(const Certificate& certificate) {
  return certificate.info().sha256_fingerprint_hex;
}

std::vector<std::string> ChainShas(const ImportedLeaf& leaf) {
  std::vector<std::string> out;
  for (const Certificate& certificate : leaf.chain)
    out.push_back(Sha(certificate));
  return out;
}

bool HasNote(const ImportedFile& file, absl::string_view text) {
  for (const std::string& note : file.notes) {
    if (absl::StrContains(note, text)) return true;
  }
  return false;
}

// The leaf, its full chain and its key, as each format carries them.
void CheckFullImport(const ImportPlan& plan, const TestChain& chain,
                     absl::string_view format) {
  REQUIRE(plan.files.size() == 1);
  const ImportedFile& file = plan.files[0];
  REQUIRE_THAT(file.status, IsOk());
  CHECK(file.format == format);
  REQUIRE(plan.leaves.size() == 1);
  const ImportedLeaf& leaf = plan.leaves[0];
  CHECK(leaf.certificate == chain.leaf.cert);
  CHECK(leaf.facts.sha256_hex == Sha(chain.leaf.cert));
  CHECK(ChainShas(leaf) ==
        std::vector<std::string>{Sha(chain.intermediate.cert),
                                 Sha(chain.root.cert)});
  CHECK(leaf.chain_complete);
  REQUIRE(leaf.key_index.has_value());
  CHECK(plan.keys[*leaf.key_index].key.public_key() ==
        chain.leaf.key.public_key());
  CHECK(plan.keys[*leaf.key_index].matches_leaf);
  CHECK(plan.ca_certificates.size() == 2);
}

TEST_CASE("ReadsOnePemCertificateWithoutKeyOrChain") {
  TestChain chain = Chain("one.example.com");
  std::string pem = chain.leaf.cert.ToPem();
  ImportPlan plan = Plan({{"one.pem", pem, std::nullopt}});

  REQUIRE_THAT(plan.files[0].status, IsOk());
  CHECK(plan.files[0].format == "PEM");
  REQUIRE(plan.leaves.size() == 1);
  const ImportedLeaf& leaf = plan.leaves[0];
  CHECK(leaf.facts.common_name == "one.example.com");
  CHECK(leaf.facts.issuer_cn ==
        chain.intermediate.cert.info().subject.Get("CN"));
  CHECK(leaf.facts.key_algorithm == "ECDSA");
  CHECK(leaf.facts.key_curve == "P-256");
  CHECK(leaf.facts.key_bits == 256);
  CHECK_FALSE(leaf.facts.is_ca);
  CHECK(leaf.facts.not_after_us ==
        absl::ToUnixMicros(chain.leaf.cert.info().not_after));
  CHECK(leaf.chain.empty());
  CHECK_FALSE(leaf.chain_complete);
  CHECK_FALSE(leaf.key_index.has_value());
  CHECK(plan.ca_certificates.empty());
}

TEST_CASE("ReadsPemWithChainAndKeyMixedIn") {
  TestChain chain = Chain("mixed.example.com");
  std::string pem = absl::StrCat(
      "leaf:\n", chain.leaf.cert.ToPem(), KeyPem(chain.leaf), "chain follows\n",
      chain.intermediate.cert.ToPem(), chain.root.cert.ToPem());
  CheckFullImport(Plan({{"mixed.pem", pem, std::nullopt}}), chain, "PEM");
}

TEST_CASE("CompletesAChainGivenInTheWrongOrder") {
  TestChain chain = Chain("reversed.example.com");
  std::string pem =
      absl::StrCat(chain.root.cert.ToPem(), KeyPem(chain.leaf),
                   chain.intermediate.cert.ToPem(), chain.leaf.cert.ToPem());
  CheckFullImport(Plan({{"reversed.pem", pem, std::nullopt}}), chain, "PEM");
}

TEST_CASE("ReadsEncryptedPemKeysWithThePassword") {
  TestChain chain = Chain("encrypted.example.com", crypto::KeyType::kRsa2048);
  std::string pem = absl::StrCat(
      chain.leaf.cert.ToPem(),
      ValueOrDie(chain.leaf.key.ToEncryptedPkcs8Pem(kPassword)).view(),
      chain.intermediate.cert.ToPem(), chain.root.cert.ToPem());
  CheckFullImport(Plan({{"enc.pem", pem, kPassword}}), chain, "PEM");
  CHECK(Plan({{"enc.pem", pem, kPassword}}).leaves[0].facts.key_bits == 2048);

  ImportPlan wrong = Plan({{"enc.pem", pem, "not the password"}});
  CHECK_THAT(wrong.files[0].status,
             StatusIs(Code::kInvalidArgument, "password"));
  CHECK(wrong.leaves.empty());
}

TEST_CASE("ReadsDerCertificates") {
  TestChain chain = Chain("der.example.com");
  ImportPlan plan = Plan({{"leaf.der", chain.leaf.cert.der(), std::nullopt}});
  REQUIRE_THAT(plan.files[0].status, IsOk());
  CHECK(plan.files[0].format == "DER");
  REQUIRE(plan.leaves.size() == 1);
  CHECK(plan.leaves[0].certificate == chain.leaf.cert);
}

TEST_CASE("ReadsPkcs7InPemAndDer") {
  TestChain chain = Chain("p7.example.com");
  std::vector<Certificate> bag = {chain.root.cert, chain.leaf.cert,
                                  chain.intermediate.cert};
  for (bool pem : {true, false}) {
    std::string data = ValueOrDie(crypto::WritePkcs7(bag, pem));
    ImportPlan plan = Plan({{"bundle.p7b", data, std::nullopt}});
    REQUIRE_THAT(plan.files[0].status, IsOk());
    CHECK(plan.files[0].format == (pem ? "PKCS#7 (PEM)" : "PKCS#7 (DER)"));
    REQUIRE(plan.leaves.size() == 1);
    CHECK(ChainShas(plan.leaves[0]) ==
          std::vector<std::string>{Sha(chain.intermediate.cert),
                                   Sha(chain.root.cert)});
    CHECK(plan.leaves[0].chain_complete);
    CHECK_FALSE(plan.leaves[0].key_index.has_value());
    CHECK(plan.ca_certificates.size() == 2);
  }
}

TEST_CASE("ReadsModernAndLegacyPkcs12WithPassword") {
  TestChain chain = Chain("p12.example.com");
  std::vector<Certificate> certs = {chain.leaf.cert, chain.intermediate.cert,
                                    chain.root.cert};
  for (bool legacy : {false, true}) {
    crypto::Pkcs12Options options;
    options.legacy = legacy;
    options.iterations = 2048;
    std::string p12 = ValueOrDie(
        crypto::WritePkcs12(&chain.leaf.key, certs, kPassword, options));
    CheckFullImport(Plan({{"web.pfx", p12, kPassword}}), chain, "PKCS#12");

    ImportPlan wrong =
        Plan({{"web.pfx", p12, "wrong password!"},
              {"other.pem", chain.leaf.cert.ToPem(), std::nullopt}});
    CHECK_THAT(wrong.files[0].status,
               StatusIs(Code::kInvalidArgument, "password"));
    CHECK(wrong.files[0].certificates.empty());
    CHECK(wrong.files[0].format.empty());
    REQUIRE_THAT(wrong.files[1].status, IsOk());
    CHECK(wrong.leaves.size() == 1);

    ImportPlan missing = Plan({{"web.pfx", p12, std::nullopt}});
    CHECK_THAT(missing.files[0].status,
               StatusIs(Code::kInvalidArgument, "password"));
  }
}

TEST_CASE("FindsTheKeyInAnotherFileOfTheRequest") {
  TestChain chain = Chain("split.example.com");
  ImportPlan plan = Plan({{"cert.pem", chain.leaf.cert.ToPem(), std::nullopt},
                          {"cert.key", KeyPem(chain.leaf), std::nullopt}});
  REQUIRE(plan.leaves.size() == 1);
  REQUIRE(plan.leaves[0].key_index.has_value());
  CHECK(plan.keys[*plan.leaves[0].key_index].file_index == 1);
  CHECK(plan.files[1].notes.empty());
}

TEST_CASE("NotesKeysThatMatchNoCertificate") {
  TestChain chain = Chain("keys.example.com");
  crypto::PrivateKey stray =
      ValueOrDie(crypto::PrivateKey::Generate(crypto::KeyType::kRsa2048));
  std::string pem = absl::StrCat(chain.leaf.cert.ToPem(),
                                 ValueOrDie(stray.ToPkcs8Pem()).view(),
                                 chain.root.cert.ToPem(), KeyPem(chain.root));
  ImportPlan plan = Plan({{"keys.pem", pem, std::nullopt}});
  REQUIRE_THAT(plan.files[0].status, IsOk());
  CHECK_FALSE(plan.leaves[0].key_index.has_value());
  CHECK(plan.keys.size() == 2);
  CHECK_FALSE(plan.keys[0].matches_leaf);
  CHECK_FALSE(plan.keys[1].matches_leaf);
  CHECK(
      HasNote(plan.files[0],
              "private key (RSA 2048) matches no certificate in the request"));
  CHECK(HasNote(plan.files[0], "belongs to CA certificate"));

  ImportPlan key_only = Plan({{"only.key", KeyPem(chain.leaf), std::nullopt}});
  REQUIRE_THAT(key_only.files[0].status, IsOk());
  CHECK(key_only.leaves.empty());
  CHECK(HasNote(key_only.files[0], "matches no certificate"));
}

TEST_CASE("ReadsARepeatedCertificateOnce") {
  TestChain chain = Chain("twice.example.com");
  std::string pem =
      absl::StrCat(chain.leaf.cert.ToPem(), chain.intermediate.cert.ToPem(),
                   chain.leaf.cert.ToPem(), chain.intermediate.cert.ToPem());
  ImportPlan plan =
      Plan({{"twice.pem", pem, std::nullopt},
            {"again.pem", chain.leaf.cert.ToPem(), std::nullopt}});
  REQUIRE(plan.files[0].certificates.size() == 2);
  CHECK(HasNote(plan.files[0], "certificate 3"));
  CHECK(HasNote(plan.files[0], "repeats certificate 1"));
  CHECK(plan.leaves.size() == 1);
  CHECK(plan.ca_certificates.size() == 1);
  // The second file's copy points at the first.
  REQUIRE(plan.files[1].certificates.size() == 1);
  CHECK_FALSE(plan.files[1].certificates[0].first_occurrence);
  CHECK(plan.files[1].certificates[0].unique_index == 0);
  CHECK(plan.files[0].certificates[0].first_occurrence);
}

TEST_CASE("ImportsExpiredAndNotYetValidCertificatesWithANote") {
  TestChain chain = Chain("ca.example.com");
  TestCertOptions expired;
  expired.common_name = "expired.example.com";
  expired.not_before = absl::Now() - absl::Hours(24 * 400);
  expired.not_after = absl::Now() - absl::Hours(24 * 10);
  TestCertOptions future;
  future.common_name = "future.example.com";
  future.not_before = absl::Now() + absl::Hours(24 * 10);
  future.not_after = absl::Now() + absl::Hours(24 * 100);
  TestIdentity old_leaf = ValueOrDie(MakeLeaf(chain.intermediate, expired));
  TestIdentity new_leaf = ValueOrDie(MakeLeaf(chain.intermediate, future));

  ImportPlan plan = Plan({{"old.pem", old_leaf.cert.ToPem(), std::nullopt},
                          {"new.pem", new_leaf.cert.ToPem(), std::nullopt}});
  REQUIRE(plan.leaves.size() == 2);
  CHECK(HasNote(plan.files[0], "expired on"));
  CHECK(HasNote(plan.files[1], "is not valid before"));
  CHECK(plan.leaves[0].facts.not_after_us < absl::ToUnixMicros(absl::Now()));
}

TEST_CASE("KeepsIpEmailAndUriSans") {
  TestChain chain = Chain("ca.example.com");
  TestCertOptions options;
  options.common_name = "sans.example.com";
  options.sans = {{crypto::SanType::kIp, "192.0.2.10"},
                  {crypto::SanType::kIp, "2001:db8::10"},
                  {crypto::SanType::kEmail, "ops@example.com"},
                  {crypto::SanType::kUri, "spiffe://example.com/api"},
                  {crypto::SanType::kDns, "api.example.com"}};
  TestIdentity leaf = ValueOrDie(MakeLeaf(chain.intermediate, options));
  ImportPlan plan = Plan({{"sans.pem", leaf.cert.ToPem(), std::nullopt}});
  REQUIRE(plan.leaves.size() == 1);
  CHECK(plan.leaves[0].facts.sans ==
        std::vector<std::string>{"192.0.2.10", "2001:db8::10",
                                 "ops@example.com", "spiffe://example.com/api",
                                 "api.example.com"});
  CHECK(plan.leaves[0].facts.common_name == "sans.example.com");
}

TEST_CASE("DisplayNameIsTheCommonNameElseTheFirstSan") {
  crypto::CertificateInfo info;
  info.subject.attributes = {{"O", "2.5.4.10", "Example"}};
  CHECK(DefaultDisplayName(info) == "O=Example");
  info.sans = {{crypto::SanType::kIp, "192.0.2.10"}};
  CHECK(DefaultDisplayName(info) == "192.0.2.10");
  info.subject.attributes.push_back({"CN", "2.5.4.3", "api.example.com"});
  CHECK(DefaultDisplayName(info) == "api.example.com");
}

TEST_CASE("ReportsEachBadFileAndLeavesTheOthersAlone") {
  TestChain chain = Chain("good.example.com");
  std::string pem = chain.leaf.cert.ToPem();
  std::string der = chain.leaf.cert.der();
  std::vector<ImportFileInput> files = {
      {"good-1.pem", pem, std::nullopt},
      {"garbage.bin", "this is not a certificate at all", std::nullopt},
      {"truncated.pem", absl::string_view(pem).substr(0, pem.size() / 2),
       std::nullopt},
      {"truncated.der", absl::string_view(der).substr(0, der.size() - 10),
       std::nullopt},
      {"empty.pem", "", std::nullopt},
      {"good-2.der", chain.intermediate.cert.der(), std::nullopt},
  };
  ImportPlan plan = Plan(files);
  REQUIRE(plan.files.size() == 6);
  CHECK_THAT(plan.files[0].status, IsOk());
  CHECK_THAT(plan.files[1].status, StatusIs(Code::kInvalidArgument));
  CHECK_FALSE(plan.files[1].status.message().empty());
  CHECK_THAT(plan.files[2].status, StatusIs(Code::kInvalidArgument));
  CHECK_THAT(plan.files[3].status,
             StatusIs(Code::kInvalidArgument, "truncated"));
  CHECK_THAT(plan.files[4].status, StatusIs(Code::kInvalidArgument, "empty"));
  CHECK_THAT(plan.files[5].status, IsOk());
  for (size_t i = 1; i <= 4; ++i) {
    CHECK(plan.files[i].certificates.empty());
    CHECK(plan.files[i].format.empty());
  }
  // The good files are read as if the bad ones were not there: the leaf's
  // chain even uses the intermediate from the last file.
  REQUIRE(plan.leaves.size() == 1);
  CHECK(ChainShas(plan.leaves[0]) ==
        std::vector<std::string>{Sha(chain.intermediate.cert)});
  CHECK_FALSE(plan.leaves[0].chain_complete);
  CHECK(plan.ca_certificates.size() == 1);
}

TEST_CASE("CompletesChainsFromCaCertificatesAlreadyKnown") {
  TestChain chain = Chain("stored.example.com");
  ImportPlan plan = Plan({{"leaf.pem", chain.leaf.cert.ToPem(), std::nullopt}},
                         StoredCas({chain.intermediate.cert, chain.root.cert}));
  REQUIRE(plan.leaves.size() == 1);
  CHECK(ChainShas(plan.leaves[0]) ==
        std::vector<std::string>{Sha(chain.intermediate.cert),
                                 Sha(chain.root.cert)});
  CHECK(plan.leaves[0].chain_complete);
  // Nothing new to store: the CAs came from the inventory.
  CHECK(plan.ca_certificates.empty());
}

TEST_CASE("RefusesAKnownCaWhoseKeyDoesNotVerifyTheCertificate") {
  TestChain chain = Chain("impostor.example.com");
  // Another intermediate with the same subject but a different key.
  TestCertOptions options;
  options.common_name = chain.intermediate.cert.info().subject.Get("CN");
  TestIdentity impostor =
      ValueOrDie(crypto::testing::MakeIntermediateCa(chain.root, options));
  REQUIRE(impostor.cert.info().subject ==
          chain.intermediate.cert.info().subject);

  ImportPlan plan = Plan({{"leaf.pem", chain.leaf.cert.ToPem(), std::nullopt}},
                         StoredCas({impostor.cert, chain.root.cert}));
  CHECK(plan.leaves[0].chain.empty());
  CHECK_FALSE(plan.leaves[0].chain_complete);

  plan = Plan({{"leaf.pem",
                absl::StrCat(chain.leaf.cert.ToPem(), impostor.cert.ToPem()),
                std::nullopt}},
              StoredCas({chain.intermediate.cert, chain.root.cert}));
  CHECK(ChainShas(plan.leaves[0]) ==
        std::vector<std::string>{Sha(chain.intermediate.cert),
                                 Sha(chain.root.cert)});
}

TEST_CASE("ARootIsKeptAsACaCertificateNotALeaf") {
  TestCertOptions options;
  options.common_name = "Root Only";
  TestIdentity root = ValueOrDie(crypto::testing::MakeRootCa(options));
  ImportPlan plan = Plan({{"root.pem", root.cert.ToPem(), std::nullopt}});
  CHECK(plan.leaves.empty());
  REQUIRE(plan.ca_certificates.size() == 1);
  CHECK(plan.ca_certificates[0].facts.self_signed);
  CHECK(plan.ca_certificates[0].facts.is_ca);
  CHECK(plan.files[0].certificates[0].is_ca);
}

TEST_CASE("AFailingLookupFailsTheAnalysis") {
  TestChain chain = Chain("down.example.com");
  CaLookup down =
      [](absl::string_view) -> absl::StatusOr<std::vector<Certificate>> {
    return absl::UnavailableError("database is down");
  };
  CHECK_THAT(Analyze({{"leaf.pem", chain.leaf.cert.ToPem(), std::nullopt}},
                     down, absl::Now()),
             StatusIs(Code::kUnavailable, "database is down"));
}

TEST_CASE("MakeImportItemCarriesChainKeyAndMetadata") {
  TestChain chain = Chain("item.example.com");
  std::string pem =
      absl::StrCat(chain.leaf.cert.ToPem(), chain.intermediate.cert.ToPem());
  ImportPlan plan = Plan({{"item.pem", pem, std::nullopt}});
  ImportMetadata metadata;
  metadata.owner = "payments";
  metadata.environments = {"prod", "dev", "prod"};
  metadata.tags = {{"team", "pay"}};
  ImportItem item = MakeImportItem(plan, plan.leaves[0], metadata, "keys/k123");
  CHECK(item.der == chain.leaf.cert.der());
  CHECK(item.facts.sha256_hex == Sha(chain.leaf.cert));
  CHECK(item.chain_sha256 ==
        std::vector<std::string>{Sha(chain.intermediate.cert)});
  CHECK_FALSE(item.chain_complete);
  CHECK(item.key_name == "keys/k123");
  CHECK(item.origin == "item.pem");
  CHECK(item.display_name == "item.example.com");
  CHECK(item.owner == "payments");
  CHECK(item.environments == std::vector<std::string>{"dev", "prod"});
  CHECK(item.tags.at("team") == "pay");
  CHECK(item.source == "imported");
  CHECK(item.target_certificate_id.empty());
}

}  // namespace
}  // namespace certplane::inventory
