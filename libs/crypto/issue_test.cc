#include "libs/crypto/issue.h"

#include <catch2/catch.hpp>

#include "libs/crypto/testing/test_pki.h"
#include "libs/testing/status_matchers.h"

namespace certplane::crypto {
namespace {

using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;

TEST_CASE("TestPkiChainLinksRootIntermediateAndLeaf") {
  testing::TestCertOptions options;
  options.common_name = "www.example.com";
  auto chain = ValueOrDie(testing::MakeChain(options));
  CHECK(chain.root.cert.IsIssuedBy(chain.root.cert));
  CHECK(chain.intermediate.cert.IsIssuedBy(chain.root.cert));
  CHECK(chain.leaf.cert.IsIssuedBy(chain.intermediate.cert));
  CHECK_FALSE(chain.leaf.cert.IsIssuedBy(chain.root.cert));
  CHECK_THAT(chain.leaf.cert.CheckKeyMatches(chain.leaf.key), IsOk());
}

}  // namespace
}  // namespace certplane::crypto
