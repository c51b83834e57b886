// certplane-issuance: the issuance service's server binary.
//
// Flags (each also CERTPLANE_<FLAG_NAME>, see libs/server/config.h):
//   --database_url          sqlite://<data_dir>/issuance.db (default) or
//                           postgresql://...
//   --data_dir              where the default SQLite file lives
//   --config_file           issuers, approval rules and service roles
//                           (IssuanceConfig, protobuf text format); default:
//                           an internal CA "internal" and an upload issuer
//                           "external", one approval per order
//   --vault_address, --inventory_address   the peers (host:port); required
//   --peer_development_identity   identity sent to plaintext development
//                           peers (x-certplane-dev-identity)
//   --peer_timeout          deadline of each call to a peer
//   --allow_development_identity  accept x-certplane-dev-identity and
//                           x-certplane-dev-roles (needs
//                           --insecure_plaintext_for_development)
//   --trusted_delegators    mTLS identities (the gateway) that may act for
//                           users with x-certplane-user / x-certplane-roles
//   --crl_listen_address    the HTTP listener for CRLs and CA certificates
//   --crl_base_url          the URL it is reached at (default
//                           http://<crl_listen_address>); goes into every
//                           certificate of the default internal CA
//   --worker_threads, --worker_id, --order_lease, --renewal_sweep_interval,
//   --renewal_poll_interval
//   plus the runtime's --listen_address, --tls_*, ... flags.
//
// Startup: runs the migrations, opens (on the first start: creates, in the
// vault) the internal CAs, starts the workers, the renewal controller and
// the CRL listener, then serves until SIGTERM. On SIGTERM the controller and
// workers stop after their current step (every step is recorded before the
// next, so whatever was running resumes on the next start), then the
// server drains.
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "libs/db/database.h"
#include "libs/db/migrate.h"
#include "libs/server/client.h"
#include "libs/server/config.h"
#include "libs/server/json_log.h"
#include "libs/server/server_runner.h"
#include "libs/server/shutdown_signal.h"
#include "libs/status/status_macros.h"
#include "services/issuance/crl_http_server.h"
#include "services/issuance/issuance_config.h"
#include "services/issuance/issuance_service.h"
#include "services/issuance/issuance_store.h"
#include "services/issuance/migrations.h"
#include "services/issuance/order_workflow.h"
#include "services/issuance/peers.h"
#include "services/issuance/renewal_controller.h"

ABSL_FLAG(std::string, data_dir, ".data",
          "Folder of the default SQLite database");
ABSL_FLAG(std::string, database_url, "",
          "The issuance database: sqlite://path or postgresql://...; default "
          "sqlite://<data_dir>/issuance.db");
ABSL_FLAG(std::string, config_file, "",
          "Issuers, approval rules and service roles (IssuanceConfig text "
          "format); empty: the built-in default");
ABSL_FLAG(std::string, vault_address, "127.0.0.1:7002", "The vault, host:port");
ABSL_FLAG(std::string, inventory_address, "127.0.0.1:7003",
          "The inventory, host:port");
ABSL_FLAG(std::string, peer_development_identity, "issuance",
          "With --insecure_plaintext_for_development: the identity sent to "
          "the vault and the inventory");
ABSL_FLAG(absl::Duration, peer_timeout, absl::Seconds(10),
          "Deadline of each call to the vault or the inventory");
ABSL_FLAG(bool, allow_development_identity, false,
          "Accept caller identities and roles from x-certplane-dev-identity "
          "and x-certplane-dev-roles (needs "
          "--insecure_plaintext_for_development)");
ABSL_FLAG(std::string, trusted_delegators, "",
          "Comma-separated mTLS identities that may act for users "
          "(x-certplane-user, x-certplane-roles): the gateway");
ABSL_FLAG(std::string, crl_listen_address, "127.0.0.1:7084",
          "HTTP listener for CRLs (/crl/<issuer>.crl) and CA certificates "
          "(/ca/<issuer>.crt)");
ABSL_FLAG(std::string, crl_base_url, "",
          "Base URL of the CRL listener as relying parties reach it; default "
          "http://<crl_listen_address>");
ABSL_FLAG(int, worker_threads, 2, "Order worker threads");
ABSL_FLAG(absl::Duration, order_lease, absl::Minutes(2),
          "How long a worker holds an order; after a crash, its orders are "
          "taken up again once this passes");
ABSL_FLAG(std::string, worker_id, "",
          "This replica's name in work-queue leases; default host:pid");
ABSL_FLAG(absl::Duration, renewal_sweep_interval, absl::Minutes(10),
          "How often the renewal controller lists every auto-renew "
          "certificate");
ABSL_FLAG(absl::Duration, renewal_poll_interval, absl::Seconds(30),
          "How often the renewal controller looks for due renewals");

namespace {

namespace issuance = ::certplane::issuance;
namespace log = ::certplane::log;
namespace server = ::certplane::server;

absl::StatusOr<issuance::v1::IssuanceConfig> LoadConfig(
    const std::string& crl_base_url) {
  const std::string path = absl::GetFlag(FLAGS_config_file);
  if (path.empty()) return issuance::DefaultConfig(crl_base_url);
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("--config_file: cannot read ", path));
  }
  std::stringstream text;
  text << in.rdbuf();
  return issuance::ParseConfig(text.str(), path);
}

std::string DefaultWorkerId() {
  char host[256] = {0};
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat(host[0] != '\0' ? host : "issuance", ":", ::getpid());
}

absl::Status Run() {
  CERTPLANE_ASSIGN_OR_RETURN(server::ServerOptions options,
                             server::ServerOptionsFromFlags("issuance"));
  issuance::IssuanceServiceOptions service_options;
  service_options.caller.allow_development_identity =
      absl::GetFlag(FLAGS_allow_development_identity);
  if (service_options.caller.allow_development_identity &&
      !options.insecure_plaintext_for_development) {
    return absl::InvalidArgumentError(
        "--allow_development_identity needs "
        "--insecure_plaintext_for_development (with TLS, callers are "
        "identified by their client certificates)");
  }
  for (absl::string_view d :
       absl::StrSplit(absl::GetFlag(FLAGS_trusted_delegators), ',',
                      absl::SkipWhitespace())) {
    service_options.caller.trusted_delegators.insert(std::string(d));
  }
  const std::string crl_listen = absl::GetFlag(FLAGS_crl_listen_address);
  std::string crl_base = absl::GetFlag(FLAGS_crl_base_url);
  if (crl_base.empty()) crl_base = absl::StrCat("http://", crl_listen);
  CERTPLANE_ASSIGN_OR_RETURN(issuance::v1::IssuanceConfig config,
                             LoadConfig(crl_base));
  CERTPLANE_ASSIGN_OR_RETURN(service_options.caller.service_roles,
                             issuance::ServiceRoles(config));

  const server::ClientOptions client_options =
      server::ClientOptionsFromServerOptions(options);
  CERTPLANE_ASSIGN_OR_RETURN(
      std::shared_ptr<grpc::Channel> vault_channel,
      server::CreateClientChannel(absl::GetFlag(FLAGS_vault_address),
                                  client_options));
  CERTPLANE_ASSIGN_OR_RETURN(
      std::shared_ptr<grpc::Channel> inventory_channel,
      server::CreateClientChannel(absl::GetFlag(FLAGS_inventory_address),
                                  client_options));
  issuance::PeerOptions peer_options;
  peer_options.timeout = absl::GetFlag(FLAGS_peer_timeout);
  if (peer_options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--peer_timeout must be positive");
  }
  if (options.insecure_plaintext_for_development) {
    peer_options.development_identity =
        absl::GetFlag(FLAGS_peer_development_identity);
  }
  issuance::Peers peers(
      certplane::vault::v1::VaultService::NewStub(vault_channel),
      certplane::inventory::v1::InventoryService::NewStub(inventory_channel),
      peer_options);

  std::string url = absl::GetFlag(FLAGS_database_url);
  if (url.empty()) {
    url = absl::StrCat("sqlite://", absl::GetFlag(FLAGS_data_dir),
                       "/issuance.db");
  }
  CERTPLANE_RETURN_IF_ERROR(certplane::db::PrepareSqliteDirectory(url));
  certplane::db::DatabaseOptions database_options;
  database_options.service = "issuance";
  CERTPLANE_ASSIGN_OR_RETURN(
      std::unique_ptr<certplane::db::Database> database,
      certplane::db::Database::Open(url, database_options));
  CERTPLANE_RETURN_IF_ERROR(
      certplane::db::Migrate(*database, issuance::IssuanceMigrations()));
  std::unique_ptr<issuance::IssuanceStore> orders =
      issuance::NewSqlIssuanceStore(*database);
  std::unique_ptr<issuance::CaStore> cas = issuance::NewSqlCaStore(*database);
  std::unique_ptr<issuance::RenewalStore> renewals =
      issuance::NewSqlRenewalStore(*database);

  // The CAs need the vault; wait for it a while on a fresh start.
  absl::StatusOr<issuance::IssuerMap> issuers;
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (true) {
    issuers = issuance::BuildIssuers(config, *cas, peers, absl::Now());
    if (issuers.ok() || !absl::IsUnavailable(issuers.status()) ||
        absl::Now() > give_up) {
      break;
    }
    log::Warning("issuance: waiting for the vault to open the CAs",
                 {{"error", issuers.status().ToString()}});
    absl::SleepFor(absl::Seconds(2));
  }
  if (!issuers.ok()) return issuers.status();

  auto clock = [] { return absl::Now(); };
  std::string worker_id = absl::GetFlag(FLAGS_worker_id);
  if (worker_id.empty()) worker_id = DefaultWorkerId();
  issuance::WorkflowOptions workflow_options;
  workflow_options.worker_id = worker_id;
  workflow_options.threads = absl::GetFlag(FLAGS_worker_threads);
  if (workflow_options.threads < 1 || workflow_options.threads > 64) {
    return absl::InvalidArgumentError("--worker_threads must be 1-64");
  }
  workflow_options.lease = absl::GetFlag(FLAGS_order_lease);
  if (workflow_options.lease < absl::Seconds(1)) {
    return absl::InvalidArgumentError("--order_lease must be at least 1s");
  }
  issuance::OrderWorkflow workflow(*orders, *renewals, *issuers, peers, config,
                                   clock, workflow_options);
  issuance::RenewalControllerOptions renewal_options;
  renewal_options.worker_id = worker_id;
  renewal_options.sweep_interval = absl::GetFlag(FLAGS_renewal_sweep_interval);
  renewal_options.due_poll_interval =
      absl::GetFlag(FLAGS_renewal_poll_interval);
  if (renewal_options.sweep_interval <= absl::ZeroDuration() ||
      renewal_options.due_poll_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "--renewal_sweep_interval and --renewal_poll_interval must be "
        "positive");
  }
  issuance::RenewalController controller(*renewals, *orders, peers, config,
                                         workflow, clock, renewal_options);
  issuance::IssuanceService service(*orders, *renewals, *issuers, peers,
                                    workflow, config, clock, service_options);
  issuance::CrlHttpOptions crl_options;
  crl_options.listen_address = crl_listen;
  CERTPLANE_ASSIGN_OR_RETURN(
      std::unique_ptr<issuance::CrlHttpServer> crl_server,
      issuance::CrlHttpServer::Start(*issuers, clock, crl_options));

  server::ServerRunner runner(options);
  CERTPLANE_RETURN_IF_ERROR(runner.AddService(
      &service, issuance::v1::IssuanceService::service_full_name()));
  CERTPLANE_RETURN_IF_ERROR(runner.Start());
  workflow.Start();
  controller.Start();
  log::Info("issuance: serving",
            {{"database", database->redacted_url()},
             {"port", runner.port()},
             {"crl_port", crl_server->port()},
             {"worker", worker_id},
             {"issuers", static_cast<int>(issuers->size())}});
  int signal = server::WaitForShutdownSignal();
  log::Info("issuance: shutting down", {{"signal", signal}});
  controller.Stop();
  workflow.Stop();
  crl_server->Stop();
  runner.Shutdown();
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  certplane::server::SetServerFlagDefaults("127.0.0.1:7004", "127.0.0.1:9104");
  certplane::server::ParseCommandLineWithEnvironment(argc, argv);
  absl::Status status = Run();
  if (!status.ok()) {
    certplane::log::Error("issuance failed", {{"error", status.ToString()}});
    return 1;
  }
  return 0;
}
