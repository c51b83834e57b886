// The gateway with the real platform behind it (every service a process,
// as `make run` starts them), on SQLite and PostgreSQL: the authorization
// matrix (every RPC x every role, plus no, bad, expired and revoked
// tokens), the audit log (verification, tampering named by index, changes
// refused when the log cannot be written), and tokens.
#include <soci/soci.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "certplane/gateway/v1/gateway.grpc.pb.h"
#include "certplane/inventory/v1/inventory.grpc.pb.h"
#include "certplane/issuance/v1/issuance.grpc.pb.h"
#include "certplane/vault/v1/vault.grpc.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/text_format.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/stub_options.h"
#include "libs/audit/audit_log.h"
#include "libs/audit/merkle.h"
#include "libs/crypto/jwk.h"
#include "libs/crypto/testing/test_pki.h"
#include "libs/db/database.h"
#include "libs/status/grpc_status.h"
#include "libs/testing/db_test_util.h"
#include "libs/testing/status_matchers.h"
#include "services/gateway/audit_proto.h"
#include "services/testing/loopback.h"
#include "services/testing/platform.h"

namespace certplane::gateway {
namespace {

using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;
namespace inv = ::certplane::inventory::v1;
namespace iss = ::certplane::issuance::v1;
namespace vlt = ::certplane::vault::v1;

const testing::PlatformBinaries kBinaries = {
    CERTPLANE_VAULT_PATH, CERTPLANE_INVENTORY_PATH, CERTPLANE_ISSUANCE_PATH,
    CERTPLANE_GATEWAY_PATH};

const std::vector<std::string> kGatewayFlags = {"--checkpoint_interval=200ms",
                                                "--token_cache_ttl=1s"};

// A unary call through the gateway by full method name, with the request
// given as a message of the method's input type.
absl::Status CallRaw(const std::shared_ptr<grpc::Channel>& channel,
                     const std::string& method,
                     const google::protobuf::Message& request,
                     const std::string& token,
                     std::string* response_bytes = nullptr) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  std::string bytes = request.SerializeAsString();
  grpc::Slice slice(bytes);
  grpc::ByteBuffer in(&slice, 1);
  grpc::ByteBuffer out;
  absl::Notification done;
  grpc::Status result;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &in, &out,
                 [&](grpc::Status s) {
                   result = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  if (result.ok() && response_bytes != nullptr) {
    std::vector<grpc::Slice> slices;
    (void)out.Dump(&slices);
    response_bytes->clear();
    for (const grpc::Slice& s : slices) {
      response_bytes->append(reinterpret_cast<const char*>(s.begin()),
                             s.size());
    }
  }
  return FromGrpcStatus(result);
}

template <typename Response>
Response CallOk(const std::shared_ptr<grpc::Channel>& channel,
                const std::string& method,
                const google::protobuf::Message& request,
                const std::string& token) {
  std::string bytes;
  absl::Status s = CallRaw(channel, method, request, token, &bytes);
  INFO(method << ": " << s.ToString());
  REQUIRE(s.ok());
  Response response;
  REQUIRE(response.ParseFromString(bytes));
  return response;
}

std::string Method(absl::string_view service, absl::string_view name) {
  return absl::StrCat("/certplane.", service, "/", name);
}

std::string MakeToken(const std::shared_ptr<grpc::Channel>& channel,
                      const std::string& admin, const std::string& principal,
                      const std::string& roles, int ttl_seconds = 3600) {
  v1::CreateTokenRequest request;
  request.set_principal(principal);
  for (absl::string_view grant : absl::StrSplit(roles, ',')) {
    std::pair<std::string, std::string> p = absl::StrSplit(grant, ':');
    v1::RoleBinding* b = request.add_roles();
    b->set_role(p.first);
    b->set_team(p.second);
  }
  request.mutable_ttl()->set_seconds(ttl_seconds);
  return CallOk<v1::CreateTokenResponse>(
             channel, Method("gateway.v1.GatewayService", "CreateToken"),
             request, admin)
      .secret();
}

std::string CertificatePem(const std::string& cn) {
  crypto::testing::TestCertOptions options;
  options.common_name = cn;
  crypto::testing::TestChain chain =
      ValueOrDie(crypto::testing::MakeChain(options));
  return chain.leaf.cert.ToPem() + chain.intermediate.cert.ToPem();
}

// Imports a certificate for `team`; returns its name and version.
std::pair<std::string, std::string> ImportCertificate(
    const std::shared_ptr<grpc::Channel>& channel, const std::string& token,
    const std::string& cn, const std::string& team) {
  inv::ImportCertificatesRequest request;
  request.set_owner(team);
  inv::ImportFile* file = request.add_files();
  file->set_filename(cn + ".pem");
  file->set_data(CertificatePem(cn));
  auto response = CallOk<inv::ImportCertificatesResponse>(
      channel, Method("inventory.v1.InventoryService", "ImportCertificates"),
      request, token);
  REQUIRE(response.imported_count() == 1);
  for (const auto& c : response.files(0).certificates()) {
    if (!c.certificate().empty()) return {c.certificate(), c.version()};
  }
  FAIL("no certificate imported");
  return {};
}

iss::CreateOrderRequest OrderFor(const std::string& dns,
                                 const std::string& team) {
  iss::CreateOrderRequest request;
  auto* cn = request.mutable_subject()->add_attributes();
  cn->set_type("CN");
  cn->set_value(dns);
  auto* san = request.add_sans();
  san->set_type(common::v1::SubjectAltName::DNS);
  san->set_value(dns);
  request.mutable_key_spec()->set_type(common::v1::ECDSA_P256);
  request.set_issuer("issuers/internal");
  request.set_owner(team);
  request.set_environment("prod");
  return request;
}

// Who may call each RPC, as docs/security.md states it (written out here,
// not derived from the gateway's table, so that the two are checked against
// each other). Letters: V viewer, R requester, A approver, O operator,
// T admin of the team, G global admin, W an operator of another team; all
// on team "payments", which owns every resource named in the requests.
struct Expectation {
  std::string method;
  std::string request;  // Text format; $CERT $VERSION $ORDER $KEY ...
  std::string allowed;
};

const std::vector<Expectation>& Matrix() {
  static const auto* const kMatrix = new std::vector<Expectation>{
      {"inventory.v1.InventoryService/ImportCertificates",
       R"(owner: "payments" files { filename: "x.pem" data: "junk" })", "ROTG"},
      {"inventory.v1.InventoryService/CreateCertificate",
       R"(certificate { owner: "payments" display_name: "m" })", "OTG"},
      {"inventory.v1.InventoryService/AddCertificateVersion",
       R"(parent: "$CERT" certificate: "junk")", "OTG"},
      {"inventory.v1.InventoryService/GetCertificate", R"(name: "$CERT")",
       "VRAOTG"},
      {"inventory.v1.InventoryService/ListCertificates", "", "VRAOTGW"},
      {"inventory.v1.InventoryService/ListCertificateVersions",
       R"(parent: "$CERT")", "VRAOTG"},
      {"inventory.v1.InventoryService/GetCertificateVersion",
       R"(name: "$VERSION")", "VRAOTG"},
      {"inventory.v1.InventoryService/UpdateCertificate",
       R"(certificate { name: "$CERT" display_name: "renamed" }
          update_mask { paths: "display_name" })",
       "OTG"},
      {"inventory.v1.InventoryService/DeleteCertificate", R"(name: "$DELCERT")",
       "OTG"},
      {"inventory.v1.InventoryService/RevokeCertificateVersion",
       R"(name: "$VERSION" reason: "superseded")", "OTG"},
      {"inventory.v1.InventoryService/ExportCertificate",
       R"(name: "$CERT" format: FULLCHAIN_PEM)", "VRAOTG"},
      {"inventory.v1.InventoryService/ExportCertificate",
       R"(name: "$CERT" format: PKCS12 password: "correct horse battery")",
       "OTG"},
      {"inventory.v1.InventoryService/GetStats", "", "VRAOTGW"},
      {"issuance.v1.IssuanceService/CreateOrder", "$NEWORDER", "ROTG"},
      {"issuance.v1.IssuanceService/GetOrder", R"(name: "$ORDER")", "VRAOTG"},
      {"issuance.v1.IssuanceService/ListOrders", "", "VRAOTGW"},
      {"issuance.v1.IssuanceService/GetOrderCsr", R"(name: "$ORDER")",
       "VRAOTG"},
      {"issuance.v1.IssuanceService/UploadCertificate",
       R"(name: "$ORDER" certificate: "junk")", "ROTG"},
      {"issuance.v1.IssuanceService/ApproveOrder", R"(name: "$ORDER")", "ATG"},
      {"issuance.v1.IssuanceService/RejectOrder", R"(name: "$ORDER")", "ATG"},
      {"issuance.v1.IssuanceService/CancelOrder", R"(name: "$ORDER")", "RATG"},
      {"issuance.v1.IssuanceService/RenewCertificate",
       R"(certificate: "$CERT")", "ROTG"},
      {"issuance.v1.IssuanceService/RevokeCertificate",
       R"(certificate_version: "$VERSION" reason: "superseded")", "OTG"},
      {"issuance.v1.IssuanceService/ListIssuers", "", "VRAOTGW"},
      {"issuance.v1.IssuanceService/GetIssuer", R"(name: "issuers/internal")",
       "VRAOTGW"},
      {"issuance.v1.IssuanceService/GetCrl", R"(issuer: "issuers/internal")",
       "VRAOTGW"},
      {"issuance.v1.IssuanceService/ListRenewals", "", "G"},
      {"vault.v1.VaultService/GenerateKey",
       R"(owner: "payments" spec { type: ECDSA_P256 })", "OTG"},
      {"vault.v1.VaultService/ImportKey", R"(owner: "payments")", "OTG"},
      {"vault.v1.VaultService/GetKey", R"(name: "$KEY")", "VRAOTG"},
      {"vault.v1.VaultService/ListKeys", "", "VRAOTGW"},
      {"vault.v1.VaultService/CreateCsr", R"(name: "$KEY")", "ROTG"},
      {"vault.v1.VaultService/Sign", R"(name: "$KEY")", "G"},
      {"vault.v1.VaultService/ExportKey", R"(name: "$KEY")", "OTG"},
      {"vault.v1.VaultService/DeleteKey", R"(name: "$DELKEY")", "OTG"},
      {"vault.v1.VaultService/GetKekStatus", "", "G"},
      {"vault.v1.VaultService/RotateKek", "", "G"},
      {"gateway.v1.GatewayService/WhoAmI", "", "VRAOTGW"},
      {"gateway.v1.GatewayService/CreateToken", "", "VRAOTGW"},
      {"gateway.v1.GatewayService/ListTokens", "", "VRAOTGW"},
      {"gateway.v1.GatewayService/RevokeToken",
       R"(name: "tokens/0000000000000000")", "VRAOTGW"},
      {"gateway.v1.AuditService/ListAuditEntries", "", "G"},
      {"gateway.v1.AuditService/ListCheckpoints", "", "G"},
      {"gateway.v1.AuditService/GetAuditKey", "", "G"},
      {"gateway.v1.AuditService/GetInclusionProof", "", "G"},
      {"gateway.v1.AuditService/GetConsistencyProof", "first_tree_size: 1",
       "G"},
  };
  return *kMatrix;
}

std::unique_ptr<google::protobuf::Message> RequestFor(
    const std::string& full_method, const std::string& text) {
  absl::string_view m = full_method;
  m.remove_prefix(1);
  const auto* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          std::string(m.substr(0, m.find('/'))));
  REQUIRE(service != nullptr);
  const auto* method =
      service->FindMethodByName(std::string(m.substr(m.find('/') + 1)));
  REQUIRE(method != nullptr);
  std::unique_ptr<google::protobuf::Message> request(
      google::protobuf::MessageFactory::generated_factory()
          ->GetPrototype(method->input_type())
          ->New());
  INFO(full_method << " request: " << text);
  REQUIRE(google::protobuf::TextFormat::ParseFromString(text, request.get()));
  return request;
}

TEST_CASE("EveryRpcAllowsExactlyTheRolesItShouldAndNoCredentialsGetNothing") {
  // Reference one message per package so their descriptors are linked in.
  (void)inv::GetCertificateRequest::descriptor();
  (void)iss::GetOrderRequest::descriptor();
  (void)vlt::GetKeyRequest::descriptor();
  (void)v1::WhoAmIRequest::descriptor();
  for (db::Dialect dialect : testing::kAllDialects) {
    INFO("backend: " << db::DialectName(dialect));
    testing::LocalPlatform platform(
        kBinaries, {.dialect = dialect, .gateway_flags = kGatewayFlags});
    auto channel = platform.gateway_channel();
    const std::string admin = platform.admin_token();

    std::map<char, std::string> tokens = {
        {'V', MakeToken(channel, admin, "user:vera", "viewer:payments")},
        {'R', MakeToken(channel, admin, "user:rita", "requester:payments")},
        {'A', MakeToken(channel, admin, "user:alan", "approver:payments")},
        {'O', MakeToken(channel, admin, "user:olga", "operator:payments")},
        {'T', MakeToken(channel, admin, "user:tom", "admin:payments")},
        {'G', admin},
        {'W', MakeToken(channel, admin, "user:wendy", "operator:search")},
    };
    const std::string expired =
        MakeToken(channel, admin, "user:ed", "admin:payments", 1);
    const std::string revoked =
        MakeToken(channel, admin, "user:ron", "admin:payments");
    {
      v1::ListTokensRequest list;
      auto all = CallOk<v1::ListTokensResponse>(
          channel, Method("gateway.v1.GatewayService", "ListTokens"), list,
          admin);
      for (const v1::Token& t : all.tokens()) {
        if (t.principal() != "user:ron") continue;
        v1::RevokeTokenRequest revoke;
        revoke.set_name(t.name());
        CallOk<v1::Token>(channel,
                          Method("gateway.v1.GatewayService", "RevokeToken"),
                          revoke, admin);
      }
    }

    // The resources the requests name, all owned by team payments.
    auto [cert, version] =
        ImportCertificate(channel, admin, "pay.example.com", "payments");
    auto [del_cert, del_version] =
        ImportCertificate(channel, admin, "old.example.com", "payments");
    iss::Order order = CallOk<iss::Order>(
        channel, Method("issuance.v1.IssuanceService", "CreateOrder"),
        OrderFor("api.example.com", "payments"), tokens['R']);
    auto key = [&] {
      vlt::GenerateKeyRequest request;
      request.set_owner("payments");
      request.mutable_spec()->set_type(common::v1::ECDSA_P256);
      return CallOk<vlt::Key>(channel,
                              Method("vault.v1.VaultService", "GenerateKey"),
                              request, admin)
          .name();
    };
    const std::string key_name = key();
    const std::string del_key = key();
    std::string new_order_text;
    google::protobuf::TextFormat::PrintToString(
        OrderFor("new.example.com", "payments"), &new_order_text);
    absl::SleepFor(absl::Seconds(1.5));  // `expired` has expired.

    int checked = 0;
    for (const Expectation& e : Matrix()) {
      std::string text =
          absl::StrReplaceAll(e.request, {{"$NEWORDER", new_order_text},
                                          {"$DELCERT", del_cert},
                                          {"$CERT", cert},
                                          {"$VERSION", version},
                                          {"$ORDER", order.name()},
                                          {"$DELKEY", del_key},
                                          {"$KEY", key_name}});
      const std::string method = absl::StrCat("/certplane.", e.method);
      std::unique_ptr<google::protobuf::Message> request =
          RequestFor(method, text);
      for (const auto& [what, token] :
           std::vector<std::pair<std::string, std::string>>{
               {"no token", ""},
               {"a malformed token", "cpt_nope"},
               {"an unknown token",
                "cpt_0123456789abcdef_"
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
               {"an expired token", expired},
               {"a revoked token", revoked}}) {
        INFO(method << " with " << what);
        CHECK_THAT(CallRaw(channel, method, *request, token),
                   StatusIs(absl::StatusCode::kUnauthenticated,
                            "missing or invalid credentials"));
        ++checked;
      }
      // Denied callers first: an allowed call may change what later calls
      // see (a deleted key), never what a denied one gets.
      std::string order_of_roles;
      for (char who : std::string("VRAOTGW")) {
        if (e.allowed.find(who) == std::string::npos) order_of_roles += who;
      }
      for (char who : std::string("VRAOTGW")) {
        if (e.allowed.find(who) != std::string::npos) order_of_roles += who;
      }
      for (char who : order_of_roles) {
        const bool allowed = e.allowed.find(who) != std::string::npos;
        absl::Status s = CallRaw(channel, method, *request, tokens[who]);
        INFO(method << " as " << who << " (" << text << "): " << s.ToString());
        if (allowed) {
          CHECK_FALSE(absl::IsPermissionDenied(s));
          CHECK_FALSE(absl::IsUnauthenticated(s));
        } else {
          CHECK(absl::IsPermissionDenied(s));
        }
        ++checked;
      }
    }
    // Every method of every service behind the gateway is in the matrix.
    std::set<std::string> covered;
    for (const Expectation& e : Matrix()) covered.insert(e.method);
    size_t methods = 0;
    for (const char* name : {"certplane.inventory.v1.InventoryService",
                             "certplane.issuance.v1.IssuanceService",
                             "certplane.vault.v1.VaultService",
                             "certplane.gateway.v1.GatewayService",
                             "certplane.gateway.v1.AuditService"}) {
      const auto* s =
          google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
              name);
      REQUIRE(s != nullptr);
      for (int i = 0; i < s->method_count(); ++i) {
        std::string m =
            absl::StrCat(s->full_name().substr(10), "/", s->method(i)->name());
        INFO("missing from the matrix: " << m);
        if (m == "inventory.v1.InventoryService/WatchChanges") continue;
        CHECK(covered.count(m) == 1);
        ++methods;
      }
    }
    CHECK(methods == covered.size());  // WatchChanges is tested below.
    WARN("authorization matrix: " << checked << " calls checked on "
                                  << db::DialectName(dialect));

    // The streaming RPC: global view only.
    for (char who : std::string("VRAOTWG")) {
      grpc::ClientContext context;
      context.AddMetadata("authorization", "Bearer " + tokens[who]);
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
      inv::WatchChangesRequest watch;
      watch.set_no_wait(true);
      auto stub = inv::InventoryService::NewStub(channel);
      auto reader = stub->WatchChanges(&context, watch);
      inv::Change change;
      int changes = 0;
      while (reader->Read(&change)) ++changes;
      absl::Status s = FromGrpcStatus(reader->Finish());
      INFO("WatchChanges as " << who << ": " << s.ToString());
      if (who == 'G') {
        CHECK_THAT(s, IsOk());
        CHECK(changes > 0);
      } else {
        CHECK(absl::IsPermissionDenied(s));
        CHECK(changes == 0);
      }
    }
  }
}

TEST_CASE("ListsShowOnlyWhatTheCallersTeamsOwn") {
  for (db::Dialect dialect : testing::kAllDialects) {
    INFO("backend: " << db::DialectName(dialect));
    testing::LocalPlatform platform(
        kBinaries, {.dialect = dialect, .gateway_flags = kGatewayFlags});
    auto channel = platform.gateway_channel();
    const std::string admin = platform.admin_token();
    ImportCertificate(channel, admin, "a.pay.example.com", "payments");
    ImportCertificate(channel, admin, "b.pay.example.com", "payments");
    ImportCertificate(channel, admin, "s.search.example.com", "search");
    const std::string payments =
        MakeToken(channel, admin, "user:pat", "viewer:payments");
    const std::string both =
        MakeToken(channel, admin, "user:bo", "viewer:payments,viewer:search");
    auto count = [&](const std::string& token, const std::string& filter) {
      inv::ListCertificatesRequest list;
      list.set_filter(filter);
      auto response = CallOk<inv::ListCertificatesResponse>(
          channel, Method("inventory.v1.InventoryService", "ListCertificates"),
          list, token);
      for (const auto& c : response.certificates()) {
        if (token == payments) CHECK(c.owner() == "payments");
      }
      return response.certificates_size();
    };
    CHECK(count(admin, "") == 3);
    CHECK(count(payments, "") == 2);
    CHECK(count(both, "") == 3);
    // The caller's own filter still applies, and cannot widen the view.
    CHECK(count(payments, "owner = \"search\"") == 0);
    CHECK(count(payments, "owner = \"search\" OR owner = \"payments\"") == 2);
    CHECK(count(both, "owner = \"search\"") == 1);
  }
}

TEST_CASE("AStreamEndsWhenItsClientCancelsAndTheGatewayStopsWithOneOpen") {
  testing::LocalPlatform platform(kBinaries, {.dialect = db::Dialect::kSqlite,
                                              .gateway_flags = kGatewayFlags});
  auto channel = platform.gateway_channel();
  const std::string admin = platform.admin_token();
  ImportCertificate(channel, admin, "w.pay.example.com", "payments");
  auto stub = inv::InventoryService::NewStub(channel);

  // A waiting watch, cancelled by its client after the first change.
  {
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + admin);
    auto reader = stub->WatchChanges(&context, inv::WatchChangesRequest());
    inv::Change change;
    REQUIRE(reader->Read(&change));
    context.TryCancel();
    while (reader->Read(&change)) {
    }
    CHECK(reader->Finish().error_code() == grpc::StatusCode::CANCELLED);
  }
  // The gateway still serves after the cancellation.
  inv::ListCertificatesRequest list;
  auto listed = CallOk<inv::ListCertificatesResponse>(
      channel, Method("inventory.v1.InventoryService", "ListCertificates"),
      list, admin);
  CHECK(listed.certificates_size() == 1);

  // A watch left open does not keep the gateway from stopping: SIGTERM
  // ends the stream (the client sees it end) and the process exits 0.
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer " + admin);
  auto reader = stub->WatchChanges(&context, inv::WatchChangesRequest());
  inv::Change change;
  REQUIRE(reader->Read(&change));
  const absl::Time stop = absl::Now();
  platform.RestartGateway();  // SIGTERM, exit code 0 within 30 s, start.
  CHECK(absl::Now() - stop < absl::Seconds(20));
  while (reader->Read(&change)) {
  }
  CHECK(!reader->Finish().ok());
}

TEST_CASE("TheAuditLogVerifiesAndNamesAChangedRow") {
  for (db::Dialect dialect : testing::kAllDialects) {
    INFO("backend: " << db::DialectName(dialect));
    testing::LocalPlatform platform(
        kBinaries, {.dialect = dialect, .gateway_flags = kGatewayFlags});
    auto channel = platform.gateway_channel();
    const std::string admin = platform.admin_token();
    const std::string requester =
        MakeToken(channel, admin, "user:rita", "requester:payments");
    ImportCertificate(channel, admin, "pay.example.com", "payments");
    iss::Order order = CallOk<iss::Order>(
        channel, Method("issuance.v1.IssuanceService", "CreateOrder"),
        OrderFor("api.example.com", "payments"), requester);
    // A denied change is audited too.
    iss::ApproveOrderRequest approve;
    approve.set_name(order.name());
    CHECK_THAT(
        CallRaw(channel, Method("issuance.v1.IssuanceService", "ApproveOrder"),
                approve, requester),
        StatusIs(absl::StatusCode::kPermissionDenied));
    absl::SleepFor(absl::Milliseconds(600));  // A checkpoint is signed.

    auto fetch = [&] {
      std::vector<audit::AuditRecord> records;
      v1::ListAuditEntriesRequest list;
      list.set_page_size(2);  // Several pages.
      while (true) {
        auto page = CallOk<v1::ListAuditEntriesResponse>(
            channel, Method("gateway.v1.AuditService", "ListAuditEntries"),
            list, admin);
        for (const auto& e : page.entries()) records.push_back(FromProto(e));
        if (page.next_start_index() == 0) break;
        list.set_start_index(page.next_start_index());
      }
      v1::ListCheckpointsRequest cl;
      auto cps = CallOk<v1::ListCheckpointsResponse>(
          channel, Method("gateway.v1.AuditService", "ListCheckpoints"), cl,
          admin);
      std::vector<audit::Checkpoint> checkpoints;
      for (const auto& c : cps.checkpoints()) {
        checkpoints.push_back(FromProto(c));
      }
      v1::GetAuditKeyRequest kr;
      auto key = CallOk<v1::AuditKey>(
          channel, Method("gateway.v1.AuditService", "GetAuditKey"), kr, admin);
      return std::make_tuple(records, checkpoints, key.public_key_der());
    };
    auto [records, checkpoints, key] = fetch();
    // Token creation (attempt, result), import, order, refused approval.
    REQUIRE(records.size() >= 7);
    CHECK(records[0].phase == "attempt");
    CHECK(records[1].code == "OK");
    bool denial_recorded = false;
    for (const audit::AuditRecord& r : records) {
      if (absl::StrContains(r.method, "ApproveOrder") &&
          r.code == "PERMISSION_DENIED" && r.principal == "user:rita") {
        denial_recorded = true;
      }
    }
    CHECK(denial_recorded);
    audit::VerifyReport report =
        ValueOrDie(audit::VerifyLog(records, checkpoints, key));
    CHECK(report.records == records.size());
    CHECK(report.latest_signed_size == records.size());

    // Inclusion and consistency proofs check out against the checkpoint.
    v1::GetInclusionProofRequest ip;
    ip.set_index(3);
    auto inclusion = CallOk<v1::InclusionProof>(
        channel, Method("gateway.v1.AuditService", "GetInclusionProof"), ip,
        admin);
    const audit::Checkpoint& latest = checkpoints.back();
    std::vector<std::string> path(inclusion.hashes().begin(),
                                  inclusion.hashes().end());
    CHECK_THAT(audit::VerifyInclusion(records[3].leaf_hash, 3, latest.tree_size,
                                      path, latest.root),
               IsOk());
    v1::GetConsistencyProofRequest cp;
    cp.set_first_tree_size(checkpoints.front().tree_size);
    auto consistency = CallOk<v1::ConsistencyProof>(
        channel, Method("gateway.v1.AuditService", "GetConsistencyProof"), cp,
        admin);
    std::vector<std::string> cpath(consistency.hashes().begin(),
                                   consistency.hashes().end());
    if (checkpoints.front().tree_size > 0) {
      CHECK_THAT(audit::VerifyConsistency(
                     checkpoints.front().tree_size, latest.tree_size,
                     checkpoints.front().root, latest.root, cpath),
                 IsOk());
    }

    // Someone with database access rewrites who did record 3.
    db::DatabaseOptions options;
    options.service = "gateway";
    auto database = ValueOrDie(
        db::Database::Open(platform.gateway_database_url(), options));
    REQUIRE_THAT(database->Transact([](soci::session& sql) -> absl::Status {
      sql << "UPDATE audit_entries SET principal = 'user:mallory' "
             "WHERE idx = 3";
      return absl::OkStatus();
    }),
                 IsOk());
    auto [tampered, checkpoints2, key2] = fetch();
    CHECK_THAT(audit::VerifyLog(tampered, checkpoints2, key2).status(),
               StatusIs(absl::StatusCode::kDataLoss, "audit record 3 "));

    // Someone changes a stored subtree hash (records 2 and 3): the gateway
    // checks a proof against the root it recorded and refuses to serve one
    // that does not add up, instead of a path that fails on the client.
    REQUIRE_THAT(database->Transact([](soci::session& sql) -> absl::Status {
      sql << "UPDATE audit_nodes SET hash = '" + std::string(64, '0') +
                 "' WHERE level = 1 AND idx = 1";
      return absl::OkStatus();
    }),
                 IsOk());
    ip.set_index(0);
    CHECK_THAT(
        CallRaw(channel, Method("gateway.v1.AuditService", "GetInclusionProof"),
                ip, admin),
        StatusIs(absl::StatusCode::kDataLoss,
                 "do not add up to the root it recorded"));
    cp.set_first_tree_size(2);
    CHECK_THAT(CallRaw(channel,
                       Method("gateway.v1.AuditService", "GetConsistencyProof"),
                       cp, admin),
               StatusIs(absl::StatusCode::kDataLoss,
                        "do not add up to the root it recorded"));
  }
}

TEST_CASE("AChangeIsRefusedWhenItsAuditRecordCannotBeWritten") {
  for (db::Dialect dialect : testing::kAllDialects) {
    INFO("backend: " << db::DialectName(dialect));
    testing::LocalPlatform platform(
        kBinaries, {.dialect = dialect, .gateway_flags = kGatewayFlags});
    auto channel = platform.gateway_channel();
    const std::string admin = platform.admin_token();
    db::DatabaseOptions options;
    options.service = "gateway";
    auto database = ValueOrDie(
        db::Database::Open(platform.gateway_database_url(), options));
    auto exec = [&](const std::string& sql_text) {
      REQUIRE_THAT(database->Transact([&](soci::session& sql) -> absl::Status {
        sql << sql_text;
        return absl::OkStatus();
      }),
                   IsOk());
    };
    exec("ALTER TABLE audit_entries RENAME TO audit_entries_away");
    inv::ImportCertificatesRequest request;
    request.set_owner("payments");
    inv::ImportFile* file = request.add_files();
    file->set_filename("x.pem");
    file->set_data(CertificatePem("refused.example.com"));
    CHECK_THAT(
        CallRaw(channel,
                Method("inventory.v1.InventoryService", "ImportCertificates"),
                request, admin),
        StatusIs(absl::StatusCode::kUnavailable,
                 "audit log cannot be written"));
    // Reads still work, and the refused import did not happen.
    inv::ListCertificatesRequest list;
    auto listed = CallOk<inv::ListCertificatesResponse>(
        channel, Method("inventory.v1.InventoryService", "ListCertificates"),
        list, admin);
    CHECK(listed.certificates_size() == 0);
    exec("ALTER TABLE audit_entries_away RENAME TO audit_entries");
    CHECK_THAT(
        CallRaw(channel,
                Method("inventory.v1.InventoryService", "ImportCertificates"),
                request, admin),
        IsOk());
  }
}

TEST_CASE("TokensAreOwnedAndShownOnce") {
  testing::LocalPlatform platform(kBinaries, {.dialect = db::Dialect::kSqlite,
                                              .gateway_flags = kGatewayFlags});
  auto channel = platform.gateway_channel();
  const std::string admin = platform.admin_token();
  const std::string rita =
      MakeToken(channel, admin, "user:rita", "requester:payments");
  v1::WhoAmIRequest who;
  auto me = CallOk<v1::Principal>(
      channel, Method("gateway.v1.GatewayService", "WhoAmI"), who, rita);
  CHECK(me.name() == "user:rita");
  CHECK(me.authenticated_by() == "token");
  REQUIRE(me.roles_size() == 1);
  CHECK(me.roles(0).role() == "requester");

  // Rita may make herself a narrower token, not a wider one or one for
  // someone else.
  v1::CreateTokenRequest mine;
  auto* b = mine.add_roles();
  b->set_role("requester");
  b->set_team("payments");
  CHECK_THAT(
      CallRaw(channel, Method("gateway.v1.GatewayService", "CreateToken"), mine,
              rita),
      IsOk());
  b->set_role("operator");
  CHECK_THAT(
      CallRaw(channel, Method("gateway.v1.GatewayService", "CreateToken"), mine,
              rita),
      StatusIs(absl::StatusCode::kPermissionDenied, "do not hold"));
  v1::CreateTokenRequest other;
  other.set_principal("user:olga");
  CHECK_THAT(
      CallRaw(channel, Method("gateway.v1.GatewayService", "CreateToken"),
              other, rita),
      StatusIs(absl::StatusCode::kPermissionDenied));
  v1::CreateTokenRequest bad;
  auto* bb = bad.add_roles();
  bb->set_role("superuser");
  bb->set_team("payments");
  CHECK_THAT(
      CallRaw(channel, Method("gateway.v1.GatewayService", "CreateToken"), bad,
              admin),
      StatusIs(absl::StatusCode::kInvalidArgument, "roles"));

  // Rita sees only her own tokens; the secret is never listed.
  v1::ListTokensRequest list;
  auto hers = CallOk<v1::ListTokensResponse>(
      channel, Method("gateway.v1.GatewayService", "ListTokens"), list, rita);
  CHECK(hers.tokens_size() == 2);
  for (const auto& t : hers.tokens()) {
    CHECK(t.principal() == "user:rita");
    CHECK(t.DebugString().find("cpt_") == std::string::npos);
  }
  auto all = CallOk<v1::ListTokensResponse>(
      channel, Method("gateway.v1.GatewayService", "ListTokens"), list, admin);
  CHECK(all.tokens_size() == 3);

  // Revoking takes effect at once, and survives a gateway restart.
  v1::RevokeTokenRequest revoke;
  revoke.set_name(me.token());
  CHECK_THAT(
      CallRaw(channel, Method("gateway.v1.GatewayService", "RevokeToken"),
              revoke, rita),
      IsOk());
  CHECK_THAT(CallRaw(channel, Method("gateway.v1.GatewayService", "WhoAmI"),
                     who, rita),
             StatusIs(absl::StatusCode::kUnauthenticated));
  platform.RestartGateway();
  channel = platform.gateway_channel();
  CHECK_THAT(CallRaw(channel, Method("gateway.v1.GatewayService", "WhoAmI"),
                     who, rita),
             StatusIs(absl::StatusCode::kUnauthenticated));
  CHECK_THAT(CallRaw(channel, Method("gateway.v1.GatewayService", "WhoAmI"),
                     who, admin),
             IsOk());
}

}  // namespace
}  // namespace certplane::gateway

namespace certplane::gateway {
namespace {

// curl against the HTTP/JSON front; returns the body and, on the last
// line, the HTTP status.
testing::CommandResult Curl(int port, const std::string& path,
                            const std::string& token,
                            const std::string& body = "",
                            std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {"/usr/bin/curl", "-sS", "-w",
                                   "\n%{http_code}"};
  if (!token.empty()) {
    argv.push_back("-H");
    argv.push_back("Authorization: Bearer " + token);
  }
  if (!body.empty()) {
    argv.insert(argv.end(), {"-H", "Content-Type: application/json",
                             "--data-binary", body});
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(absl::StrCat("http://127.0.0.1:", port, path));
  INFO("curl " << path << " " << body);
  return testing::RunCommand(argv, {}, absl::Seconds(30));
}

std::string LastLine(const std::string& out) {
  std::string trimmed(absl::StripTrailingAsciiWhitespace(out));
  return trimmed.substr(trimmed.rfind('\n') + 1);
}

TEST_CASE("TheHttpJsonFrontCarriesEveryCallWithTheSameRules") {
  testing::LocalPlatform platform(kBinaries, {.dialect = db::Dialect::kSqlite,
                                              .gateway_flags = kGatewayFlags});
  const int port = platform.http_port();
  const std::string admin = platform.admin_token();
  auto channel = platform.gateway_channel();
  const std::string viewer =
      MakeToken(channel, admin, "user:vera", "viewer:payments");
  ImportCertificate(channel, admin, "pay.example.com", "payments");

  auto who =
      Curl(port, "/certplane.gateway.v1.GatewayService/WhoAmI", viewer, "{}");
  CHECK(who.exit_code == 0);
  CHECK(LastLine(who.out) == "200");
  CHECK(absl::StrContains(who.out, "\"name\":\"user:vera\""));

  auto list =
      Curl(port, "/certplane.inventory.v1.InventoryService/ListCertificates",
           viewer, R"({"filter": "owner = \"payments\""})");
  CHECK(LastLine(list.out) == "200");
  CHECK(absl::StrContains(list.out, "pay.example.com"));

  // Errors: JSON with the gRPC code, and the matching HTTP status.
  auto anonymous =
      Curl(port, "/certplane.inventory.v1.InventoryService/ListCertificates",
           "", "{}");
  CHECK(LastLine(anonymous.out) == "401");
  CHECK(absl::StrContains(anonymous.out, "\"code\":\"unauthenticated\""));
  auto denied =
      Curl(port, "/certplane.vault.v1.VaultService/RotateKek", viewer, "{}");
  CHECK(LastLine(denied.out) == "403");
  CHECK(absl::StrContains(denied.out, "\"code\":\"permission_denied\""));
  auto bad_json =
      Curl(port, "/certplane.inventory.v1.InventoryService/ListCertificates",
           viewer, R"({"filtre": 1})");
  CHECK(LastLine(bad_json.out) == "400");
  CHECK(absl::StrContains(bad_json.out, "invalid_argument"));
  auto bad_filter =
      Curl(port, "/certplane.inventory.v1.InventoryService/ListCertificates",
           viewer, R"({"filter": "owner = "})");
  CHECK(LastLine(bad_filter.out) == "400");
  auto unknown = Curl(port, "/certplane.nope.v1.Nope/Call", viewer, "{}");
  CHECK(LastLine(unknown.out) == "501");
  auto get = Curl(port, "/certplane.gateway.v1.GatewayService/WhoAmI", viewer,
                  "", {"-X", "GET"});
  CHECK(LastLine(get.out) == "405");

  // A server-streaming RPC: one JSON object per line.
  auto watch =
      Curl(port, "/certplane.inventory.v1.InventoryService/WatchChanges", admin,
           R"({"noWait": true})");
  CHECK(LastLine(watch.out) == "200");
  CHECK(absl::StrContains(watch.out, "\"revision\""));
  auto watch_denied =
      Curl(port, "/certplane.inventory.v1.InventoryService/WatchChanges",
           viewer, R"({"noWait": true})");
  CHECK(LastLine(watch_denied.out) == "403");

  // A body over the 16 MiB limit is refused whole, and garbage on the gRPC
  // side is named as such; the gateway keeps serving.
  {
    std::filesystem::path big = testing::FreshTestDir("http_big") / "body";
    std::ofstream(big) << std::string((16 << 20) + 10, ' ');
    auto too_big =
        Curl(port, "/certplane.inventory.v1.InventoryService/ListCertificates",
             viewer, "", {"--data-binary", "@" + big.string()});
    CHECK(LastLine(too_big.out) == "413");
    grpc::GenericStub stub(channel);
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + viewer);
    std::string junk = "\xff\xff\xff\xff junk";
    grpc::Slice slice(junk);
    grpc::ByteBuffer in(&slice, 1);
    grpc::ByteBuffer out;
    absl::Notification done;
    grpc::Status status;
    stub.UnaryCall(&context,
                   "/certplane.inventory.v1.InventoryService/ListCertificates",
                   grpc::StubOptions(), &in, &out, [&](grpc::Status s) {
                     status = std::move(s);
                     done.Notify();
                   });
    done.WaitForNotification();
    CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(absl::StrContains(status.error_message(), "not a valid"));
  }
  auto health = Curl(port, "/healthz", "");
  CHECK(LastLine(health.out) == "200");
  auto no_ui = Curl(port, "/index.html", "");
  CHECK(LastLine(no_ui.out) == "404");
}

TEST_CASE("TheHttpFrontServesTheWebUiAndNothingOutsideIt") {
  std::filesystem::path web = testing::FreshTestDir("web_root");
  std::filesystem::create_directories(web / "assets");
  {
    std::ofstream(web / "index.html")
        << "<!doctype html><title>certplane</title>";
    std::ofstream(web / "assets" / "app.js") << "console.log(1)";
  }
  std::vector<std::string> flags = kGatewayFlags;
  flags.push_back(absl::StrCat("--web_root=", web.string()));
  testing::LocalPlatform platform(
      kBinaries, {.dialect = db::Dialect::kSqlite, .gateway_flags = flags});
  const int port = platform.http_port();
  auto index = Curl(port, "/", "");
  CHECK(LastLine(index.out) == "200");
  CHECK(absl::StrContains(index.out, "<title>certplane</title>"));
  auto route = Curl(port, "/certificates/abc", "");  // A UI route.
  CHECK(absl::StrContains(route.out, "<title>certplane</title>"));
  auto js = Curl(port, "/assets/app.js", "", "", {"-D", "-"});
  CHECK(absl::StrContains(js.out, "text/javascript"));
  auto missing = Curl(port, "/assets/none.js", "");
  CHECK(LastLine(missing.out) == "404");
  auto escape = Curl(port, "/../../etc/passwd", "", "", {"--path-as-is"});
  CHECK(LastLine(escape.out) == "400");
  CHECK_FALSE(absl::StrContains(escape.out, "root:"));
}

}  // namespace
}  // namespace certplane::gateway

namespace certplane::gateway {
namespace {

std::string B64(absl::string_view bytes) {
  return absl::WebSafeBase64Escape(bytes);
}

struct Idp {
  crypto::PrivateKey rsa =
      ValueOrDie(crypto::PrivateKey::Generate(crypto::KeyType::kRsa2048));
  crypto::PrivateKey ec =
      ValueOrDie(crypto::PrivateKey::Generate(crypto::KeyType::kEcdsaP256));

  std::string Jwks() const {
    crypto::JwkParams r = ValueOrDie(crypto::JwkOfPublicKey(rsa.public_key()));
    crypto::JwkParams e = ValueOrDie(crypto::JwkOfPublicKey(ec.public_key()));
    return absl::StrCat(
        R"({"keys":[{"kty":"RSA","kid":"r1","use":"sig","alg":"RS256","n":")",
        B64(r.n), R"(","e":")", B64(r.e),
        R"("},{"kty":"EC","kid":"e1","crv":"P-256","x":")", B64(e.x),
        R"(","y":")", B64(e.y), R"("}]})");
  }

  // A JWT with `claims` (a JSON object's members) signed with alg.
  std::string Token(const std::string& alg, const std::string& kid,
                    const std::string& claims) const {
    std::string header = absl::StrCat(R"({"alg":")", alg, R"(","kid":")", kid,
                                      R"(","typ":"JWT"})");
    std::string input = B64(header) + "." + B64("{" + claims + "}");
    std::string sig;
    if (alg == "RS256") {
      sig = ValueOrDie(rsa.Sign(input, "sha256"));
    } else if (alg == "ES256") {
      sig = ValueOrDie(
          crypto::EcdsaDerToRaw(ValueOrDie(ec.Sign(input, "sha256")), 32));
    }
    return input + "." + B64(sig);
  }
};

std::string Claims(const std::string& extra = "", int exp_in = 600) {
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  return absl::StrCat(
      R"("iss":"https://idp.example.com","aud":["certplane","x"],)",
      R"("email":"alice@example.com","groups":["pay-approvers","other"],)",
      R"("iat":)", now, R"(,"exp":)", now + exp_in, extra);
}

TEST_CASE("OidcTokensAuthenticateWithTheRolesOfTheirGroups") {
  Idp idp;
  std::filesystem::path dir = testing::FreshTestDir("oidc");
  { std::ofstream(dir / "jwks.json") << idp.Jwks(); }
  std::vector<std::string> flags = kGatewayFlags;
  flags.insert(
      flags.end(),
      {"--oidc_issuer=https://idp.example.com", "--oidc_audience=certplane",
       absl::StrCat("--oidc_jwks_file=", (dir / "jwks.json").string()),
       "--oidc_group_roles=pay-approvers=approver:payments,viewer:payments"});
  testing::LocalPlatform platform(
      kBinaries, {.dialect = db::Dialect::kSqlite, .gateway_flags = flags});
  auto channel = platform.gateway_channel();
  v1::WhoAmIRequest who;
  for (const std::string alg : {"RS256", "ES256"}) {
    INFO(alg);
    std::string jwt = idp.Token(alg, alg == "RS256" ? "r1" : "e1", Claims());
    auto me = CallOk<v1::Principal>(
        channel, Method("gateway.v1.GatewayService", "WhoAmI"), who, jwt);
    CHECK(me.name() == "user:alice@example.com");
    CHECK(me.authenticated_by() == "oidc");
    CHECK(me.roles_size() == 2);
  }
  // The group's roles apply: viewing is allowed, requesting is not.
  const std::string jwt = idp.Token("ES256", "e1", Claims());
  inv::ListCertificatesRequest list;
  CHECK_THAT(
      CallRaw(channel,
              Method("inventory.v1.InventoryService", "ListCertificates"), list,
              jwt),
      IsOk());
  CHECK_THAT(
      CallRaw(channel, Method("issuance.v1.IssuanceService", "CreateOrder"),
              OrderFor("x.example.com", "payments"), jwt),
      StatusIs(absl::StatusCode::kPermissionDenied));

  // Every bad token gets the same answer.
  std::string good = idp.Token("RS256", "r1", Claims());
  std::string tampered = good;
  tampered[good.find('.') + 5] ^= 1;
  std::string none_alg = B64(R"({"alg":"none","typ":"JWT"})") + "." +
                         B64("{" + Claims() + "}") + ".";
  for (const auto& [what, token] :
       std::vector<std::pair<std::string, std::string>>{
           {"expired", idp.Token("RS256", "r1", Claims("", -3600))},
           {"wrong audience",
            idp.Token("RS256", "r1",
                      absl::StrReplaceAll(Claims(), {{"\"certplane\",", ""}}))},
           {"wrong issuer",
            idp.Token("RS256", "r1",
                      absl::StrReplaceAll(
                          Claims(), {{"idp.example.com", "evil.example"}}))},
           {"unknown kid", idp.Token("RS256", "r9", Claims())},
           {"alg none", none_alg},
           {"HS256", idp.Token("HS256", "r1", Claims())},
           {"RS256 signature with the EC kid",
            idp.Token("RS256", "e1", Claims())},
           {"tampered", tampered},
           {"not yet valid",
            idp.Token(
                "RS256", "r1",
                Claims(absl::StrCat(",\"nbf\":",
                                    absl::ToUnixSeconds(absl::Now()) + 3600)))},
           {"garbage", "a.b.c"}}) {
    INFO(what);
    CHECK_THAT(CallRaw(channel, Method("gateway.v1.GatewayService", "WhoAmI"),
                       who, token),
               StatusIs(absl::StatusCode::kUnauthenticated,
                        "missing or invalid credentials"));
  }
}

TEST_CASE("TheBinaryRefusesBadSizingFlagsBeforeCreatingAnything") {
  struct Case {
    std::string flag;
    std::string error;
  };
  for (const Case& c : std::vector<Case>{
           {"--front_threads=-1", "--front_threads must be 0-256, got -1"},
           {"--front_threads=257", "--front_threads must be 0-256, got 257"},
           {"--worker_threads=0", "--worker_threads must be 1-256, got 0"},
           {"--checkpoint_interval=0s",
            "--checkpoint_interval must be positive, got 0"},
       }) {
    CAPTURE(c.flag);
    const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                      absl::StrCat("gateway-flags-", getpid());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    const server::testing::CommandResult result =
        ValueOrDie(server::testing::RunShellCommand(
            absl::StrCat(CERTPLANE_GATEWAY_PATH, " --data_dir=", dir.string(),
                         " --insecure_plaintext_for_development"
                         " --listen_address=127.0.0.1:0"
                         " --metrics_address= ",
                         c.flag),
            absl::Seconds(20)));
    CHECK(result.exit_code == 1);
    CHECK_THAT(result.output, Catch::Contains(c.error));
    // Refused before the database or the audit key was created.
    CHECK(std::filesystem::is_empty(dir));
    std::filesystem::remove_all(dir);
  }
}

}  // namespace
}  // namespace certplane::gateway
