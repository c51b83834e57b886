// Test helpers: certplane services served in-process on loopback, the way
// service tests start their real peers.
//
//   TestVault vault(db::Dialect::kSqlite, "admin *\ninventory import, get\n");
//   auto stub = vault::v1::VaultService::NewStub(vault.channel());
//
// Each TestVault owns a fresh database (testing::OpenFreshDatabase), a
// key-file KEK in a temporary folder and a plaintext server on 127.0.0.1
// with port 0 that accepts x-certplane-dev-identity. Failures are Catch2
// REQUIRE failures. Not thread-safe to construct; the servers are.
#ifndef CERTPLANE_SERVICES_TESTING_LOOPBACK_H_
#define CERTPLANE_SERVICES_TESTING_LOOPBACK_H_

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "certplane/vault/v1/vault.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "libs/db/database.h"
#include "libs/server/server_runner.h"

namespace certplane::vault {
class FileKekSource;
class VaultService;
class VaultStore;
class Policy;
}  // namespace certplane::vault

namespace certplane::testing {

// A fresh, empty temporary folder, unique in the process.
std::filesystem::path FreshTestDir(absl::string_view prefix);

// A TCP port on 127.0.0.1 that was free a moment ago (for child processes
// that need their port on the command line).
int FreeLoopbackPort();

// Serves `service` (not owned) on 127.0.0.1:0, plaintext, no signal
// handling, a 1 s grace period.
std::unique_ptr<server::ServerRunner> ServeForTest(grpc::Service* service,
                                                   absl::string_view name);
std::shared_ptr<grpc::Channel> ChannelTo(server::ServerRunner& runner);

class TestVault {
 public:
  // `policy` in the vault's policy file syntax (services/vault/policy.h).
  TestVault(db::Dialect dialect, const std::string& policy);
  ~TestVault();

  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  int port() { return runner_->port(); }
  // Every key (as "admin", which the policy must allow to list).
  std::vector<vault::v1::Key> Keys();
  // Stops serving (calls fail with UNAVAILABLE) and serves again on the
  // same port.
  void StopServing();
  void ServeAgain();

 private:
  std::unique_ptr<db::Database> db_;
  std::filesystem::path dir_;
  std::unique_ptr<vault::VaultStore> store_;
  std::unique_ptr<vault::FileKekSource> kek_;
  std::unique_ptr<vault::Policy> policy_;
  std::unique_ptr<vault::VaultService> service_;
  std::unique_ptr<server::ServerRunner> runner_;
  int port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace certplane::testing

#endif  // CERTPLANE_SERVICES_TESTING_LOOPBACK_H_
