#include "libs/crypto/chain.h"

#include <stdlib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/crypto/testing/test_pki.h"
#include "libs/testing/scratch_dir.h"
#include "libs/testing/status_matchers.h"

namespace certplane::crypto {
namespace {

using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;
using testing::MakeChain;
using testing::MakeIntermediateCa;
using testing::MakeLeaf;
using testing::MakeRootCa;
using testing::TestCertOptions;

TestCertOptions Leaf(const std::string& name) {
  TestCertOptions options;
  options.common_name = name;
  return options;
}

// One chain shared by the tests that only read it (key generation is the
// slow part).
const testing::TestChain& Chain() {
  static const auto* chain =
      new testing::TestChain(ValueOrDie(MakeChain(Leaf("www.example.com"))));
  return *chain;
}

TrustStore Roots(const Certificate& root) {
  return ValueOrDie(TrustStore::Create({root}));
}

// ----------------------------------------------------------------- ordering

TEST_CASE("RefusesToOrderMoreThanAHundredCertificates", "[chain]") {
  const auto& c = Chain();
  std::vector<Certificate> bag(kMaxChainCertificates + 1, c.leaf.cert);
  CHECK_THAT(OrderChain(bag),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "too many certificates in one chain (101 > 100)"));
  bag.pop_back();
  CHECK_THAT(OrderChain(bag), IsOk());
}

TEST_CASE("OrdersAShuffledBagWithDuplicatesLeafFirst", "[chain]") {
  const auto& c = Chain();
  OrderedChain ordered =
      ValueOrDie(OrderChain({c.root.cert, c.leaf.cert, c.intermediate.cert,
                             c.leaf.cert, c.root.cert}));
  CHECK(ordered.certificates == std::vector<Certificate>{c.leaf.cert,
                                                         c.intermediate.cert,
                                                         c.root.cert});
  CHECK(ordered.root_included);
  CHECK(ordered.was_reordered);
  CHECK(ordered.unrelated.empty());
}

TEST_CASE("KeepsAnOrderedChainAsItIs", "[chain]") {
  const auto& c = Chain();
  OrderedChain ordered =
      ValueOrDie(OrderChain({c.leaf.cert, c.intermediate.cert}));
  CHECK(ordered.certificates ==
        std::vector<Certificate>{c.leaf.cert, c.intermediate.cert});
  CHECK_FALSE(ordered.root_included);
  CHECK_FALSE(ordered.was_reordered);
}

TEST_CASE("SetsAsideCertificatesOffTheLeafsPath", "[chain]") {
  const auto& c = Chain();
  auto other_root = ValueOrDie(MakeRootCa(Leaf("Other Root")));
  OrderedChain ordered = ValueOrDie(
      OrderChain({other_root.cert, c.intermediate.cert, c.leaf.cert}));
  CHECK(ordered.certificates ==
        std::vector<Certificate>{c.leaf.cert, c.intermediate.cert});
  CHECK(ordered.unrelated == std::vector<Certificate>{other_root.cert});
  CHECK(ordered.was_reordered);
}

TEST_CASE("OrdersABagWithoutALeafFromItsLowestCa", "[chain]") {
  const auto& c = Chain();
  OrderedChain ordered =
      ValueOrDie(OrderChain({c.root.cert, c.intermediate.cert}));
  CHECK(ordered.certificates ==
        std::vector<Certificate>{c.intermediate.cert, c.root.cert});
  CHECK(ordered.root_included);
}

TEST_CASE("RefusesABagWithTwoUnrelatedLeaves", "[chain]") {
  const auto& c = Chain();
  auto other = ValueOrDie(MakeLeaf(c.intermediate, Leaf("api.example.com")));
  CHECK_THAT(OrderChain({c.leaf.cert, other.cert, c.intermediate.cert}),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "2 unrelated leaves ('CN=www.example.com', "
                      "'CN=api.example.com')"));
}

TEST_CASE("RefusesAnEmptyBag", "[chain]") {
  CHECK_THAT(OrderChain({}),
             StatusIs(absl::StatusCode::kInvalidArgument, "no certificates"));
}

TEST_CASE("RefusesABagOfUnrelatedCas", "[chain]") {
  auto a = ValueOrDie(MakeRootCa(Leaf("Root A")));
  auto b = ValueOrDie(MakeRootCa(Leaf("Root B")));
  CHECK_THAT(OrderChain({a.cert, b.cert}),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "cannot tell which certificate is the leaf"));
}

// ------------------------------------------------------------- trust store

TEST_CASE("TrustStoreNeedsARootAndDropsDuplicates", "[chain]") {
  CHECK_THAT(TrustStore::Create({}),
             StatusIs(absl::StatusCode::kInvalidArgument, "at least one"));
  const auto& c = Chain();
  TrustStore store = ValueOrDie(TrustStore::Create({c.root.cert, c.root.cert}));
  CHECK(store.roots().size() == 1);
  CHECK(store.Contains(c.root.cert));
  CHECK_FALSE(store.Contains(c.leaf.cert));
}

// ------------------------------------------------------------- verification

TEST_CASE("VerifiesAGoodChainWithOrWithoutItsRoot", "[chain]") {
  const auto& c = Chain();
  TrustStore roots = Roots(c.root.cert);
  absl::Time now = absl::Now();
  CHECK_THAT(VerifyChain({c.leaf.cert, c.intermediate.cert}, roots, now),
             IsOk());
  CHECK_THAT(VerifyChain({c.leaf.cert, c.intermediate.cert, c.root.cert}, roots,
                         now, "www.example.com"),
             IsOk());
  CHECK_THAT(VerifyChain({c.intermediate.cert}, roots, now), IsOk());
  CHECK_THAT(VerifyChain({c.root.cert}, roots, now), IsOk());
}

TEST_CASE("AcceptsAnIntermediateAsTrustAnchor", "[chain]") {
  const auto& c = Chain();
  CHECK_THAT(
      VerifyChain({c.leaf.cert}, Roots(c.intermediate.cert), absl::Now()),
      IsOk());
}

TEST_CASE("RefusesAnEmptyChain", "[chain]") {
  CHECK_THAT(VerifyChain({}, Roots(Chain().root.cert), absl::Now()),
             StatusIs(absl::StatusCode::kInvalidArgument, "no certificates"));
}

TEST_CASE("NamesTheMissingIntermediate", "[chain]") {
  const auto& c = Chain();
  CHECK_THAT(VerifyChain({c.leaf.cert}, Roots(c.root.cert), absl::Now()),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "no issuer found for 'CN=www.example.com' (issuer "
                      "'CN=certplane Test Intermediate CA')"));
  // Leaf then root, intermediate left out.
  CHECK_THAT(
      VerifyChain({c.leaf.cert, c.root.cert}, Roots(c.root.cert), absl::Now()),
      StatusIs(absl::StatusCode::kInvalidArgument,
               "no issuer found for 'CN=www.example.com'"));
}

TEST_CASE("NamesAMisorderedChain", "[chain]") {
  const auto& c = Chain();
  // Intermediate first: the leaf is certificate 2.
  CHECK_THAT(VerifyChain({c.intermediate.cert, c.leaf.cert}, Roots(c.root.cert),
                         absl::Now()),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "certificate 2 'CN=www.example.com' is issued by "
                      "certificate 1 'CN=certplane Test Intermediate CA' but "
                      "comes after it: the chain is misordered"));
  // Root before intermediate, although a valid path exists.
  CHECK_THAT(
      VerifyChain({c.leaf.cert, c.root.cert, c.intermediate.cert},
                  Roots(c.root.cert), absl::Now()),
      StatusIs(absl::StatusCode::kInvalidArgument,
               "certificate 2 'CN=certplane Test Root CA' is not the issuer of "
               "certificate 1 'CN=www.example.com'; its issuer 'CN=certplane "
               "Test Intermediate CA' is certificate 3: the chain is "
               "misordered"));
}

TEST_CASE("NamesAnIssuerWithTheRightNameButTheWrongKey", "[chain]") {
  const auto& c = Chain();
  // Same name as the real intermediate, different key.
  TestCertOptions options;
  options.common_name = "certplane Test Intermediate CA";
  auto impostor = ValueOrDie(MakeIntermediateCa(c.root, options));
  CHECK_THAT(VerifyChain({c.leaf.cert, impostor.cert}, Roots(c.root.cert),
                         absl::Now()),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "certificate 2 'CN=certplane Test Intermediate CA' has "
                      "the name of the issuer of certificate 1 "
                      "'CN=www.example.com' but its key does not verify"));
  // The same with the trust store holding a same-named root.
  options.common_name = "certplane Test Root CA";
  auto fake_root = ValueOrDie(MakeRootCa(options));
  CHECK_THAT(VerifyChain({c.leaf.cert, c.intermediate.cert},
                         Roots(fake_root.cert), absl::Now()),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "trust store certificate 'CN=certplane Test Root CA' "
                      "has the name of the issuer of certificate 2"));
}

TEST_CASE("NamesAnUntrustedRoot", "[chain]") {
  const auto& c = Chain();
  auto other = ValueOrDie(MakeRootCa(Leaf("Other Root")));
  CHECK_THAT(VerifyChain({c.leaf.cert, c.intermediate.cert, c.root.cert},
                         Roots(other.cert), absl::Now()),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "certificate 3 'CN=certplane Test Root CA' is a "
                      "self-signed root that is not in the trust store"));
  CHECK_THAT(VerifyChain({c.leaf.cert, c.intermediate.cert}, Roots(other.cert),
                         absl::Now()),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "no issuer found for 'CN=certplane Test Intermediate "
                      "CA' (issuer 'CN=certplane Test Root CA')"));
}

TEST_CASE("NamesAnExpiredLeafWithItsNotAfter", "[chain]") {
  TestCertOptions options = Leaf("old.example.com");
  options.not_before = absl::FromUnixSeconds(1600000000);  // 2020-09-13
  options.not_after = absl::FromUnixSeconds(1700000000);   // 2023-11-14
  auto chain = ValueOrDie(MakeChain(options));
  CHECK_THAT(VerifyChain({chain.leaf.cert, chain.intermediate.cert},
                         Roots(chain.root.cert), absl::Now()),
             StatusIs(absl::StatusCode::kFailedPrecondition,
                      "certificate 1 'CN=old.example.com' expired at "
                      "2023-11-14T22:13:20Z (notAfter)"));
  // The same chain was fine while the leaf was valid.
  CHECK_THAT(
      VerifyChain({chain.leaf.cert, chain.intermediate.cert},
                  Roots(chain.root.cert), absl::FromUnixSeconds(1650000000)),
      IsOk());
}

TEST_CASE("NamesTheLeafFirstWhenTheWholeChainHasExpired", "[chain]") {
  const auto& c = Chain();
  absl::Time later = c.root.cert.info().not_after + absl::Hours(1);
  CHECK_THAT(VerifyChain({c.leaf.cert, c.intermediate.cert}, Roots(c.root.cert),
                         later),
             StatusIs(absl::StatusCode::kFailedPrecondition,
                      "certificate 1 'CN=www.example.com' expired at"));
}

TEST_CASE("NamesANotYetValidLeafWithItsNotBefore", "[chain]") {
  TestCertOptions options = Leaf("future.example.com");
  options.not_before = absl::Now() + absl::Hours(24 * 30);
  options.not_after = absl::Now() + absl::Hours(24 * 60);
  auto chain = ValueOrDie(MakeChain(options));
  CHECK_THAT(VerifyChain({chain.leaf.cert, chain.intermediate.cert},
                         Roots(chain.root.cert), absl::Now()),
             StatusIs(absl::StatusCode::kFailedPrecondition,
                      "certificate 1 'CN=future.example.com' is not valid "
                      "until"));
  CHECK_THAT(
      VerifyChain({chain.leaf.cert, chain.intermediate.cert},
                  Roots(chain.root.cert), absl::Now() + absl::Hours(24 * 45)),
      IsOk());
}

TEST_CASE("NamesAHostnameMismatch", "[chain]") {
  const auto& c = Chain();
  CHECK_THAT(VerifyChain({c.leaf.cert, c.intermediate.cert}, Roots(c.root.cert),
                         absl::Now(), "api.example.com"),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "certificate 1 'CN=www.example.com' does not match "
                      "hostname 'api.example.com'; its names are "
                      "DNS:www.example.com"));
}

// Runs a shell script in a fresh temporary folder and returns the named
// PEM files it wrote, for chains certplane's own issuing code refuses to make.
std::vector<Certificate> CertificatesFromScript(
    const std::string& script, const std::vector<std::string>& names) {
  ::certplane::testing::ScratchDir dir("certplane-chain");
  dir.RunOrFail(script);
  std::vector<Certificate> out;
  for (const std::string& name : names) {
    out.push_back(ValueOrDie(Certificate::FromPem(dir.Read(name))));
  }
  return out;
}

TEST_CASE("LetsTheLibraryRefuseAPathLengthViolation", "[chain]") {
  // Root -> intermediate with pathLenConstraint 0 -> another CA -> leaf:
  // every link is named and signed correctly, but path validation says no.
  // (The constraint sits on an intermediate: BoringSSL, like RFC 5280, does
  // not apply a trust anchor's own pathLenConstraint.)
  std::vector<Certificate> certs = CertificatesFromScript(
      "printf '[req]\\ndistinguished_name=dn\\nprompt=no\\n[dn]\\n"
      "[short]\\nbasicConstraints=critical,CA:TRUE,pathlen:0\\n"
      "keyUsage=critical,keyCertSign\\n"
      "[ca]\\nbasicConstraints=critical,CA:TRUE\\n"
      "keyUsage=critical,keyCertSign\\n' > req.cnf && "
      "for name in root short deep leaf; do openssl req -new -config req.cnf "
      "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
      "-keyout $name.key -subj /CN=$name -out $name.csr || exit 1; done && "
      "openssl x509 -req -in root.csr -key root.key -days 2 -extfile req.cnf "
      "-extensions ca -out root.pem && "
      "openssl x509 -req -in short.csr -CA root.pem -CAkey root.key -days 2 "
      "-extfile req.cnf -extensions short -out short.pem && "
      "openssl x509 -req -in deep.csr -CA short.pem -CAkey short.key -days 2 "
      "-extfile req.cnf -extensions ca -out deep.pem && "
      "openssl x509 -req -in leaf.csr -CA deep.pem -CAkey deep.key -days 2 "
      "-out leaf.pem",
      {"root.pem", "short.pem", "deep.pem", "leaf.pem"});
  CHECK_THAT(
      VerifyChain({certs[3], certs[2], certs[1]}, Roots(certs[0]), absl::Now()),
      StatusIs(absl::StatusCode::kInvalidArgument,
               "chain verification failed at certificate 3 "
               "'CN=short': path length constraint exceeded"));
}

TEST_CASE("DetectsAKeyThatDoesNotMatchTheLeaf", "[chain]") {
  const auto& c = Chain();
  CHECK_THAT(c.leaf.cert.CheckKeyMatches(c.intermediate.key),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "private key does not match certificate"));
  CHECK_THAT(c.leaf.cert.CheckKeyMatches(c.leaf.key), IsOk());
}

}  // namespace
}  // namespace certplane::crypto
