// issuance_bench: end-to-end issuance through certplane's internal CA on
// PostgreSQL, side by side with `cfssl serve` signing the same kind of CSRs.
//
//   build/bench/issuance/issuance_bench [--orders=5000] [--clients=16]
//
// One run, one throwaway PostgreSQL server (libs/testing's fixture):
//  1. certplane: the real certplane-vault, certplane-inventory and
//     certplane-issuance binaries, each on its own database of that server.
//     --clients threads each call CreateOrder(wait = true) in a loop for an
//     ECDSA P-256 certificate from the internal CA (P-256 CA keys, an
//     auto-approve rule): per order the vault generates and stores the key
//     and makes the CSR, the issuance service signs through the vault's
//     Sign, and the inventory stores the certificate and its chain; the
//     order's five transitions are stored with their history.
//  2. cfssl: `cfssl serve` (Debian's golang-cfssl) with a P-256 CA, and the
//     same number of clients POSTing /api/v1/cfssl/sign with P-256 CSRs made
//     beforehand (cfssl signs; it generates no key and stores nothing).
// Prints certificates/s and p50/p99 latency for each, and the ratio
// certplane / cfssl. Not a test: run by hand; results go to
// docs/performance.md.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/common/bench_util.h"
#include "certplane/issuance/v1/issuance.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "libs/crypto/csr.h"
#include "libs/crypto/issue.h"
#include "libs/crypto/key.h"
#include "libs/crypto/secret_bytes.h"
#include "libs/crypto/testing/test_pki.h"
#include "libs/server/testing/test_client.h"
#include "libs/testing/postgres_fixture.h"

namespace certplane::issuance {
namespace {

using bench::CheckOk;
using bench::Die;
using bench::ValueOrDie;
using server::testing::ChildProcess;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

constexpr char kVaultPolicy[] =
    "issuance   generate, get, create_csr, sign, delete\n"
    "inventory  import, get, export\n";

constexpr char kConfig[] = R"pb(
  issuers {
    id: "internal"
    type: INTERNAL_CA
    ca_key_type: ECDSA_P256
    crl_base_url: "http://127.0.0.1:7084"
  }
  approval_rules { issuer: "internal" auto_approve: true }
)pb";

struct Flags {
  int orders = 5000;
  int clients = 16;
  // "vault", "inventory" and/or "issuance" (comma-separated): run those
  // services under callgrind
  // (output in /tmp/callgrind.<service>.<pid>) to see where its time goes.
  std::string callgrind;
  // Load pg_stat_statements and print the statements that took the most
  // server time during the certplane run.
  bool sql_profile = false;
};

// Set by Main from --callgrind.
std::string callgrind_service;
// The shared server's "postgres" database.
std::string postgres_url;

Flags ParseFlags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--sql_profile") {
      flags.sql_profile = true;
      continue;
    }
    if (absl::ConsumePrefix(&arg, "--callgrind=")) {
      flags.callgrind = std::string(arg);
      continue;
    }
    int* target = nullptr;
    if (absl::ConsumePrefix(&arg, "--orders=")) target = &flags.orders;
    if (absl::ConsumePrefix(&arg, "--clients=")) target = &flags.clients;
    if (target == nullptr || !absl::SimpleAtoi(arg, target) || *target < 1) {
      Die("flags", absl::InvalidArgumentError(
                       absl::StrCat("unknown or bad flag ", argv[i],
                                    " (--orders=N, --clients=N, "
                                    "--callgrind=SERVICE, --sql_profile)")));
    }
  }
  return flags;
}

void WriteFile(const std::filesystem::path& path, absl::string_view data) {
  std::ofstream out(path, std::ios::binary);
  out << data;
  if (!out) Die("write", absl::InternalError(path.string()));
}

struct Result : bench::LoopResult {
  // CPU milliseconds per certificate, by process ("vault", "postgres", ...).
  std::vector<std::pair<std::string, double>> cpu_ms_per_cert;
};

Result RunClosedLoop(int total, int clients,
                     const std::function<bool(int client, int n)>& call) {
  Result result;
  static_cast<bench::LoopResult&>(result) =
      bench::RunClosedLoop(total, clients, call);
  return result;
}

void Print(const char* side, int total, const Result& r) {
  std::printf(
      "%-10s %8d certs in %6.2f s: %8.1f certs/s, p50 %7.2f ms, p99 "
      "%7.2f ms\n",
      side, total, r.seconds, total / r.seconds,
      bench::Percentile(r.latencies_ms, 0.5),
      bench::Percentile(r.latencies_ms, 0.99));
  if (!r.cpu_ms_per_cert.empty()) {
    std::printf("%-10s CPU ms per certificate:", "");
    for (const auto& [name, ms] : r.cpu_ms_per_cert) {
      std::printf(" %s %.2f", name.c_str(), ms);
    }
    std::printf("\n");
  }
  std::fflush(stdout);
}

std::unique_ptr<ChildProcess> StartService(const std::string& name,
                                           const std::string& path,
                                           std::vector<std::string> flags,
                                           int port) {
  return bench::StartService(
      path, std::move(flags), port,
      absl::StrContains(absl::StrCat(",", callgrind_service, ","),
                        absl::StrCat(",", name, ",")),
      name);
}

v1::CreateOrderRequest OrderRequest(int n) {
  v1::CreateOrderRequest request;
  const std::string host = absl::StrCat("host-", n, ".bench.example.com");
  auto* cn = request.mutable_subject()->add_attributes();
  cn->set_type("CN");
  cn->set_value(host);
  auto* san = request.add_sans();
  san->set_type(common::v1::SubjectAltName::DNS);
  san->set_value(host);
  request.mutable_key_spec()->set_type(common::v1::ECDSA_P256);
  request.set_issuer("issuers/internal");
  request.set_owner("bench");
  request.set_environment("prod");
  request.set_validity_days(90);
  request.set_request_id(absl::StrCat("bench-", getpid(), "-", n));
  request.set_wait(true);
  return request;
}

// Runs `sql` with psql on the shared server's "postgres" database and
// returns what it prints.
std::string Psql(const std::string& sql) {
  const std::string command =
      absl::StrCat("psql -X -q '", postgres_url, "' -c \"", sql, "\" 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) Die("psql", absl::InternalError("popen failed"));
  std::string out;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof(buffer), pipe))
    out.append(buffer, n);
  pclose(pipe);
  return out;
}

Result RunCertplane(const Flags& flags, const std::filesystem::path& dir) {
  const std::string vault_db =
      ValueOrDie("database", testing::CreateDatabase("bench_vault"));
  const std::string inventory_db =
      ValueOrDie("database", testing::CreateDatabase("bench_inventory"));
  const std::string issuance_db =
      ValueOrDie("database", testing::CreateDatabase("bench_issuance"));
  WriteFile(dir / "vault.policy", kVaultPolicy);
  WriteFile(dir / "issuance.conf", kConfig);
  const int vault_port = bench::FreePort();
  auto vault = StartService(
      "vault", CERTPLANE_VAULT_PATH,
      {absl::StrCat("--database_url=", vault_db),
       absl::StrCat("--kek=file:", (dir / "kek").string()),
       "--create_kek_file_if_missing",
       absl::StrCat("--policy_file=", (dir / "vault.policy").string())},
      vault_port);
  const int inventory_port = bench::FreePort();
  auto inventory =
      StartService("inventory", CERTPLANE_INVENTORY_PATH,
                   {absl::StrCat("--database_url=", inventory_db),
                    absl::StrCat("--vault_address=127.0.0.1:", vault_port),
                    "--allow_development_identity"},
                   inventory_port);
  const int issuance_port = bench::FreePort();
  auto issuance = StartService(
      "issuance", CERTPLANE_ISSUANCE_PATH,
      {absl::StrCat("--database_url=", issuance_db),
       absl::StrCat("--vault_address=127.0.0.1:", vault_port),
       absl::StrCat("--inventory_address=127.0.0.1:", inventory_port),
       absl::StrCat("--config_file=", (dir / "issuance.conf").string()),
       absl::StrCat("--crl_listen_address=127.0.0.1:", bench::FreePort()),
       "--allow_development_identity"},
      issuance_port);
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", issuance_port),
                                     grpc::InsecureChannelCredentials());
  std::vector<std::unique_ptr<v1::IssuanceService::Stub>> stubs;
  for (int c = 0; c < flags.clients; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("certplane-client", c);  // One connection per client.
    stubs.push_back(v1::IssuanceService::NewStub(
        grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", issuance_port),
                                  grpc::InsecureChannelCredentials(), args)));
  }
  auto create = [&](int client, int n) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    context.AddMetadata("x-certplane-dev-identity", "bench");
    v1::Order order;
    grpc::Status status =
        stubs[client]->CreateOrder(&context, OrderRequest(n), &order);
    if (!status.ok() || order.state() != v1::ISSUED) {
      std::fprintf(stderr, "order %d: %s %s (state %d) %s\n", n,
                   status.error_message().c_str(), order.name().c_str(),
                   order.state(), order.failure_reason().c_str());
      return false;
    }
    return true;
  };
  // Warm-up (connections, caches, the CA's first CRL).
  RunClosedLoop(std::min(200, flags.orders), flags.clients,
                [&](int c, int n) { return create(c, flags.orders + n); });
  const std::vector<std::pair<std::string, pid_t>> processes = {
      {"vault", vault->pid()},
      {"inventory", inventory->pid()},
      {"issuance", issuance->pid()}};
  std::vector<double> cpu_before;
  for (const auto& [name, pid] : processes) {
    cpu_before.push_back(bench::ProcessCpuSeconds(pid));
  }
  const double postgres_before = bench::CpuSecondsOfProcessesNamed("postgres");
  const double bench_before = bench::ProcessCpuSeconds(getpid());
  if (flags.sql_profile) Psql("SELECT pg_stat_statements_reset()");
  Result result = RunClosedLoop(flags.orders, flags.clients, create);
  if (flags.sql_profile) {
    std::printf(
        "%s",
        Psql(absl::StrCat(
                 "SELECT d.datname AS db, round(s.calls::numeric / ",
                 flags.orders,
                 ", 2) AS calls_per_cert, round((s.total_exec_time / ",
                 flags.orders,
                 ")::numeric, 3) AS ms_per_cert, left(regexp_replace(s.query, "
                 "'\\s+', ' ', 'g'), 110) AS query FROM pg_stat_statements s "
                 "JOIN pg_database d ON d.oid = s.dbid ORDER BY "
                 "s.total_exec_time "
                 "DESC LIMIT 40"))
            .c_str());
    std::printf(
        "%s",
        Psql(
            absl::StrCat(
                "SELECT d.datname AS db, round(sum(s.calls)::numeric / ",
                flags.orders,
                ", 1) AS statements_per_cert, round((sum(s.total_exec_time) / ",
                flags.orders,
                ")::numeric, 3) AS exec_ms_per_cert FROM "
                "pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
                "GROUP BY "
                "d.datname ORDER BY 2 DESC"))
            .c_str());
  }
  auto per_cert = [&](double seconds) { return seconds * 1000 / flags.orders; };
  for (size_t i = 0; i < processes.size(); ++i) {
    result.cpu_ms_per_cert.emplace_back(
        processes[i].first,
        per_cert(bench::ProcessCpuSeconds(processes[i].second) -
                 cpu_before[i]));
  }
  result.cpu_ms_per_cert.emplace_back(
      "postgres", per_cert(bench::CpuSecondsOfProcessesNamed("postgres") -
                           postgres_before));
  result.cpu_ms_per_cert.emplace_back(
      "clients", per_cert(bench::ProcessCpuSeconds(getpid()) - bench_before));
  for (auto* child : {issuance.get(), inventory.get(), vault.get()}) {
    (void)child->Signal(SIGTERM);
    (void)child->WaitForExit(absl::Seconds(30));
  }
  return result;
}

// One keep-alive HTTP/1.1 connection to cfssl.
class CfsslClient {
 public:
  explicit CfsslClient(int port) : socket_(io_) {
    asio::ip::tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"),
                                     static_cast<unsigned short>(port));
    beast::error_code ec;
    socket_.connect(endpoint, ec);
    if (ec) Die("cfssl connect", absl::UnavailableError(ec.message()));
  }

  bool Sign(const std::string& body) {
    http::request<http::string_body> req{http::verb::post, "/api/v1/cfssl/sign",
                                         11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::content_type, "application/json");
    req.keep_alive(true);
    req.body() = body;
    req.prepare_payload();
    beast::error_code ec;
    http::write(socket_, req, ec);
    if (ec) return false;
    http::response<http::string_body> res;
    http::read(socket_, buffer_, res, ec);
    if (ec || res.result() != http::status::ok ||
        !absl::StrContains(res.body(), "\"success\":true")) {
      std::fprintf(stderr, "cfssl: %s %s\n", ec.message().c_str(),
                   res.body().substr(0, 300).c_str());
      return false;
    }
    return true;
  }

 private:
  asio::io_context io_;
  asio::ip::tcp::socket socket_;
  beast::flat_buffer buffer_;
};

Result RunCfssl(const Flags& flags, const std::filesystem::path& dir) {
  crypto::testing::TestCertOptions ca_options;
  ca_options.common_name = "cfssl bench CA";
  ca_options.key_type = crypto::KeyType::kEcdsaP256;
  ca_options.not_after = absl::Now() + absl::Hours(24 * 3650);
  crypto::testing::TestIdentity ca =
      ValueOrDie("CA", crypto::testing::MakeRootCa(ca_options));
  WriteFile(dir / "ca.pem", ca.cert.ToPem());
  WriteFile(dir / "ca-key.pem",
            ValueOrDie("CA key", ca.key.ToPkcs8Pem()).view());
  std::printf("making %d CSRs for cfssl...\n", flags.orders + 200);
  std::fflush(stdout);
  std::vector<std::string> bodies;
  for (int n = 0; n < flags.orders + 200; ++n) {
    const std::string host = absl::StrCat("host-", n, ".bench.example.com");
    crypto::PrivateKey key = ValueOrDie(
        "key", crypto::PrivateKey::Generate(crypto::KeyType::kEcdsaP256));
    crypto::DistinguishedName subject;
    subject.attributes.push_back(
        {.type = "CN", .oid = "2.5.4.3", .value = host});
    crypto::CertificateRequest csr = ValueOrDie(
        "csr",
        crypto::CreateCsr(key, {subject, {{crypto::SanType::kDns, host}}}));
    bodies.push_back(
        absl::StrCat("{\"certificate_request\":\"",
                     absl::StrReplaceAll(csr.ToPem(), {{"\n", "\\n"}}), "\"}"));
  }
  const int port = bench::FreePort();
  auto cfssl = ValueOrDie(
      "start cfssl",
      ChildProcess::Start(
          "/usr/bin/cfssl",
          {"serve", "-address=127.0.0.1", absl::StrCat("-port=", port),
           absl::StrCat("-ca=", (dir / "ca.pem").string()),
           absl::StrCat("-ca-key=", (dir / "ca-key.pem").string()),
           "-loglevel=5"},
          {}));
  // Wait for it to listen.
  for (int i = 0;; ++i) {
    absl::StatusOr<std::string> r =
        server::testing::HttpGet(port, "/api/v1/cfssl/scaninfo");
    if (r.ok()) break;
    if (i > 300) Die("cfssl", absl::UnavailableError("did not start"));
    absl::SleepFor(absl::Milliseconds(100));
  }
  std::vector<std::unique_ptr<CfsslClient>> clients;
  for (int c = 0; c < flags.clients; ++c) {
    clients.push_back(std::make_unique<CfsslClient>(port));
  }
  RunClosedLoop(200, flags.clients, [&](int c, int n) {
    return clients[c]->Sign(bodies[flags.orders + n]);
  });
  const double cfssl_before = bench::ProcessCpuSeconds(cfssl->pid());
  const double bench_before = bench::ProcessCpuSeconds(getpid());
  Result result = RunClosedLoop(flags.orders, flags.clients, [&](int c, int n) {
    return clients[c]->Sign(bodies[n]);
  });
  result.cpu_ms_per_cert = {
      {"cfssl", (bench::ProcessCpuSeconds(cfssl->pid()) - cfssl_before) * 1000 /
                    flags.orders},
      {"clients", (bench::ProcessCpuSeconds(getpid()) - bench_before) * 1000 /
                      flags.orders}};
  clients.clear();
  (void)cfssl->Signal(SIGTERM);
  (void)cfssl->WaitForExit(absl::Seconds(10));
  return result;
}

int Main(int argc, char** argv) {
  bench::SetProgram("issuance_bench");
  Flags flags = ParseFlags(argc, argv);
  callgrind_service = flags.callgrind;
  if (flags.sql_profile) {
    setenv("CERTPLANE_PG_EXTRA_SETTINGS",
           "shared_preload_libraries=pg_stat_statements "
           "pg_stat_statements.track=all",
           1);
  }
  std::printf("issuance_bench: %d certificates per side, %d clients\n",
              flags.orders, flags.clients);
  const testing::PostgresServer* server =
      ValueOrDie("PostgreSQL", testing::StartSharedPostgres());
  postgres_url = server->Url("postgres");
  if (flags.sql_profile) Psql("CREATE EXTENSION pg_stat_statements");
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              absl::StrCat("issuance-bench-", getpid());
  std::filesystem::create_directories(dir);

  Result cfssl = RunCfssl(flags, dir);
  Print("cfssl", flags.orders, cfssl);
  Result certplane = RunCertplane(flags, dir);
  Print("certplane", flags.orders, certplane);
  std::printf("ratio certplane/cfssl: %.2f (certs/s)\n",
              cfssl.seconds / certplane.seconds);
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace certplane::issuance

int main(int argc, char** argv) {
  return certplane::issuance::Main(argc, argv);
}
