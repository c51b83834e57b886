// gateway_bench: the cost of the gateway. The same RPC is called directly on
// the inventory and through the gateway, in one run, by the same closed-loop
// clients, and the QPS, p50/p99 latency, CPU per call and ratio are printed,
// for two RPCs: InventoryService/GetCertificate of one certificate (the
// cheapest read, where the gateway's share is largest) and a
// ListCertificates page of 50 (what the web UI and `certplane cert list`
// call).
//
//   build/bench/gateway/gateway_bench [--calls=20000] [--clients=8]
//   CERTPLANE_BENCH_CALLGRIND=certplane-gateway build/bench/...  (profile)
//
// The services are the real binaries (vault, inventory, gateway) in
// plaintext development mode on SQLite files in a temporary folder. Through
// the gateway the call is made twice: as a global admin (authentication from
// the token cache, the rule checked, the bytes forwarded) and as a viewer of
// the owning team (which adds the owner lookup, one more inventory call).
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "bench/common/bench_util.h"
#include "certplane/gateway/v1/gateway.grpc.pb.h"
#include "certplane/inventory/v1/inventory.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "libs/crypto/testing/test_pki.h"
#include "libs/server/testing/test_client.h"

namespace certplane {
namespace {

using bench::Die;
using bench::ValueOrDie;
using server::testing::ChildProcess;
namespace inv = ::certplane::inventory::v1;
namespace gw = ::certplane::gateway::v1;

// Certificates imported for the List side (one team's).
constexpr int kListedCertificates = 60;

struct Flags {
  int calls = 20000;
  int clients = 8;
};

Flags ParseFlags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    int* target = nullptr;
    if (absl::ConsumePrefix(&arg, "--calls=")) target = &flags.calls;
    if (absl::ConsumePrefix(&arg, "--clients=")) target = &flags.clients;
    if (target == nullptr || !absl::SimpleAtoi(arg, target) || *target <= 0) {
      Die("flags", absl::InvalidArgumentError(absl::StrCat(
                       "bad argument ", argv[i], " (--calls=N, --clients=N)")));
    }
  }
  return flags;
}

// CERTPLANE_BENCH_CALLGRIND=<binary name> runs that one under callgrind
// (output in /tmp/callgrind.<name>.<pid>).
std::unique_ptr<ChildProcess> Start(const std::string& path,
                                    std::vector<std::string> flags, int port) {
  const char* profiled = std::getenv("CERTPLANE_BENCH_CALLGRIND");
  const std::string base = std::filesystem::path(path).filename().string();
  return bench::StartService(path, std::move(flags), port,
                             profiled != nullptr && base == profiled, base);
}

void Print(const char* side, int calls, const bench::LoopResult& r) {
  std::printf(
      "%-28s %7d calls in %6.2f s: %8.0f QPS, p50 %6.3f ms, p99 %6.3f ms\n",
      side, calls, r.seconds, calls / r.seconds,
      bench::Percentile(r.latencies_ms, 0.5),
      bench::Percentile(r.latencies_ms, 0.99));
  std::fflush(stdout);
}

int Main(int argc, char** argv) {
  bench::SetProgram("gateway_bench");
  const Flags flags = ParseFlags(argc, argv);
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    absl::StrCat("gateway-bench-", getpid());
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir / "vault.policy") << "certplane-gateway *\ninventory *\n";
  }
  const int vault_port = bench::FreePort();
  auto vault =
      Start(CERTPLANE_VAULT_PATH,
            {absl::StrCat("--database_url=sqlite://", (dir / "v.db").string()),
             absl::StrCat("--kek=file:", (dir / "kek").string()),
             "--create_kek_file_if_missing",
             absl::StrCat("--policy_file=", (dir / "vault.policy").string())},
            vault_port);
  const int inventory_port = bench::FreePort();
  auto inventory =
      Start(CERTPLANE_INVENTORY_PATH,
            {absl::StrCat("--database_url=sqlite://", (dir / "i.db").string()),
             absl::StrCat("--vault_address=127.0.0.1:", vault_port),
             "--allow_development_identity"},
            inventory_port);
  const int gateway_port = bench::FreePort();
  auto gateway = Start(
      CERTPLANE_GATEWAY_PATH,
      {absl::StrCat("--database_url=sqlite://", (dir / "g.db").string()),
       absl::StrCat("--data_dir=", dir.string()), "--create_audit_key",
       absl::StrCat("--bootstrap_admin_token_file=", (dir / "token").string()),
       absl::StrCat("--vault_address=127.0.0.1:", vault_port),
       absl::StrCat("--inventory_address=127.0.0.1:", inventory_port),
       absl::StrCat("--issuance_address=127.0.0.1:", bench::FreePort()),
       "--http_listen_address=", "--token_cache_ttl=60s"},
      gateway_port);
  std::string admin;
  {
    std::ifstream in(dir / "token");
    std::stringstream text;
    text << in.rdbuf();
    admin = std::string(absl::StripAsciiWhitespace(text.str()));
  }
  auto direct_channel =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", inventory_port),
                          grpc::InsecureChannelCredentials());
  auto gateway_channel =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", gateway_port),
                          grpc::InsecureChannelCredentials());

  // The certificates of one team (GetCertificate asks for the first, a
  // ListCertificates page holds 50), and a viewer of that team.
  std::string name;
  {
    inv::ImportCertificatesRequest request;
    request.set_owner("payments");
    crypto::testing::TestCertOptions options;
    options.common_name = "bench-ca.example.com";
    auto chain = ValueOrDie("chain", crypto::testing::MakeChain(options));
    for (int i = 0; i < kListedCertificates; ++i) {
      crypto::testing::TestCertOptions leaf;
      leaf.common_name = absl::StrCat("bench-", i, ".example.com");
      auto cert = ValueOrDie(
          "leaf", crypto::testing::MakeLeaf(chain.intermediate, leaf));
      auto* file = request.add_files();
      file->set_filename(absl::StrCat("bench-", i, ".pem"));
      file->set_data(cert.cert.ToPem() + chain.intermediate.cert.ToPem());
    }
    inv::ImportCertificatesResponse response;
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + admin);
    bench::CheckOk("import",
                   inv::InventoryService::NewStub(gateway_channel)
                       ->ImportCertificates(&context, request, &response));
    for (const auto& f : response.files()) {
      for (const auto& c : f.certificates()) {
        if (name.empty() &&
            absl::StartsWith(c.certificate(), "certificates/") &&
            c.error().empty()) {
          name = c.certificate();
        }
      }
    }
  }
  if (name.empty()) {
    Die("import", absl::InternalError("no certificate was imported"));
  }
  std::string viewer;
  {
    gw::CreateTokenRequest request;
    request.set_principal("user:vera");
    auto* role = request.add_roles();
    role->set_role("viewer");
    role->set_team("payments");
    gw::CreateTokenResponse response;
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + admin);
    bench::CheckOk("token", gw::GatewayService::NewStub(gateway_channel)
                                ->CreateToken(&context, request, &response));
    viewer = response.secret();
  }

  // The three sides take turns in five rounds, so that drift on a shared
  // machine hits all of them alike.
  struct Side {
    const char* label;
    std::shared_ptr<grpc::Channel> channel;
    std::string token;
    std::vector<std::unique_ptr<inv::InventoryService::Stub>> stubs;
    bench::LoopResult total;
    // CPU seconds used during this side's rounds: gateway, inventory, the
    // bench's own clients.
    double cpu[3] = {0, 0, 0};
  };
  // One RPC as the bench calls it; false when it failed (printed).
  using Rpc = std::function<grpc::Status(inv::InventoryService::Stub&,
                                         grpc::ClientContext&)>;
  inv::GetCertificateRequest get;
  get.set_name(name);
  inv::ListCertificatesRequest list;
  list.set_page_size(50);
  const std::vector<std::pair<std::string, Rpc>> rpcs = {
      {"GetCertificate",
       [&](inv::InventoryService::Stub& stub, grpc::ClientContext& context) {
         inv::ManagedCertificate response;
         return stub.GetCertificate(&context, get, &response);
       }},
      {"ListCertificates (page of 50)",
       [&](inv::InventoryService::Stub& stub, grpc::ClientContext& context) {
         inv::ListCertificatesResponse response;
         grpc::Status s = stub.ListCertificates(&context, list, &response);
         if (s.ok() && response.certificates_size() != 50) {
           return grpc::Status(
               grpc::StatusCode::INTERNAL,
               absl::StrCat("listed ", response.certificates_size(),
                            " certificates, not 50"));
         }
         return s;
       }},
  };
  auto cpu_now = [&](double out[3]) {
    out[0] = bench::ProcessCpuSeconds(gateway->pid());
    out[1] = bench::ProcessCpuSeconds(inventory->pid());
    out[2] = bench::ProcessCpuSeconds(getpid());
  };
  for (const auto& [rpc_name, rpc] : rpcs) {
    std::printf("gateway_bench: %s, %d calls per side, %d clients\n",
                rpc_name.c_str(), flags.calls, flags.clients);
    std::vector<Side> sides;
    sides.push_back({"direct to the inventory", direct_channel, "", {}, {}});
    sides.push_back(
        {"through the gateway (admin)", gateway_channel, admin, {}, {}});
    sides.push_back(
        {"through the gateway (team)", gateway_channel, viewer, {}, {}});
    for (Side& side : sides) {
      for (int c = 0; c < flags.clients; ++c) {
        side.stubs.push_back(inv::InventoryService::NewStub(side.channel));
      }
    }
    auto round = [&](Side& side, int calls) {
      auto call = [&](int c, int) {
        grpc::ClientContext context;
        if (side.token.empty()) {
          context.AddMetadata("x-certplane-dev-identity", "bench");
        } else {
          context.AddMetadata("authorization", "Bearer " + side.token);
        }
        grpc::Status s = rpc(*side.stubs[c], context);
        if (!s.ok()) {
          std::fprintf(stderr, "%s: %s\n", rpc_name.c_str(),
                       s.error_message().c_str());
        }
        return s.ok();
      };
      return bench::RunClosedLoop(calls, flags.clients, call);
    };
    for (Side& side : sides)
      round(side, std::min(2000, flags.calls));  // Warm-up.
    constexpr int kRounds = 5;
    for (int r = 0; r < kRounds; ++r) {
      for (Side& side : sides) {
        double before[3], after[3];
        cpu_now(before);
        bench::LoopResult part = round(side, flags.calls / kRounds);
        cpu_now(after);
        for (int i = 0; i < 3; ++i) side.cpu[i] += after[i] - before[i];
        side.total.seconds += part.seconds;
        side.total.latencies_ms.insert(side.total.latencies_ms.end(),
                                       part.latencies_ms.begin(),
                                       part.latencies_ms.end());
      }
    }
    const int per_side = flags.calls / kRounds * kRounds;
    for (const Side& side : sides) Print(side.label, per_side, side.total);
    std::printf("CPU microseconds per call (user + system):\n");
    for (const Side& side : sides) {
      std::printf("  %-28s gateway %6.1f  inventory %6.1f  clients %6.1f\n",
                  side.label, side.cpu[0] * 1e6 / per_side,
                  side.cpu[1] * 1e6 / per_side, side.cpu[2] * 1e6 / per_side);
    }
    std::printf(
        "ratio gateway/direct: %.2f (admin), %.2f (team viewer) QPS\n\n",
        sides[0].total.seconds / sides[1].total.seconds,
        sides[0].total.seconds / sides[2].total.seconds);
    std::fflush(stdout);
  }
  std::printf("gateway peak RSS: %ld KiB\n",
              bench::ProcStatusKb(gateway->pid(), "VmHWM"));
  for (auto* p : {gateway.get(), inventory.get(), vault.get()}) {
    (void)p->Signal(SIGTERM);
    (void)p->WaitForExit(absl::Seconds(30));
  }
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace certplane

int main(int argc, char** argv) { return certplane::Main(argc, argv); }
