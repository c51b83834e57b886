#include "libs/db/internal/url.h"

#include <catch2/catch.hpp>

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

}  // namespace
}  // namespace certplane::db::internal
