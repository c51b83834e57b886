#include "services/admin/bootstrap.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "libs/crypto/certificate.h"
#include "libs/crypto/chain.h"
#include "libs/testing/status_matchers.h"
#include "services/testing/loopback.h"

namespace certplane::admin {
namespace {

using ::certplane::testing::ValueOrDie;

std::string Read(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST_CASE("BootstrapMakesACaAndAnIdentityPerServiceAndKeepsThem") {
  std::filesystem::path dir = testing::FreshTestDir("bootstrap") / "pki";
  BootstrapOptions options;
  options.dir = dir.string();
  options.hosts = {"certplane.example.internal", "10.0.0.7"};
  BootstrapReport first = ValueOrDie(Bootstrap(options));
  CHECK(first.created.size() == 5);
  CHECK(first.kept.empty());
  for (const std::string name : {"ca.key", "gateway.key", "vault.key",
                                 "inventory.key", "issuance.key"}) {
    struct stat st;
    REQUIRE(::stat((dir / name).c_str(), &st) == 0);
    CHECK((st.st_mode & 077) == 0);
  }
  crypto::Certificate ca =
      ValueOrDie(crypto::Certificate::FromPem(Read(dir / "ca.pem")));
  crypto::Certificate vault =
      ValueOrDie(crypto::Certificate::FromPem(Read(dir / "vault.pem")));
  CHECK(ca.info().is_ca);
  CHECK(vault.info().issuer == ca.info().subject);
  std::vector<std::string> sans;
  for (const auto& san : vault.info().sans) sans.push_back(san.value);
  CHECK(sans[0] == "spiffe://certplane/vault");
  CHECK(std::find(sans.begin(), sans.end(), "127.0.0.1") != sans.end());
  CHECK(std::find(sans.begin(), sans.end(), "10.0.0.7") != sans.end());
  CHECK(std::find(sans.begin(), sans.end(), "certplane.example.internal") !=
        sans.end());

  // Again: everything is kept.
  BootstrapReport second = ValueOrDie(Bootstrap(options));
  CHECK(second.created.empty());
  CHECK(second.kept.size() == 5);
  CHECK(Read(dir / "vault.pem") == vault.ToPem());

  // A service certificate about to expire (seen from a year later) is
  // reissued under the same CA.
  options.now = absl::Now() + absl::Hours(24 * 350);
  BootstrapReport later = ValueOrDie(Bootstrap(options));
  CHECK(later.created.size() == 4);
  CHECK(Read(dir / "ca.pem") == ca.ToPem());
  CHECK(Read(dir / "vault.pem") != vault.ToPem());
}

TEST_CASE("BootstrapRefusesAKeyThatIsNotTheCas") {
  std::filesystem::path dir = testing::FreshTestDir("bootstrap_bad") / "pki";
  BootstrapOptions options;
  options.dir = dir.string();
  REQUIRE(Bootstrap(options).ok());
  std::filesystem::path other =
      testing::FreshTestDir("bootstrap_other") / "pki";
  BootstrapOptions other_options;
  other_options.dir = other.string();
  REQUIRE(Bootstrap(other_options).ok());
  std::filesystem::copy_file(other / "ca.key", dir / "ca.key",
                             std::filesystem::copy_options::overwrite_existing);
  CHECK_THAT(Bootstrap(options).status(),
             testing::StatusIs(absl::StatusCode::kFailedPrecondition,
                               "does not belong"));
}

}  // namespace
}  // namespace certplane::admin
