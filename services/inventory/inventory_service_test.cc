// The inventory service in-process over gRPC on loopback, with a real vault
// (in-process too, over its own database and a key-file KEK) and the real
// SQL store, on SQLite and PostgreSQL (ForEachBackend).
#include "services/inventory/inventory_service.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <soci/soci.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/field_mask.pb.h"
#include "grpcpp/grpcpp.h"
#include "libs/crypto/certificate.h"
#include "libs/crypto/formats.h"
#include "libs/crypto/key.h"
#include "libs/crypto/testing/test_pki.h"
#include "libs/db/database.h"
#include "libs/db/migrate.h"
#include "libs/server/server_options.h"
#include "libs/server/server_runner.h"
#include "libs/server/testing/test_client.h"
#include "libs/status/grpc_status.h"
#include "libs/testing/db_test_util.h"
#include "libs/testing/status_matchers.h"
#include "services/inventory/inventory_store.h"
#include "services/inventory/migrations.h"
#include "services/testing/loopback.h"
#include "services/vault/policy.h"
#include "services/vault/vault_service.h"

namespace certplane::inventory {
namespace {

using ::certplane::crypto::Certificate;
using ::certplane::crypto::testing::MakeChain;
using ::certplane::crypto::testing::MakeLeaf;
using ::certplane::crypto::testing::TestCertOptions;
using ::certplane::crypto::testing::TestChain;
using ::certplane::crypto::testing::TestIdentity;
using ::certplane::testing::ForEachBackend;
using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;
using Code = ::absl::StatusCode;
using Stub = v1::InventoryService::Stub;

constexpr char kP12Password[] = "correct horse battery";
constexpr char kExportPassword[] = "export password 1234";

// The inventory may import, read and export keys; "restricted" may not
// export; "admin" (the test itself) may do anything.
constexpr char kVaultPolicy[] =
    "admin       *\n"
    "inventory   import, get, export\n"
    "restricted  import, get\n";

std::filesystem::path FreshDir() {
  return testing::FreshTestDir("inventory_service_test");
}

// A real vault on loopback over its own fresh database.
class Vault : public testing::TestVault {
 public:
  explicit Vault(db::Dialect dialect) : TestVault(dialect, kVaultPolicy) {}

  // Imports `key` directly (as issuance would), returning its name.
  std::string ImportKey(const crypto::PrivateKey& key) {
    auto stub = vault::v1::VaultService::NewStub(channel());
    grpc::ClientContext context;
    context.AddMetadata(vault::kDevelopmentIdentityHeader, "admin");
    vault::v1::ImportKeyRequest request;
    request.set_data(std::string(ValueOrDie(key.ToPkcs8Pem()).view()));
    request.set_owner("payments");
    vault::v1::Key response;
    REQUIRE_THAT(FromGrpcStatus(stub->ImportKey(&context, request, &response)),
                 IsOk());
    return response.name();
  }
};

InventoryServiceOptions TestOptions(const std::string& vault_identity) {
  InventoryServiceOptions options;
  options.allow_development_identity = true;
  options.vault_development_identity = vault_identity;
  options.watch_poll_interval = absl::Milliseconds(50);
  options.watch_page_size = 7;  // Several pages in the change-feed tests.
  return options;
}

// The inventory on loopback over `db`, talking to `vault`.
class Inventory {
 public:
  // `vault` null: an inventory without a vault.
  Inventory(db::Database& db, Vault* vault,
            const std::string& vault_identity = "inventory")
      : Inventory(db, vault, TestOptions(vault_identity)) {}

  Inventory(db::Database& db, Vault* vault, InventoryServiceOptions options)
      : db_(db) {
    REQUIRE_THAT(db::Migrate(db, InventoryMigrations()), IsOk());
    store_ = NewSqlInventoryStore(&db);
    service_ = std::make_unique<InventoryService>(
        *store_,
        vault == nullptr ? nullptr
                         : vault::v1::VaultService::NewStub(vault->channel()),
        [] { return absl::Now(); }, std::move(options));
    runner_ = testing::ServeForTest(service_.get(),
                                    v1::InventoryService::service_full_name());
    stub_ = v1::InventoryService::NewStub(testing::ChannelTo(*runner_));
  }

  ~Inventory() {
    service_->Shutdown();
    runner_.reset();
    service_.reset();
  }

  template <typename Request, typename Response>
  absl::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*,
                                                 const Request&, Response*),
                    const Request& request, Response* response,
                    const std::string& identity = "alice") {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    if (!identity.empty()) {
      context.AddMetadata(vault::kDevelopmentIdentityHeader, identity);
    }
    return FromGrpcStatus((stub_.get()->*method)(&context, request, response));
  }

  v1::ImportCertificatesResponse Import(v1::ImportCertificatesRequest request) {
    v1::ImportCertificatesResponse response;
    REQUIRE_THAT(Call(&Stub::ImportCertificates, request, &response), IsOk());
    return response;
  }

  v1::ManagedCertificate Get(const std::string& name) {
    v1::GetCertificateRequest request;
    request.set_name(name);
    v1::ManagedCertificate response;
    REQUIRE_THAT(Call(&Stub::GetCertificate, request, &response), IsOk());
    return response;
  }

  v1::ListCertificatesResponse List(const std::string& filter,
                                    bool show_deleted = false) {
    v1::ListCertificatesRequest request;
    request.set_filter(filter);
    request.set_show_deleted(show_deleted);
    request.set_page_size(1000);
    v1::ListCertificatesResponse response;
    REQUIRE_THAT(Call(&Stub::ListCertificates, request, &response), IsOk());
    return response;
  }

  absl::StatusOr<v1::ExportCertificateResponse> Export(
      const std::string& name, v1::ExportFormat format,
      const std::string& password = "", bool legacy = false) {
    v1::ExportCertificateRequest request;
    request.set_name(name);
    request.set_format(format);
    request.set_password(password);
    request.set_legacy_pkcs12(legacy);
    v1::ExportCertificateResponse response;
    absl::Status status = Call(&Stub::ExportCertificate, request, &response);
    if (!status.ok()) return status;
    return response;
  }

  // Every change, without waiting.
  std::vector<v1::Change> Changes(int64_t since = 0) {
    grpc::ClientContext context;
    context.AddMetadata(vault::kDevelopmentIdentityHeader, "alice");
    v1::WatchChangesRequest request;
    request.set_since_revision(since);
    request.set_no_wait(true);
    std::unique_ptr<grpc::ClientReader<v1::Change>> reader =
        stub_->WatchChanges(&context, request);
    std::vector<v1::Change> changes;
    v1::Change change;
    while (reader->Read(&change)) changes.push_back(change);
    REQUIRE_THAT(FromGrpcStatus(reader->Finish()), IsOk());
    return changes;
  }

  InventoryStore& store() { return *store_; }
  InventoryService& service() { return *service_; }
  Stub& stub() { return *stub_; }
  db::Database& db() { return db_; }

 private:
  db::Database& db_;
  std::unique_ptr<InventoryStore> store_;
  std::unique_ptr<InventoryService> service_;
  std::unique_ptr<server::ServerRunner> runner_;
  std::unique_ptr<Stub> stub_;
};

// ---------------------------------------------------------------------------
// Inputs.

TestChain Chain(const std::string& common_name) {
  TestCertOptions options;
  options.common_name = common_name;
  return ValueOrDie(MakeChain(options));
}

std::string KeyPem(const crypto::PrivateKey& key) {
  return std::string(ValueOrDie(key.ToPkcs8Pem()).view());
}

std::string FullPem(const TestChain& chain) {
  return absl::StrCat(chain.leaf.cert.ToPem(), KeyPem(chain.leaf.key),
                      chain.intermediate.cert.ToPem(), chain.root.cert.ToPem());
}

std::string Pkcs12(const TestChain& chain, bool legacy) {
  crypto::Pkcs12Options options;
  options.legacy = legacy;
  options.iterations = 2048;
  std::vector<Certificate> certs = {chain.leaf.cert, chain.intermediate.cert,
                                    chain.root.cert};
  return ValueOrDie(
      crypto::WritePkcs12(&chain.leaf.key, certs, kP12Password, options));
}

void AddFile(v1::ImportCertificatesRequest& request, const std::string& name,
             const std::string& data, const std::string& password = "") {
  v1::ImportFile* file = request.add_files();
  file->set_filename(name);
  file->set_data(data);
  file->set_password(password);
}

v1::ImportCertificatesRequest ImportOf(const std::string& name,
                                       const std::string& data,
                                       const std::string& owner = "payments") {
  v1::ImportCertificatesRequest request;
  request.set_owner(owner);
  AddFile(request, name, data);
  return request;
}

std::string Sha(const Certificate& certificate) {
  return certificate.info().sha256_fingerprint_hex;
}

const v1::FileResult& FileNamed(const v1::ImportCertificatesResponse& response,
                                const std::string& name) {
  for (const v1::FileResult& file : response.files()) {
    if (file.filename() == name) return file;
  }
  FAIL("no result for " << name);
  return response.files(0);
}

// The result of the leaf (the certificate that is not a CA) of a file.
const v1::CertificateResult& LeafResult(const v1::FileResult& file) {
  for (const v1::CertificateResult& result : file.certificates()) {
    if (!result.details().is_ca()) return result;
  }
  FAIL("no leaf in " << file.filename());
  return file.certificates(0);
}

// The managed certificate an import created for a single-leaf file.
std::string ImportOne(Inventory& inventory, const std::string& name,
                      const std::string& data,
                      const std::string& owner = "payments") {
  v1::ImportCertificatesResponse response =
      inventory.Import(ImportOf(name, data, owner));
  REQUIRE(response.files(0).ok());
  const v1::CertificateResult& leaf = LeafResult(response.files(0));
  REQUIRE(leaf.outcome() == v1::IMPORT_OUTCOME_IMPORTED);
  return leaf.certificate();
}

// Every value of every column of the inventory's tables, as text.
std::string DumpDatabase(db::Database& db) {
  std::string dump;
  REQUIRE_THAT(
      db.Transact(
          [&](soci::session& sql) {
            std::vector<std::pair<std::string, std::string>> columns;
            if (db.dialect() == db::Dialect::kPostgres) {
              soci::rowset<soci::row> rows =
                  (sql.prepare
                   << "SELECT table_name, column_name FROM "
                      "information_schema.columns WHERE table_schema = "
                      "current_schema()");
              for (const soci::row& row : rows) {
                columns.emplace_back(row.get<std::string>(0),
                                     row.get<std::string>(1));
              }
            } else {
              std::vector<std::string> tables;
              soci::rowset<std::string> names =
                  (sql.prepare
                   << "SELECT name FROM sqlite_master WHERE type = 'table'");
              for (const std::string& name : names) tables.push_back(name);
              for (const std::string& table : tables) {
                soci::rowset<std::string> rows =
                    (sql.prepare
                     << "SELECT name FROM pragma_table_info('" + table + "')");
                for (const std::string& column : rows) {
                  columns.emplace_back(table, column);
                }
              }
            }
            for (const auto& [table, column] : columns) {
              soci::rowset<soci::row> rows =
                  (sql.prepare << "SELECT CAST(\"" + column +
                                      "\" AS TEXT) FROM \"" + table + "\"");
              for (const soci::row& row : rows) {
                if (row.get_indicator(0) == soci::i_null) continue;
                absl::StrAppend(&dump, table, ".", column, "=",
                                row.get<std::string>(0), "\n");
              }
            }
            return absl::OkStatus();
          },
          db::TxMode::kReadOnly),
      IsOk());
  return dump;
}

// Whether `dump` holds `key` in any common encoding.
bool HoldsKey(const std::string& dump, const crypto::PrivateKey& key) {
  std::string der(ValueOrDie(key.ToPkcs8Der()).view());
  std::string hex = absl::BytesToHexString(der);
  std::string base64 = absl::Base64Escape(der).substr(0, 40);
  return absl::StrContains(dump, hex) || absl::StrContains(dump, base64) ||
         absl::StrContains(dump, der.substr(der.size() - 32));
}

// ---------------------------------------------------------------------------
// Import.

TEST_CASE("ImportsEveryFormatWithKeysInTheVaultAndBadFilesReportedAlone") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db.dialect());
    Inventory inventory(db, &vault);
    TestChain pem = Chain("pem.example.com");
    TestChain der = Chain("der.example.com");
    TestChain p7 = Chain("p7.example.com");
    TestChain p7der = Chain("p7der.example.com");
    TestChain p12 = Chain("p12.example.com");
    TestChain legacy = Chain("legacy.example.com");
    TestChain reversed = Chain("reversed.example.com");
    std::string leaf_pem = pem.leaf.cert.ToPem();

    v1::ImportCertificatesRequest request;
    request.set_owner("payments");
    request.add_environments("prod");
    (*request.mutable_tags())["app"] = "checkout";
    AddFile(request, "pem.pem", FullPem(pem));
    AddFile(request, "garbage.pem", "hello, I am not a certificate");
    AddFile(request, "der.der", der.leaf.cert.der());
    AddFile(request, "p7.p7b",
            ValueOrDie(crypto::WritePkcs7(
                {p7.leaf.cert, p7.intermediate.cert, p7.root.cert}, true)));
    AddFile(request, "p7der.p7b",
            ValueOrDie(crypto::WritePkcs7(
                {p7der.root.cert, p7der.leaf.cert, p7der.intermediate.cert},
                false)));
    AddFile(request, "truncated.pem", leaf_pem.substr(0, leaf_pem.size() / 2));
    AddFile(request, "p12.pfx", Pkcs12(p12, false), kP12Password);
    AddFile(request, "legacy.pfx", Pkcs12(legacy, true), kP12Password);
    AddFile(request, "wrong-password.pfx", Pkcs12(p12, false), "not it at all");
    AddFile(request, "empty.pem", "");
    AddFile(request, "reversed.pem",
            absl::StrCat(
                reversed.root.cert.ToPem(), reversed.intermediate.cert.ToPem(),
                KeyPem(reversed.leaf.key), reversed.leaf.cert.ToPem()));

    v1::ImportCertificatesResponse response = inventory.Import(request);
    REQUIRE(response.files_size() == 11);
    CHECK(response.imported_count() == 7);
    CHECK(response.failed_count() == 4);

    const std::map<std::string, std::string> formats = {
        {"pem.pem", "PEM"},         {"der.der", "DER"},
        {"p7.p7b", "PKCS#7 (PEM)"}, {"p7der.p7b", "PKCS#7 (DER)"},
        {"p12.pfx", "PKCS#12"},     {"legacy.pfx", "PKCS#12"},
        {"reversed.pem", "PEM"}};
    for (const auto& [name, format] : formats) {
      INFO(name);
      const v1::FileResult& file = FileNamed(response, name);
      CHECK(file.ok());
      CHECK(file.format() == format);
      CHECK(LeafResult(file).outcome() == v1::IMPORT_OUTCOME_IMPORTED);
    }
    for (const char* bad :
         {"garbage.pem", "truncated.pem", "wrong-password.pfx", "empty.pem"}) {
      INFO(bad);
      const v1::FileResult& file = FileNamed(response, bad);
      CHECK_FALSE(file.ok());
      CHECK_FALSE(file.error().empty());
      CHECK(file.certificates_size() == 0);
    }
    CHECK(absl::StrContains(FileNamed(response, "wrong-password.pfx").error(),
                            "password"));
    CHECK(absl::StrContains(FileNamed(response, "empty.pem").error(), "empty"));

    // Keys: the four files that carried one have them in the vault, under
    // the inventory's owner, and the inventory holds only their names.
    std::vector<vault::v1::Key> keys = vault.Keys();
    CHECK(keys.size() == 4);
    std::map<std::string, const TestChain*> keyed = {
        {"pem.pem", &pem},
        {"p12.pfx", &p12},
        {"legacy.pfx", &legacy},
        {"reversed.pem", &reversed}};
    std::string dump = DumpDatabase(db);
    for (const auto& [name, chain] : keyed) {
      INFO(name);
      const v1::CertificateResult& leaf = LeafResult(FileNamed(response, name));
      REQUIRE(absl::StartsWith(leaf.key_name(), "keys/"));
      bool found = false;
      for (const vault::v1::Key& key : keys) {
        if (key.name() == leaf.key_name()) {
          found = true;
          CHECK(key.spki_sha256() == chain->leaf.cert.info().spki_sha256_hex);
          CHECK(key.owner() == "payments");
        }
      }
      CHECK(found);
      v1::ManagedCertificate managed = inventory.Get(leaf.certificate());
      CHECK(managed.current_version().key_name() == leaf.key_name());
      CHECK(managed.current_version().chain_size() == 2);
      CHECK(managed.current_version().chain_complete());
      CHECK_FALSE(HoldsKey(dump, chain->leaf.key));
    }
    CHECK(LeafResult(FileNamed(response, "der.der")).key_name().empty());

    // Metadata and parsed details.
    v1::ManagedCertificate managed =
        inventory.Get(LeafResult(FileNamed(response, "pem.pem")).certificate());
    CHECK(managed.owner() == "payments");
    CHECK(managed.display_name() == "pem.example.com");
    CHECK(managed.source() == v1::IMPORTED);
    REQUIRE(managed.environments_size() == 1);
    CHECK(managed.tags().at("app") == "checkout");
    CHECK(managed.version_count() == 1);
    CHECK(managed.current_version().status() == v1::ACTIVE);
    CHECK(managed.current_version().origin() == "pem.pem");
    CHECK(managed.current_version().details().sha256_fingerprint_hex() ==
          Sha(pem.leaf.cert));
    CHECK(managed.current_version().details().subject().display() ==
          pem.leaf.cert.info().subject.ToString());
    CHECK(managed.current_version().der() == pem.leaf.cert.der());
    CHECK(managed.current_version().chain(0).sha256_fingerprint_hex() ==
          Sha(pem.intermediate.cert));
    CHECK(inventory.List("").certificates_size() == 7);
  });
}

TEST_CASE("ReimportingIsIdempotentAndAddsAMissingKey") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db.dialect());
    Inventory inventory(db, &vault);
    TestChain chain = Chain("again.example.com");

    // First the certificate alone, then with its key, then both again.
    v1::ImportCertificatesResponse first =
        inventory.Import(ImportOf("cert.pem", chain.leaf.cert.ToPem()));
    const v1::CertificateResult& imported = LeafResult(first.files(0));
    REQUIRE(imported.outcome() == v1::IMPORT_OUTCOME_IMPORTED);
    CHECK(imported.key_name().empty());

    v1::ImportCertificatesResponse second =
        inventory.Import(ImportOf("full.pem", FullPem(chain)));
    const v1::CertificateResult& with_key = LeafResult(second.files(0));
    CHECK(with_key.outcome() == v1::IMPORT_OUTCOME_ALREADY_PRESENT);
    CHECK(with_key.key_added());
    CHECK(with_key.certificate() == imported.certificate());
    CHECK(with_key.version() == imported.version());
    REQUIRE_FALSE(with_key.key_name().empty());
    CHECK(second.imported_count() == 0);
    CHECK(second.already_present_count() == 1);

    v1::ImportCertificatesResponse third =
        inventory.Import(ImportOf("full.pem", FullPem(chain)));
    const v1::CertificateResult& again = LeafResult(third.files(0));
    CHECK(again.outcome() == v1::IMPORT_OUTCOME_ALREADY_PRESENT);
    CHECK_FALSE(again.key_added());
    CHECK(again.key_name() == with_key.key_name());
    // CA certificates were stored once and are present now.
    for (const v1::CertificateResult& result : third.files(0).certificates()) {
      CHECK(result.outcome() == v1::IMPORT_OUTCOME_ALREADY_PRESENT);
    }
    // Another team re-importing the same file adds no second vault key.
    v1::ImportCertificatesResponse other_owner =
        inventory.Import(ImportOf("full.pem", FullPem(chain), "search"));
    CHECK(LeafResult(other_owner.files(0)).outcome() ==
          v1::IMPORT_OUTCOME_ALREADY_PRESENT);
    CHECK(LeafResult(other_owner.files(0)).key_name() == with_key.key_name());
    CHECK(vault.Keys().size() == 1);
    CHECK(inventory.List("").certificates_size() == 1);
    CHECK(inventory.Get(imported.certificate()).version_count() == 1);

    // The same certificate twice in one request is stored once.
    TestChain twice = Chain("twice.example.com");
    v1::ImportCertificatesRequest request =
        ImportOf("a.pem", twice.leaf.cert.ToPem());
    AddFile(request, "b.pem", twice.leaf.cert.ToPem());
    v1::ImportCertificatesResponse both = inventory.Import(request);
    CHECK(LeafResult(both.files(0)).outcome() == v1::IMPORT_OUTCOME_IMPORTED);
    CHECK(LeafResult(both.files(1)).outcome() ==
          v1::IMPORT_OUTCOME_ALREADY_PRESENT);
    CHECK(LeafResult(both.files(1)).certificate() ==
          LeafResult(both.files(0)).certificate());
  });
}

TEST_CASE("DryRunPreviewsAndStoresNothing") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db.dialect());
    Inventory inventory(db, &vault);
    TestChain known = Chain("known.example.com");
    TestChain fresh = Chain("fresh.example.com");
    ImportOne(inventory, "known.pem", known.leaf.cert.ToPem());
    const std::vector<v1::Change> before = inventory.Changes();

    v1::ImportCertificatesRequest request =
        ImportOf("fresh.pem", FullPem(fresh));
    AddFile(request, "known.pem", known.leaf.cert.ToPem());
    AddFile(request, "bad.pem", "garbage");
    request.set_dry_run(true);
    v1::ImportCertificatesResponse response = inventory.Import(request);

    const v1::FileResult& fresh_file = FileNamed(response, "fresh.pem");
    CHECK(LeafResult(fresh_file).outcome() == v1::IMPORT_OUTCOME_WOULD_IMPORT);
    CHECK(LeafResult(fresh_file).details().subject().display() ==
          fresh.leaf.cert.info().subject.ToString());
    CHECK(LeafResult(fresh_file).key_name().empty());
    for (const v1::CertificateResult& result : fresh_file.certificates()) {
      CHECK(result.outcome() == v1::IMPORT_OUTCOME_WOULD_IMPORT);
    }
    const v1::CertificateResult& known_result =
        LeafResult(FileNamed(response, "known.pem"));
    CHECK(known_result.outcome() == v1::IMPORT_OUTCOME_ALREADY_PRESENT);
    CHECK(absl::StartsWith(known_result.certificate(), "certificates/"));
    CHECK_FALSE(FileNamed(response, "bad.pem").ok());
    CHECK(response.imported_count() == 1);
    CHECK(response.already_present_count() == 1);
    CHECK(response.failed_count() == 1);

    CHECK(vault.Keys().empty());
    CHECK(inventory.List("").certificates_size() == 1);
    CHECK(inventory.Changes().size() == before.size());
  });
}

TEST_CASE("CompletesChainsFromAPreviouslyImportedCa") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db.dialect());
    Inventory inventory(db, &vault);
    TestChain chain = Chain("later.example.com");

    v1::ImportCertificatesResponse cas = inventory.Import(ImportOf(
        "cas.pem",
        absl::StrCat(chain.intermediate.cert.ToPem(), chain.root.cert.ToPem()),
        ""));
    REQUIRE(cas.files(0).certificates_size() == 2);
    for (const v1::CertificateResult& result : cas.files(0).certificates()) {
      CHECK(result.outcome() == v1::IMPORT_OUTCOME_CA_CERTIFICATE_STORED);
      CHECK(absl::StartsWith(result.certificate(), "caCertificates/"));
    }
    CHECK(cas.imported_count() == 0);
    CHECK(inventory.List("").certificates_size() == 0);

    std::string name =
        ImportOne(inventory, "leaf.pem", chain.leaf.cert.ToPem());
    v1::CertificateVersion version = inventory.Get(name).current_version();
    REQUIRE(version.chain_size() == 2);
    CHECK(version.chain(0).sha256_fingerprint_hex() ==
          Sha(chain.intermediate.cert));
    CHECK(version.chain(0).der() == chain.intermediate.cert.der());
    CHECK(version.chain(0).subject().display() ==
          chain.intermediate.cert.info().subject.ToString());
    CHECK(version.chain(1).sha256_fingerprint_hex() == Sha(chain.root.cert));
    CHECK(version.chain_complete());

    std::vector<v1::Change> changes = inventory.Changes();
    int ca_added = 0;
    for (const v1::Change& change : changes) {
      if (change.kind() == v1::CA_CERTIFICATE_ADDED) {
        ++ca_added;
        CHECK(absl::StartsWith(change.certificate(), "caCertificates/"));
      }
    }
    CHECK(ca_added == 2);
  });
}

TEST_CASE("ImportsAThousandFilesInBatches") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db.dialect());
    InventoryServiceOptions options = TestOptions("inventory");
    options.import_batch_size = 300;
    Inventory inventory(db, &vault, options);
    TestChain chain = Chain("bulk.example.com");
    v1::ImportCertificatesRequest request;
    request.set_owner("payments");
    // The chain once, then 999 leaves, one per file: 1,000 files.
    AddFile(
        request, "chain.pem",
        absl::StrCat(chain.intermediate.cert.ToPem(), chain.root.cert.ToPem()));
    std::set<std::string> shas;
    for (int i = 0; i < 999; ++i) {
      TestCertOptions leaf_options;
      leaf_options.common_name = absl::StrCat("host-", i, ".example.com");
      TestIdentity leaf =
          ValueOrDie(MakeLeaf(chain.intermediate, leaf_options));
      shas.insert(Sha(leaf.cert));
      AddFile(request, absl::StrCat("host-", i, ".pem"), leaf.cert.ToPem());
    }
    absl::Time start = absl::Now();
    v1::ImportCertificatesResponse response = inventory.Import(request);
    absl::Duration took = absl::Now() - start;
    UNSCOPED_INFO("999 certificates imported in " << took);
    CHECK(response.imported_count() == 999);
    CHECK(response.failed_count() == 0);
    CHECK(response.files_size() == 1000);
    std::set<std::string> names;
    for (int i = 1; i < response.files_size(); ++i) {
      const v1::CertificateResult& leaf = LeafResult(response.files(i));
      CHECK(leaf.details().subject().display() ==
            absl::StrCat("CN=host-", i - 1, ".example.com"));
      names.insert(leaf.certificate());
    }
    CHECK(names.size() == 999);
    v1::ListCertificatesResponse listed = inventory.List("");
    CHECK(listed.total_size() == 999);
    REQUIRE(listed.certificates_size() == 999);
    for (const v1::ManagedCertificate& managed : listed.certificates()) {
      CHECK(shas.contains(
          managed.current_version().details().sha256_fingerprint_hex()));
      CHECK(managed.current_version().chain_complete());
    }
    // 2 CA certificates, then a created and a version change per leaf.
    CHECK(inventory.Changes().size() == 2 + 2 * 999);
    CHECK(took < absl::Seconds(60));
  });
}

TEST_CASE("ImportValidatesTheRequest") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db.dialect());
    Inventory inventory(db, &vault);
    v1::ImportCertificatesResponse response;
    CHECK_THAT(inventory.Call(&Stub::ImportCertificates,
                              v1::ImportCertificatesRequest(), &response),
               StatusIs(Code::kInvalidArgument, "files"));
    v1::ImportCertificatesRequest too_many;
    for (int i = 0; i < 1001; ++i) AddFile(too_many, "x.pem", "x");
    CHECK_THAT(inventory.Call(&Stub::ImportCertificates, too_many, &response),
               StatusIs(Code::kInvalidArgument, "at most 1000"));
    TestChain chain = Chain("v.example.com");
    v1::ImportCertificatesRequest bad_owner =
        ImportOf("a.pem", chain.leaf.cert.ToPem(), "no spaces allowed");
    CHECK_THAT(inventory.Call(&Stub::ImportCertificates, bad_owner, &response),
               StatusIs(Code::kInvalidArgument, "owner"));
    v1::ImportCertificatesRequest keys_without_owner =
        ImportOf("a.pem", FullPem(chain), "");
    CHECK_THAT(inventory.Call(&Stub::ImportCertificates, keys_without_owner,
                              &response),
               StatusIs(Code::kInvalidArgument, "owner: required"));
    v1::ImportCertificatesRequest bad_target =
        ImportOf("a.pem", chain.leaf.cert.ToPem());
    bad_target.set_target("certs/1");
    CHECK_THAT(inventory.Call(&Stub::ImportCertificates, bad_target, &response),
               StatusIs(Code::kInvalidArgument, "target"));
    // No identity at all.
    CHECK_THAT(inventory.Call(&Stub::ImportCertificates,
                              ImportOf("a.pem", chain.leaf.cert.ToPem()),
                              &response, ""),
               StatusIs(Code::kUnauthenticated));
  });
}

TEST_CASE("TargetAddsTheLeafAsANewVersion") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db.dialect());
    Inventory inventory(db, &vault);
    TestChain chain = Chain("renew.example.com");
    std::string name = ImportOne(inventory, "v1.pem", chain.leaf.cert.ToPem());

    TestCertOptions options;
    options.common_name = "renew.example.com";
    TestIdentity renewed = ValueOrDie(MakeLeaf(chain.intermediate, options));
    v1::ImportCertificatesRequest request = ImportOf(
        "v2.pem", absl::StrCat(renewed.cert.ToPem(), KeyPem(renewed.key)), "");
    request.set_target(name);
    v1::ImportCertificatesResponse response = inventory.Import(request);
    const v1::CertificateResult& result = LeafResult(response.files(0));
    CHECK(result.outcome() == v1::IMPORT_OUTCOME_IMPORTED);
    CHECK(result.certificate() == name);
    CHECK(result.version() == absl::StrCat(name, "/versions/2"));
    // The key went to the vault under the target's owner.
    REQUIRE(vault.Keys().size() == 1);
    CHECK(vault.Keys()[0].owner() == "payments");

    v1::ManagedCertificate managed = inventory.Get(name);
    CHECK(managed.version_count() == 2);
    CHECK(managed.current_version().version() == 2);
    v1::GetCertificateVersionRequest get;
    get.set_name(absl::StrCat(name, "/versions/1"));
    v1::CertificateVersion first;
    REQUIRE_THAT(inventory.Call(&Stub::GetCertificateVersion, get, &first),
                 IsOk());
    CHECK(first.status() == v1::SUPERSEDED);

    v1::ListCertificateVersionsRequest list;
    list.set_parent(name);
    v1::ListCertificateVersionsResponse versions;
    REQUIRE_THAT(
        inventory.Call(&Stub::ListCertificateVersions, list, &versions),
        IsOk());
    REQUIRE(versions.versions_size() == 2);
    CHECK(versions.versions(0).version() == 2);

    // Two leaves for one target.
    TestChain other = Chain("other.example.com");
    v1::ImportCertificatesRequest two = ImportOf(
        "two.pem", absl::StrCat(other.leaf.cert.ToPem(), renewed.cert.ToPem()));
    two.set_target(name);
    v1::ImportCertificatesResponse refused;
    CHECK_THAT(inventory.Call(&Stub::ImportCertificates, two, &refused),
               StatusIs(Code::kInvalidArgument, "exactly one leaf"));
  });
}

// ---------------------------------------------------------------------------
// Export.

TEST_CASE("ExportsEveryFormatAndTheKeyFromTheVault") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db.dialect());
    Inventory inventory(db, &vault);
    TestChain chain = Chain("export.example.com");
    std::string name = ImportOne(inventory, "full.pem", FullPem(chain));

    auto certificates_of = [](const std::string& data,
                              const std::string& password = "") {
      std::optional<absl::string_view> pass;
      if (!password.empty()) pass = password;
      return ValueOrDie(crypto::ReadBundle(data, pass));
    };

    v1::ExportCertificateResponse pem =
        ValueOrDie(inventory.Export(name, v1::PEM));
    REQUIRE(pem.files_size() == 1);
    CHECK(pem.files(0).filename() == "export.example.com.pem");
    crypto::ParsedBundle leaf_only = certificates_of(pem.files(0).data());
    REQUIRE(leaf_only.certificates.size() == 1);
    CHECK(leaf_only.certificates[0] == chain.leaf.cert);

    v1::ExportCertificateResponse fullchain =
        ValueOrDie(inventory.Export(name, v1::FULLCHAIN_PEM));
    crypto::ParsedBundle full = certificates_of(fullchain.files(0).data());
    REQUIRE(full.certificates.size() == 2);
    CHECK(full.certificates[0] == chain.leaf.cert);
    CHECK(full.certificates[1] == chain.intermediate.cert);
    CHECK(full.keys.empty());

    v1::ExportCertificateResponse der =
        ValueOrDie(inventory.Export(name, v1::DER));
    CHECK(der.files(0).data() == chain.leaf.cert.der());
    CHECK_FALSE(der.files(0).sensitive());

    v1::ExportCertificateResponse p7 =
        ValueOrDie(inventory.Export(name, v1::PKCS7));
    crypto::ParsedBundle p7_bundle = certificates_of(p7.files(0).data());
    CHECK(p7_bundle.format == crypto::Format::kPkcs7Der);
    CHECK(p7_bundle.certificates.size() == 3);

    for (bool legacy : {false, true}) {
      INFO("legacy " << legacy);
      v1::ExportCertificateResponse p12 = ValueOrDie(
          inventory.Export(name, v1::PKCS12, kExportPassword, legacy));
      REQUIRE(p12.files_size() == 1);
      CHECK(absl::EndsWith(p12.files(0).filename(), ".p12"));
      crypto::ParsedBundle bundle =
          certificates_of(p12.files(0).data(), kExportPassword);
      CHECK(bundle.format == crypto::Format::kPkcs12);
      REQUIRE(bundle.keys.size() == 1);
      REQUIRE_FALSE(bundle.certificates.empty());
      CHECK(bundle.certificates[0] == chain.leaf.cert);
      CHECK_THAT(chain.leaf.cert.CheckKeyMatches(bundle.keys[0]), IsOk());
      CHECK(bundle.certificates.size() == 3);
    }

    v1::ExportCertificateResponse nginx =
        ValueOrDie(inventory.Export(name, v1::NGINX_BUNDLE));
    REQUIRE(nginx.files_size() == 2);
    crypto::ParsedBundle nginx_chain = certificates_of(nginx.files(0).data());
    CHECK_FALSE(nginx.files(0).sensitive());
    REQUIRE(nginx_chain.certificates.size() == 2);
    CHECK(nginx_chain.certificates[0] == chain.leaf.cert);
    CHECK(nginx.files(1).sensitive());
    crypto::PrivateKey key =
        ValueOrDie(crypto::PrivateKey::FromPem(nginx.files(1).data()));
    CHECK_THAT(chain.leaf.cert.CheckKeyMatches(key), IsOk());

    // Refusals.
    CHECK_THAT(inventory.Export(name, v1::PKCS12, "short"),
               StatusIs(Code::kInvalidArgument, "password"));
    CHECK_THAT(inventory.Export(name, v1::EXPORT_FORMAT_UNSPECIFIED),
               StatusIs(Code::kInvalidArgument, "format"));
    CHECK_THAT(inventory.Export("certificates/nope", v1::PEM),
               StatusIs(Code::kInvalidArgument, "name"));
    TestChain keyless = Chain("keyless.example.com");
    std::string keyless_name =
        ImportOne(inventory, "keyless.pem", keyless.leaf.cert.ToPem());
    CHECK_THAT(inventory.Export(keyless_name, v1::NGINX_BUNDLE),
               StatusIs(Code::kFailedPrecondition, "no private key"));
    CHECK_THAT(inventory.Export(keyless_name, v1::PKCS12, kExportPassword),
               StatusIs(Code::kFailedPrecondition));
    // A version by name, and one that does not exist.
    CHECK(
        ValueOrDie(inventory.Export(absl::StrCat(name, "/versions/1"), v1::DER))
            .files(0)
            .data() == chain.leaf.cert.der());
    CHECK_THAT(inventory.Export(absl::StrCat(name, "/versions/9"), v1::DER),
               StatusIs(Code::kNotFound));
  });
}

TEST_CASE("ExportPassesTheVaultsRefusalThrough") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db.dialect());
    // This inventory's vault identity may import keys but not export them.
    Inventory inventory(db, &vault, "restricted");
    TestChain chain = Chain("refused.example.com");
    std::string name = ImportOne(inventory, "full.pem", FullPem(chain));
    CHECK_THAT(inventory.Export(name, v1::NGINX_BUNDLE),
               StatusIs(Code::kPermissionDenied));
    CHECK(ValueOrDie(inventory.Export(name, v1::PEM)).files_size() == 1);
  });
}

TEST_CASE("ExportContextIsTheVaultsOwn") {
  CHECK(VaultExportContext("k0123456789abcdef0123456789abcdef") ==
        vault::ExportAssociatedData("k0123456789abcdef0123456789abcdef"));
  std::string spki(64, 'a');
  CHECK(VaultImportRequestId(spki, "payments") ==
        absl::StrCat("inventory:", spki, ":payments"));
  std::string long_owner(100, 'o');
  std::string id = VaultImportRequestId(spki, long_owner);
  CHECK(id.size() <= 128);
  CHECK(id != VaultImportRequestId(spki, std::string(99, 'o')));
}

// ---------------------------------------------------------------------------
// Managed certificates.

TEST_CASE("CreateAndAddVersionWithAKeyFromTheVault") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db.dialect());
    Inventory inventory(db, &vault);
    v1::CreateCertificateRequest create;
    create.mutable_certificate()->set_display_name("pay api");
    create.mutable_certificate()->set_owner("payments");
    create.mutable_certificate()->mutable_renewal()->set_auto_renew(true);
    create.mutable_certificate()
        ->mutable_desired()
        ->mutable_subject()
        ->add_attributes()
        ->set_value("pay.example.com");
    create.set_request_id("order-1");
    v1::ManagedCertificate created;
    REQUIRE_THAT(inventory.Call(&Stub::CreateCertificate, create, &created),
                 IsOk());
    CHECK(created.source() == v1::ISSUED);
    CHECK_FALSE(created.has_current_version());
    CHECK(created.renewal().auto_renew());
    CHECK(created.desired().subject().attributes(0).value() ==
          "pay.example.com");
    v1::ManagedCertificate retried;
    REQUIRE_THAT(inventory.Call(&Stub::CreateCertificate, create, &retried),
                 IsOk());
    CHECK(retried.name() == created.name());
    CHECK_THAT(inventory.Export(created.name(), v1::PEM),
               StatusIs(Code::kFailedPrecondition, "no version"));

    TestChain chain = Chain("pay.example.com");
    std::string key_name = vault.ImportKey(chain.leaf.key);
    v1::AddCertificateVersionRequest add;
    add.set_parent(created.name());
    add.set_certificate(
        absl::StrCat(chain.leaf.cert.ToPem(), chain.intermediate.cert.ToPem()));
    add.set_key_name(key_name);
    add.set_origin("order:1");
    v1::CertificateVersion version;
    REQUIRE_THAT(inventory.Call(&Stub::AddCertificateVersion, add, &version),
                 IsOk());
    CHECK(version.version() == 1);
    CHECK(version.key_name() == key_name);
    CHECK(version.origin() == "order:1");
    CHECK(version.chain_size() == 1);
    CHECK_FALSE(version.chain_complete());
    v1::ExportCertificateResponse bundle =
        ValueOrDie(inventory.Export(created.name(), v1::NGINX_BUNDLE));
    CHECK(bundle.files_size() == 2);

    // Refusals: the same certificate again, a key that is not its own, a
    // private key in the request, a CA first.
    CHECK_THAT(inventory.Call(&Stub::AddCertificateVersion, add, &version),
               StatusIs(Code::kAlreadyExists));
    TestChain other = Chain("other.example.com");
    add.set_certificate(other.leaf.cert.ToPem());
    CHECK_THAT(inventory.Call(&Stub::AddCertificateVersion, add, &version),
               StatusIs(Code::kInvalidArgument, "key_name"));
    add.set_key_name("");
    add.set_certificate(FullPem(other));
    CHECK_THAT(inventory.Call(&Stub::AddCertificateVersion, add, &version),
               StatusIs(Code::kInvalidArgument, "private key"));
    add.set_certificate(other.root.cert.ToPem());
    CHECK_THAT(inventory.Call(&Stub::AddCertificateVersion, add, &version),
               StatusIs(Code::kInvalidArgument, "leaf"));
    add.set_certificate(other.leaf.cert.ToPem());
    add.set_parent("certificates/c00000000000000000000000000000000");
    CHECK_THAT(inventory.Call(&Stub::AddCertificateVersion, add, &version),
               StatusIs(Code::kNotFound));
  });
}

TEST_CASE("GetValidatesNamesAndReportsUnknownCertificates") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db.dialect());
    Inventory inventory(db, &vault);
    v1::GetCertificateRequest request;
    v1::ManagedCertificate response;
    CHECK_THAT(inventory.Call(&Stub::GetCertificate, request, &response),
               StatusIs(Code::kInvalidArgument, "name: required"));
    request.set_name("certificates/xyz");
    CHECK_THAT(inventory.Call(&Stub::GetCertificate, request, &response),
               StatusIs(Code::kInvalidArgument, "name"));
    request.set_name("certificates/c0123456789abcdef0123456789abcdef");
    CHECK_THAT(inventory.Call(&Stub::GetCertificate, request, &response),
               StatusIs(Code::kNotFound));
    v1::GetCertificateVersionRequest version;
    version.set_name(
        "certificates/c0123456789abcdef0123456789abcdef/versions/0");
    v1::CertificateVersion out;
    CHECK_THAT(inventory.Call(&Stub::GetCertificateVersion, version, &out),
               StatusIs(Code::kInvalidArgument, "name"));
  });
}

TEST_CASE("UpdateAppliesTheMaskAndChecksEtags") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db.dialect());
    Inventory inventory(db, &vault);
    TestChain chain = Chain("update.example.com");
    std::string name = ImportOne(inventory, "u.pem", chain.leaf.cert.ToPem());
    v1::ManagedCertificate before = inventory.Get(name);

    v1::UpdateCertificateRequest request;
    request.mutable_certificate()->set_name(name);
    request.mutable_certificate()->set_owner("platform");
    request.mutable_certificate()->set_display_name("ignored: not in mask");
    request.mutable_certificate()->add_environments("staging");
    request.mutable_certificate()->mutable_renewal()->set_auto_renew(true);
    request.mutable_certificate()->mutable_renewal()->set_renew_before_days(99);
    request.mutable_certificate()->set_etag(before.etag());
    request.mutable_update_mask()->add_paths("owner");
    request.mutable_update_mask()->add_paths("environments");
    request.mutable_update_mask()->add_paths("renewal.auto_renew");
    v1::ManagedCertificate updated;
    REQUIRE_THAT(inventory.Call(&Stub::UpdateCertificate, request, &updated),
                 IsOk());
    CHECK(updated.owner() == "platform");
    CHECK(updated.display_name() == before.display_name());
    REQUIRE(updated.environments_size() == 1);
    CHECK(updated.environments(0) == "staging");
    CHECK(updated.renewal().auto_renew());
    CHECK(updated.renewal().renew_before_days() == 0);
    CHECK(updated.etag() != before.etag());

    // The old etag is stale now.
    CHECK_THAT(inventory.Call(&Stub::UpdateCertificate, request, &updated),
               StatusIs(Code::kAborted));
    request.mutable_certificate()->clear_etag();
    request.mutable_update_mask()->clear_paths();
    CHECK_THAT(inventory.Call(&Stub::UpdateCertificate, request, &updated),
               StatusIs(Code::kInvalidArgument, "update_mask"));
    request.mutable_update_mask()->add_paths("source");
    CHECK_THAT(inventory.Call(&Stub::UpdateCertificate, request, &updated),
               StatusIs(Code::kInvalidArgument, "\"source\""));

    std::vector<v1::Change> changes = inventory.Changes();
    REQUIRE_FALSE(changes.empty());
    const v1::Change& last = changes.back();
    CHECK(last.kind() == v1::CERTIFICATE_UPDATED);
    CHECK(last.actor() == "alice");
    CHECK(last.certificate() == name);
    CHECK(std::find(last.changed_fields().begin(), last.changed_fields().end(),
                    "owner") != last.changed_fields().end());
    CHECK(last.sha256_fingerprint_hex() == Sha(chain.leaf.cert));
  });
}

TEST_CASE("DeleteIsSoftAndRevokeMarksTheVersion") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db.dialect());
    Inventory inventory(db, &vault);
    TestChain keep = Chain("keep.example.com");
    TestChain drop = Chain("drop.example.com");
    std::string kept = ImportOne(inventory, "k.pem", keep.leaf.cert.ToPem());
    std::string dropped = ImportOne(inventory, "d.pem", drop.leaf.cert.ToPem());

    v1::DeleteCertificateRequest wrong_etag;
    wrong_etag.set_name(dropped);
    wrong_etag.set_etag("not-the-etag");
    v1::ManagedCertificate deleted;
    CHECK_THAT(inventory.Call(&Stub::DeleteCertificate, wrong_etag, &deleted),
               StatusIs(Code::kAborted));
    v1::DeleteCertificateRequest request;
    request.set_name(dropped);
    REQUIRE_THAT(inventory.Call(&Stub::DeleteCertificate, request, &deleted),
                 IsOk());
    CHECK(deleted.has_delete_time());
    CHECK(inventory.List("").certificates_size() == 1);
    CHECK(inventory.List("", /*show_deleted=*/true).certificates_size() == 2);
    CHECK(inventory.Get(dropped).has_delete_time());
    CHECK_THAT(inventory.Call(&Stub::DeleteCertificate, request, &deleted),
               StatusIs(Code::kFailedPrecondition));
    v1::UpdateCertificateRequest update;
    update.mutable_certificate()->set_name(dropped);
    update.mutable_certificate()->set_owner("platform");
    update.mutable_update_mask()->add_paths("owner");
    v1::ManagedCertificate updated;
    CHECK_THAT(inventory.Call(&Stub::UpdateCertificate, update, &updated),
               StatusIs(Code::kFailedPrecondition));

    v1::RevokeCertificateVersionRequest revoke;
    revoke.set_name(absl::StrCat(kept, "/versions/1"));
    revoke.set_reason("keyCompromise");
    v1::CertificateVersion revoked;
    REQUIRE_THAT(
        inventory.Call(&Stub::RevokeCertificateVersion, revoke, &revoked),
        IsOk());
    CHECK(revoked.status() == v1::REVOKED);
    CHECK(revoked.revocation_reason() == "keyCompromise");
    CHECK(revoked.has_revoke_time());
    CHECK_THAT(
        inventory.Call(&Stub::RevokeCertificateVersion, revoke, &revoked),
        StatusIs(Code::kFailedPrecondition));
    revoke.set_reason("because");
    CHECK_THAT(
        inventory.Call(&Stub::RevokeCertificateVersion, revoke, &revoked),
        StatusIs(Code::kInvalidArgument, "reason"));
    revoke.set_name(kept);
    CHECK_THAT(
        inventory.Call(&Stub::RevokeCertificateVersion, revoke, &revoked),
        StatusIs(Code::kInvalidArgument, "name"));
  });
}

TEST_CASE("ListFiltersPagesAndStatsThroughTheRpc") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db.dialect());
    Inventory inventory(db, &vault);
    TestChain ca = Chain("ca.example.com");
    auto leaf = [&](const std::string& cn, absl::Duration lifetime) {
      TestCertOptions options;
      options.common_name = cn;
      options.not_before = absl::Now() - absl::Hours(24 * 200);
      options.not_after = absl::Now() + lifetime;
      return ValueOrDie(MakeLeaf(ca.intermediate, options)).cert.ToPem();
    };
    ImportOne(inventory, "a.pem", leaf("a.example.com", absl::Hours(24 * 10)),
              "payments");
    ImportOne(inventory, "b.pem", leaf("b.example.com", absl::Hours(24 * 100)),
              "payments");
    ImportOne(inventory, "c.pem", leaf("c.example.org", absl::Hours(24 * 50)),
              "search");
    ImportOne(inventory, "old.pem",
              leaf("old.example.com", -absl::Hours(24 * 5)), "search");

    CHECK(inventory.List("owner = \"payments\"").certificates_size() == 2);
    CHECK(inventory.List("san:\"*.example.com\"").certificates_size() == 3);
    CHECK(inventory.List("days_to_expiry < 30").certificates_size() == 2);
    CHECK(inventory.List("status = EXPIRED").certificates_size() == 1);
    v1::ListCertificatesResponse expired = inventory.List("status = EXPIRED");
    REQUIRE(expired.certificates_size() == 1);
    CHECK(expired.certificates(0).current_version().status() == v1::EXPIRED);
    CHECK(inventory.List("owner = \"payments\" AND days_to_expiry > 30")
              .certificates_size() == 1);

    v1::ListCertificatesRequest bad;
    bad.set_filter("ownr = \"payments\"");
    v1::ListCertificatesResponse response;
    CHECK_THAT(inventory.Call(&Stub::ListCertificates, bad, &response),
               StatusIs(Code::kInvalidArgument, "filter"));
    bad.set_filter("");
    bad.set_page_size(-1);
    CHECK_THAT(inventory.Call(&Stub::ListCertificates, bad, &response),
               StatusIs(Code::kInvalidArgument, "page_size"));

    // Pages of 3 in not_after order, then the rest.
    v1::ListCertificatesRequest page;
    page.set_page_size(3);
    REQUIRE_THAT(inventory.Call(&Stub::ListCertificates, page, &response),
                 IsOk());
    CHECK(response.certificates_size() == 3);
    CHECK(response.total_size() == 4);
    CHECK(response.certificates(0).display_name() == "old.example.com");
    REQUIRE_FALSE(response.next_page_token().empty());
    page.set_page_token(response.next_page_token());
    v1::ListCertificatesResponse second;
    REQUIRE_THAT(inventory.Call(&Stub::ListCertificates, page, &second),
                 IsOk());
    REQUIRE(second.certificates_size() == 1);
    CHECK(second.certificates(0).display_name() == "b.example.com");
    CHECK(second.next_page_token().empty());

    v1::GetStatsRequest stats_request;
    v1::Stats stats;
    REQUIRE_THAT(inventory.Call(&Stub::GetStats, stats_request, &stats),
                 IsOk());
    CHECK(stats.total() == 4);
    CHECK(stats.has_compute_time());
    std::map<std::string, int64_t> by_owner;
    for (const v1::Count& count : stats.by_owner()) {
      by_owner[count.key()] = count.count();
    }
    CHECK(by_owner["payments"] == 2);
    CHECK(by_owner["search"] == 2);
    std::map<std::string, int64_t> by_expiry;
    for (const v1::Count& count : stats.by_expiry()) {
      by_expiry[count.key()] = count.count();
    }
    CHECK(stats.by_expiry_size() == 6);
    CHECK(by_expiry["expired"] == 1);
    CHECK(by_expiry["<=30d"] == 1);
    stats_request.set_filter("owner = \"search\"");
    REQUIRE_THAT(inventory.Call(&Stub::GetStats, stats_request, &stats),
                 IsOk());
    CHECK(stats.total() == 2);
    stats_request.set_filter("owner ==");
    CHECK_THAT(inventory.Call(&Stub::GetStats, stats_request, &stats),
               StatusIs(Code::kInvalidArgument, "filter"));
  });
}

// ---------------------------------------------------------------------------
// The change feed.

// Reads WatchChanges from `since` until `count` changes arrived (then
// cancels, as a consumer that goes away would) or the stream ends.
std::vector<v1::Change> ReadChanges(Stub& stub, int64_t since, size_t count) {
  grpc::ClientContext context;
  context.AddMetadata(vault::kDevelopmentIdentityHeader, "follower");
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  v1::WatchChangesRequest request;
  request.set_since_revision(since);
  std::unique_ptr<grpc::ClientReader<v1::Change>> reader =
      stub.WatchChanges(&context, request);
  std::vector<v1::Change> changes;
  v1::Change change;
  while (changes.size() < count && reader->Read(&change)) {
    changes.push_back(change);
  }
  context.TryCancel();
  reader->Finish();
  return changes;
}

TEST_CASE("AFollowerThatReconnectsSeesEveryRevisionOnceInOrder") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db.dialect());
    Inventory inventory(db, &vault);
    constexpr int kWriters = 3;
    constexpr int kPerWriter = 12;

    auto create = [&](const std::string& request_id) {
      v1::CreateCertificateRequest request;
      request.mutable_certificate()->set_owner("payments");
      request.set_request_id(request_id);
      v1::ManagedCertificate created;
      REQUIRE_THAT(inventory.Call(&Stub::CreateCertificate, request, &created),
                   IsOk());
    };
    for (int i = 0; i < 5; ++i) create(absl::StrCat("before-", i));

    std::vector<v1::Change> seen;
    // 1. Connect, read a few, go away.
    std::vector<v1::Change> first = ReadChanges(inventory.stub(), 0, 3);
    REQUIRE(first.size() == 3);
    seen.insert(seen.end(), first.begin(), first.end());

    // 2. While nobody listens, and then while the follower reads, writers on
    // several threads keep changing things.
    std::atomic<bool> go{false};
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&, w] {
        while (!go.load()) std::this_thread::yield();
        for (int i = 0; i < kPerWriter; ++i) {
          create(absl::StrCat("writer-", w, "-", i));
        }
      });
    }
    go = true;
    const size_t total = 5 + kWriters * kPerWriter;
    // Reconnect from the last revision seen, read part, drop again, resume:
    // twice, while the writers are running.
    for (int round = 0; round < 2; ++round) {
      std::vector<v1::Change> more =
          ReadChanges(inventory.stub(), seen.back().revision(), 5);
      seen.insert(seen.end(), more.begin(), more.end());
    }
    for (std::thread& writer : writers) writer.join();
    std::vector<v1::Change> rest = ReadChanges(
        inventory.stub(), seen.back().revision(), total - seen.size());
    seen.insert(seen.end(), rest.begin(), rest.end());

    REQUIRE(seen.size() == total);
    for (size_t i = 0; i < seen.size(); ++i) {
      CHECK(seen[i].revision() == static_cast<int64_t>(i + 1));
      CHECK(seen[i].kind() == v1::CERTIFICATE_CREATED);
      CHECK(seen[i].actor() == "alice");
    }
    std::set<std::string> names;
    for (const v1::Change& change : seen) names.insert(change.certificate());
    CHECK(names.size() == total);
    CHECK(inventory.Changes(static_cast<int64_t>(total)).empty());
  });
}

TEST_CASE("AWaitingFollowerIsWokenByANewChange") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db.dialect());
    Inventory inventory(db, &vault);
    std::vector<v1::Change> received;
    std::thread follower(
        [&] { received = ReadChanges(inventory.stub(), 0, 2); });
    absl::SleepFor(absl::Milliseconds(200));
    TestChain chain = Chain("wake.example.com");
    ImportOne(inventory, "w.pem", chain.leaf.cert.ToPem());
    follower.join();
    REQUIRE(received.size() == 2);
    CHECK(received[0].kind() == v1::CERTIFICATE_CREATED);
    CHECK(received[1].kind() == v1::VERSION_ADDED);
    CHECK(received[1].version() ==
          absl::StrCat(received[0].certificate(), "/versions/1"));
    CHECK(received[1].sha256_fingerprint_hex() == Sha(chain.leaf.cert));
    CHECK(received[1].not_after().seconds() ==
          absl::ToUnixSeconds(chain.leaf.cert.info().not_after));
  });
}

TEST_CASE("ShutdownEndsWaitingFollowers") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db.dialect());
    Inventory inventory(db, &vault);
    std::vector<v1::Change> received;
    absl::Time start = absl::Now();
    std::thread follower(
        [&] { received = ReadChanges(inventory.stub(), 0, 100); });
    absl::SleepFor(absl::Milliseconds(200));
    inventory.service().Shutdown();
    follower.join();
    CHECK(received.empty());
    CHECK(absl::Now() - start < absl::Seconds(10));
  });
}

TEST_CASE("WithoutAVaultKeysAreRefusedPerCertificate") {
  ForEachBackend([](db::Database& db) {
    Inventory inventory(db, nullptr);
    TestChain with_key = Chain("keyed.example.com");
    TestChain without = Chain("plain.example.com");
    v1::ImportCertificatesRequest request =
        ImportOf("keyed.pem", FullPem(with_key));
    AddFile(request, "plain.pem", without.leaf.cert.ToPem());
    v1::ImportCertificatesResponse response = inventory.Import(request);
    const v1::CertificateResult& keyed =
        LeafResult(FileNamed(response, "keyed.pem"));
    CHECK(keyed.outcome() == v1::IMPORT_OUTCOME_FAILED);
    CHECK(absl::StrContains(keyed.error(), "vault"));
    CHECK(LeafResult(FileNamed(response, "plain.pem")).outcome() ==
          v1::IMPORT_OUTCOME_IMPORTED);
    CHECK(response.failed_count() == 1);
    CHECK(response.imported_count() == 1);
    std::string name =
        LeafResult(FileNamed(response, "plain.pem")).certificate();
    CHECK_THAT(inventory.Export(name, v1::NGINX_BUNDLE),
               StatusIs(Code::kFailedPrecondition));
  });
}

// ---------------------------------------------------------------------------
// The certplane-inventory binary.

int FreePort() { return testing::FreeLoopbackPort(); }

class InventoryProcess {
 public:
  explicit InventoryProcess(std::vector<std::string> flags) {
    int port = FreePort();
    flags.push_back(absl::StrCat("--listen_address=127.0.0.1:", port));
    flags.push_back("--metrics_address=");
    flags.push_back("--log_level=error");
    child_ = ValueOrDie(server::testing::ChildProcess::Start(
        CERTPLANE_INVENTORY_PATH, flags, {}));
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                       grpc::InsecureChannelCredentials());
    REQUIRE(channel->WaitForConnected(
        absl::ToChronoTime(absl::Now() + absl::Seconds(30))));
    stub_ = v1::InventoryService::NewStub(channel);
  }

  v1::ImportCertificatesResponse Import(
      const v1::ImportCertificatesRequest& request) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    context.AddMetadata(vault::kDevelopmentIdentityHeader, "alice");
    v1::ImportCertificatesResponse response;
    REQUIRE_THAT(
        FromGrpcStatus(stub_->ImportCertificates(&context, request, &response)),
        IsOk());
    return response;
  }

  Stub& stub() { return *stub_; }

  // SIGTERM; the process must exit 0 within the grace period.
  void Terminate() {
    REQUIRE_THAT(child_->Signal(SIGTERM), IsOk());
    CHECK(ValueOrDie(child_->WaitForExit(absl::Seconds(20))) == 0);
  }

 private:
  std::unique_ptr<server::testing::ChildProcess> child_;
  std::unique_ptr<Stub> stub_;
};

TEST_CASE("TheBinaryMigratesServesWithTheVaultAndStopsOnSigterm") {
  for (db::Dialect dialect : testing::kAllDialects) {
    INFO("backend: " << db::DialectName(dialect));
    Vault vault(dialect);
    std::filesystem::path dir = FreshDir();
    std::vector<std::string> flags = {
        "--insecure_plaintext_for_development", "--allow_development_identity",
        absl::StrCat("--vault_address=127.0.0.1:", vault.port()),
        "--watch_poll_interval=50ms"};
    if (dialect == db::Dialect::kSqlite) {
      flags.push_back(absl::StrCat("--data_dir=", (dir / "data").string()));
    } else {
      flags.push_back(
          absl::StrCat("--database_url=", testing::FreshDatabaseUrl(dialect)));
    }
    TestChain chain = Chain("binary.example.com");
    std::string name;
    {
      InventoryProcess process(flags);
      v1::ImportCertificatesResponse response =
          process.Import(ImportOf("full.pem", FullPem(chain)));
      const v1::CertificateResult& leaf = LeafResult(response.files(0));
      REQUIRE(leaf.outcome() == v1::IMPORT_OUTCOME_IMPORTED);
      CHECK(absl::StartsWith(leaf.key_name(), "keys/"));
      name = leaf.certificate();

      // A follower waiting on the feed does not hold up SIGTERM.
      std::vector<v1::Change> received;
      std::thread follower(
          [&] { received = ReadChanges(process.stub(), 0, 1000); });
      absl::SleepFor(absl::Milliseconds(300));
      absl::Time start = absl::Now();
      process.Terminate();
      follower.join();
      CHECK(absl::Now() - start < absl::Seconds(5));
      CHECK(received.size() >= 3);  // The CAs and the certificate.
    }
    if (dialect == db::Dialect::kSqlite) {
      CHECK(std::filesystem::exists(dir / "data" / "inventory.db"));
    }
    {
      // A restart finds everything (and the migrations are a no-op).
      InventoryProcess process(flags);
      v1::ImportCertificatesResponse again =
          process.Import(ImportOf("full.pem", FullPem(chain)));
      CHECK(LeafResult(again.files(0)).outcome() ==
            v1::IMPORT_OUTCOME_ALREADY_PRESENT);
      CHECK(LeafResult(again.files(0)).certificate() == name);
      process.Terminate();
    }
    std::filesystem::remove_all(dir);
  }
}

TEST_CASE("TheBinaryRefusesDevelopmentIdentitiesWithTls") {
  const server::testing::CommandResult result =
      ValueOrDie(server::testing::RunShellCommand(
          absl::StrCat(CERTPLANE_INVENTORY_PATH,
                       " --allow_development_identity"
                       " --tls_cert_file=/nonexistent"
                       " --tls_key_file=/nonexistent"
                       " --tls_client_ca_file=/nonexistent"
                       " --metrics_address="
                       " --database_url=sqlite::memory:"),
          absl::Seconds(20)));
  CHECK(result.exit_code == 1);
  CHECK(absl::StrContains(result.output, "--allow_development_identity needs"));
}

}  // namespace
}  // namespace certplane::inventory
