#include "libs/server/config.h"

#include <stdlib.h>

#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "libs/server/server_options.h"
#include "libs/testing/status_matchers.h"

ABSL_FLAG(int, config_test_port, 7000, "A flag only this test uses.");
ABSL_FLAG(std::string, config_test_name, "default-name", "Another one.");

namespace certplane::server {
namespace {

using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;

// Restores every flag and removes the variables a test set.
struct FlagAndEnvironmentReset {
  absl::FlagSaver saver;
  ~FlagAndEnvironmentReset() {
    for (const char* name :
         {"CERTPLANE_CONFIG_TEST_PORT", "CERTPLANE_CONFIG_TEST_NAME"}) {
      unsetenv(name);
    }
  }
};

TEST_CASE("EnvironmentVariableNameIsPrefixedUpperCase") {
  CHECK(EnvironmentVariableForFlag("tls_cert_file") ==
        "CERTPLANE_TLS_CERT_FILE");
  CHECK(EnvironmentVariableForFlag("log-level") == "CERTPLANE_LOG_LEVEL");
}

TEST_CASE("DefaultAppliesWithoutEnvironmentOrCommandLine") {
  FlagAndEnvironmentReset reset;
  REQUIRE_THAT(ApplyFlagsFromEnvironment(), IsOk());
  CHECK(absl::GetFlag(FLAGS_config_test_port) == 7000);
}

TEST_CASE("EnvironmentOverridesDefault") {
  FlagAndEnvironmentReset reset;
  setenv("CERTPLANE_CONFIG_TEST_PORT", "7443", 1);
  REQUIRE_THAT(ApplyFlagsFromEnvironment(), IsOk());
  CHECK(absl::GetFlag(FLAGS_config_test_port) == 7443);
  CHECK(absl::GetFlag(FLAGS_config_test_name) == "default-name");
}

TEST_CASE("CommandLineOverridesEnvironment") {
  FlagAndEnvironmentReset reset;
  setenv("CERTPLANE_CONFIG_TEST_PORT", "7443", 1);
  setenv("CERTPLANE_CONFIG_TEST_NAME", "from-env", 1);
  std::string arg0 = "config_test";
  std::string arg1 = "--config_test_port=9000";
  char* argv[] = {arg0.data(), arg1.data()};
  ParseCommandLineWithEnvironment(2, argv);
  CHECK(absl::GetFlag(FLAGS_config_test_port) == 9000);
  CHECK(absl::GetFlag(FLAGS_config_test_name) == "from-env");
}

TEST_CASE("BadEnvironmentValueNamesTheVariableAndTheFlag") {
  FlagAndEnvironmentReset reset;
  setenv("CERTPLANE_CONFIG_TEST_PORT", "seventy", 1);
  CHECK_THAT(ApplyFlagsFromEnvironment(),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "environment variable CERTPLANE_CONFIG_TEST_PORT="
                      "\"seventy\" is not a valid value for flag "
                      "--config_test_port"));
}

TEST_CASE("ServerOptionsFromFlagsReadsTheRuntimeFlags") {
  FlagAndEnvironmentReset reset;
  SetServerFlagDefaults("127.0.0.1:7001", "127.0.0.1:9101");
  setenv("CERTPLANE_INSECURE_PLAINTEXT_FOR_DEVELOPMENT", "true", 1);
  setenv("CERTPLANE_SHUTDOWN_GRACE_PERIOD", "3s", 1);
  absl::Status applied = ApplyFlagsFromEnvironment();
  unsetenv("CERTPLANE_INSECURE_PLAINTEXT_FOR_DEVELOPMENT");
  unsetenv("CERTPLANE_SHUTDOWN_GRACE_PERIOD");
  REQUIRE_THAT(applied, IsOk());
  ServerOptions options = ValueOrDie(ServerOptionsFromFlags("vault"));
  CHECK(options.app_name == "vault");
  CHECK(options.listen_address == "127.0.0.1:7001");
  CHECK(options.metrics_address == "127.0.0.1:9101");
  CHECK(options.insecure_plaintext_for_development);
  CHECK(options.shutdown_grace_period == absl::Seconds(3));
}

TEST_CASE("ServerOptionsFromFlagsRejectsUnknownLogLevel") {
  FlagAndEnvironmentReset reset;
  absl::SetFlag(&FLAGS_insecure_plaintext_for_development, true);
  absl::SetFlag(&FLAGS_log_level, std::string("loud"));
  CHECK_THAT(ServerOptionsFromFlags("vault"),
             StatusIs(absl::StatusCode::kInvalidArgument, "--log_level"));
}

TEST_CASE("TlsIsRequiredWithoutTheDevelopmentFlag") {
  ServerOptions options;
  options.listen_address = "0.0.0.0:8443";
  CHECK_THAT(ValidateServerOptions(options),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "--tls_cert_file is required"));
  options.tls_cert_file = "cert.pem";
  options.tls_key_file = "key.pem";
  CHECK_THAT(ValidateServerOptions(options),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "--tls_client_ca_file is required"));
  options.tls_client_ca_file = "ca.pem";
  CHECK_THAT(ValidateServerOptions(options), IsOk());
  for (absl::Duration bad :
       {absl::ZeroDuration(), absl::Milliseconds(500), absl::Hours(25)}) {
    options.tls_reload_interval = bad;
    CHECK_THAT(ValidateServerOptions(options),
               StatusIs(absl::StatusCode::kInvalidArgument,
                        "--tls_reload_interval must be from 1s to 24h"));
  }
}

TEST_CASE("PlaintextIsRefusedOnNonLoopbackAddresses") {
  ServerOptions options;
  options.insecure_plaintext_for_development = true;
  for (const char* address : {"127.0.0.1:0", "[::1]:50051", "localhost:1"}) {
    options.listen_address = address;
    CHECK_THAT(ValidateServerOptions(options), IsOk());
  }
  for (const char* address : {"0.0.0.0:8443", "[::]:8443", "10.0.0.1:1"}) {
    options.listen_address = address;
    CHECK_THAT(ValidateServerOptions(options),
               StatusIs(absl::StatusCode::kInvalidArgument,
                        "serves only loopback addresses"));
  }
}

TEST_CASE("MalformedAddressesAreRejectedNamingTheFlag") {
  ServerOptions options;
  options.insecure_plaintext_for_development = true;
  for (const char* address :
       {"127.0.0.1", "127.0.0.1:http", ":80", "127.0.0.1:70000", "::1:80"}) {
    options.listen_address = address;
    CHECK_THAT(
        ValidateServerOptions(options),
        StatusIs(absl::StatusCode::kInvalidArgument, "--listen_address"));
  }
  options.listen_address = "127.0.0.1:0";
  options.metrics_address = "nope";
  CHECK_THAT(ValidateServerOptions(options),
             StatusIs(absl::StatusCode::kInvalidArgument, "--metrics_address"));
}

TEST_CASE("NonPositiveGracePeriodIsRejected") {
  ServerOptions options;
  options.insecure_plaintext_for_development = true;
  options.shutdown_grace_period = absl::ZeroDuration();
  CHECK_THAT(
      ValidateServerOptions(options),
      StatusIs(absl::StatusCode::kInvalidArgument, "--shutdown_grace_period"));
}

}  // namespace
}  // namespace certplane::server
