#include "services/vault/policy.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "libs/testing/status_matchers.h"

namespace certplane::vault {
namespace {

using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;

std::vector<std::string> Ids(std::initializer_list<const char*> ids) {
  return {ids.begin(), ids.end()};
}

TEST_CASE("EmptyPolicyDeniesEverything") {
  Policy policy = ValueOrDie(Policy::Parse(""));
  CHECK_FALSE(policy.Allows(Ids({"alice"}), Operation::kGet));
  CHECK_FALSE(Policy().Allows(Ids({"alice"}), Operation::kList));
}

TEST_CASE("PolicyAllowsOnlyListedOperationsForExactIdentities") {
  Policy policy = ValueOrDie(Policy::Parse(
      "# issuance\n"
      "spiffe://c/issuance  generate, create_csr,sign  # trailing comment\n"
      "\n"
      "agent-1\tget export\n"));
  CHECK(policy.Allows(Ids({"spiffe://c/issuance"}), Operation::kGenerate));
  CHECK(policy.Allows(Ids({"spiffe://c/issuance"}), Operation::kSign));
  CHECK_FALSE(policy.Allows(Ids({"spiffe://c/issuance"}), Operation::kExport));
  CHECK(policy.Allows(Ids({"agent-1"}), Operation::kExport));
  CHECK_FALSE(policy.Allows(Ids({"agent-2"}), Operation::kExport));
  CHECK_FALSE(policy.Allows(Ids({"Agent-1"}), Operation::kExport));
}

TEST_CASE("PolicyWildcardIdentityAppliesToEveryAuthenticatedCaller") {
  Policy policy = ValueOrDie(Policy::Parse("* list\nadmin *\n"));
  CHECK(policy.Allows(Ids({"anyone"}), Operation::kList));
  CHECK_FALSE(policy.Allows(Ids({"anyone"}), Operation::kGet));
  CHECK_FALSE(policy.Allows({}, Operation::kList));
  CHECK(policy.Allows(Ids({"admin"}), Operation::kRotate));
  CHECK(policy.Allows(Ids({"admin"}), Operation::kExport));
}

TEST_CASE("PolicyAllowsWhatAnyOfSeveralIdentitiesMay") {
  Policy policy = ValueOrDie(Policy::Parse("a get\nb sign\na delete\n"));
  CHECK(policy.Allows(Ids({"x", "b"}), Operation::kSign));
  CHECK(policy.Allows(Ids({"a"}), Operation::kDelete));
  CHECK_FALSE(policy.Allows(Ids({"x", "b"}), Operation::kGet));
}

TEST_CASE("PolicyRejectsUnknownOperationsAndMissingOperationsNamingTheLine") {
  CHECK_THAT(Policy::Parse("a get\nb steal\n"),
             StatusIs(absl::StatusCode::kInvalidArgument, "line 2"));
  CHECK_THAT(Policy::Parse("a get\nb steal\n"),
             StatusIs(absl::StatusCode::kInvalidArgument, "\"steal\""));
  CHECK_THAT(Policy::Parse("lonely\n"),
             StatusIs(absl::StatusCode::kInvalidArgument, "line 1"));
}

TEST_CASE("OperationNamesRoundTrip") {
  for (const char* name : {"generate", "import", "get", "list", "delete",
                           "create_csr", "sign", "export", "rotate"}) {
    CHECK(OperationName(ValueOrDie(ParseOperation(name))) == name);
  }
  CHECK_THAT(ParseOperation("Export"),
             StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_CASE("PolicyFromFileReadsTheFileAndNamesAMissingOne") {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      ("vault_policy_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string path = (dir / "policy.txt").string();
  std::ofstream(path) << "ops export\n";
  Policy policy = ValueOrDie(Policy::FromFile(path));
  CHECK(policy.Allows(Ids({"ops"}), Operation::kExport));
  CHECK_THAT(Policy::FromFile((dir / "missing.txt").string()),
             StatusIs(absl::StatusCode::kNotFound, "missing.txt"));
  std::ofstream(path) << "ops exp0rt\n";
  CHECK_THAT(Policy::FromFile(path),
             StatusIs(absl::StatusCode::kInvalidArgument, "policy.txt"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace certplane::vault
