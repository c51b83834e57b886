// certplane-inventory: the certificate inventory's server binary.
//
// Flags (each also CERTPLANE_<FLAG_NAME>, see libs/server/config.h):
//   --database_url                sqlite://<data_dir>/inventory.db (default)
//                                 or postgresql://...
//   --data_dir                    where the default SQLite file lives
//   --vault_address               the vault (host:port); empty: no vault, so
//                                 imports with private keys fail those
//                                 certificates and key exports are refused
//   --vault_development_identity  identity sent to a plaintext development
//                                 vault (x-certplane-dev-identity)
//   --vault_timeout               deadline of each vault call
//   --trusted_delegators          mTLS identities (the gateway) that act for
//                                 users (x-certplane-user)
//   --allow_development_identity  accept x-certplane-dev-identity from
//                                 callers (needs
//                                 --insecure_plaintext_for_development)
//   --import_batch_size, --max_import_files, --watch_poll_interval
//   plus the runtime's --listen_address, --tls_*, ... flags.
//
// Startup: runs the schema migrations, then serves until SIGTERM; on SIGTERM
// WatchChanges streams end first, then in-flight calls get the grace period.
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
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
#include "services/inventory/inventory_service.h"
#include "services/inventory/inventory_store.h"
#include "services/inventory/migrations.h"

ABSL_FLAG(std::string, data_dir, ".data",
          "Folder of the default SQLite database");
ABSL_FLAG(std::string, database_url, "",
          "The inventory's database: sqlite://path or postgresql://...; "
          "default sqlite://<data_dir>/inventory.db");
ABSL_FLAG(std::string, vault_address, "",
          "The vault, host:port; empty: no vault (private keys can be neither "
          "imported nor exported)");
ABSL_FLAG(std::string, vault_development_identity, "inventory",
          "With --insecure_plaintext_for_development: the identity sent to "
          "the vault in x-certplane-dev-identity");
ABSL_FLAG(absl::Duration, vault_timeout, absl::Seconds(10),
          "Deadline of each call to the vault");
ABSL_FLAG(std::string, trusted_delegators, "",
          "Comma-separated mTLS identities that act for users "
          "(x-certplane-user): the gateway; those users are recorded as "
          "the actors of their changes");
ABSL_FLAG(bool, allow_development_identity, false,
          "Accept the caller identity from the x-certplane-dev-identity "
          "header (needs --insecure_plaintext_for_development)");
ABSL_FLAG(int, import_batch_size, 1000,
          "Certificates per store transaction during imports (1-1000)");
ABSL_FLAG(int, max_import_files, 1000,
          "Files accepted in one ImportCertificates request");
ABSL_FLAG(absl::Duration, watch_poll_interval, absl::Milliseconds(500),
          "How often waiting WatchChanges streams look for changes made by "
          "other replicas");

namespace {

namespace inventory = ::certplane::inventory;
namespace log = ::certplane::log;
namespace server = ::certplane::server;

absl::StatusOr<inventory::InventoryServiceOptions> ServiceOptions(
    const server::ServerOptions& server_options) {
  inventory::InventoryServiceOptions options;
  options.allow_development_identity =
      absl::GetFlag(FLAGS_allow_development_identity);
  for (absl::string_view d :
       absl::StrSplit(absl::GetFlag(FLAGS_trusted_delegators), ',',
                      absl::SkipWhitespace())) {
    options.trusted_delegators.insert(std::string(d));
  }
  if (options.allow_development_identity &&
      !server_options.insecure_plaintext_for_development) {
    return absl::InvalidArgumentError(
        "--allow_development_identity needs "
        "--insecure_plaintext_for_development (with TLS, callers are "
        "identified by their client certificates)");
  }
  if (server_options.insecure_plaintext_for_development) {
    options.vault_development_identity =
        absl::GetFlag(FLAGS_vault_development_identity);
  }
  options.vault_timeout = absl::GetFlag(FLAGS_vault_timeout);
  if (options.vault_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--vault_timeout must be positive");
  }
  options.import_batch_size = absl::GetFlag(FLAGS_import_batch_size);
  if (options.import_batch_size < 1 || options.import_batch_size > 1000) {
    return absl::InvalidArgumentError(
        "--import_batch_size must be between 1 and 1000");
  }
  options.max_import_files = absl::GetFlag(FLAGS_max_import_files);
  if (options.max_import_files < 1) {
    return absl::InvalidArgumentError("--max_import_files must be at least 1");
  }
  options.watch_poll_interval = absl::GetFlag(FLAGS_watch_poll_interval);
  if (options.watch_poll_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--watch_poll_interval must be positive");
  }
  return options;
}

absl::Status Run() {
  CERTPLANE_ASSIGN_OR_RETURN(server::ServerOptions options,
                             server::ServerOptionsFromFlags("inventory"));
  CERTPLANE_ASSIGN_OR_RETURN(inventory::InventoryServiceOptions service_options,
                             ServiceOptions(options));

  std::unique_ptr<certplane::vault::v1::VaultService::StubInterface> vault;
  const std::string vault_address = absl::GetFlag(FLAGS_vault_address);
  if (vault_address.empty()) {
    log::Warning(
        "inventory: no --vault_address; private keys can be neither imported "
        "nor exported");
  } else {
    CERTPLANE_ASSIGN_OR_RETURN(
        std::shared_ptr<grpc::Channel> channel,
        server::CreateClientChannel(
            vault_address, server::ClientOptionsFromServerOptions(options)));
    vault = certplane::vault::v1::VaultService::NewStub(channel);
  }

  std::string url = absl::GetFlag(FLAGS_database_url);
  if (url.empty()) {
    url = absl::StrCat("sqlite://", absl::GetFlag(FLAGS_data_dir),
                       "/inventory.db");
  }
  CERTPLANE_RETURN_IF_ERROR(certplane::db::PrepareSqliteDirectory(url));
  certplane::db::DatabaseOptions database_options;
  database_options.service = "inventory";
  CERTPLANE_ASSIGN_OR_RETURN(
      std::unique_ptr<certplane::db::Database> database,
      certplane::db::Database::Open(url, database_options));
  CERTPLANE_RETURN_IF_ERROR(
      certplane::db::Migrate(*database, inventory::InventoryMigrations()));
  std::unique_ptr<inventory::InventoryStore> store =
      inventory::NewSqlInventoryStore(database.get());

  inventory::InventoryService service(
      *store, std::move(vault), [] { return absl::Now(); }, service_options);
  server::ServerRunner runner(options);
  CERTPLANE_RETURN_IF_ERROR(runner.AddService(
      &service, inventory::v1::InventoryService::service_full_name()));
  CERTPLANE_RETURN_IF_ERROR(runner.Start());
  log::Info("inventory: serving",
            {{"database", database->redacted_url()},
             {"vault", vault_address.empty() ? "(none)" : vault_address},
             {"port", runner.port()}});
  int signal = server::WaitForShutdownSignal();
  log::Info("inventory: shutting down", {{"signal", signal}});
  // Change-feed streams would otherwise hold the grace period.
  service.Shutdown();
  runner.Shutdown();
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  certplane::server::SetServerFlagDefaults("127.0.0.1:7003", "127.0.0.1:9103");
  certplane::server::ParseCommandLineWithEnvironment(argc, argv);
  absl::Status status = Run();
  if (!status.ok()) {
    certplane::log::Error("inventory failed", {{"error", status.ToString()}});
    return 1;
  }
  return 0;
}
