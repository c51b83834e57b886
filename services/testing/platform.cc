#include "services/testing/platform.h"

#include <signal.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "libs/testing/db_test_util.h"
#include "libs/testing/status_matchers.h"
#include "services/admin/bootstrap.h"
#include "services/testing/loopback.h"

namespace certplane::testing {
namespace {

using ::certplane::testing::ValueOrDie;

constexpr char kVaultPolicy[] =
    "certplane-gateway  *\n"
    "inventory          import, get, export\n"
    "issuance           generate, get, create_csr, sign, delete\n";

constexpr char kMtlsVaultPolicy[] =
    "spiffe://certplane/gateway    *\n"
    "spiffe://certplane/inventory  import, get, export\n"
    "spiffe://certplane/issuance   generate, get, create_csr, sign, delete\n";

void WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  REQUIRE(out.good());
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Client credentials for the platform: plaintext, or TLS with the
// platform CA and (for the services, which require one) the gateway's
// certificate as the client's.
std::shared_ptr<grpc::ChannelCredentials> Credentials(
    const std::filesystem::path& pki, bool client_certificate) {
  if (pki.empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadFile(pki / "ca.pem");
  if (client_certificate) {
    ssl.pem_cert_chain = ReadFile(pki / "gateway.pem");
    ssl.pem_private_key = ReadFile(pki / "gateway.key");
  }
  return grpc::SslCredentials(ssl);
}

void WaitHealthy(const std::string& name, int port,
                 const std::filesystem::path& pki) {
  const absl::Time give_up = absl::Now() + absl::Seconds(90);
  while (true) {
    // A fresh channel each time: a refused connection would otherwise put
    // the channel into reconnect backoff for seconds.
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                       Credentials(pki, true));
    auto status = server::testing::CheckHealth(channel, "");
    if (status.ok() &&
        *status == certplane::testing::v1::WireHealthCheckResponse::SERVING) {
      return;
    }
    INFO(name << " on port " << port
              << " is not healthy: " << status.status().ToString());
    REQUIRE(absl::Now() < give_up);
    absl::SleepFor(absl::Milliseconds(100));
  }
}

}  // namespace

CommandResult RunCommand(const std::vector<std::string>& argv,
                         const std::vector<std::string>& env,
                         absl::Duration timeout) {
  REQUIRE(!argv.empty());
  std::vector<std::string> args(argv.begin() + 1, argv.end());
  auto child =
      ValueOrDie(server::testing::ChildProcess::Start(argv[0], args, env));
  CommandResult result;
  const absl::Time give_up = absl::Now() + timeout;
  while (true) {
    absl::StatusOr<std::string> line = child->ReadLine(give_up - absl::Now());
    if (!line.ok()) {
      INFO(argv[0] << ": " << line.status().ToString());
      REQUIRE(absl::IsOutOfRange(line.status()));  // EOF, not a timeout.
      break;
    }
    absl::StrAppend(&result.out, *line, "\n");
  }
  result.exit_code = ValueOrDie(child->WaitForExit(absl::Seconds(30)));
  return result;
}

LocalPlatform::LocalPlatform(const PlatformBinaries& binaries,
                             LocalPlatformOptions options)
    : binaries_(binaries),
      options_(std::move(options)),
      dir_(FreshTestDir("platform")) {
  const db::Dialect d = options_.dialect;
  if (options_.mtls) {
    admin::BootstrapOptions bootstrap;
    bootstrap.dir = (dir_ / "pki").string();
    REQUIRE(admin::Bootstrap(bootstrap).ok());
    pki_ = dir_ / "pki";
  }
  WriteFile(dir_ / "vault.policy",
            options_.mtls ? kMtlsVaultPolicy : kVaultPolicy);
  vault_port_ = FreeLoopbackPort();
  processes_.push_back(
      Start("vault", binaries_.vault,
            {absl::StrCat("--database_url=", FreshDatabaseUrl(d)),
             absl::StrCat("--kek=file:", (dir_ / "kek").string()),
             "--create_kek_file_if_missing",
             absl::StrCat("--policy_file=", (dir_ / "vault.policy").string())},
            vault_port_));
  inventory_port_ = FreeLoopbackPort();
  processes_.push_back(
      Start("inventory", binaries_.inventory,
            {absl::StrCat("--database_url=", FreshDatabaseUrl(d)),
             absl::StrCat("--vault_address=127.0.0.1:", vault_port_),
             options_.mtls ? "--trusted_delegators=spiffe://certplane/gateway"
                           : "--allow_development_identity"},
            inventory_port_));
  std::vector<std::string> issuance_flags = {
      absl::StrCat("--database_url=", FreshDatabaseUrl(d)),
      absl::StrCat("--vault_address=127.0.0.1:", vault_port_),
      absl::StrCat("--inventory_address=127.0.0.1:", inventory_port_),
      absl::StrCat("--crl_listen_address=127.0.0.1:", FreeLoopbackPort()),
      options_.mtls ? "--trusted_delegators=spiffe://certplane/gateway"
                    : "--allow_development_identity"};
  if (!options_.issuance_config.empty()) {
    WriteFile(dir_ / "issuance.conf", options_.issuance_config);
    issuance_flags.push_back(
        absl::StrCat("--config_file=", (dir_ / "issuance.conf").string()));
  }
  issuance_port_ = FreeLoopbackPort();
  processes_.push_back(
      Start("issuance", binaries_.issuance, issuance_flags, issuance_port_));
  gateway_db_ = FreshDatabaseUrl(d);
  gateway_port_ = FreeLoopbackPort();
  http_port_ = FreeLoopbackPort();
  StartGateway();
  admin_token_ =
      std::string(absl::StripAsciiWhitespace(ReadFile(dir_ / "admin-token")));
  REQUIRE(!admin_token_.empty());
}

void LocalPlatform::StartGateway() {
  std::vector<std::string> flags = {
      absl::StrCat("--database_url=", gateway_db_),
      absl::StrCat("--data_dir=", (dir_ / "gateway").string()),
      absl::StrCat("--vault_address=127.0.0.1:", vault_port_),
      absl::StrCat("--inventory_address=127.0.0.1:", inventory_port_),
      absl::StrCat("--issuance_address=127.0.0.1:", issuance_port_),
      absl::StrCat("--audit_key_file=", (dir_ / "audit-key.pem").string()),
      "--create_audit_key",
      absl::StrCat("--bootstrap_admin_token_file=",
                   (dir_ / "admin-token").string()),
      absl::StrCat("--http_listen_address=127.0.0.1:", http_port_)};
  flags.insert(flags.end(), options_.gateway_flags.begin(),
               options_.gateway_flags.end());
  gateway_ = Start("gateway", binaries_.gateway, flags, gateway_port_);
}

void LocalPlatform::RestartGateway() {
  REQUIRE_THAT(gateway_->Signal(SIGTERM), IsOk());
  CHECK(ValueOrDie(gateway_->WaitForExit(absl::Seconds(30))) == 0);
  gateway_.reset();
  StartGateway();
}

LocalPlatform::~LocalPlatform() {
  auto stop = [](std::unique_ptr<server::testing::ChildProcess>& p) {
    if (p == nullptr) return;
    (void)p->Signal(SIGTERM);
    (void)p->WaitForExit(absl::Seconds(30));
    p.reset();
  };
  stop(gateway_);
  for (auto it = processes_.rbegin(); it != processes_.rend(); ++it) stop(*it);
}

std::shared_ptr<grpc::Channel> LocalPlatform::gateway_channel() const {
  return grpc::CreateChannel(absl::StrCat("127.0.0.1:", gateway_port_),
                             Credentials(pki_, false));
}

std::vector<std::string> LocalPlatform::CliEnvironment(
    const std::string& token) const {
  std::vector<std::string> env = {
      absl::StrCat("CERTPLANE_SERVER=127.0.0.1:", gateway_port_),
      "CERTPLANE_CONFIG=/nonexistent", absl::StrCat("CERTPLANE_TOKEN=", token)};
  if (pki_.empty()) {
    env.push_back("CERTPLANE_INSECURE=1");
  } else {
    env.push_back(
        absl::StrCat("CERTPLANE_CA_FILE=", (pki_ / "ca.pem").string()));
  }
  return env;
}

std::unique_ptr<server::testing::ChildProcess> LocalPlatform::Start(
    const std::string& name, const std::string& program,
    std::vector<std::string> flags, int port) {
  flags.push_back(absl::StrCat("--listen_address=127.0.0.1:", port));
  flags.push_back("--metrics_address=");
  if (pki_.empty()) {
    flags.push_back("--insecure_plaintext_for_development");
  } else {
    flags.push_back(
        absl::StrCat("--tls_cert_file=", (pki_ / (name + ".pem")).string()));
    flags.push_back(
        absl::StrCat("--tls_key_file=", (pki_ / (name + ".key")).string()));
    flags.push_back(
        absl::StrCat("--tls_client_ca_file=", (pki_ / "ca.pem").string()));
  }
  flags.push_back("--log_level=warning");
  auto child =
      ValueOrDie(server::testing::ChildProcess::Start(program, flags, {}));
  WaitHealthy(name, port, pki_);
  return child;
}

}  // namespace certplane::testing
