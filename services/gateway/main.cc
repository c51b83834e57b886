// certplane-gateway: the single entry for people and other systems.
//
// Flags (each also CERTPLANE_<FLAG_NAME>, see libs/server/config.h):
//   --database_url        sqlite://<data_dir>/gateway.db (default) or
//                         postgresql://...
//   --data_dir            where the default SQLite file lives
//   --vault_address, --inventory_address, --issuance_address  upstreams
//   --audit_key_file      Ed25519 key that signs audit checkpoints (0600;
//                         default <data_dir>/audit-key.pem)
//   --create_audit_key    make the audit key if it is missing (first start)
//   --bootstrap_admin_token_file  on a gateway with no tokens, write a new
//                         admin token here (0600)
//   --oidc_issuer, --oidc_audience, --oidc_jwks_file | --oidc_jwks_url,
//   --oidc_user_claim, --oidc_groups_claim, --oidc_group_roles
//                         OIDC bearer JWTs (oidc.h)
//   --service_roles       mTLS identities of services and their roles:
//                         "spiffe://certplane/ci=requester:*;id2=viewer:*"
//   --http_listen_address the HTTP/JSON front (http_front.h); empty: none
//   --web_root            the web UI's build folder, served as static files
//   --checkpoint_interval, --token_cache_ttl, --worker_threads,
//   --front_threads, --rate_limit_per_second, --rate_limit_burst
//   plus the runtime's --listen_address, --tls_*, ... flags. Clients need
//   no certificate at the front (tokens); services that present one are
//   verified against --tls_client_ca_file.
//
// Startup: migrations, the audit key, the bootstrap token, channels to the
// upstreams (mTLS with this gateway's certificate, or plaintext with the
// development flag, where identities travel in x-certplane-dev-* headers),
// then serves until SIGTERM.
#include <algorithm>
#include <memory>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "certplane/gateway/v1/gateway.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "libs/db/database.h"
#include "libs/db/migrate.h"
#include "libs/server/client.h"
#include "libs/server/config.h"
#include "libs/server/json_log.h"
#include "libs/server/server_runner.h"
#include "libs/status/status_macros.h"
#include "services/gateway/audit_writer.h"
#include "services/gateway/authn.h"
#include "services/gateway/dispatcher.h"
#include "services/gateway/gateway_service.h"
#include "services/gateway/gateway_store.h"
#include "services/gateway/grpc_front.h"
#include "services/gateway/http_front.h"
#include "services/gateway/migrations.h"
#include "services/gateway/oidc.h"

ABSL_FLAG(std::string, data_dir, ".data",
          "Folder of the default SQLite database and audit key");
ABSL_FLAG(std::string, database_url, "",
          "The gateway database: sqlite://path or postgresql://...; default "
          "sqlite://<data_dir>/gateway.db");
ABSL_FLAG(std::string, vault_address, "127.0.0.1:7002", "The vault");
ABSL_FLAG(std::string, inventory_address, "127.0.0.1:7003", "The inventory");
ABSL_FLAG(std::string, issuance_address, "127.0.0.1:7004", "The issuance");
ABSL_FLAG(std::string, audit_key_file, "",
          "Ed25519 audit checkpoint key (PKCS#8 PEM, mode 0600); default "
          "<data_dir>/audit-key.pem");
ABSL_FLAG(bool, create_audit_key, false,
          "Create the audit key file when it does not exist");
ABSL_FLAG(std::string, bootstrap_admin_token_file, "",
          "When the gateway has no tokens, create an admin token and write "
          "it to this file (mode 0600)");
ABSL_FLAG(std::string, service_roles, "",
          "mTLS identities and roles: \"<identity>=<role>:<team>,...;...\"");
ABSL_FLAG(std::string, http_listen_address, "127.0.0.1:8080",
          "HTTP/JSON front and web UI, host:port; empty: none");
ABSL_FLAG(std::string, web_root, "",
          "The web UI's build folder (static files); empty: none");
ABSL_FLAG(std::string, oidc_issuer, "",
          "OIDC: the issuer (\"iss\") of accepted bearer JWTs; empty: no OIDC");
ABSL_FLAG(std::string, oidc_audience, "", "OIDC: the required audience");
ABSL_FLAG(std::string, oidc_jwks_file, "", "OIDC: the issuer's JWKS as a file");
ABSL_FLAG(std::string, oidc_jwks_url, "",
          "OIDC: the issuer's JWKS over plain HTTP (in-cluster)");
ABSL_FLAG(std::string, oidc_user_claim, "email",
          "OIDC: the claim naming the user (falls back to sub)");
ABSL_FLAG(std::string, oidc_groups_claim, "groups",
          "OIDC: the claim listing the user's groups");
ABSL_FLAG(std::string, oidc_group_roles, "",
          "OIDC: roles of groups, \"group=role:team,...;group2=...\"");
ABSL_FLAG(absl::Duration, checkpoint_interval, absl::Seconds(5),
          "How often the audit log's head is signed when it grew");
ABSL_FLAG(absl::Duration, token_cache_ttl, absl::Seconds(5),
          "How long a token lookup is reused (revocations in other replicas "
          "take at most this long)");
ABSL_FLAG(int, worker_threads, 8,
          "Threads that authorize and audit calls that may block");
ABSL_FLAG(int, front_threads, 0,
          "Threads (one completion queue each) that serve forwarded calls; "
          "0: one per CPU");
ABSL_FLAG(absl::Duration, owner_cache_ttl, absl::Seconds(5),
          "How long a looked-up resource owner is reused for authorization "
          "(changes made through this gateway apply at once)");
ABSL_FLAG(double, rate_limit_per_second, 0,
          "Calls per second per principal; 0: no limit");
ABSL_FLAG(double, rate_limit_burst, 50, "Burst above the rate limit");

namespace {

namespace gateway = ::certplane::gateway;
namespace log = ::certplane::log;
namespace server = ::certplane::server;

// A role-assignment flag ("<name>=<roles>;..."), errors naming the flag.
absl::StatusOr<absl::flat_hash_map<std::string, std::vector<server::RoleGrant>>>
RoleFlag(absl::string_view flag, absl::string_view text) {
  auto roles = server::ParseRoleAssignments(text);
  if (!roles.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": ", roles.status().message()));
  }
  return roles;
}

// The flags that size the gateway, checked before anything is opened or
// created.
struct Sizing {
  int worker_threads = 0;
  int front_threads = 0;  // Resolved: 0 becomes the number of CPUs.
  absl::Duration checkpoint_interval;
};

absl::StatusOr<Sizing> SizingFromFlags() {
  Sizing sizing;
  sizing.worker_threads = absl::GetFlag(FLAGS_worker_threads);
  if (sizing.worker_threads < 1 || sizing.worker_threads > 256) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--worker_threads must be 1-256, got ", sizing.worker_threads));
  }
  sizing.front_threads = absl::GetFlag(FLAGS_front_threads);
  if (sizing.front_threads < 0 || sizing.front_threads > 256) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--front_threads must be 0-256, got ", sizing.front_threads));
  }
  if (sizing.front_threads == 0) {
    sizing.front_threads =
        static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  sizing.checkpoint_interval = absl::GetFlag(FLAGS_checkpoint_interval);
  if (sizing.checkpoint_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--checkpoint_interval must be positive, got ",
                     absl::FormatDuration(sizing.checkpoint_interval)));
  }
  return sizing;
}

absl::Status Run() {
  CERTPLANE_ASSIGN_OR_RETURN(server::ServerOptions options,
                             server::ServerOptionsFromFlags("gateway"));
  CERTPLANE_ASSIGN_OR_RETURN(const Sizing sizing, SizingFromFlags());
  options.require_client_certificate = false;
  const std::string data_dir = absl::GetFlag(FLAGS_data_dir);
  std::string url = absl::GetFlag(FLAGS_database_url);
  if (url.empty()) url = absl::StrCat("sqlite://", data_dir, "/gateway.db");
  CERTPLANE_RETURN_IF_ERROR(certplane::db::PrepareSqliteDirectory(url));
  certplane::db::DatabaseOptions database_options;
  database_options.service = "gateway";
  database_options.pool_size = 8;
  CERTPLANE_ASSIGN_OR_RETURN(
      std::unique_ptr<certplane::db::Database> database,
      certplane::db::Database::Open(url, database_options));
  CERTPLANE_RETURN_IF_ERROR(
      certplane::db::Migrate(*database, gateway::GatewayMigrations()));
  std::unique_ptr<gateway::GatewayStore> store =
      gateway::NewSqlGatewayStore(*database);
  CERTPLANE_ASSIGN_OR_RETURN(uint64_t audit_nodes, store->CompleteAuditNodes());
  if (audit_nodes > 0) {
    log::Info("gateway: stored the audit log's subtree hashes",
              {{"subtrees", absl::StrCat(audit_nodes)}});
  }
  auto clock = [] { return absl::Now(); };

  std::string key_file = absl::GetFlag(FLAGS_audit_key_file);
  if (key_file.empty()) key_file = absl::StrCat(data_dir, "/audit-key.pem");
  CERTPLANE_ASSIGN_OR_RETURN(
      certplane::crypto::PrivateKey audit_key,
      gateway::LoadAuditKey(key_file, absl::GetFlag(FLAGS_create_audit_key)));
  gateway::AuditWriterOptions audit_options;
  audit_options.checkpoint_interval = sizing.checkpoint_interval;
  gateway::AuditWriter audit(*store, std::move(audit_key), audit_options,
                             clock);

  const std::string token_file =
      absl::GetFlag(FLAGS_bootstrap_admin_token_file);
  if (!token_file.empty()) {
    CERTPLANE_ASSIGN_OR_RETURN(
        bool created, gateway::BootstrapAdminToken(*store, token_file, clock));
    if (created) {
      log::Warning("gateway: created the first admin token",
                   {{"path", token_file}});
    }
  }

  gateway::AuthenticatorOptions authn_options;
  CERTPLANE_ASSIGN_OR_RETURN(
      authn_options.service_roles,
      RoleFlag("service_roles", absl::GetFlag(FLAGS_service_roles)));
  authn_options.token_cache_ttl = absl::GetFlag(FLAGS_token_cache_ttl);
  std::unique_ptr<gateway::OidcVerifier> oidc;
  if (!absl::GetFlag(FLAGS_oidc_issuer).empty()) {
    gateway::OidcOptions oidc_options;
    oidc_options.issuer = absl::GetFlag(FLAGS_oidc_issuer);
    oidc_options.audience = absl::GetFlag(FLAGS_oidc_audience);
    oidc_options.jwks_file = absl::GetFlag(FLAGS_oidc_jwks_file);
    oidc_options.jwks_url = absl::GetFlag(FLAGS_oidc_jwks_url);
    oidc_options.user_claim = absl::GetFlag(FLAGS_oidc_user_claim);
    oidc_options.groups_claim = absl::GetFlag(FLAGS_oidc_groups_claim);
    CERTPLANE_ASSIGN_OR_RETURN(
        oidc_options.group_roles,
        RoleFlag("oidc_group_roles", absl::GetFlag(FLAGS_oidc_group_roles)));
    CERTPLANE_ASSIGN_OR_RETURN(
        oidc, gateway::OidcVerifier::Create(std::move(oidc_options), clock));
    authn_options.oidc = oidc.get();
  }
  gateway::Authenticator authenticator(*store, authn_options, clock);

  const server::ClientOptions client_options =
      server::ClientOptionsFromServerOptions(options);
  absl::flat_hash_map<std::string, gateway::Upstream> upstreams;
  struct Peer {
    const char* service;
    std::string address;
    bool delegate;
  };
  for (const Peer& peer : {Peer{"certplane.vault.v1.VaultService",
                                absl::GetFlag(FLAGS_vault_address), false},
                           Peer{"certplane.inventory.v1.InventoryService",
                                absl::GetFlag(FLAGS_inventory_address), true},
                           Peer{"certplane.issuance.v1.IssuanceService",
                                absl::GetFlag(FLAGS_issuance_address), true}}) {
    CERTPLANE_ASSIGN_OR_RETURN(
        std::shared_ptr<grpc::Channel> channel,
        server::CreateClientChannel(peer.address, client_options));
    upstreams[peer.service] = gateway::Upstream{channel, peer.delegate};
  }
  gateway::DispatcherOptions dispatcher_options;
  dispatcher_options.development_headers =
      options.insecure_plaintext_for_development;
  dispatcher_options.worker_threads = sizing.worker_threads;
  dispatcher_options.owner_cache_ttl = absl::GetFlag(FLAGS_owner_cache_ttl);
  dispatcher_options.rate_limit_per_second =
      absl::GetFlag(FLAGS_rate_limit_per_second);
  dispatcher_options.rate_limit_burst = absl::GetFlag(FLAGS_rate_limit_burst);
  gateway::Dispatcher dispatcher(authenticator, audit, std::move(upstreams),
                                 dispatcher_options);
  gateway::GrpcFront front(dispatcher, sizing.front_threads);
  gateway::GatewayServiceImpl gateway_service(*store, authenticator, dispatcher,
                                              clock);
  gateway::AuditServiceImpl audit_service(*store, authenticator, dispatcher,
                                          audit);

  server::ServerRunner runner(options);
  CERTPLANE_RETURN_IF_ERROR(runner.AddService(
      &gateway_service, gateway::v1::GatewayService::service_full_name()));
  CERTPLANE_RETURN_IF_ERROR(runner.AddService(
      &audit_service, gateway::v1::AuditService::service_full_name()));
  CERTPLANE_RETURN_IF_ERROR(runner.SetGenericService(&front));
  CERTPLANE_RETURN_IF_ERROR(runner.Start());
  audit.Start();
  std::unique_ptr<gateway::HttpFront> http;
  const std::string http_address = absl::GetFlag(FLAGS_http_listen_address);
  if (!http_address.empty()) {
    gateway::HttpFrontOptions http_options;
    http_options.listen_address = http_address;
    http_options.web_root = absl::GetFlag(FLAGS_web_root);
    CERTPLANE_ASSIGN_OR_RETURN(
        http, gateway::HttpFront::Start(
                  runner.server()->InProcessChannel(grpc::ChannelArguments()),
                  http_options));
  }
  log::Info("gateway: serving",
            {{"grpc_port", absl::StrCat(runner.port())},
             {"http_port", http == nullptr ? "" : absl::StrCat(http->port())}});
  absl::Status status = runner.RunUntilShutdownSignal();
  if (http != nullptr) http->Stop();
  audit.Stop();
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  server::SetServerFlagDefaults("127.0.0.1:7001", "127.0.0.1:9101");
  server::ParseCommandLineWithEnvironment(argc, argv);
  absl::Status status = Run();
  if (!status.ok()) {
    log::Error("gateway failed", {{"error", status.ToString()}});
    return 1;
  }
  return 0;
}
