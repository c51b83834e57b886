// The vault service in-process: a real ServerRunner on loopback (plaintext,
// development identities), a real SQL store (SQLite and PostgreSQL through
// ForEachBackend) and a real key-file KEK in a temporary directory.
#include "services/vault/vault_service.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <soci/soci.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "libs/crypto/csr.h"
#include "libs/crypto/ecies.h"
#include "libs/crypto/formats.h"
#include "libs/crypto/issue.h"
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
#include "services/vault/env_kek_source.h"
#include "services/vault/file_kek_source.h"
#include "services/vault/migrations.h"
#include "services/vault/policy.h"
#include "services/vault/vault_store.h"

namespace certplane::vault {
namespace {

using ::certplane::testing::ForEachBackend;
using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;
using Code = ::absl::StatusCode;
using Stub = v1::VaultService::Stub;
namespace common = ::certplane::common::v1;

constexpr char kPolicy[] =
    "admin     *\n"
    "issuer    generate, import, get, list, create_csr, sign\n"
    "reader    get, list\n";

std::filesystem::path FreshDir() {
  static int counter = 0;
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      absl::StrCat("vault_service_test_", ::getpid(), "_", counter++);
  std::filesystem::create_directories(dir);
  return dir;
}

// A vault over `db`, serving on loopback.
class Vault {
 public:
  explicit Vault(db::Database& db, VaultServiceOptions options = {},
                 KekSource* kek = nullptr)
      : db_(db), dir_(FreshDir()) {
    REQUIRE_THAT(db::Migrate(db, VaultMigrations()), IsOk());
    store_ = NewSqlVaultStore(&db);
    if (kek == nullptr) {
      kek_path_ = (dir_ / "kek").string();
      REQUIRE_THAT(CreateKekFile(kek_path_), IsOk());
      file_kek_ = ValueOrDie(FileKekSource::Open(kek_path_));
      kek = file_kek_.get();
    }
    kek_ = kek;
    policy_ = ValueOrDie(Policy::Parse(kPolicy));
    Serve(options);
  }

  ~Vault() {
    runner_.reset();
    service_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Replaces the service (same store and KEK), as a restart would.
  void Restart(VaultServiceOptions options = {}) {
    runner_.reset();
    service_.reset();
    Serve(options);
  }

  template <typename Request, typename Response>
  absl::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*,
                                                 const Request&, Response*),
                    const Request& request, Response* response,
                    const std::string& identity = "admin") {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    if (!identity.empty()) {
      context.AddMetadata(kDevelopmentIdentityHeader, identity);
    }
    return FromGrpcStatus((stub_.get()->*method)(&context, request, response));
  }

  v1::Key Generate(common::KeyType type, const std::string& owner = "payments",
                   const std::string& request_id = "") {
    v1::GenerateKeyRequest request;
    request.mutable_spec()->set_type(type);
    request.set_owner(owner);
    request.set_request_id(request_id);
    v1::Key key;
    REQUIRE_THAT(Call(&Stub::GenerateKey, request, &key), IsOk());
    return key;
  }

  absl::StatusOr<v1::Key> Import(
      const std::string& data, const std::string& password = "",
      v1::KeyFormat format = v1::KEY_FORMAT_UNSPECIFIED) {
    v1::ImportKeyRequest request;
    request.set_data(data);
    request.set_password(password);
    request.set_format(format);
    request.set_owner("payments");
    v1::Key key;
    absl::Status status = Call(&Stub::ImportKey, request, &key);
    if (!status.ok()) return status;
    return key;
  }

  absl::StatusOr<std::string> Sign(const std::string& name,
                                   const std::string& data = "hello") {
    v1::SignRequest request;
    request.set_name(name);
    request.set_data(data);
    v1::SignResponse response;
    absl::Status status = Call(&Stub::Sign, request, &response);
    if (!status.ok()) return status;
    return response.signature();
  }

  // The key's PKCS#8 DER, exported wrapped to a throwaway recipient.
  crypto::SecretBytes ExportPkcs8(const v1::Key& key) {
    crypto::PrivateKey recipient =
        ValueOrDie(crypto::PrivateKey::Generate(crypto::KeyType::kEcdsaP256));
    v1::ExportKeyRequest request;
    request.set_name(key.name());
    request.set_format(v1::EXPORT_WRAPPED_TO_RECIPIENT);
    request.set_recipient_public_key_pem(recipient.public_key().ToPem());
    v1::ExportKeyResponse response;
    REQUIRE_THAT(Call(&Stub::ExportKey, request, &response), IsOk());
    return ValueOrDie(crypto::EciesOpen(recipient, response.data(),
                                        ExportAssociatedData(key.key_id())));
  }

  v1::KekStatus KekStatus() {
    v1::KekStatus status;
    REQUIRE_THAT(Call(&Stub::GetKekStatus, v1::GetKekStatusRequest(), &status),
                 IsOk());
    return status;
  }

  VaultStore& store() { return *store_; }
  VaultService& service() { return *service_; }
  FileKekSource& file_kek() { return *file_kek_; }
  db::Database& db() { return db_; }

 private:
  void Serve(VaultServiceOptions options) {
    service_ = std::make_unique<VaultService>(
        *store_, *kek_, policy_, [] { return absl::Now(); }, options);
    REQUIRE_THAT(service_->Start(), IsOk());
    server::ServerOptions server_options;
    server_options.app_name = "vault-test";
    server_options.listen_address = "127.0.0.1:0";
    server_options.insecure_plaintext_for_development = true;
    server_options.handle_shutdown_signals = false;
    server_options.shutdown_grace_period = absl::Seconds(1);
    runner_ = std::make_unique<server::ServerRunner>(server_options);
    REQUIRE_THAT(runner_->AddService(service_.get(),
                                     v1::VaultService::service_full_name()),
                 IsOk());
    REQUIRE_THAT(runner_->Start(), IsOk());
    stub_ = v1::VaultService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", runner_->port()),
                            grpc::InsecureChannelCredentials()));
  }

  db::Database& db_;
  std::filesystem::path dir_;
  std::string kek_path_;
  std::unique_ptr<VaultStore> store_;
  std::unique_ptr<FileKekSource> file_kek_;
  KekSource* kek_ = nullptr;
  Policy policy_;
  std::unique_ptr<VaultService> service_;
  std::unique_ptr<server::ServerRunner> runner_;
  std::unique_ptr<Stub> stub_;
};

VaultServiceOptions DevOptions() {
  VaultServiceOptions options;
  options.allow_development_identity = true;
  return options;
}

// ---------------------------------------------------------------------------
// Raw row access, for tampering and dumps. Binary columns are lowercase hex
// text on SQLite and BYTEA on PostgreSQL.

std::string ReadBytes(db::Database& db, const std::string& key_id,
                      const std::string& column) {
  std::string hex;
  REQUIRE_THAT(db.Transact([&](soci::session& sql) {
    std::string expr = db.dialect() == db::Dialect::kPostgres
                           ? absl::StrCat("encode(", column, ", 'hex')")
                           : column;
    sql << "SELECT " + expr + " FROM keys WHERE key_id = :id",
        soci::use(key_id), soci::into(hex);
    return absl::OkStatus();
  }),
               IsOk());
  return absl::HexStringToBytes(hex);
}

void WriteBytes(db::Database& db, const std::string& key_id,
                const std::string& column, const std::string& bytes) {
  std::string hex = absl::BytesToHexString(bytes);
  REQUIRE_THAT(db.Transact([&](soci::session& sql) {
    std::string value =
        db.dialect() == db::Dialect::kPostgres ? "decode(:v, 'hex')" : ":v";
    sql << "UPDATE keys SET " + column + " = " + value + " WHERE key_id = :id",
        soci::use(hex), soci::use(key_id);
    return absl::OkStatus();
  }),
               IsOk());
}

void WriteText(db::Database& db, const std::string& key_id,
               const std::string& column, const std::string& value) {
  REQUIRE_THAT(db.Transact([&](soci::session& sql) {
    sql << "UPDATE keys SET " + column + " = :v WHERE key_id = :id",
        soci::use(value), soci::use(key_id);
    return absl::OkStatus();
  }),
               IsOk());
}

// Every column of every table of the vault, as text.
std::string DumpDatabase(db::Database& db) {
  std::string dump;
  REQUIRE_THAT(db.Transact([&](soci::session& sql) {
    std::vector<std::pair<std::string, std::string>> columns;
    if (db.dialect() == db::Dialect::kPostgres) {
      soci::rowset<soci::row> rows =
          (sql.prepare << "SELECT table_name, column_name FROM "
                          "information_schema.columns WHERE table_schema = "
                          "current_schema() ORDER BY table_name, column_name");
      for (const soci::row& row : rows) {
        columns.emplace_back(row.get<std::string>(0), row.get<std::string>(1));
      }
    } else {
      std::vector<std::string> tables;
      soci::rowset<std::string> names =
          (sql.prepare << "SELECT name FROM sqlite_master WHERE type = "
                          "'table' ORDER BY name");
      for (const std::string& name : names) tables.push_back(name);
      for (const std::string& table : tables) {
        soci::rowset<soci::row> rows =
            (sql.prepare << "SELECT name FROM pragma_table_info('" + table +
                                "')");
        for (const soci::row& row : rows) {
          columns.emplace_back(table, row.get<std::string>(0));
        }
      }
    }
    REQUIRE(columns.size() > 20);
    for (const auto& [table, column] : columns) {
      soci::rowset<soci::row> rows =
          (sql.prepare << "SELECT CAST(\"" + column + "\" AS TEXT) FROM \"" +
                              table + "\"");
      for (const soci::row& row : rows) {
        if (row.get_indicator(0) == soci::i_null) continue;
        absl::StrAppend(&dump, table, ".", column, "=", row.get<std::string>(0),
                        "\n");
      }
    }
    return absl::OkStatus();
  }),
               IsOk());
  return dump;
}

void RenameAuditTable(db::Database& db, const std::string& from,
                      const std::string& to) {
  REQUIRE_THAT(db.Transact([&](soci::session& sql) {
    sql << "ALTER TABLE " + from + " RENAME TO " + to;
    return absl::OkStatus();
  }),
               IsOk());
}

// ---------------------------------------------------------------------------

TEST_CASE("GenerateKeyReturnsMetadataAndAUsablePublicKeyForEveryType") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db, DevOptions());
    struct Case {
      common::KeyType type;
      common::KeyAlgorithm algorithm;
      int bits;
      const char* curve;
    };
    for (const Case& c :
         {Case{common::RSA_2048, common::RSA, 2048, ""},
          Case{common::RSA_3072, common::RSA, 3072, ""},
          Case{common::ECDSA_P256, common::ECDSA, 256, "P-256"},
          Case{common::ECDSA_P384, common::ECDSA, 384, "P-384"},
          Case{common::ED25519, common::EDDSA_ED25519, 256, ""}}) {
      INFO(common::KeyType_Name(c.type));
      v1::Key key = vault.Generate(c.type);
      CHECK(key.name() == "keys/" + key.key_id());
      CHECK(key.key_id().size() == 33);
      CHECK(key.version() == 1);
      CHECK(key.owner() == "payments");
      CHECK(key.info().algorithm() == c.algorithm);
      CHECK(key.info().bits() == c.bits);
      CHECK(key.info().curve() == c.curve);
      CHECK(key.state() == v1::ACTIVE);
      CHECK(key.origin() == "generated");
      CHECK(key.create_time().seconds() > 0);
      crypto::PublicKey public_key =
          ValueOrDie(crypto::PublicKey::FromPem(key.public_key_pem()));
      CHECK(crypto::HexEncode(public_key.SpkiSha256()) == key.spki_sha256());
      std::string signature = ValueOrDie(vault.Sign(key.name(), "message"));
      CHECK_THAT(crypto::VerifySignature(public_key, "message", signature),
                 IsOk());
    }
  });
}

TEST_CASE("GenerateKeyIsIdempotentByRequestId") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db, DevOptions());
    v1::Key first = vault.Generate(common::ECDSA_P256, "payments", "req-1");
    v1::Key again = vault.Generate(common::ECDSA_P256, "payments", "req-1");
    CHECK(again.key_id() == first.key_id());
    CHECK(again.public_key_pem() == first.public_key_pem());
    v1::GenerateKeyRequest different;
    different.mutable_spec()->set_type(common::ED25519);
    different.set_owner("payments");
    different.set_request_id("req-1");
    v1::Key key;
    CHECK_THAT(vault.Call(&Stub::GenerateKey, different, &key),
               StatusIs(Code::kAlreadyExists, first.key_id()));
    // Another owner's retry of the same request_id learns nothing of the
    // key.
    v1::GenerateKeyRequest other_owner;
    other_owner.mutable_spec()->set_type(common::ECDSA_P256);
    other_owner.set_owner("billing");
    other_owner.set_request_id("req-1");
    absl::Status refused = vault.Call(&Stub::GenerateKey, other_owner, &key);
    CHECK_THAT(refused, StatusIs(Code::kAlreadyExists,
                                 "was already used for another owner's key"));
    CHECK_FALSE(absl::StrContains(refused.message(), first.key_id()));
    v1::ListKeysResponse list;
    REQUIRE_THAT(vault.Call(&Stub::ListKeys, v1::ListKeysRequest(), &list),
                 IsOk());
    CHECK(list.keys_size() == 1);
  });
}

TEST_CASE("GenerateKeyRejectsBadInputNamingTheField") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db, DevOptions());
    v1::GenerateKeyRequest request;
    request.set_owner("payments");
    v1::Key key;
    CHECK_THAT(vault.Call(&Stub::GenerateKey, request, &key),
               StatusIs(Code::kInvalidArgument, "spec.type"));
    request.mutable_spec()->set_type(static_cast<common::KeyType>(42));
    CHECK_THAT(vault.Call(&Stub::GenerateKey, request, &key),
               StatusIs(Code::kInvalidArgument, "spec.type"));
    request.mutable_spec()->set_type(common::ECDSA_P256);
    request.set_owner("");
    CHECK_THAT(vault.Call(&Stub::GenerateKey, request, &key),
               StatusIs(Code::kInvalidArgument, "owner"));
    request.set_owner("pay ments");
    CHECK_THAT(vault.Call(&Stub::GenerateKey, request, &key),
               StatusIs(Code::kInvalidArgument, "owner"));
    request.set_owner("payments");
    (*request.mutable_labels())["Bad Key"] = "x";
    CHECK_THAT(vault.Call(&Stub::GenerateKey, request, &key),
               StatusIs(Code::kInvalidArgument, "labels"));
  });
}

TEST_CASE("ImportKeyAcceptsEveryFormatAndKeepsThePublicKey") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db, DevOptions());
    crypto::PrivateKey ec =
        ValueOrDie(crypto::PrivateKey::Generate(crypto::KeyType::kEcdsaP256));
    crypto::PrivateKey rsa =
        ValueOrDie(crypto::PrivateKey::Generate(crypto::KeyType::kRsa2048));
    const std::string password = "correct horse battery";
    struct Case {
      const char* what;
      std::string data;
      std::string password;
      v1::KeyFormat format;
      const crypto::PrivateKey* key;
    };
    std::vector<Case> cases = {
        {"PKCS#8 PEM", std::string(ValueOrDie(ec.ToPkcs8Pem()).view()), "",
         v1::KEY_FORMAT_UNSPECIFIED, &ec},
        {"PKCS#8 DER", std::string(ValueOrDie(ec.ToPkcs8Der()).view()), "",
         v1::PKCS8_DER, &ec},
        {"encrypted PKCS#8 PEM",
         std::string(ValueOrDie(rsa.ToEncryptedPkcs8Pem(password)).view()),
         password, v1::ENCRYPTED_PKCS8_PEM, &rsa},
        {"traditional PEM",
         std::string(ValueOrDie(rsa.ToTraditionalPem()).view()), "",
         v1::TRADITIONAL_PEM, &rsa},
        {"PKCS#12", ValueOrDie(crypto::WritePkcs12(&ec, {}, password)),
         password, v1::KEY_FORMAT_UNSPECIFIED, &ec},
    };
    for (const Case& c : cases) {
      INFO(c.what);
      v1::Key key = ValueOrDie(vault.Import(c.data, c.password, c.format));
      CHECK(key.origin() == "imported");
      CHECK(ValueOrDie(crypto::PublicKey::FromPem(key.public_key_pem())) ==
            c.key->public_key());
      CHECK(vault.ExportPkcs8(key) == ValueOrDie(c.key->ToPkcs8Der()));
    }
  });
}

TEST_CASE("ImportKeyRejectsMalformedInputWrongPasswordsAndSeveralKeys") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db, DevOptions());
    crypto::PrivateKey a =
        ValueOrDie(crypto::PrivateKey::Generate(crypto::KeyType::kEcdsaP256));
    crypto::PrivateKey b =
        ValueOrDie(crypto::PrivateKey::Generate(crypto::KeyType::kEd25519));
    std::string encrypted(
        ValueOrDie(a.ToEncryptedPkcs8Pem("the right password")).view());
    CHECK_THAT(vault.Import(""), StatusIs(Code::kInvalidArgument, "data"));
    CHECK_THAT(vault.Import("not a key at all"),
               StatusIs(Code::kInvalidArgument, "data"));
    CHECK_THAT(vault.Import(encrypted, "the wrong password"),
               StatusIs(Code::kInvalidArgument, "password"));
    CHECK_THAT(vault.Import(encrypted),
               StatusIs(Code::kInvalidArgument, "password"));
    std::string two = absl::StrCat(ValueOrDie(a.ToPkcs8Pem()).view(),
                                   ValueOrDie(b.ToPkcs8Pem()).view());
    CHECK_THAT(vault.Import(two),
               StatusIs(Code::kInvalidArgument, "exactly one"));
    std::string pem(ValueOrDie(a.ToPkcs8Pem()).view());
    CHECK_THAT(vault.Import(pem.substr(0, pem.size() / 2)),
               StatusIs(Code::kInvalidArgument));
    CHECK_THAT(vault.Import(pem, "", static_cast<v1::KeyFormat>(99)),
               StatusIs(Code::kInvalidArgument, "format"));
    v1::ListKeysResponse list;
    REQUIRE_THAT(vault.Call(&Stub::ListKeys, v1::ListKeysRequest(), &list),
                 IsOk());
    CHECK(list.keys_size() == 0);
  });
}

TEST_CASE("GetKeyFindsKeysAndRefusesUnknownAndMalformedNames") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db, DevOptions());
    v1::Key key = vault.Generate(common::ED25519);
    v1::GetKeyRequest request;
    request.set_name(key.name());
    v1::Key got;
    REQUIRE_THAT(vault.Call(&Stub::GetKey, request, &got, "reader"), IsOk());
    CHECK(got.SerializeAsString() == key.SerializeAsString());
    request.set_name("keys/k00000000000000000000000000000000");
    CHECK_THAT(vault.Call(&Stub::GetKey, request, &got),
               StatusIs(Code::kNotFound));
    for (const char* bad : {"", "k00000000000000000000000000000000",
                            "keys/K00000000000000000000000000000000",
                            "keys/k0000", "keys/../etc"}) {
      INFO(bad);
      request.set_name(bad);
      CHECK_THAT(vault.Call(&Stub::GetKey, request, &got),
                 StatusIs(Code::kInvalidArgument, "name"));
    }
  });
}

TEST_CASE("ListKeysFiltersAndPages") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db, DevOptions());
    vault.Generate(common::ECDSA_P256, "payments");
    vault.Generate(common::ED25519, "payments");
    vault.Generate(common::ECDSA_P256, "search");
    v1::GenerateKeyRequest labelled;
    labelled.mutable_spec()->set_type(common::ECDSA_P384);
    labelled.set_owner("search");
    (*labelled.mutable_labels())["env"] = "prod";
    v1::Key with_label;
    REQUIRE_THAT(vault.Call(&Stub::GenerateKey, labelled, &with_label), IsOk());
    CHECK(with_label.labels().at("env") == "prod");

    auto count = [&](const std::string& filter) {
      v1::ListKeysRequest request;
      request.set_filter(filter);
      v1::ListKeysResponse response;
      REQUIRE_THAT(vault.Call(&Stub::ListKeys, request, &response, "reader"),
                   IsOk());
      return response.keys_size();
    };
    CHECK(count("") == 4);
    CHECK(count("owner = \"payments\"") == 2);
    CHECK(count("owner=search AND algorithm = ECDSA") == 2);
    CHECK(count("algorithm = ed25519") == 1);
    CHECK(count("labels.env = prod") == 1);
    CHECK(count("state = DESTROYED") == 0);
    CHECK(count("origin = generated AND state = ACTIVE") == 4);

    std::vector<std::string> seen;
    v1::ListKeysRequest page_request;
    page_request.set_page_size(3);
    for (int pages = 0; pages < 5; ++pages) {
      v1::ListKeysResponse page;
      REQUIRE_THAT(vault.Call(&Stub::ListKeys, page_request, &page), IsOk());
      for (const v1::Key& key : page.keys()) seen.push_back(key.key_id());
      if (page.next_page_token().empty()) break;
      page_request.set_page_token(page.next_page_token());
    }
    CHECK(seen.size() == 4);
    CHECK(std::is_sorted(seen.begin(), seen.end()));

    v1::ListKeysRequest bad;
    v1::ListKeysResponse response;
    for (const char* filter :
         {"owner", "owner = \"x", "colour = red", "algorithm = DSA",
          "owner = a OR owner = b", "owner = a AND owner = b"}) {
      INFO(filter);
      bad.set_filter(filter);
      CHECK_THAT(vault.Call(&Stub::ListKeys, bad, &response),
                 StatusIs(Code::kInvalidArgument, "filter"));
    }
    bad.Clear();
    bad.set_page_size(-1);
    CHECK_THAT(vault.Call(&Stub::ListKeys, bad, &response),
               StatusIs(Code::kInvalidArgument, "page_size"));
    bad.Clear();
    bad.set_page_token("garbage!");
    CHECK_THAT(vault.Call(&Stub::ListKeys, bad, &response),
               StatusIs(Code::kInvalidArgument, "page_token"));
  });
}

TEST_CASE("DeleteKeyShredsTheKeyAndRemembersIt") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db, DevOptions());
    v1::Key key = vault.Generate(common::ECDSA_P256);
    v1::DeleteKeyRequest request;
    request.set_name(key.name());
    v1::Key deleted;
    CHECK_THAT(vault.Call(&Stub::DeleteKey, request, &deleted, "issuer"),
               StatusIs(Code::kPermissionDenied));
    REQUIRE_THAT(vault.Call(&Stub::DeleteKey, request, &deleted), IsOk());
    CHECK(deleted.state() == v1::DESTROYED);
    CHECK(deleted.destroy_time().seconds() > 0);
    CHECK(ReadBytes(db, key.key_id(), "sealed_key").empty());
    CHECK(ReadBytes(db, key.key_id(), "wrapped_dek").empty());
    v1::GetKeyRequest get;
    get.set_name(key.name());
    v1::Key got;
    REQUIRE_THAT(vault.Call(&Stub::GetKey, get, &got), IsOk());
    CHECK(got.state() == v1::DESTROYED);
    CHECK_THAT(vault.Sign(key.name()), StatusIs(Code::kFailedPrecondition));
    CHECK_THAT(vault.Call(&Stub::DeleteKey, request, &deleted),
               StatusIs(Code::kFailedPrecondition));
    request.set_name("keys/k11111111111111111111111111111111");
    CHECK_THAT(vault.Call(&Stub::DeleteKey, request, &deleted),
               StatusIs(Code::kNotFound));
  });
}

TEST_CASE("CreateCsrSignsInsideTheVault") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db, DevOptions());
    v1::Key key = vault.Generate(common::ECDSA_P256);
    v1::CreateCsrRequest request;
    request.set_name(key.name());
    auto* cn = request.mutable_subject()->add_attributes();
    cn->set_type("CN");
    cn->set_value("www.example.com");
    auto* san = request.add_sans();
    san->set_type(common::SubjectAltName::DNS);
    san->set_value("www.example.com");
    v1::CreateCsrResponse response;
    REQUIRE_THAT(vault.Call(&Stub::CreateCsr, request, &response, "issuer"),
                 IsOk());
    crypto::CertificateRequest csr =
        ValueOrDie(crypto::CertificateRequest::FromPem(response.csr_pem()));
    CHECK_THAT(csr.VerifySignature(), IsOk());
    CHECK(csr.public_key() ==
          ValueOrDie(crypto::PublicKey::FromPem(key.public_key_pem())));
    CHECK(csr.subject().Get("CN") == "www.example.com");

    v1::CreateCsrRequest empty;
    empty.set_name(key.name());
    CHECK_THAT(vault.Call(&Stub::CreateCsr, empty, &response),
               StatusIs(Code::kInvalidArgument, "subject"));
    v1::CreateCsrRequest bad_san = request;
    bad_san.mutable_sans(0)->set_type(common::SubjectAltName::TYPE_UNSPECIFIED);
    CHECK_THAT(vault.Call(&Stub::CreateCsr, bad_san, &response),
               StatusIs(Code::kInvalidArgument, "sans[0]"));
    v1::CreateCsrRequest unknown = request;
    unknown.set_name("keys/k22222222222222222222222222222222");
    CHECK_THAT(vault.Call(&Stub::CreateCsr, unknown, &response),
               StatusIs(Code::kNotFound));
    CHECK_THAT(vault.Call(&Stub::CreateCsr, request, &response, "reader"),
               StatusIs(Code::kPermissionDenied));
  });
}

TEST_CASE("SignValidatesDigestAndInput") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db, DevOptions());
    v1::Key rsa = vault.Generate(common::RSA_2048);
    v1::Key ed = vault.Generate(common::ED25519);
    crypto::PublicKey rsa_public =
        ValueOrDie(crypto::PublicKey::FromPem(rsa.public_key_pem()));
    v1::SignRequest request;
    request.set_name(rsa.name());
    request.set_data("to be signed");
    request.set_digest("sha384");
    v1::SignResponse response;
    REQUIRE_THAT(vault.Call(&Stub::Sign, request, &response, "issuer"), IsOk());
    CHECK(response.signature_algorithm() == "sha384WithRSAEncryption");
    CHECK_THAT(crypto::VerifySignature(rsa_public, "to be signed",
                                       response.signature(), "sha384"),
               IsOk());

    request.set_digest("md5");
    CHECK_THAT(vault.Call(&Stub::Sign, request, &response),
               StatusIs(Code::kInvalidArgument, "digest"));
    v1::SignRequest no_input;
    no_input.set_name(rsa.name());
    CHECK_THAT(vault.Call(&Stub::Sign, no_input, &response),
               StatusIs(Code::kInvalidArgument, "data or digest_value"));
    v1::SignRequest ed_digest;
    ed_digest.set_name(ed.name());
    ed_digest.set_digest_value(std::string(32, 'x'));
    CHECK_THAT(vault.Call(&Stub::Sign, ed_digest, &response),
               StatusIs(Code::kInvalidArgument, "Ed25519"));
    v1::SignRequest short_digest;
    short_digest.set_name(rsa.name());
    short_digest.set_digest_value("short");
    CHECK_THAT(vault.Call(&Stub::Sign, short_digest, &response),
               StatusIs(Code::kInvalidArgument, "digest_value"));
    CHECK_THAT(vault.Sign("keys/k33333333333333333333333333333333"),
               StatusIs(Code::kNotFound));
    request.set_digest("");
    CHECK_THAT(vault.Call(&Stub::Sign, request, &response, "reader"),
               StatusIs(Code::kPermissionDenied));
  });
}

TEST_CASE("SignsAPrecomputedDigest") {
  // FIPS 180-2 test vectors: the SHA-256 and SHA-384 digests of "abc".
  const std::string sha256_abc = absl::HexStringToBytes(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string sha384_abc = absl::HexStringToBytes(
      "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded163"
      "1a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7");
  ForEachBackend([&](db::Database& db) {
    Vault vault(db, DevOptions());
    for (common::KeyType type : {common::RSA_2048, common::ECDSA_P256}) {
      v1::Key key = vault.Generate(type);
      INFO(key.info().ShortDebugString());
      crypto::PublicKey public_key =
          ValueOrDie(crypto::PublicKey::FromPem(key.public_key_pem()));
      v1::SignRequest request;
      request.set_name(key.name());
      request.set_digest_value(sha256_abc);
      v1::SignResponse response;
      REQUIRE_THAT(vault.Call(&Stub::Sign, request, &response), IsOk());
      CHECK_THAT(crypto::VerifySignature(public_key, "abc",
                                         response.signature(), "sha256"),
                 IsOk());
      CHECK_THAT(crypto::VerifySignature(public_key, "abd",
                                         response.signature(), "sha256"),
                 StatusIs(Code::kInvalidArgument));

      request.set_digest("sha384");
      request.set_digest_value(sha384_abc);
      REQUIRE_THAT(vault.Call(&Stub::Sign, request, &response), IsOk());
      CHECK_THAT(crypto::VerifySignature(public_key, "abc",
                                         response.signature(), "sha384"),
                 IsOk());

      // A SHA-256 digest labelled sha384 has the wrong length.
      request.set_digest_value(sha256_abc);
      CHECK_THAT(vault.Call(&Stub::Sign, request, &response),
                 StatusIs(Code::kInvalidArgument, "digest has 48"));
      request.set_digest("sha256");
      request.set_digest_value(sha256_abc + "x");
      CHECK_THAT(vault.Call(&Stub::Sign, request, &response),
                 StatusIs(Code::kInvalidArgument, "digest_value: 33 bytes"));
    }

    v1::Key ed = vault.Generate(common::ED25519);
    v1::SignRequest ed_request;
    ed_request.set_name(ed.name());
    ed_request.set_digest_value(sha256_abc);
    v1::SignResponse response;
    CHECK_THAT(vault.Call(&Stub::Sign, ed_request, &response),
               StatusIs(Code::kInvalidArgument, "Ed25519"));
  });
}

TEST_CASE("ExportKeyInEveryFormatOpensOnlyWithTheRightSecret") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db, DevOptions());
    v1::Key key = vault.Generate(common::ECDSA_P384);
    crypto::PublicKey public_key =
        ValueOrDie(crypto::PublicKey::FromPem(key.public_key_pem()));
    const std::string password = "a long export password";

    v1::ExportKeyRequest request;
    request.set_name(key.name());
    request.set_format(v1::EXPORT_ENCRYPTED_PKCS8_PEM);
    request.set_password(password);
    v1::ExportKeyResponse response;
    REQUIRE_THAT(vault.Call(&Stub::ExportKey, request, &response), IsOk());
    CHECK(response.format() == v1::EXPORT_ENCRYPTED_PKCS8_PEM);
    CHECK(absl::StrContains(response.data(), "ENCRYPTED PRIVATE KEY"));
    CHECK(ValueOrDie(crypto::PrivateKey::FromPem(response.data(), password))
              .public_key() == public_key);
    CHECK_THAT(crypto::PrivateKey::FromPem(response.data(), "wrong password!"),
               StatusIs(Code::kInvalidArgument));

    request.set_format(v1::EXPORT_PKCS12);
    REQUIRE_THAT(vault.Call(&Stub::ExportKey, request, &response), IsOk());
    crypto::ParsedBundle bundle =
        ValueOrDie(crypto::ReadPkcs12(response.data(), password));
    REQUIRE(bundle.keys.size() == 1);
    CHECK(bundle.keys[0].public_key() == public_key);
    CHECK_THAT(crypto::ReadPkcs12(response.data(), "wrong password!"),
               StatusIs(Code::kInvalidArgument));

    crypto::PrivateKey recipient =
        ValueOrDie(crypto::PrivateKey::Generate(crypto::KeyType::kEcdsaP256));
    crypto::PrivateKey stranger =
        ValueOrDie(crypto::PrivateKey::Generate(crypto::KeyType::kEcdsaP256));
    request.set_format(v1::EXPORT_WRAPPED_TO_RECIPIENT);
    request.set_password("");
    request.set_recipient_public_key_pem(recipient.public_key().ToPem());
    REQUIRE_THAT(vault.Call(&Stub::ExportKey, request, &response), IsOk());
    crypto::SecretBytes pkcs8 = ValueOrDie(crypto::EciesOpen(
        recipient, response.data(), ExportAssociatedData(key.key_id())));
    CHECK(ValueOrDie(crypto::PrivateKey::FromDer(pkcs8.view())).public_key() ==
          public_key);
    CHECK_THAT(crypto::EciesOpen(stranger, response.data(),
                                 ExportAssociatedData(key.key_id())),
               StatusIs(Code::kDataLoss));
    CHECK_THAT(crypto::EciesOpen(recipient, response.data(),
                                 ExportAssociatedData("k-other")),
               StatusIs(Code::kDataLoss));
  });
}

TEST_CASE("ExportKeyRejectsWeakPasswordsBadRecipientsAndUnknownFormats") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db, DevOptions());
    v1::Key key = vault.Generate(common::ECDSA_P256);
    v1::ExportKeyRequest request;
    request.set_name(key.name());
    v1::ExportKeyResponse response;
    CHECK_THAT(vault.Call(&Stub::ExportKey, request, &response),
               StatusIs(Code::kInvalidArgument, "format"));
    request.set_format(v1::EXPORT_ENCRYPTED_PKCS8_PEM);
    request.set_password("elevenchars");
    CHECK_THAT(vault.Call(&Stub::ExportKey, request, &response),
               StatusIs(Code::kInvalidArgument, "password"));
    request.set_format(v1::EXPORT_PKCS12);
    CHECK_THAT(vault.Call(&Stub::ExportKey, request, &response),
               StatusIs(Code::kInvalidArgument, "password"));
    request.set_password("twelve chars");
    request.set_certificate_pem("not a certificate");
    CHECK_THAT(vault.Call(&Stub::ExportKey, request, &response),
               StatusIs(Code::kInvalidArgument, "certificate_pem"));
    request.set_format(v1::EXPORT_WRAPPED_TO_RECIPIENT);
    crypto::PrivateKey rsa =
        ValueOrDie(crypto::PrivateKey::Generate(crypto::KeyType::kRsa2048));
    request.set_recipient_public_key_pem(rsa.public_key().ToPem());
    CHECK_THAT(vault.Call(&Stub::ExportKey, request, &response),
               StatusIs(Code::kInvalidArgument, "recipient_public_key_pem"));
    request.set_recipient_public_key_pem("garbage");
    CHECK_THAT(vault.Call(&Stub::ExportKey, request, &response),
               StatusIs(Code::kInvalidArgument, "recipient_public_key_pem"));
  });
}

TEST_CASE("DeniedExportIsRefusedAndAudited") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db, DevOptions());
    v1::Key key = vault.Generate(common::ECDSA_P256);
    v1::ExportKeyRequest request;
    request.set_name(key.name());
    request.set_format(v1::EXPORT_ENCRYPTED_PKCS8_PEM);
    request.set_password("a long export password");
    v1::ExportKeyResponse response;
    CHECK_THAT(vault.Call(&Stub::ExportKey, request, &response, "issuer"),
               StatusIs(Code::kPermissionDenied, "issuer"));
    CHECK(response.data().empty());
    std::vector<AuditRecord> audit = ValueOrDie(vault.store().RecentAudit(1));
    REQUIRE(audit.size() == 1);
    CHECK(audit[0].operation == "ExportKey");
    CHECK(audit[0].identity == "issuer");
    CHECK(audit[0].result == "PERMISSION_DENIED");
    CHECK_FALSE(audit[0].request_id.empty());

    REQUIRE_THAT(vault.Call(&Stub::ExportKey, request, &response), IsOk());
    audit = ValueOrDie(vault.store().RecentAudit(1));
    CHECK(audit[0].operation == "ExportKey");
    CHECK(audit[0].identity == "admin");
    CHECK(audit[0].key_id == key.key_id());
    CHECK(audit[0].result == "OK");
  });
}

TEST_CASE("CallersWithoutIdentityAreUnauthenticated") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db, DevOptions());
    v1::ListKeysResponse response;
    CHECK_THAT(
        vault.Call(&Stub::ListKeys, v1::ListKeysRequest(), &response, ""),
        StatusIs(Code::kUnauthenticated));
    CHECK_THAT(vault.Call(&Stub::ListKeys, v1::ListKeysRequest(), &response,
                          "stranger"),
               StatusIs(Code::kPermissionDenied));
    // Without the development flag the header is refused, not ignored.
    vault.Restart(VaultServiceOptions{});
    CHECK_THAT(
        vault.Call(&Stub::ListKeys, v1::ListKeysRequest(), &response, "admin"),
        StatusIs(Code::kUnauthenticated, kDevelopmentIdentityHeader));
    std::vector<AuditRecord> audit = ValueOrDie(vault.store().RecentAudit(1));
    REQUIRE(audit.size() == 1);
    CHECK(audit[0].result == "UNAUTHENTICATED");
  });
}

TEST_CASE("TamperedRowsAreAlwaysRefusedWithDataLoss") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db, DevOptions());
    v1::Key a = vault.Generate(common::ECDSA_P256, "payments");
    v1::Key b = vault.Generate(common::ECDSA_P256, "payments");
    int attempts = 0;
    int refused = 0;
    auto expect_data_loss = [&](const std::string& what) {
      ++attempts;
      absl::StatusOr<std::string> signature = vault.Sign(a.name());
      INFO(what << ": " << signature.status());
      CHECK_THAT(signature, StatusIs(Code::kDataLoss));
      if (signature.status().code() == Code::kDataLoss) ++refused;
    };
    for (const char* column : {"sealed_key", "wrapped_dek"}) {
      const std::string original = ReadBytes(db, a.key_id(), column);
      REQUIRE_FALSE(original.empty());
      for (size_t i = 0; i < original.size(); ++i) {
        std::string tampered = original;
        tampered[i] = static_cast<char>(tampered[i] ^ (1 << (i % 8)));
        WriteBytes(db, a.key_id(), column, tampered);
        expect_data_loss(absl::StrCat(column, " byte ", i));
      }
      WriteBytes(db, a.key_id(), column, original.substr(0, 10));
      expect_data_loss(absl::StrCat(column, " truncated"));
      WriteBytes(db, a.key_id(), column, original);
    }
    REQUIRE_THAT(vault.Sign(a.name()), IsOk());

    // Rows swapped: a's row carries b's sealed data.
    for (const char* column : {"sealed_key", "wrapped_dek"}) {
      const std::string original = ReadBytes(db, a.key_id(), column);
      WriteBytes(db, a.key_id(), column, ReadBytes(db, b.key_id(), column));
      expect_data_loss(absl::StrCat("swapped ", column));
      WriteBytes(db, a.key_id(), column, original);
    }
    const std::string sealed_a = ReadBytes(db, a.key_id(), "sealed_key");
    const std::string dek_a = ReadBytes(db, a.key_id(), "wrapped_dek");
    WriteBytes(db, a.key_id(), "sealed_key",
               ReadBytes(db, b.key_id(), "sealed_key"));
    WriteBytes(db, a.key_id(), "wrapped_dek",
               ReadBytes(db, b.key_id(), "wrapped_dek"));
    expect_data_loss("swapped sealed_key and wrapped_dek");
    WriteBytes(db, a.key_id(), "sealed_key", sealed_a);
    WriteBytes(db, a.key_id(), "wrapped_dek", dek_a);

    // Associated data changed: owner and key version.
    WriteText(db, a.key_id(), "owner", "search");
    expect_data_loss("owner changed");
    WriteText(db, a.key_id(), "owner", "payments");
    REQUIRE_THAT(db.Transact([&](soci::session& sql) {
      sql << "UPDATE keys SET version = 2 WHERE key_id = :id",
          soci::use(a.key_id());
      return absl::OkStatus();
    }),
                 IsOk());
    expect_data_loss("version changed");
    REQUIRE_THAT(db.Transact([&](soci::session& sql) {
      sql << "UPDATE keys SET version = 1 WHERE key_id = :id",
          soci::use(a.key_id());
      return absl::OkStatus();
    }),
                 IsOk());
    // Public key swapped: the sealed key no longer matches it.
    WriteBytes(db, a.key_id(), "public_key_der",
               ReadBytes(db, b.key_id(), "public_key_der"));
    expect_data_loss("public key swapped");

    CHECK(attempts > 150);
    CHECK(refused == attempts);
    CHECK_THAT(vault.Sign(b.name()), IsOk());
  });
}

TEST_CASE("AuditFailureMeansTheOperationDoesNotHappen") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db, DevOptions());
    v1::Key key = vault.Generate(common::ECDSA_P256);
    RenameAuditTable(db, "audit", "audit_away");
    v1::GenerateKeyRequest generate;
    generate.mutable_spec()->set_type(common::ED25519);
    generate.set_owner("payments");
    v1::Key generated;
    CHECK_FALSE(vault.Call(&Stub::GenerateKey, generate, &generated).ok());
    v1::SignResponse signed_response;
    v1::SignRequest sign;
    sign.set_name(key.name());
    sign.set_data("x");
    CHECK_FALSE(vault.Call(&Stub::Sign, sign, &signed_response).ok());
    CHECK(signed_response.signature().empty());
    v1::ExportKeyRequest export_request;
    export_request.set_name(key.name());
    export_request.set_format(v1::EXPORT_ENCRYPTED_PKCS8_PEM);
    export_request.set_password("a long export password");
    v1::ExportKeyResponse exported;
    CHECK_FALSE(vault.Call(&Stub::ExportKey, export_request, &exported).ok());
    CHECK(exported.data().empty());
    v1::DeleteKeyRequest remove;
    remove.set_name(key.name());
    v1::Key deleted;
    CHECK_FALSE(vault.Call(&Stub::DeleteKey, remove, &deleted).ok());
    RenameAuditTable(db, "audit_away", "audit");

    v1::ListKeysResponse list;
    REQUIRE_THAT(vault.Call(&Stub::ListKeys, v1::ListKeysRequest(), &list),
                 IsOk());
    REQUIRE(list.keys_size() == 1);
    CHECK(list.keys(0).state() == v1::ACTIVE);
    CHECK_THAT(vault.Sign(key.name()), IsOk());
  });
}

TEST_CASE("DatabaseDumpHoldsNoPlaintextKey") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db, DevOptions());
    // Each key's PKCS#8 DER and its SubjectPublicKeyInfo (public parts of
    // the DER, such as an RSA modulus, are legitimately stored).
    std::vector<std::pair<std::string, std::string>> secrets;
    for (common::KeyType type :
         {common::RSA_2048, common::ECDSA_P256, common::ED25519}) {
      v1::Key key = vault.Generate(type);
      secrets.emplace_back(
          vault.ExportPkcs8(key).view(),
          ValueOrDie(crypto::PublicKey::FromPem(key.public_key_pem())).ToDer());
    }
    crypto::PrivateKey imported =
        ValueOrDie(crypto::PrivateKey::Generate(crypto::KeyType::kEcdsaP384));
    REQUIRE_THAT(
        vault.Import(std::string(ValueOrDie(imported.ToPkcs8Pem()).view())),
        IsOk());
    secrets.emplace_back(ValueOrDie(imported.ToPkcs8Der()).view(),
                         imported.public_key().ToDer());
    crypto::PrivateKey traditional =
        ValueOrDie(crypto::PrivateKey::Generate(crypto::KeyType::kRsa2048));
    REQUIRE_THAT(vault.Import(std::string(
                     ValueOrDie(traditional.ToTraditionalPem()).view())),
                 IsOk());
    secrets.emplace_back(ValueOrDie(traditional.ToPkcs8Der()).view(),
                         traditional.public_key().ToDer());

    const std::string dump = DumpDatabase(db);
    const std::string lower = absl::AsciiStrToLower(dump);
    REQUIRE(absl::StrContains(dump, "keys.sealed_key="));
    CHECK_FALSE(absl::StrContains(dump, "PRIVATE KEY"));
    int private_windows = 0;
    for (const auto& [der, spki] : secrets) {
      REQUIRE(der.size() > 40);
      CHECK_FALSE(absl::StrContains(dump, der));
      CHECK_FALSE(absl::StrContains(dump, absl::Base64Escape(der)));
      CHECK_FALSE(absl::StrContains(lower, absl::BytesToHexString(der)));
      // Every 16-byte window of the key that is not public, in hex, in
      // any case.
      for (size_t i = 0; i + 16 <= der.size(); i += 4) {
        std::string window = der.substr(i, 16);
        if (absl::StrContains(spki, window)) continue;
        ++private_windows;
        INFO("window at " << i);
        CHECK_FALSE(absl::StrContains(lower, absl::BytesToHexString(window)));
      }
    }
    CHECK(private_windows > 200);
  });
}

TEST_CASE("RotateKekRewrapsEveryKeyAndOldKeysStillOpen") {
  ForEachBackend([](db::Database& db) {
    VaultServiceOptions options = DevOptions();
    options.rewrap_batch_size = 2;  // Several batches.
    Vault vault(db, options);
    std::vector<v1::Key> keys;
    for (int i = 0; i < 5; ++i) keys.push_back(vault.Generate(common::ED25519));
    v1::KekStatus before = vault.KekStatus();
    CHECK(before.current_version() == 1);
    CHECK_FALSE(before.rewrap_in_progress());
    CHECK(absl::StartsWith(before.source(), "file:"));

    v1::KekStatus status;
    CHECK_THAT(
        vault.Call(&Stub::RotateKek, v1::RotateKekRequest(), &status, "issuer"),
        StatusIs(Code::kPermissionDenied));
    REQUIRE_THAT(vault.Call(&Stub::RotateKek, v1::RotateKekRequest(), &status),
                 IsOk());
    CHECK(status.current_version() == 2);
    vault.service().WaitForRewrapIdle();

    v1::KekStatus after = vault.KekStatus();
    CHECK(after.current_version() == 2);
    CHECK_FALSE(after.rewrap_in_progress());
    REQUIRE(after.versions_size() == 2);
    CHECK(after.versions(0).wrapped_key_count() == 0);
    CHECK(after.versions(1).wrapped_key_count() == 5);
    CHECK(after.versions(0).encryption_count() == 5);
    CHECK(after.versions(1).encryption_count() == 5);
    CHECK(ValueOrDie(vault.store().KeysWrappedBelow(2, 100)).empty());
    for (const v1::Key& key : keys) CHECK_THAT(vault.Sign(key.name()), IsOk());
    CHECK(vault.Generate(common::ECDSA_P256).key_id().size() == 33);
    CHECK(vault.KekStatus().versions(1).wrapped_key_count() == 6);
  });
}

TEST_CASE("RestartResumesAnInterruptedRewrap") {
  ForEachBackend([](db::Database& db) {
    Vault vault(db, DevOptions());
    std::vector<v1::Key> keys;
    for (int i = 0; i < 4; ++i) keys.push_back(vault.Generate(common::ED25519));
    // As if the vault died right after the KEK source created version 2.
    REQUIRE(ValueOrDie(vault.file_kek().CreateVersion()) == 2);
    // Keys under version 1 still open before the rewrap.
    CHECK_THAT(vault.Sign(keys[0].name()), IsOk());
    vault.Restart(DevOptions());
    vault.service().WaitForRewrapIdle();
    CHECK(ValueOrDie(vault.store().KeysWrappedBelow(2, 100)).empty());
    for (const v1::Key& key : keys) CHECK_THAT(vault.Sign(key.name()), IsOk());
    v1::KekStatus status = vault.KekStatus();
    CHECK(status.current_version() == 2);
    CHECK_FALSE(status.rewrap_in_progress());
  });
}

TEST_CASE("KekRotatesAutomaticallyAtTheEncryptionLimit") {
  ForEachBackend([](db::Database& db) {
    VaultServiceOptions options = DevOptions();
    options.kek_encryption_limit = 3;
    Vault vault(db, options);
    std::vector<v1::Key> keys;
    for (int i = 0; i < 3; ++i) keys.push_back(vault.Generate(common::ED25519));
    CHECK(vault.KekStatus().current_version() == 1);
    keys.push_back(vault.Generate(common::ED25519));
    vault.service().WaitForRewrapIdle();
    v1::KekStatus status = vault.KekStatus();
    CHECK(status.current_version() == 2);
    for (const v1::KekVersion& version : status.versions()) {
      CHECK(version.encryption_count() <= 3 + 1);
    }
    for (const v1::Key& key : keys) CHECK_THAT(vault.Sign(key.name()), IsOk());
    std::vector<AuditRecord> audit = ValueOrDie(vault.store().RecentAudit(50));
    CHECK(std::any_of(audit.begin(), audit.end(), [](const AuditRecord& r) {
      return r.operation == "RotateKek" && r.identity == kSystemIdentity;
    }));
  });
}

TEST_CASE("RotateKekIsRefusedForSourcesThatCannotRotate") {
  ForEachBackend([](db::Database& db) {
    std::string value =
        absl::StrCat("v1:", absl::Base64Escape(std::string(32, '\x42')));
    REQUIRE(::setenv("CERTPLANE_VAULT_TEST_KEK", value.c_str(), 1) == 0);
    std::unique_ptr<KekSource> env =
        ValueOrDie(CreateKekSource("env:CERTPLANE_VAULT_TEST_KEK"));
    Vault vault(db, DevOptions(), env.get());
    v1::Key key = vault.Generate(common::ECDSA_P256);
    v1::KekStatus status;
    CHECK_THAT(vault.Call(&Stub::RotateKek, v1::RotateKekRequest(), &status),
               StatusIs(Code::kFailedPrecondition, "cannot create versions"));
    CHECK_THAT(vault.Sign(key.name()), IsOk());
  });
}

crypto::testing::TestCertOptions CaOptions() {
  crypto::testing::TestCertOptions options;
  options.common_name = "vault-test-ca";
  return options;
}

crypto::testing::TestCertOptions ServerCertOptions() {
  crypto::testing::TestCertOptions options;
  options.common_name = "localhost";
  options.sans = {{crypto::SanType::kDns, "localhost"}};
  return options;
}

TEST_CASE("MutualTlsCallersAreIdentifiedByTheirCertificate") {
  ForEachBackend([](db::Database& db) {
    crypto::testing::TestIdentity ca =
        ValueOrDie(crypto::testing::MakeRootCa(CaOptions()));
    crypto::testing::TestIdentity server_identity =
        ValueOrDie(crypto::testing::MakeLeaf(ca, ServerCertOptions()));
    crypto::PrivateKey client_key =
        ValueOrDie(crypto::PrivateKey::Generate(crypto::KeyType::kEcdsaP256));
    crypto::IssueRequest client_request{
        .subject = {{{"CN", "", "issuance"}}},
        .public_key = client_key.public_key(),
        .sans = {{crypto::SanType::kDns, "issuance.certplane.internal"}}};
    crypto::CertificateProfile client_profile;
    client_profile.not_before = absl::Now() - absl::Hours(1);
    client_profile.not_after = absl::Now() + absl::Hours(1);
    client_profile.key_usage = {"digitalSignature"};
    client_profile.extended_key_usage = {"clientAuth"};
    crypto::Certificate client_cert = ValueOrDie(
        crypto::IssueCertificate(client_request, client_profile, &ca.cert,
                                 crypto::PrivateKeySigner(ca.key)));

    std::filesystem::path dir = FreshDir();
    auto write = [&](const std::string& name, absl::string_view contents) {
      std::ofstream(dir / name) << contents;
      return (dir / name).string();
    };
    server::ServerOptions options;
    options.app_name = "vault-mtls-test";
    options.listen_address = "127.0.0.1:0";
    options.handle_shutdown_signals = false;
    options.shutdown_grace_period = absl::Seconds(1);
    options.tls_cert_file = write("server.pem", server_identity.cert.ToPem());
    options.tls_key_file = write(
        "server.key", ValueOrDie(server_identity.key.ToPkcs8Pem()).view());
    options.tls_client_ca_file = write("ca.pem", ca.cert.ToPem());

    REQUIRE_THAT(db::Migrate(db, VaultMigrations()), IsOk());
    std::unique_ptr<VaultStore> store = NewSqlVaultStore(&db);
    REQUIRE_THAT(CreateKekFile((dir / "kek").string()), IsOk());
    std::unique_ptr<FileKekSource> kek =
        ValueOrDie(FileKekSource::Open((dir / "kek").string()));
    Policy policy = ValueOrDie(
        Policy::Parse("issuance.certplane.internal generate, get\n"));
    VaultService service(*store, *kek, policy, [] { return absl::Now(); });
    REQUIRE_THAT(service.Start(), IsOk());
    server::ServerRunner runner(options);
    REQUIRE_THAT(
        runner.AddService(&service, v1::VaultService::service_full_name()),
        IsOk());
    REQUIRE_THAT(runner.Start(), IsOk());

    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ca.cert.ToPem();
    ssl.pem_cert_chain = client_cert.ToPem();
    ssl.pem_private_key =
        std::string(ValueOrDie(client_key.ToPkcs8Pem()).view());
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    std::unique_ptr<Stub> stub = v1::VaultService::NewStub(
        grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", runner.port()),
                                  grpc::SslCredentials(ssl), args));
    auto call = [&](auto method, const auto& request, auto* response,
                    const char* dev_identity = nullptr) {
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
      if (dev_identity != nullptr) {
        context.AddMetadata(kDevelopmentIdentityHeader, dev_identity);
      }
      return FromGrpcStatus((stub.get()->*method)(&context, request, response));
    };

    v1::GenerateKeyRequest generate;
    generate.mutable_spec()->set_type(common::ECDSA_P256);
    generate.set_owner("payments");
    v1::Key key;
    REQUIRE_THAT(call(&Stub::GenerateKey, generate, &key), IsOk());
    std::vector<AuditRecord> audit = ValueOrDie(store->RecentAudit(1));
    REQUIRE(audit.size() == 1);
    CHECK(audit[0].identity == "issuance.certplane.internal");
    CHECK(audit[0].operation == "GenerateKey");

    v1::ExportKeyRequest export_request;
    export_request.set_name(key.name());
    export_request.set_format(v1::EXPORT_ENCRYPTED_PKCS8_PEM);
    export_request.set_password("a long export password");
    v1::ExportKeyResponse exported;
    CHECK_THAT(
        call(&Stub::ExportKey, export_request, &exported),
        StatusIs(Code::kPermissionDenied, "issuance.certplane.internal"));
    // The development header is refused on an mTLS server, even alongside a
    // valid certificate.
    v1::GetKeyRequest get;
    get.set_name(key.name());
    v1::Key got;
    CHECK_THAT(call(&Stub::GetKey, get, &got, "admin"),
               StatusIs(Code::kUnauthenticated));
    CHECK_THAT(call(&Stub::GetKey, get, &got), IsOk());
    runner.Shutdown();
    std::filesystem::remove_all(dir);
  });
}

// ---------------------------------------------------------------------------
// The certplane-vault binary, killed with SIGKILL during KEK rotation.

int FreePort() {
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

class VaultProcess {
 public:
  explicit VaultProcess(std::vector<std::string> flags) {
    int port = FreePort();
    flags.push_back(absl::StrCat("--listen_address=127.0.0.1:", port));
    child_ = ValueOrDie(
        server::testing::ChildProcess::Start(CERTPLANE_VAULT_PATH, flags, {}));
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                       grpc::InsecureChannelCredentials());
    REQUIRE(channel->WaitForConnected(
        absl::ToChronoTime(absl::Now() + absl::Seconds(30))));
    stub_ = v1::VaultService::NewStub(channel);
  }

  template <typename Request, typename Response>
  absl::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*,
                                                 const Request&, Response*),
                    const Request& request, Response* response) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    context.AddMetadata(kDevelopmentIdentityHeader, "admin");
    return FromGrpcStatus((stub_.get()->*method)(&context, request, response));
  }

  void Kill() {
    REQUIRE_THAT(child_->Signal(SIGKILL), IsOk());
    CHECK_FALSE(child_->WaitForExit(absl::Seconds(10)).ok());  // By signal.
  }

  void Terminate() {
    REQUIRE_THAT(child_->Signal(SIGTERM), IsOk());
    CHECK(ValueOrDie(child_->WaitForExit(absl::Seconds(20))) == 0);
  }

 private:
  std::unique_ptr<server::testing::ChildProcess> child_;
  std::unique_ptr<Stub> stub_;
};

TEST_CASE("KillDuringKekRotationLeavesEveryKeyUsableAndRestartFinishes") {
  for (db::Dialect dialect : testing::kAllDialects) {
    INFO("backend: " << db::DialectName(dialect));
    std::filesystem::path dir = FreshDir();
    const std::string kek_path = (dir / "kek").string();
    REQUIRE_THAT(CreateKekFile(kek_path), IsOk());
    const std::string policy_path = (dir / "policy").string();
    std::ofstream(policy_path) << "admin *\n";
    const std::vector<std::string> flags = {
        "--insecure_plaintext_for_development",
        "--metrics_address=",
        "--log_level=error",
        "--rewrap_batch_size=3",
        absl::StrCat("--kek=file:", kek_path),
        absl::StrCat("--policy_file=", policy_path),
        absl::StrCat("--database_url=", testing::FreshDatabaseUrl(dialect)),
    };
    auto vault = std::make_unique<VaultProcess>(flags);
    std::vector<std::string> names;
    for (int i = 0; i < 60; ++i) {
      v1::GenerateKeyRequest request;
      request.mutable_spec()->set_type(common::ED25519);
      request.set_owner("payments");
      v1::Key key;
      REQUIRE_THAT(vault->Call(&Stub::GenerateKey, request, &key), IsOk());
      names.push_back(key.name());
    }
    // Kill points at random from "before RotateKek is handled" to
    // "mid-rewrap"; the seed is printed so a failure can be replayed.
    const unsigned seed = std::random_device{}();
    INFO("kill-point seed " << seed);
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> kill_after_ms(0, 40);
    for (int round = 0; round < 7; ++round) {
      const int delay_ms = kill_after_ms(rng);
      INFO("killed " << delay_ms << " ms after RotateKek was sent");
      std::thread rotate([&] {
        v1::KekStatus status;
        (void)vault->Call(&Stub::RotateKek, v1::RotateKekRequest(), &status);
      });
      absl::SleepFor(absl::Milliseconds(delay_ms));
      vault->Kill();
      rotate.join();
      vault = std::make_unique<VaultProcess>(flags);
      int usable = 0;
      for (const std::string& name : names) {
        v1::SignRequest request;
        request.set_name(name);
        request.set_data("still here?");
        v1::SignResponse response;
        absl::Status status = vault->Call(&Stub::Sign, request, &response);
        CHECK_THAT(status, IsOk());
        if (status.ok()) ++usable;
      }
      CHECK(usable == static_cast<int>(names.size()));
    }
    // The restarted vault finishes the rewrap on its own.
    v1::KekStatus status;
    absl::Time deadline = absl::Now() + absl::Seconds(60);
    do {
      REQUIRE_THAT(
          vault->Call(&Stub::GetKekStatus, v1::GetKekStatusRequest(), &status),
          IsOk());
      if (!status.rewrap_in_progress()) break;
      absl::SleepFor(absl::Milliseconds(50));
    } while (absl::Now() < deadline);
    CHECK_FALSE(status.rewrap_in_progress());
    CHECK(status.current_version() > 1);
    int64_t under_current = 0;
    for (const v1::KekVersion& version : status.versions()) {
      if (version.version() == status.current_version()) {
        under_current = version.wrapped_key_count();
      } else {
        CHECK(version.wrapped_key_count() == 0);
      }
    }
    CHECK(under_current == static_cast<int64_t>(names.size()));
    vault->Terminate();
    std::filesystem::remove_all(dir);
  }
}

}  // namespace
}  // namespace certplane::vault
