// End to end through the gateway on PostgreSQL, with every service on mTLS
// from `certplane-admin bootstrap` identities, as a user would type it:
// the certplane CLI, then the same flow over HTTP/JSON with curl, with
// openssl checking what comes out.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "certplane/inventory/v1/inventory.pb.h"
#include "certplane/issuance/v1/issuance.pb.h"
#include "google/protobuf/util/json_util.h"
#include "libs/testing/status_matchers.h"
#include "services/testing/loopback.h"
#include "services/testing/platform.h"

namespace certplane {
namespace {

namespace inv = ::certplane::inventory::v1;
namespace iss = ::certplane::issuance::v1;
using testing::CommandResult;
using testing::RunCommand;

const testing::PlatformBinaries kBinaries = {
    CERTPLANE_VAULT_PATH, CERTPLANE_INVENTORY_PATH, CERTPLANE_ISSUANCE_PATH,
    CERTPLANE_GATEWAY_PATH};

constexpr char kPassword[] = "correct horse battery staple";

class User {
 public:
  User(const testing::LocalPlatform& platform, std::string token)
      : env_(platform.CliEnvironment(token)) {}

  // `certplane <args>`; the exit code must be `expect`.
  std::string Run(const std::vector<std::string>& args, int expect = 0) const {
    std::vector<std::string> argv = {CERTPLANE_CLI_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult r = RunCommand(argv, env_);
    INFO("certplane " << absl::StrJoin(args, " ") << "\n" << r.out);
    CHECK(r.exit_code == expect);
    return r.out;
  }

 private:
  std::vector<std::string> env_;
};

template <typename Message>
Message FromJson(const std::string& json) {
  Message m;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  INFO(json);
  REQUIRE(google::protobuf::util::JsonStringToMessage(json, &m, options).ok());
  return m;
}

CommandResult Openssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv);
}

std::string Slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A PKCS#12 file with a self-signed certificate and its key, made by
// openssl as an operator would.
std::filesystem::path MakePkcs12(const std::filesystem::path& dir,
                                 const std::string& cn) {
  auto key = dir / (cn + ".key");
  auto crt = dir / (cn + ".crt");
  auto p12 = dir / (cn + ".p12");
  REQUIRE(Openssl({"req",
                   "-x509",
                   "-newkey",
                   "ec",
                   "-pkeyopt",
                   "ec_paramgen_curve:P-256",
                   "-nodes",
                   "-keyout",
                   key.string(),
                   "-out",
                   crt.string(),
                   "-subj",
                   "/CN=" + cn,
                   "-addext",
                   "subjectAltName=DNS:" + cn,
                   "-addext",
                   "basicConstraints=critical,CA:FALSE",
                   "-addext",
                   "extendedKeyUsage=serverAuth",
                   "-days",
                   "90"})
              .exit_code == 0);
  REQUIRE(Openssl({"pkcs12", "-export", "-inkey", key.string(), "-in",
                   crt.string(), "-out", p12.string(), "-passout",
                   std::string("pass:") + kPassword})
              .exit_code == 0);
  return p12;
}

// Checks a PKCS#12 export with openssl: it opens with the password and
// holds a key that matches the certificate for `cn`.
void CheckPkcs12(const std::filesystem::path& p12, const std::string& cn) {
  CommandResult dump = Openssl({"pkcs12", "-in", p12.string(), "-nodes",
                                "-passin", std::string("pass:") + kPassword});
  INFO(dump.out);
  REQUIRE(dump.exit_code == 0);
  CHECK(absl::StrContains(dump.out, "BEGIN PRIVATE KEY"));
  CHECK(absl::StrContains(dump.out, "CN = " + cn));
  CommandResult wrong = Openssl({"pkcs12", "-in", p12.string(), "-nodes",
                                 "-passin", "pass:wrong password"});
  CHECK(wrong.exit_code != 0);
}

// Checks an NGINX bundle: the key file is private, its public key is the
// certificate's, and the chain verifies up to the internal root.
void CheckNginxBundle(const std::filesystem::path& dir, const std::string& cn) {
  std::filesystem::path fullchain, key;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (absl::StrContains(name, "fullchain")) fullchain = entry.path();
    if (absl::StrContains(name, "key")) key = entry.path();
  }
  INFO("bundle in " << dir);
  REQUIRE(!fullchain.empty());
  REQUIRE(!key.empty());
  struct stat st;
  REQUIRE(::stat(key.c_str(), &st) == 0);
  CHECK((st.st_mode & 077) == 0);
  CommandResult subject =
      Openssl({"x509", "-in", fullchain.string(), "-noout", "-subject"});
  CHECK(absl::StrContains(subject.out, cn));
  CommandResult cert_pub =
      Openssl({"x509", "-in", fullchain.string(), "-noout", "-pubkey"});
  CommandResult key_pub = Openssl({"pkey", "-in", key.string(), "-pubout"});
  REQUIRE(cert_pub.exit_code == 0);
  REQUIRE(key_pub.exit_code == 0);
  CHECK(cert_pub.out == key_pub.out);
}

std::string WaitIssued(const User& user, const std::string& order_id) {
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (true) {
    iss::Order order = FromJson<iss::Order>(
        user.Run({"order", "get", order_id, "-o", "json"}));
    if (order.state() == iss::ISSUED) return order.certificate();
    INFO("order " << order_id << " is " << iss::OrderState_Name(order.state())
                  << " " << order.failure_reason());
    REQUIRE(order.state() != iss::FAILED);
    REQUIRE(absl::Now() < give_up);
    absl::SleepFor(absl::Milliseconds(200));
  }
}

std::string Id(absl::string_view name) {
  return std::string(name.substr(name.rfind('/') + 1));
}

TEST_CASE("ACertificateLivesItsLifeThroughTheCliAndTheHttpApi") {
  testing::LocalPlatform platform(
      kBinaries, {.dialect = db::Dialect::kPostgres,
                  .gateway_flags = {"--checkpoint_interval=200ms"},
                  .mtls = true});
  std::filesystem::path dir = testing::FreshTestDir("e2e");
  User admin(platform, platform.admin_token());
  auto token = [&](const std::string& who, const std::string& roles) {
    std::vector<std::string> args = {"token", "create", "--principal",
                                     who,     "--ttl",  "1d"};
    for (absl::string_view r : absl::StrSplit(roles, ',')) {
      args.push_back("--role");
      args.push_back(std::string(r));
    }
    return std::string(absl::StripAsciiWhitespace(admin.Run(args)));
  };
  // Rita may request and approve for payments: she still cannot approve her
  // own order. Alan approves; Olga operates (exports keys).
  User rita(platform,
            token("user:rita", "requester:payments,approver:payments"));
  User alan(platform, token("user:alan", "approver:payments"));
  User olga(platform, token("user:olga", "operator:payments"));
  CHECK(absl::StrContains(rita.Run({"whoami"}), "user:rita"));

  // Import a PKCS#12 file (the key goes to the vault).
  std::filesystem::path p12 = MakePkcs12(dir, "web.pay.example.com");
  std::string imported =
      rita.Run({"cert", "import", p12.string(), "--password", kPassword,
                "--owner", "payments", "--env", "prod"});
  CHECK(absl::StrContains(imported, "1 imported"));
  // A wrong password is a clear per-file error (exit code 1): nothing was
  // imported.
  std::string wrong = rita.Run({"cert", "import", p12.string(), "--password",
                                "not it", "--owner", "payments"},
                               1);
  CHECK(absl::StrContains(wrong, "FAILED"));

  // Apply through the workflow.
  iss::Order order = FromJson<iss::Order>(
      rita.Run({"order", "create", "--cn", "api.pay.example.com", "--owner",
                "payments", "--env", "prod", "-o", "json"}));
  CHECK(order.state() == iss::PENDING_APPROVAL);
  rita.Run({"order", "approve", order.order_id()}, 4);
  alan.Run({"order", "approve", order.order_id()});
  const std::string certificate = WaitIssued(rita, order.order_id());
  CHECK(absl::StrContains(rita.Run({"cert", "get", Id(certificate)}),
                          "api.pay.example.com"));

  // Export with the key: an operator's job, and checked by openssl.
  rita.Run({"cert", "export", Id(certificate), "--format", "pkcs12",
            "--password", kPassword, "--out", (dir / "out.p12").string()},
           4);
  olga.Run({"cert", "export", Id(certificate), "--format", "pkcs12",
            "--password", kPassword, "--out", (dir / "out.p12").string()});
  CheckPkcs12(dir / "out.p12", "api.pay.example.com");
  olga.Run({"cert", "export", Id(certificate), "--format", "nginx", "--out",
            (dir / "nginx").string()});
  CheckNginxBundle(dir / "nginx", "api.pay.example.com");
  std::string chain =
      rita.Run({"cert", "export", Id(certificate), "--format", "fullchain"});
  CHECK(absl::StrContains(chain, "BEGIN CERTIFICATE"));

  // List with a filter.
  inv::ListCertificatesResponse listed =
      FromJson<inv::ListCertificatesResponse>(rita.Run(
          {"cert", "list", "--filter", "owner = \"payments\"", "-o", "json"}));
  CHECK(listed.certificates_size() == 2);
  std::string table = rita.Run({"cert", "list", "--expiring-within", "400"});
  INFO(table);
  CHECK(absl::StrContains(table, "api.pay.example.com"));
  CHECK(absl::StrContains(table, "web.pay.example.com"));
  CHECK(
      rita.Run({"cert", "list", "--filter", "owner = \"search\"", "-o", "json"})
          .find("certificates") == std::string::npos);
  // The audit log holds all of it, and verifies.
  absl::SleepFor(absl::Milliseconds(500));  // A checkpoint is signed.
  CHECK(absl::StrContains(admin.Run({"audit", "verify"}), "audit log OK"));

  // The same flow over HTTP/JSON with curl.
  const std::string http =
      absl::StrCat("http://127.0.0.1:", platform.http_port());
  auto curl = [&](const User&, const std::string& token_value,
                  const std::string& rpc, const std::string& body) {
    CommandResult r = RunCommand({"/usr/bin/curl", "-sS", "--fail-with-body",
                                  "-H", "Authorization: Bearer " + token_value,
                                  "-H", "Content-Type: application/json",
                                  "--data-binary", body, http + "/" + rpc});
    INFO(rpc << " " << body.substr(0, 200) << "\n" << r.out);
    CHECK(r.exit_code == 0);
    return r.out;
  };
  const std::string rita_token = token("user:rita2", "requester:payments");
  const std::string alan_token = token("user:alan2", "approver:payments");
  const std::string olga_token = token("user:olga2", "operator:payments");
  std::filesystem::path p12b = MakePkcs12(dir, "www.pay.example.com");
  inv::ImportCertificatesResponse imported_http =
      FromJson<inv::ImportCertificatesResponse>(curl(
          rita, rita_token,
          "certplane.inventory.v1.InventoryService/ImportCertificates",
          absl::StrCat(R"({"owner":"payments","files":[{"filename":"www.p12",)",
                       R"("password":")", kPassword, R"(","data":")",
                       absl::Base64Escape(Slurp(p12b)), R"("}]})")));
  CHECK(imported_http.imported_count() == 1);
  // The inventory records the person behind the gateway as the actor.
  CHECK(absl::StrContains(
      curl(admin, platform.admin_token(),
           "certplane.inventory.v1.InventoryService/WatchChanges",
           R"({"noWait": true})"),
      "\"actor\":\"user:rita2\""));
  iss::Order order2 = FromJson<iss::Order>(curl(
      rita, rita_token, "certplane.issuance.v1.IssuanceService/CreateOrder",
      R"({"subject":{"attributes":[{"type":"CN","value":"shop.pay.example.com"}]},
          "sans":[{"type":"DNS","value":"shop.pay.example.com"}],
          "keySpec":{"type":"ECDSA_P256"},"issuer":"issuers/internal",
          "owner":"payments","environment":"prod"})"));
  curl(alan, alan_token, "certplane.issuance.v1.IssuanceService/ApproveOrder",
       absl::StrCat(R"({"name":")", order2.name(), R"("})"));
  std::string certificate2;
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (certificate2.empty()) {
    iss::Order o = FromJson<iss::Order>(
        curl(rita, rita_token, "certplane.issuance.v1.IssuanceService/GetOrder",
             absl::StrCat(R"({"name":")", order2.name(), R"("})")));
    if (o.state() == iss::ISSUED) certificate2 = o.certificate();
    REQUIRE(o.state() != iss::FAILED);
    REQUIRE(absl::Now() < give_up);
    absl::SleepFor(absl::Milliseconds(200));
  }
  inv::ExportCertificateResponse exported =
      FromJson<inv::ExportCertificateResponse>(
          curl(olga, olga_token,
               "certplane.inventory.v1.InventoryService/ExportCertificate",
               absl::StrCat(R"({"name":")", certificate2,
                            R"(","format":"PKCS12","password":")", kPassword,
                            R"("})")));
  REQUIRE(exported.files_size() == 1);
  {
    std::ofstream(dir / "http.p12", std::ios::binary)
        << exported.files(0).data();
  }
  CheckPkcs12(dir / "http.p12", "shop.pay.example.com");
  inv::ExportCertificateResponse bundle =
      FromJson<inv::ExportCertificateResponse>(
          curl(olga, olga_token,
               "certplane.inventory.v1.InventoryService/ExportCertificate",
               absl::StrCat(R"({"name":")", certificate2,
                            R"(","format":"NGINX_BUNDLE"})")));
  REQUIRE(bundle.files_size() == 2);
  std::filesystem::create_directories(dir / "http-nginx");
  for (const inv::ExportedFile& f : bundle.files()) {
    const auto path = dir / "http-nginx" / f.filename();
    std::ofstream(path, std::ios::binary) << f.data();
    if (f.sensitive())
      std::filesystem::permissions(path,
                                   std::filesystem::perms::owner_read |
                                       std::filesystem::perms::owner_write,
                                   std::filesystem::perm_options::replace);
  }
  CheckNginxBundle(dir / "http-nginx", "shop.pay.example.com");
  inv::ListCertificatesResponse listed_http =
      FromJson<inv::ListCertificatesResponse>(curl(
          rita, rita_token,
          "certplane.inventory.v1.InventoryService/ListCertificates",
          R"({"filter":"owner = \"payments\" AND days_to_expiry < 400"})"));
  CHECK(listed_http.certificates_size() == 4);
}

}  // namespace
}  // namespace certplane
