#include "services/testing/loopback.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "libs/db/migrate.h"
#include "libs/server/server_options.h"
#include "libs/status/grpc_status.h"
#include "libs/testing/db_test_util.h"
#include "libs/testing/status_matchers.h"
#include "services/vault/file_kek_source.h"
#include "services/vault/migrations.h"
#include "services/vault/policy.h"
#include "services/vault/vault_service.h"
#include "services/vault/vault_store.h"

namespace certplane::testing {

std::filesystem::path FreshTestDir(absl::string_view prefix) {
  static std::atomic<int> counter{0};
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      absl::StrCat(prefix, "_", ::getpid(), "_", counter++);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

int FreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) ==
          0);
  socklen_t length = sizeof(address);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) ==
          0);
  ::close(fd);
  return ntohs(address.sin_port);
}

namespace {

std::unique_ptr<server::ServerRunner> Serve(grpc::Service* service,
                                            absl::string_view name, int port) {
  server::ServerOptions options;
  options.app_name = "loopback-test";
  options.listen_address = absl::StrCat("127.0.0.1:", port);
  options.insecure_plaintext_for_development = true;
  options.handle_shutdown_signals = false;
  options.shutdown_grace_period = absl::Seconds(1);
  auto runner = std::make_unique<server::ServerRunner>(options);
  REQUIRE_THAT(runner->AddService(service, name), IsOk());
  REQUIRE_THAT(runner->Start(), IsOk());
  return runner;
}

}  // namespace

std::unique_ptr<server::ServerRunner> ServeForTest(grpc::Service* service,
                                                   absl::string_view name) {
  return Serve(service, name, 0);
}

std::shared_ptr<grpc::Channel> ChannelTo(server::ServerRunner& runner) {
  return grpc::CreateChannel(absl::StrCat("127.0.0.1:", runner.port()),
                             grpc::InsecureChannelCredentials());
}

TestVault::TestVault(db::Dialect dialect, const std::string& policy)
    : db_(OpenFreshDatabase(dialect)), dir_(FreshTestDir("test_vault")) {
  REQUIRE_THAT(db::Migrate(*db_, vault::VaultMigrations()), IsOk());
  store_ = vault::NewSqlVaultStore(db_.get());
  const std::string kek_path = (dir_ / "kek").string();
  REQUIRE_THAT(vault::CreateKekFile(kek_path), IsOk());
  kek_ = ValueOrDie(vault::FileKekSource::Open(kek_path));
  policy_ =
      std::make_unique<vault::Policy>(ValueOrDie(vault::Policy::Parse(policy)));
  vault::VaultServiceOptions options;
  options.allow_development_identity = true;
  service_ = std::make_unique<vault::VaultService>(
      *store_, *kek_, *policy_, [] { return absl::Now(); }, options);
  REQUIRE_THAT(service_->Start(), IsOk());
  ServeAgain();
}

TestVault::~TestVault() {
  runner_.reset();
  service_.reset();
  std::filesystem::remove_all(dir_);
}

void TestVault::StopServing() { runner_.reset(); }

void TestVault::ServeAgain() {
  runner_ = Serve(service_.get(), vault::v1::VaultService::service_full_name(),
                  port_);
  if (port_ == 0) {
    port_ = runner_->port();
    channel_ = ChannelTo(*runner_);
  }
}

std::vector<vault::v1::Key> TestVault::Keys() {
  auto stub = vault::v1::VaultService::NewStub(channel_);
  std::vector<vault::v1::Key> keys;
  vault::v1::ListKeysRequest request;
  request.set_page_size(1000);
  do {
    grpc::ClientContext context;
    context.AddMetadata(vault::kDevelopmentIdentityHeader, "admin");
    vault::v1::ListKeysResponse response;
    REQUIRE_THAT(FromGrpcStatus(stub->ListKeys(&context, request, &response)),
                 IsOk());
    keys.insert(keys.end(), response.keys().begin(), response.keys().end());
    request.set_page_token(response.next_page_token());
  } while (!request.page_token().empty());
  return keys;
}

}  // namespace certplane::testing
