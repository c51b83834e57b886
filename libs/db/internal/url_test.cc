#include "libs/db/internal/url.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/db/database.h"
#include "libs/testing/status_matchers.h"

namespace certplane::db::internal {
namespace {

using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;

TEST_CASE("PostgresUrlIsPassedToLibpqUnchanged") {
  for (const char* url : {"postgresql://svc@db:5432/certplane?sslmode=require",
                          "postgres://svc@/certplane?host=/run/pg"}) {
    ParsedUrl parsed = ValueOrDie(ParseDatabaseUrl(url));
    CHECK(parsed.dialect == Dialect::kPostgres);
    CHECK(parsed.target == url);
  }
}

TEST_CASE("SqliteUrlsGiveAbsoluteRelativeAndMemoryPaths") {
  CHECK(ValueOrDie(ParseDatabaseUrl("sqlite:///var/lib/c/x.db")).target ==
        "/var/lib/c/x.db");
  CHECK(ValueOrDie(ParseDatabaseUrl("sqlite://data/x.db")).target ==
        "data/x.db");
  ParsedUrl memory = ValueOrDie(ParseDatabaseUrl("sqlite::memory:"));
  CHECK(memory.dialect == Dialect::kSqlite);
  CHECK(memory.target == ":memory:");
}

TEST_CASE("UnknownSchemeIsInvalidArgumentNamingTheScheme") {
  CHECK_THAT(ParseDatabaseUrl("mysql://root:hunter2@db/x"),
             StatusIs(absl::StatusCode::kInvalidArgument, "\"mysql\""));
  absl::Status status = ParseDatabaseUrl("mysql://root:hunter2@db/x").status();
  CHECK_FALSE(absl::StrContains(status.message(), "hunter2"));
  CHECK_THAT(ParseDatabaseUrl("just-a-path.db"),
             StatusIs(absl::StatusCode::kInvalidArgument, "no scheme"));
  CHECK_THAT(ParseDatabaseUrl(""),
             StatusIs(absl::StatusCode::kInvalidArgument));
  CHECK_THAT(ParseDatabaseUrl("sqlite:relative.db"),
             StatusIs(absl::StatusCode::kInvalidArgument, "sqlite:///"));
  CHECK_THAT(ParseDatabaseUrl("postgresql:db"),
             StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_CASE("RedactUrlHidesPasswordsInUserinfoAndQuery") {
  CHECK(RedactUrl("postgresql://svc:s3cret@db:5432/x") ==
        "postgresql://svc:***@db:5432/x");
  CHECK(RedactUrl("postgresql://svc@db/x?password=s3cret&sslmode=require") ==
        "postgresql://svc@db/x?password=***&sslmode=require");
  CHECK(RedactUrl("postgresql://svc@db/x") == "postgresql://svc@db/x");
  CHECK_FALSE(absl::StrContains(
      ValueOrDie(ParseDatabaseUrl("postgresql://a:p%40ss@h/d")).redacted,
      "p%40ss"));
}

TEST_CASE("RedactUrlHidesPasswordsWithUrlSpecialCharactersWhole") {
  for (const std::string password :
       {"hun#ter2", "p/ss?wd", "hunter%zz2", "a@b", "x:y", "p%40ss"}) {
    INFO("password: " << password);
    std::string url =
        absl::StrCat("postgresql://svc:", password, "@db:5432/x?sslmode=a");
    std::string redacted = RedactUrl(url);
    CHECK(redacted == "postgresql://svc:***@db:5432/x?sslmode=a");
    CHECK(ValueOrDie(ParseDatabaseUrl(url)).redacted == redacted);
    std::string query = absl::StrCat(
        "postgresql://svc@db/x?password=", password, "&sslmode=require");
    CHECK_FALSE(absl::StrContains(RedactUrl(query), password));
  }
}

TEST_CASE("UrlSecretsListsRawAndPercentDecodedPasswordsLongestFirst") {
  std::vector<std::string> secrets =
      UrlSecrets("postgresql://svc:p%40ss@db/x?sslpassword=k%2Fey");
  CHECK(secrets ==
        std::vector<std::string>{"p%40ss", "k%2Fey", "p@ss", "k/ey"});
  CHECK(UrlSecrets("postgresql://svc:bad%zz@db/x") ==
        std::vector<std::string>{"bad%zz"});
  CHECK(UrlSecrets("postgresql://svc@db/x").empty());
  CHECK(ScrubSecrets("no p@ss here, p%40ss", secrets) == "no *** here, ***");
}

}  // namespace
}  // namespace certplane::db::internal
