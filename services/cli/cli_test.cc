#include <catch2/catch.hpp>
#include <cstdlib>
#include <sstream>

#include "certplane/inventory/v1/inventory.pb.h"
#include "services/cli/args.h"
#include "services/cli/commands.h"
#include "services/cli/output.h"

namespace certplane::cli {
namespace {

TEST_CASE("FlagsTakeValuesInEitherFormAndBooleansStandAlone") {
  auto args =
      ParseArgs({"cert", "import", "a.pem", "--owner", "payments", "--dry-run",
                 "b.pem", "--env=prod", "--env", "dev", "-o", "json"},
                {"dry-run"});
  REQUIRE(args.ok());
  CHECK(args->positional ==
        std::vector<std::string>{"cert", "import", "a.pem", "b.pem"});
  CHECK(args->Get("owner") == "payments");
  CHECK(args->Bool("dry-run"));
  CHECK(args->All("env") == std::vector<std::string>{"prod", "dev"});
  CHECK(args->Get("output") == "json");
  CHECK_FALSE(ParseArgs({"cert", "list", "--filter"}, {}).ok());
  CHECK_FALSE(CheckFlags(*args, {"owner"}).ok());
  CHECK(CheckFlags(*args, {"owner", "dry-run", "env"}).ok());
}

TEST_CASE("SettingsComeFromFlagsThenEnvironmentThenDefaults") {
  ::setenv("CERTPLANE_CONFIG", "/nonexistent/certplane-config", 1);
  ::setenv("CERTPLANE_SERVER", "env-host:1", 1);
  ::setenv("CERTPLANE_TOKEN", "cpt_env", 1);
  auto from_env = ResolveSettings(*ParseArgs({"whoami"}, {}));
  REQUIRE(from_env.ok());
  CHECK(from_env->server == "env-host:1");
  CHECK(from_env->token == "cpt_env");
  auto from_flags =
      ResolveSettings(*ParseArgs({"whoami", "--server", "flag-host:2",
                                  "--token", "cpt_flag", "--timeout", "5s"},
                                 {}));
  REQUIRE(from_flags.ok());
  CHECK(from_flags->server == "flag-host:2");
  CHECK(from_flags->token == "cpt_flag");
  CHECK(from_flags->timeout == absl::Seconds(5));
  ::unsetenv("CERTPLANE_SERVER");
  ::unsetenv("CERTPLANE_TOKEN");
  CHECK(ResolveSettings(*ParseArgs({"whoami"}, {}))->server ==
        "127.0.0.1:7001");
  CHECK(*ParseDurationArg("90d") == absl::Hours(24 * 90));
  CHECK_FALSE(ParseDurationArg("soon").ok());
}

TEST_CASE("MessagesPrintAsTableJsonAndYaml") {
  inventory::v1::ListCertificatesResponse response;
  auto* c = response.add_certificates();
  c->set_certificate_id("c1");
  c->set_owner("payments");
  c->add_environments("prod");
  c->add_environments("dev");
  std::vector<Column> columns = {
      {"ID", "certificateId"}, {"OWNER", "owner"}, {"ENV", "environments"}};
  std::ostringstream table, json, yaml;
  PrintList(response, "certificates", Format::kTable, columns, table);
  CHECK(table.str() == "ID  OWNER     ENV\nc1  payments  prod,dev\n");
  PrintList(response, "certificates", Format::kJson, columns, json);
  CHECK(json.str().find("\"certificateId\": \"c1\"") != std::string::npos);
  PrintList(response, "certificates", Format::kYaml, columns, yaml);
  CHECK(yaml.str() ==
        "certificates:\n"
        "- certificateId: \"c1\"\n"
        "  environments:\n"
        "  - \"prod\"\n"
        "  - \"dev\"\n"
        "  owner: \"payments\"\n");
  CHECK_FALSE(ParseFormat("xml").ok());
}

TEST_CASE("UsageErrorsExitWithTwoAndUnreachableServersWithFive") {
  ::setenv("CERTPLANE_CONFIG", "/nonexistent/certplane-config", 1);
  std::ostringstream out, err;
  CHECK(Run({"certplane"}, out, err) == 2);
  CHECK(Run({"certplane", "cert", "fly"}, out, err) == 2);
  CHECK(err.str().find("unknown command \"cert fly\"") != std::string::npos);
  CHECK(Run({"certplane", "cert", "get"}, out, err) == 2);
  CHECK(Run({"certplane", "cert", "list", "--bogus", "1"}, out, err) == 2);
  CHECK(Run({"certplane", "-o", "xml", "whoami"}, out, err) == 2);
  CHECK(Run({"certplane", "--insecure", "--server", "127.0.0.1:1", "--timeout",
             "2s", "whoami"},
            out, err) == 5);
  CHECK(Run({"certplane", "help"}, out, err) == 0);
}

}  // namespace
}  // namespace certplane::cli
