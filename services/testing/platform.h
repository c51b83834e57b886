// Test helper: the whole certplane platform as real processes on loopback
// (certplane-vault, -inventory, -issuance and -gateway), the way `make run`
// starts it: plaintext development mode, each service on its own fresh
// database (SQLite files or PostgreSQL databases of the test server).
//
//   LocalPlatform platform(kBinaries, {.dialect = db::Dialect::kPostgres});
//   auto channel = platform.gateway_channel();
//   // "authorization: Bearer " + platform.admin_token()
//
// The constructor waits until every service answers its health check;
// failures are Catch2 REQUIRE failures. The destructor stops every process
// with SIGTERM. Not thread-safe.
#ifndef CERTPLANE_SERVICES_TESTING_PLATFORM_H_
#define CERTPLANE_SERVICES_TESTING_PLATFORM_H_

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "libs/db/database.h"
#include "libs/server/testing/test_client.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace certplane::testing {

struct PlatformBinaries {
  std::string vault;
  std::string inventory;
  std::string issuance;
  std::string gateway;
};

struct LocalPlatformOptions {
  db::Dialect dialect = db::Dialect::kSqlite;
  // IssuanceConfig text; empty: the service's default (an internal CA, an
  // upload issuer, one approval per order).
  std::string issuance_config{};
  std::vector<std::string> gateway_flags{};
  // Service identities from `certplane-admin bootstrap` and mTLS between
  // every process (TLS at the gateway's front), as `make run` runs it;
  // otherwise plaintext development mode.
  bool mtls = false;
};

// Runs `argv` (argv[0] a path) to completion with `env` added; its exit
// code and stdout (stderr goes to the test's stderr).
struct CommandResult {
  int exit_code = -1;
  std::string out;
};
CommandResult RunCommand(const std::vector<std::string>& argv,
                         const std::vector<std::string>& env = {},
                         absl::Duration timeout = absl::Seconds(120));

class LocalPlatform {
 public:
  LocalPlatform(const PlatformBinaries& binaries, LocalPlatformOptions options);
  ~LocalPlatform();

  LocalPlatform(const LocalPlatform&) = delete;
  LocalPlatform& operator=(const LocalPlatform&) = delete;

  int gateway_port() const { return gateway_port_; }
  // The gateway's HTTP/JSON front.
  int http_port() const { return http_port_; }
  std::shared_ptr<grpc::Channel> gateway_channel() const;
  // The environment for the certplane CLI to reach this gateway as the
  // holder of `token`.
  std::vector<std::string> CliEnvironment(const std::string& token) const;
  // The admin token the gateway's bootstrap wrote.
  const std::string& admin_token() const { return admin_token_; }
  const std::string& gateway_database_url() const { return gateway_db_; }
  const std::filesystem::path& dir() const { return dir_; }

  // Stops the gateway and starts it again on the same port and data.
  void RestartGateway();

 private:
  std::unique_ptr<server::testing::ChildProcess> Start(
      const std::string& name, const std::string& program,
      std::vector<std::string> flags, int port);
  void StartGateway();

  PlatformBinaries binaries_;
  LocalPlatformOptions options_;
  std::filesystem::path dir_;
  std::filesystem::path pki_;  // Empty: plaintext.
  std::string gateway_db_;
  int vault_port_ = 0;
  int inventory_port_ = 0;
  int issuance_port_ = 0;
  int gateway_port_ = 0;
  int http_port_ = 0;
  std::string admin_token_;
  // Stopped in reverse order.
  std::vector<std::unique_ptr<server::testing::ChildProcess>> processes_;
  std::unique_ptr<server::testing::ChildProcess> gateway_;
};

}  // namespace certplane::testing

#endif  // CERTPLANE_SERVICES_TESTING_PLATFORM_H_
