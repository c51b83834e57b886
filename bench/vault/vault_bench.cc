// vault_bench: what the vault's gRPC path costs on top of the crypto it
// does. In one run it measures, for GenerateKey (ECDSA P-256), Sign (P-256,
// 32 bytes of data) and ExportKey (password-encrypted PKCS#8 PEM):
//
//  - vault:      the RPC against an in-process VaultService on 127.0.0.1
//                (plaintext development listener, x-certplane-dev-identity),
//                with a real SQLite store in a temporary directory and a
//                key-file KEK;
//  - echo:       certplane.testing.v1.EchoService on the same server, with
//                request and response payloads the size of the vault call's;
//  - in-process: the same libs/crypto work without gRPC or the store
//                (PrivateKey::Generate + Envelope::Seal, PrivateKey::Sign,
//                PrivateKey::ToEncryptedPkcs8Pem).
//
// One client thread, sequential calls; each measurement runs for --seconds
// of wall time after a short warm-up and reports calls per wall second
// (the server's handler threads do the work, so thread CPU time would not
// count it). Every RPC, vault or echo, also writes libs/server's JSON
// access log line to stderr. Prints one table row per operation.
//
// Usage: vault_bench [--seconds=S]
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "certplane/testing/v1/echo.grpc.pb.h"
#include "certplane/vault/v1/vault.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "libs/crypto/key.h"
#include "libs/db/database.h"
#include "libs/db/migrate.h"
#include "libs/server/server_options.h"
#include "libs/server/server_runner.h"
#include "libs/server/testing/echo_service.h"
#include "services/vault/envelope.h"
#include "services/vault/file_kek_source.h"
#include "services/vault/migrations.h"
#include "services/vault/policy.h"
#include "services/vault/vault_service.h"
#include "services/vault/vault_store.h"

namespace certplane::vault {
namespace {

namespace echo = ::certplane::testing::v1;

constexpr char kIdentity[] = "bench";
constexpr char kPolicy[] = "bench *\n";
constexpr char kPassword[] = "vault-bench-password";

// Keeps the compiler from discarding a result.
volatile size_t g_sink = 0;

[[noreturn]] void Die(absl::string_view what, const absl::Status& status) {
  std::fprintf(stderr, "vault_bench: %s: %s\n", std::string(what).c_str(),
               status.ToString().c_str());
  std::exit(1);
}

template <typename T>
T ValueOrDie(absl::string_view what, absl::StatusOr<T> value) {
  if (!value.ok()) Die(what, value.status());
  return *std::move(value);
}

void CheckOk(absl::string_view what, const absl::Status& status) {
  if (!status.ok()) Die(what, status);
}

void CheckOk(absl::string_view what, const grpc::Status& status) {
  if (!status.ok()) {
    Die(what, absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                           status.error_message()));
  }
}

// Calls `op` for `seconds` of wall time (after 2 warm-up calls); returns
// calls per second.
double Measure(double seconds, const std::function<void()>& op) {
  using Clock = std::chrono::steady_clock;
  op();
  op();
  const auto budget = std::chrono::duration<double>(seconds);
  const auto start = Clock::now();
  long iterations = 0;
  std::chrono::duration<double> elapsed{};
  do {
    op();
    ++iterations;
    elapsed = Clock::now() - start;
  } while (elapsed < budget);
  return static_cast<double>(iterations) / elapsed.count();
}

std::unique_ptr<grpc::ClientContext> NewContext() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  context->AddMetadata(kDevelopmentIdentityHeader, kIdentity);
  return context;
}

// An echo request whose message, echoed back, makes a response of about
// `response_bytes`, padded through error_message (ignored when error_code
// is 0) to about `request_bytes` when that is larger. The echo echoes, so
// its request is never smaller than its response.
echo::EchoRequest SameSizeEcho(size_t request_bytes, size_t response_bytes) {
  echo::EchoRequest request;
  // The response also carries the request id the server saw (about 40
  // bytes); leave room for it.
  const size_t message = response_bytes > 48 ? response_bytes - 48 : 1;
  request.set_message(std::string(message, 'm'));
  if (request.ByteSizeLong() + 3 < request_bytes) {
    const size_t pad = request_bytes - request.ByteSizeLong() - 3;
    request.set_error_message(std::string(pad, 'p'));
  }
  return request;
}

struct Row {
  std::string operation;
  size_t request_bytes = 0;
  size_t response_bytes = 0;
  size_t echo_request_bytes = 0;
  size_t echo_response_bytes = 0;
  double vault = 0;
  double echo = 0;
  double in_process = 0;
};

class Bench {
 public:
  explicit Bench(double seconds) : seconds_(seconds) {
    char tmpl[] = "/tmp/vault_bench-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      Die("mkdtemp", absl::InternalError("cannot create a directory"));
    }
    dir_ = tmpl;
    db::DatabaseOptions db_options;
    db_options.service = "vault";
    db_ = ValueOrDie(
        "open SQLite",
        db::Database::Open(
            absl::StrCat("sqlite://", dir_.string(), "/vault.db"), db_options));
    CheckOk("migrate", db::Migrate(*db_, VaultMigrations()));
    store_ = NewSqlVaultStore(db_.get());
    const std::string kek_path = (dir_ / "kek").string();
    CheckOk("create KEK file", CreateKekFile(kek_path));
    kek_ = ValueOrDie("open KEK file", FileKekSource::Open(kek_path));
    policy_ = std::make_unique<Policy>(
        ValueOrDie("parse policy", Policy::Parse(kPolicy)));

    VaultServiceOptions options;
    options.allow_development_identity = true;
    service_ = std::make_unique<VaultService>(
        *store_, *kek_, *policy_, [] { return absl::Now(); }, options);
    CheckOk("start vault", service_->Start());

    server::ServerOptions server_options;
    server_options.app_name = "vault-bench";
    server_options.listen_address = "127.0.0.1:0";
    server_options.insecure_plaintext_for_development = true;
    server_options.handle_shutdown_signals = false;
    server_options.shutdown_grace_period = absl::Seconds(1);
    runner_ = std::make_unique<server::ServerRunner>(server_options);
    CheckOk("add vault",
            runner_->AddService(service_.get(),
                                v1::VaultService::service_full_name()));
    CheckOk("add echo",
            runner_->AddService(&echo_service_,
                                echo::EchoService::service_full_name()));
    CheckOk("start server", runner_->Start());
    std::shared_ptr<grpc::Channel> channel =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", runner_->port()),
                            grpc::InsecureChannelCredentials());
    vault_ = v1::VaultService::NewStub(channel);
    echo_ = echo::EchoService::NewStub(channel);
  }

  ~Bench() {
    runner_.reset();
    service_.reset();
    store_.reset();
    db_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  Row GenerateKey() {
    v1::GenerateKeyRequest request;
    request.mutable_spec()->set_type(common::v1::ECDSA_P256);
    request.set_owner("payments");
    v1::Key response;
    Row row = VaultRow(
        "GenerateKey P-256", request,
        [&] {
          CheckOk("GenerateKey",
                  vault_->GenerateKey(NewContext().get(), request, &response));
        },
        response);
    const Envelope envelope(*kek_);
    int64_t n = 0;
    row.in_process = Measure(seconds_, [&] {
      crypto::PrivateKey key =
          ValueOrDie("Generate",
                     crypto::PrivateKey::Generate(crypto::KeyType::kEcdsaP256));
      SealedKey sealed = ValueOrDie(
          "Seal",
          envelope.Seal(key, absl::StrCat("bench-", n++), 1, "payments"));
      g_sink = g_sink + sealed.sealed_key.size();
    });
    return row;
  }

  Row Sign() {
    const std::string data(32, 'd');
    v1::SignRequest request;
    request.set_name(NewKeyName());
    request.set_data(data);
    v1::SignResponse response;
    Row row = VaultRow(
        "Sign P-256 (32 B)", request,
        [&] {
          CheckOk("Sign", vault_->Sign(NewContext().get(), request, &response));
        },
        response);
    const crypto::PrivateKey key = ValueOrDie(
        "Generate", crypto::PrivateKey::Generate(crypto::KeyType::kEcdsaP256));
    row.in_process = Measure(seconds_, [&] {
      g_sink = g_sink + ValueOrDie("Sign", key.Sign(data)).size();
    });
    return row;
  }

  Row ExportKey() {
    v1::ExportKeyRequest request;
    request.set_name(NewKeyName());
    request.set_format(v1::EXPORT_ENCRYPTED_PKCS8_PEM);
    request.set_password(kPassword);
    v1::ExportKeyResponse response;
    Row row = VaultRow(
        "ExportKey PKCS#8 PEM", request,
        [&] {
          CheckOk("ExportKey",
                  vault_->ExportKey(NewContext().get(), request, &response));
        },
        response);
    const crypto::PrivateKey key = ValueOrDie(
        "Generate", crypto::PrivateKey::Generate(crypto::KeyType::kEcdsaP256));
    row.in_process = Measure(seconds_, [&] {
      g_sink = g_sink +
               ValueOrDie("export", key.ToEncryptedPkcs8Pem(kPassword)).size();
    });
    return row;
  }

 private:
  std::string NewKeyName() {
    v1::GenerateKeyRequest request;
    request.mutable_spec()->set_type(common::v1::ECDSA_P256);
    request.set_owner("payments");
    v1::Key key;
    CheckOk("GenerateKey",
            vault_->GenerateKey(NewContext().get(), request, &key));
    return key.name();
  }

  // Measures `call` (which leaves its answer in `response`), then an echo
  // of the same request and response sizes.
  Row VaultRow(std::string operation, const google::protobuf::Message& request,
               const std::function<void()>& call,
               const google::protobuf::Message& response) {
    Row row;
    row.operation = std::move(operation);
    row.vault = Measure(seconds_, call);
    row.request_bytes = request.ByteSizeLong();
    row.response_bytes = response.ByteSizeLong();
    const echo::EchoRequest echo_request =
        SameSizeEcho(row.request_bytes, row.response_bytes);
    echo::EchoResponse echo_response;
    row.echo = Measure(seconds_, [&] {
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
      CheckOk("Echo", echo_->Echo(&context, echo_request, &echo_response));
    });
    row.echo_request_bytes = echo_request.ByteSizeLong();
    row.echo_response_bytes = echo_response.ByteSizeLong();
    return row;
  }

  const double seconds_;
  std::filesystem::path dir_;
  std::unique_ptr<db::Database> db_;
  std::unique_ptr<VaultStore> store_;
  std::unique_ptr<FileKekSource> kek_;
  std::unique_ptr<Policy> policy_;
  std::unique_ptr<VaultService> service_;
  server::testing::EchoServiceImpl echo_service_;
  std::unique_ptr<server::ServerRunner> runner_;
  std::unique_ptr<v1::VaultService::Stub> vault_;
  std::unique_ptr<echo::EchoService::Stub> echo_;
};

int Main(int argc, char** argv) {
  double seconds = 2.5;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (absl::ConsumePrefix(&arg, "--seconds=") &&
        absl::SimpleAtod(arg, &seconds) && seconds > 0) {
      continue;
    }
    std::fprintf(stderr, "usage: vault_bench [--seconds=S]\n");
    return 2;
  }
  Row rows[3];
  {
    Bench bench(seconds);
    rows[0] = bench.GenerateKey();
    rows[1] = bench.Sign();
    rows[2] = bench.ExportKey();
  }
  std::printf("%-22s %14s %14s %12s %12s %12s %10s %12s\n", "operation",
              "vault req/resp", "echo req/resp", "vault ops/s", "echo ops/s",
              "in-proc ops/s", "vault/echo", "vault/in-proc");
  for (const Row& row : rows) {
    std::printf(
        "%-22s %14s %14s %12.1f %12.1f %12.1f %10.3f %12.3f\n",
        row.operation.c_str(),
        absl::StrFormat("%d/%d B", row.request_bytes, row.response_bytes)
            .c_str(),
        absl::StrFormat("%d/%d B", row.echo_request_bytes,
                        row.echo_response_bytes)
            .c_str(),
        row.vault, row.echo, row.in_process, row.vault / row.echo,
        row.vault / row.in_process);
  }
  return 0;
}

}  // namespace
}  // namespace certplane::vault

int main(int argc, char** argv) { return certplane::vault::Main(argc, argv); }
