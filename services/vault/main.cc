// certplane-vault: the private key store's server binary.
//
// Flags (each also CERTPLANE_<FLAG_NAME>, see libs/server/config.h):
//   --database_url                 sqlite://.data/vault.db (default) or
//                                  postgresql://...
//   --kek                          KEK source spec
//   (services/vault/kek_source.h)
//   --create_kek_file_if_missing   for file: specs, create a fresh key file
//                                  (development)
//   --policy_file                  access policy (services/vault/policy.h);
//                                  without one every call is denied
//   --kek_encryption_limit         wraps per KEK version before rotation
//   --rewrap_batch_size            keys per rewrap transaction
//   plus the runtime's --listen_address, --tls_*, ... flags.
//
// Startup: refuses core dumps (RLIMIT_CORE 0, PR_SET_DUMPABLE 0) and locks
// memory where permitted, runs the schema migrations, records KEK versions,
// resumes any unfinished rewrap, then serves until SIGTERM.
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "libs/db/database.h"
#include "libs/db/migrate.h"
#include "libs/server/config.h"
#include "libs/server/json_log.h"
#include "libs/server/server_runner.h"
#include "libs/status/status_macros.h"
#include "services/vault/file_kek_source.h"
#include "services/vault/kek_source.h"
#include "services/vault/migrations.h"
#include "services/vault/policy.h"
#include "services/vault/vault_service.h"
#include "services/vault/vault_store.h"

ABSL_FLAG(std::string, database_url, "sqlite://.data/vault.db",
          "The vault's database: sqlite://path or postgresql://...");
ABSL_FLAG(std::string, kek, "",
          "KEK source: file:/path, env:VARIABLE or "
          "pkcs11:module=...;token=...;pin-env=VARIABLE");
ABSL_FLAG(bool, create_kek_file_if_missing, false,
          "With --kek=file:PATH, create PATH with a fresh KEK version 1 when "
          "it does not exist (development)");
ABSL_FLAG(std::string, policy_file, "",
          "Access policy file (identity -> operations); without one every "
          "call is denied");
ABSL_FLAG(int, rewrap_batch_size, 100,
          "Data keys rewrapped per batch (one short transaction each) after "
          "a KEK rotation");
ABSL_FLAG(int64_t, kek_encryption_limit, int64_t{1} << 30,
          "AES-GCM wraps under one KEK version before the vault rotates "
          "automatically (or, for sources it cannot rotate, refuses wraps)");

namespace {

namespace vault = ::certplane::vault;
namespace log = ::certplane::log;

// No core files and no ptrace-readable memory: a crash must not write keys
// to disk. Failure here is fatal.
absl::Status DisableCoreDumps() {
  struct rlimit none = {0, 0};
  if (setrlimit(RLIMIT_CORE, &none) != 0) {
    return absl::InternalError(
        absl::StrCat("setrlimit(RLIMIT_CORE, 0): ", std::strerror(errno)));
  }
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    return absl::InternalError(
        absl::StrCat("prctl(PR_SET_DUMPABLE, 0): ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

// Keeps key material out of swap where the process may lock memory. Only
// with an unlimited RLIMIT_MEMLOCK (or as root): with a finite limit,
// MCL_FUTURE would make later allocations fail once the limit is reached.
void LockMemory() {
  struct rlimit limit = {};
  if (getrlimit(RLIMIT_MEMLOCK, &limit) == 0 &&
      limit.rlim_cur != RLIM_INFINITY && geteuid() != 0) {
    log::Warning(
        "vault: memory not locked; keys may be swapped to disk (raise "
        "RLIMIT_MEMLOCK to unlimited, e.g. LimitMEMLOCK=infinity)",
        {{"rlimit_memlock_bytes", static_cast<int64_t>(limit.rlim_cur)}});
    return;
  }
  if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0) {
    log::Warning("vault: memory not locked; keys may be swapped to disk",
                 {{"call", "mlockall"}, {"error", std::strerror(errno)}});
    return;
  }
  log::Info("vault: memory locked (mlockall)");
}

certplane::db::DatabaseOptions DatabaseOptions() {
  certplane::db::DatabaseOptions options;
  options.service = "vault";
  return options;
}

absl::StatusOr<std::unique_ptr<vault::KekSource>> OpenKekSource() {
  std::string spec = absl::GetFlag(FLAGS_kek);
  if (spec.empty()) {
    return absl::InvalidArgumentError(
        "--kek is required (file:/path, env:VARIABLE or pkcs11:...)");
  }
  absl::string_view path = spec;
  if (absl::GetFlag(FLAGS_create_kek_file_if_missing) &&
      absl::ConsumePrefix(&path, "file:") && !path.empty() &&
      !std::filesystem::exists(std::filesystem::path(std::string(path)))) {
    CERTPLANE_RETURN_IF_ERROR(vault::CreateKekFile(path));
    log::Warning("vault: created a new KEK file (development)",
                 {{"path", std::string(path)}});
  }
  return vault::CreateKekSource(spec);
}

absl::Status Run() {
  CERTPLANE_RETURN_IF_ERROR(DisableCoreDumps());
  LockMemory();
  CERTPLANE_ASSIGN_OR_RETURN(
      certplane::server::ServerOptions options,
      certplane::server::ServerOptionsFromFlags("vault"));
  if (absl::GetFlag(FLAGS_rewrap_batch_size) < 1 ||
      absl::GetFlag(FLAGS_rewrap_batch_size) > 1000) {
    return absl::InvalidArgumentError(
        "--rewrap_batch_size must be between 1 and 1000");
  }
  if (absl::GetFlag(FLAGS_kek_encryption_limit) < 1) {
    return absl::InvalidArgumentError(
        "--kek_encryption_limit must be at least 1");
  }

  vault::Policy policy;
  std::string policy_file = absl::GetFlag(FLAGS_policy_file);
  if (policy_file.empty()) {
    log::Warning("vault: no --policy_file; every call will be denied");
  } else {
    CERTPLANE_ASSIGN_OR_RETURN(policy, vault::Policy::FromFile(policy_file));
    log::Info("vault: policy loaded",
              {{"path", policy_file}, {"identities", policy.size()}});
  }

  CERTPLANE_ASSIGN_OR_RETURN(std::unique_ptr<vault::KekSource> kek,
                             OpenKekSource());

  std::string url = absl::GetFlag(FLAGS_database_url);
  CERTPLANE_RETURN_IF_ERROR(certplane::db::PrepareSqliteDirectory(url));
  CERTPLANE_ASSIGN_OR_RETURN(
      std::unique_ptr<certplane::db::Database> database,
      certplane::db::Database::Open(url, DatabaseOptions()));
  CERTPLANE_RETURN_IF_ERROR(
      certplane::db::Migrate(*database, vault::VaultMigrations()));
  std::unique_ptr<vault::VaultStore> store =
      vault::NewSqlVaultStore(database.get());

  certplane::server::ServerRunner runner(options);
  vault::VaultServiceOptions service_options;
  service_options.allow_development_identity =
      options.insecure_plaintext_for_development;
  service_options.kek_encryption_limit =
      absl::GetFlag(FLAGS_kek_encryption_limit);
  service_options.rewrap_batch_size = absl::GetFlag(FLAGS_rewrap_batch_size);
  service_options.metrics_registry = &runner.metrics_registry();
  vault::VaultService service(
      *store, *kek, policy, [] { return absl::Now(); }, service_options);
  CERTPLANE_RETURN_IF_ERROR(service.Start());
  log::Info("vault: starting",
            {{"database", database->redacted_url()}, {"kek", kek->Describe()}});

  CERTPLANE_RETURN_IF_ERROR(runner.AddService(
      &service, certplane::vault::v1::VaultService::service_full_name()));
  CERTPLANE_RETURN_IF_ERROR(runner.Start());
  absl::Status status = runner.RunUntilShutdownSignal();
  service.Stop();
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  certplane::server::SetServerFlagDefaults("127.0.0.1:7002", "127.0.0.1:9102");
  certplane::server::ParseCommandLineWithEnvironment(argc, argv);
  absl::Status status = Run();
  if (!status.ok()) {
    certplane::log::Error("vault failed", {{"error", status.ToString()}});
    return 1;
  }
  return 0;
}
