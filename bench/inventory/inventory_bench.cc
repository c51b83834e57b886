// inventory_bench: the inventory service on PostgreSQL at scale.
//
//   build/bench/inventory/inventory_bench [--import=100000] [--total=1000000]
//       [--queries=200] [--clients=2] [--hold]
//   build/bench/inventory/inventory_bench --database_url=URL [--queries=N]
//
// One run, on one throwaway PostgreSQL server (libs/testing's fixture: a
// unix socket, fsync off, shared_buffers a quarter of memory, the same
// server for both sides):
//  1. Generates --import certificates (ECDSA, RSA and Ed25519 leaves under
//     three issuing CAs, 1-3 SANs, expiry spread from 30 days ago to 13
//     months ahead) and imports them through the real `certplane-inventory`
//     binary over gRPC, 1,000 files per ImportCertificates call, from
//     --clients client threads. Prints certificates/s.
//  2. Copies exactly the rows the service wrote (every table of the
//     inventory schema) into empty tables with the same columns, constraints
//     and indexes with `psql \copy`, timed, and prints the ratio service /
//     copy: how close the service's import comes to PostgreSQL's own bulk
//     load of the same data (which parses, checks and indexes nothing of the
//     certificates).
//  3. Imports more certificates until --total are stored, then times
//     ListCertificates with typical filters (first pages and following
//     pages, page_size 50) and GetStats, printing p50/p99.
//  4. Prints the service process's peak resident memory (VmHWM).
// --hold keeps PostgreSQL running after the load and prints its URL, until
// standard input ends, so that queries can be studied (EXPLAIN) and a second
// run with --database_url=URL times only the queries (step 3's second half)
// on the loaded database, with whatever inventory binary is built now.
// Not a test: run by hand; results go to docs/performance.md.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/common/bench_util.h"
#include "certplane/inventory/v1/inventory.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "libs/crypto/certificate.h"
#include "libs/crypto/issue.h"
#include "libs/crypto/key.h"
#include "libs/crypto/testing/test_pki.h"
#include "libs/server/testing/test_client.h"
#include "libs/testing/postgres_fixture.h"

namespace certplane::inventory {
namespace {

namespace inv = ::certplane::inventory::v1;
using crypto::Certificate;
using crypto::PrivateKey;
using crypto::testing::TestIdentity;
using Clock = std::chrono::steady_clock;
using bench::CheckOk;
using bench::Die;
using bench::Percentile;
using bench::ProcStatusKb;
using bench::ValueOrDie;

constexpr char kIdentityHeader[] = "x-certplane-dev-identity";
constexpr char kIdentity[] = "bench";
constexpr int kFilesPerRequest = 1000;
constexpr int kTeams = 20;
constexpr int kApps = 50;
const char* const kEnvironments[] = {"prod", "staging", "dev"};

struct Flags {
  int import = 100000;
  int total = 1000000;
  int queries = 200;
  int clients = 2;
  bool hold = false;
  std::string database_url;  // Set: only the queries, on this database.
  std::string inventory_binary = CERTPLANE_INVENTORY_PATH;
};

Flags ParseFlags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::pair<std::string, std::string> kv = absl::StrSplit(
        absl::StripPrefix(argv[i], "--"), absl::MaxSplits('=', 1));
    int* target = kv.first == "import"    ? &flags.import
                  : kv.first == "total"   ? &flags.total
                  : kv.first == "queries" ? &flags.queries
                  : kv.first == "clients" ? &flags.clients
                                          : nullptr;
    if (kv.first == "inventory_binary") {
      flags.inventory_binary = kv.second;
    } else if (kv.first == "database_url" && !kv.second.empty()) {
      flags.database_url = kv.second;
    } else if (kv.first == "hold" && kv.second.empty()) {
      flags.hold = true;
    } else if (target == nullptr || !absl::SimpleAtoi(kv.second, target) ||
               *target < 1) {
      std::fprintf(stderr,
                   "usage: inventory_bench [--import=N] [--total=N] "
                   "[--queries=N] [--clients=N] [--hold] "
                   "[--database_url=URL] [--inventory_binary=PATH]\n");
      std::exit(2);
    }
  }
  flags.total = std::max(flags.total, flags.import);
  return flags;
}

// ---------------------------------------------------------------------------
// Certificates.

struct Pki {
  std::vector<TestIdentity> issuers;  // Issuing CAs (intermediates).
  std::string ca_pem;                 // Root and intermediates.
  std::vector<PrivateKey> leaf_keys;  // Reused: key generation is not the
                                      // subject here.
};

Pki MakePki() {
  Pki pki;
  crypto::testing::TestCertOptions options;
  options.not_before = absl::Now() - absl::Hours(24 * 400);
  options.not_after = absl::Now() + absl::Hours(24 * 3650);
  options.common_name = "Bench Root CA";
  TestIdentity root =
      ValueOrDie("root CA", crypto::testing::MakeRootCa(options));
  pki.ca_pem = root.cert.ToPem();
  for (int i = 1; i <= 3; ++i) {
    options.common_name = absl::StrCat("Bench Issuing CA ", i);
    pki.issuers.push_back(ValueOrDie(
        "issuing CA", crypto::testing::MakeIntermediateCa(root, options)));
    pki.ca_pem += pki.issuers.back().cert.ToPem();
  }
  for (crypto::KeyType type :
       {crypto::KeyType::kEcdsaP256, crypto::KeyType::kEcdsaP256,
        crypto::KeyType::kEcdsaP256, crypto::KeyType::kEcdsaP384,
        crypto::KeyType::kEd25519, crypto::KeyType::kRsa2048,
        crypto::KeyType::kRsa2048}) {
    pki.leaf_keys.push_back(ValueOrDie("leaf key", PrivateKey::Generate(type)));
  }
  return pki;
}

// Certificate number `i`, PEM. Deterministic in everything but its serial
// and signature.
std::string MakeLeafPem(const Pki& pki, int64_t i, absl::Time base) {
  const TestIdentity& issuer = pki.issuers[i % pki.issuers.size()];
  const PrivateKey& key = pki.leaf_keys[(i / 3) % pki.leaf_keys.size()];
  std::string cn =
      absl::StrCat("host-", i, ".team-", i % kTeams, ".example.com");
  crypto::IssueRequest request{
      .subject = {}, .public_key = key.public_key(), .sans = {}};
  request.subject.attributes.push_back({"CN", "2.5.4.3", cn});
  request.subject.attributes.push_back({"O", "2.5.4.10", "Bench Corp"});
  request.sans.push_back({crypto::SanType::kDns, cn});
  if (i % 2 == 0) {
    request.sans.push_back({crypto::SanType::kDns,
                            absl::StrCat("*.svc-", i % 1000, ".example.net")});
  }
  if (i % 5 == 0) {
    request.sans.push_back(
        {crypto::SanType::kIp, absl::StrCat("10.", (i >> 16) & 255, ".",
                                            (i >> 8) & 255, ".", i & 255)});
  }
  crypto::CertificateProfile profile;
  // Expiry spread over [-30, +400) days.
  const int days = static_cast<int>((i * 7919) % 430) - 30;
  profile.not_after = base + absl::Hours(24 * days) + absl::Seconds(i % 86400);
  profile.not_before = profile.not_after - absl::Hours(24 * 397);
  profile.key_usage = {"digitalSignature"};
  profile.extended_key_usage = {"serverAuth"};
  crypto::PrivateKeySigner signer(issuer.key);
  Certificate cert = ValueOrDie(
      "issue leaf",
      crypto::IssueCertificate(request, profile, &issuer.cert, signer));
  return cert.ToPem();
}

// Certificates [first, first + count) on `threads` threads.
std::vector<std::string> MakeLeaves(const Pki& pki, int64_t first, int count,
                                    int threads, absl::Time base) {
  std::vector<std::string> pems(count);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int j = t; j < count; j += threads) {
        pems[j] = MakeLeafPem(pki, first + j, base);
      }
    });
  }
  for (std::thread& w : workers) w.join();
  return pems;
}

// ---------------------------------------------------------------------------
// The service process.

std::unique_ptr<grpc::ClientContext> NewContext(absl::Duration timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  context->AddMetadata(kIdentityHeader, kIdentity);
  return context;
}

// ---------------------------------------------------------------------------
// Measurements.

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Imports `pems` through the service, kFilesPerRequest per call, from
// `clients` threads. Request k carries team/environment/app metadata
// derived from the first certificate's number. Returns seconds.
double Import(inv::InventoryService::Stub& stub,
              const std::vector<std::string>& pems, int64_t first,
              int clients) {
  std::atomic<size_t> next{0};
  std::atomic<long> imported{0};
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      for (;;) {
        size_t begin = next.fetch_add(kFilesPerRequest);
        if (begin >= pems.size()) return;
        size_t end = std::min(pems.size(), begin + kFilesPerRequest);
        int64_t k = (first + static_cast<int64_t>(begin)) / kFilesPerRequest;
        inv::ImportCertificatesRequest request;
        request.set_owner(absl::StrCat("team-", k % kTeams));
        request.add_environments(kEnvironments[k % 3]);
        (*request.mutable_tags())["app"] = absl::StrCat("app-", k % kApps);
        for (size_t i = begin; i < end; ++i) {
          inv::ImportFile* file = request.add_files();
          file->set_filename(absl::StrCat("cert-", first + i, ".pem"));
          file->set_data(pems[i]);
        }
        inv::ImportCertificatesResponse response;
        auto context = NewContext(absl::Minutes(5));
        CheckOk("ImportCertificates",
                stub.ImportCertificates(context.get(), request, &response));
        if (response.failed_count() != 0) {
          for (const inv::FileResult& file : response.files()) {
            if (!file.ok() || file.certificates_size() == 0 ||
                file.certificates(0).outcome() == inv::IMPORT_OUTCOME_FAILED) {
              Die("import", absl::InternalError(absl::StrCat(
                                file.filename(), ": ", file.error(), " ",
                                file.certificates_size() > 0
                                    ? file.certificates(0).error()
                                    : "")));
            }
          }
        }
        imported += response.imported_count();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  double seconds = SecondsSince(start);
  if (imported.load() != static_cast<long>(pems.size())) {
    Die("import", absl::InternalError(absl::StrCat("imported ", imported.load(),
                                                   " of ", pems.size())));
  }
  return seconds;
}

// Runs a shell command; dies on failure. Returns its stdout.
std::string Shell(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) Die("popen", absl::InternalError(command));
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0)
    out.append(buffer, n);
  int status = pclose(pipe);
  if (status != 0) {
    Die("shell", absl::InternalError(absl::StrCat(
                     "`", command, "` failed: ", status, "\n", out)));
  }
  return out;
}

std::string Quote(absl::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// Copies every table of `schema` into schema `copy` with psql \copy (dump
// untimed, load timed). Returns the load's seconds.
double CopyWithPsql(const std::string& url, const std::string& schema,
                    const std::string& copy, const std::string& dir) {
  const std::string psql =
      absl::StrCat("psql -X -q -v ON_ERROR_STOP=1 ", Quote(url));
  std::vector<std::string> tables = absl::StrSplit(
      Shell(absl::StrCat(
          psql, " -At -c ",
          Quote(absl::StrCat("SELECT table_name FROM information_schema.tables "
                             "WHERE table_schema = '",
                             schema,
                             "' AND table_type = 'BASE TABLE' "
                             "ORDER BY table_name")))),
      '\n', absl::SkipEmpty());
  std::string create = absl::StrCat("CREATE SCHEMA ", copy, ";\n");
  std::string load = "BEGIN;\n";
  for (const std::string& table : tables) {
    std::string file = absl::StrCat(dir, "/", table, ".copy");
    Shell(absl::StrCat(psql, " -c ",
                       Quote(absl::StrCat("\\copy ", schema, ".", table,
                                          " TO '", file, "'"))));
    absl::StrAppend(&create, "CREATE TABLE ", copy, ".", table, " (LIKE ",
                    schema, ".", table,
                    " INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING "
                    "INDEXES);\n");
    absl::StrAppend(&load, "\\copy ", copy, ".", table, " FROM '", file, "'\n");
  }
  absl::StrAppend(&load, "COMMIT;\n");
  std::ofstream(dir + "/create.sql") << create;
  std::ofstream(dir + "/load.sql") << load;
  Shell(absl::StrCat(psql, " -f ", Quote(dir + "/create.sql")));
  auto start = Clock::now();
  Shell(absl::StrCat(psql, " -f ", Quote(dir + "/load.sql")));
  return SecondsSince(start);
}

struct Query {
  std::string name;
  // The filter for iteration `i` (values vary so no two calls in a row are
  // the same).
  std::function<std::string(int)> filter;
  std::string order_by;
};

std::vector<Query> TypicalQueries() {
  return {
      {"owner",
       [](int i) { return absl::StrFormat("owner = \"team-%d\"", i % kTeams); },
       ""},
      {"expiring in prod",
       [](int i) {
         return absl::StrFormat(
             "days_to_expiry < %d AND environment = \"prod\"", 20 + i % 20);
       },
       ""},
      {"team expiring soon",
       [](int i) {
         return absl::StrFormat("owner = \"team-%d\" AND days_to_expiry < 30",
                                i % kTeams);
       },
       ""},
      {"san suffix",
       [](int i) {
         return absl::StrFormat("san:\"*.svc-%d.example.net\"", (2 * i) % 1000);
       },
       ""},
      {"common name",
       [](int i) {
         return absl::StrFormat("common_name = \"host-%d.team-%d.example.com\"",
                                i * 997, (i * 997) % kTeams);
       },
       ""},
      {"tag + key type",
       [](int i) {
         return absl::StrFormat(
             "tags.app = \"app-%d\" AND key_algorithm = \"RSA\"", i % kApps);
       },
       ""},
      {"issuer + status",
       [](int i) {
         return absl::StrFormat(
             "issuer = \"Bench Issuing CA %d\" AND status = \"ACTIVE\"",
             1 + i % 3);
       },
       "not_after desc"},
      {"expired", [](int) { return std::string("status = \"EXPIRED\""); },
       "not_after desc"},
      {"everything by name", [](int) { return std::string(); }, "display_name"},
  };
}

// Steps 1 and 2, then the fill to --total.
void LoadAndCompare(inv::InventoryService::Stub& stub, const Flags& flags,
                    const std::string& url, const std::string& dir) {
  std::printf("generating certificates...\n");
  const absl::Time base = absl::Now();
  Pki pki = MakePki();
  {
    inv::ImportCertificatesRequest request;
    inv::ImportFile* file = request.add_files();
    file->set_filename("bench-cas.pem");
    file->set_data(pki.ca_pem);
    inv::ImportCertificatesResponse response;
    CheckOk("import CAs",
            stub.ImportCertificates(NewContext(absl::Seconds(30)).get(),
                                    request, &response));
  }
  auto gen_start = Clock::now();
  std::vector<std::string> pems = MakeLeaves(pki, 0, flags.import, 2, base);
  std::printf("  %d certificates in %.1f s\n", flags.import,
              SecondsSince(gen_start));

  // 1. Import through the service.
  double import_seconds = Import(stub, pems, 0, flags.clients);
  const double service_rate = flags.import / import_seconds;
  std::printf(
      "import through the service: %d certificates in %.2f s = "
      "%.0f certificates/s\n",
      flags.import, import_seconds, service_rate);

  // 2. The same rows with psql \copy.
  double copy_seconds = CopyWithPsql(url, "inventory", "copybench", dir);
  const double copy_rate = flags.import / copy_seconds;
  std::printf("psql \\copy of the same rows: %.2f s = %.0f certificates/s\n",
              copy_seconds, copy_rate);
  std::printf("ratio service / psql \\copy: %.2f\n", service_rate / copy_rate);
  Shell(absl::StrCat("psql -X -q ", Quote(url),
                     " -c 'DROP SCHEMA copybench CASCADE'"));

  // 3. Fill up to --total, in chunks.
  pems.clear();
  auto fill_start = Clock::now();
  for (int64_t first = flags.import; first < flags.total;) {
    int count =
        static_cast<int>(std::min<int64_t>(100000, flags.total - first));
    std::vector<std::string> chunk = MakeLeaves(pki, first, count, 2, base);
    Import(stub, chunk, first, flags.clients);
    first += count;
    std::printf("  %lld certificates stored (%.0f s)\n",
                static_cast<long long>(first), SecondsSince(fill_start));
    std::fflush(stdout);
  }
  Shell(absl::StrCat("psql -X -q ", Quote(url), " -c 'VACUUM ANALYZE'"));
}

// Step 3's queries: ListCertificates and GetStats.
void RunQueries(inv::InventoryService::Stub& stub, const Flags& flags) {
  std::printf(
      "\nListCertificates at %d certificates, page_size 50 "
      "(milliseconds):\n",
      flags.total);
  std::printf("%-22s %8s %8s %8s %8s %10s\n", "query", "first50", "first99",
              "next50", "next99", "matches");
  std::vector<double> all_first;
  std::vector<double> all_next;
  for (const Query& query : TypicalQueries()) {
    std::vector<double> first_ms;
    std::vector<double> next_ms;
    int64_t matches = 0;
    for (int i = 0; i < flags.queries; ++i) {
      inv::ListCertificatesRequest request;
      request.set_page_size(50);
      request.set_filter(query.filter(i));
      request.set_order_by(query.order_by);
      inv::ListCertificatesResponse response;
      auto start = Clock::now();
      CheckOk(absl::StrCat("List ", query.name),
              stub.ListCertificates(NewContext(absl::Seconds(30)).get(),
                                    request, &response));
      first_ms.push_back(SecondsSince(start) * 1000);
      matches = std::max<int64_t>(matches, response.total_size());
      // Every 10th call also follows three more pages.
      for (int page = 0;
           page < 3 && i % 10 == 0 && !response.next_page_token().empty();
           ++page) {
        request.set_page_token(response.next_page_token());
        start = Clock::now();
        CheckOk(absl::StrCat("List next ", query.name),
                stub.ListCertificates(NewContext(absl::Seconds(30)).get(),
                                      request, &response));
        next_ms.push_back(SecondsSince(start) * 1000);
      }
    }
    all_first.insert(all_first.end(), first_ms.begin(), first_ms.end());
    all_next.insert(all_next.end(), next_ms.begin(), next_ms.end());
    std::printf("%-22s %8.2f %8.2f %8.2f %8.2f %10lld\n", query.name.c_str(),
                Percentile(first_ms, 0.5), Percentile(first_ms, 0.99),
                Percentile(next_ms, 0.5), Percentile(next_ms, 0.99),
                static_cast<long long>(matches));
  }
  std::printf("%-22s %8.2f %8.2f %8.2f %8.2f\n", "all",
              Percentile(all_first, 0.5), Percentile(all_first, 0.99),
              Percentile(all_next, 0.5), Percentile(all_next, 0.99));

  std::printf("\nGetStats at %d certificates (milliseconds):\n", flags.total);
  for (const std::string& filter :
       {std::string(), std::string("owner = \"team-3\"")}) {
    std::vector<double> ms;
    inv::Stats stats;
    for (int i = 0; i < 5; ++i) {
      inv::GetStatsRequest request;
      request.set_filter(filter);
      auto start = Clock::now();
      CheckOk("GetStats", stub.GetStats(NewContext(absl::Minutes(2)).get(),
                                        request, &stats));
      ms.push_back(SecondsSince(start) * 1000);
    }
    std::printf("  filter '%s': p50 %.0f ms, max %.0f ms (total %lld)\n",
                filter.c_str(), Percentile(ms, 0.5), Percentile(ms, 1.0),
                static_cast<long long>(stats.total()));
  }
}

int Main(int argc, char** argv) {
  bench::SetProgram("inventory_bench");
  Flags flags = ParseFlags(argc, argv);
  std::printf(
      "inventory_bench: %d certificates imported and timed, %d in "
      "all, %d calls per query\n",
      flags.import, flags.total, flags.queries);

  const bool load = flags.database_url.empty();
  std::string url = flags.database_url;
  if (load) {
    // A server sized as PostgreSQL's documentation advises for a dedicated
    // machine: shared_buffers at a quarter of memory (the default, 128 MB,
    // holds 3 % of the 1M-certificate database, and every List then reads
    // its rows through the kernel's page cache). CERTPLANE_PG_EXTRA_SETTINGS
    // replaces this.
    const long long quarter_mib =
        static_cast<long long>(sysconf(_SC_PHYS_PAGES)) *
        sysconf(_SC_PAGE_SIZE) / 4 / (1024 * 1024);
    const std::string settings =
        absl::StrCat("shared_buffers=", quarter_mib, "MB");
    setenv("CERTPLANE_PG_EXTRA_SETTINGS", settings.c_str(), /*overwrite=*/0);
    std::printf("PostgreSQL settings: %s\n",
                std::getenv("CERTPLANE_PG_EXTRA_SETTINGS"));
    ValueOrDie("PostgreSQL", testing::StartSharedPostgres());
    url = ValueOrDie("create database",
                     testing::CreateDatabase("bench_inventory"));
  }
  std::string dir = std::filesystem::temp_directory_path() /
                    absl::StrCat("inventory-bench-", getpid());
  std::filesystem::create_directories(dir);
  // psql and the PostgreSQL server (which runs as `postgres` under root)
  // both read the folder.
  std::filesystem::permissions(dir, std::filesystem::perms::all);

  const int port = bench::FreePort();
  std::unique_ptr<server::testing::ChildProcess> service = bench::StartService(
      flags.inventory_binary,
      {absl::StrCat("--database_url=", url), "--allow_development_identity"},
      port, /*callgrind=*/false, "inventory");
  std::shared_ptr<grpc::Channel> channel = grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  auto stub = inv::InventoryService::NewStub(channel);
  if (load) LoadAndCompare(*stub, flags, url, dir);
  RunQueries(*stub, flags);

  const long hwm = ProcStatusKb(service->pid(), "VmHWM");
  const long rss = ProcStatusKb(service->pid(), "VmRSS");
  std::printf(
      "\ncertplane-inventory peak RSS (VmHWM): %.1f MiB; now %.1f "
      "MiB\n",
      hwm / 1024.0, rss / 1024.0);
  service->Signal(SIGTERM).IgnoreError();
  service->WaitForExit(absl::Seconds(30)).IgnoreError();
  std::filesystem::remove_all(dir);
  if (flags.hold && load) {
    std::printf(
        "\nholding PostgreSQL until standard input ends:\n  psql %s\n"
        "  %s --database_url=%s\n",
        Quote(url).c_str(), argv[0], Quote(url).c_str());
    std::fflush(stdout);
    std::string line;
    while (std::getline(std::cin, line)) {
    }
  }
  return 0;
}

}  // namespace
}  // namespace certplane::inventory

int main(int argc, char** argv) {
  return certplane::inventory::Main(argc, argv);
}
