// The issuance service end to end, in-process over gRPC on loopback, with the
// real vault and inventory services (each over its own fresh database) on
// SQLite and PostgreSQL: approvals, rejection, the internal CA with every key
// type, external uploads, validity limits by date, revocation and CRLs, and
// renewal with jitter and backoff. The clock is the test's, so dates and
// renewal times are exact.
#include "services/issuance/issuance_service.h"

#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/grpcpp.h"
#include "libs/crypto/certificate.h"
#include "libs/crypto/csr.h"
#include "libs/crypto/formats.h"
#include "libs/crypto/issue.h"
#include "libs/crypto/key.h"
#include "libs/crypto/testing/test_pki.h"
#include "libs/db/database.h"
#include "libs/db/migrate.h"
#include "libs/server/server_runner.h"
#include "libs/server/testing/test_client.h"
#include "libs/status/grpc_status.h"
#include "libs/testing/db_test_util.h"
#include "libs/testing/scratch_dir.h"
#include "libs/testing/status_matchers.h"
#include "services/inventory/inventory_service.h"
#include "services/inventory/inventory_store.h"
#include "services/inventory/migrations.h"
#include "services/issuance/crl_http_server.h"
#include "services/issuance/internal_ca.h"
#include "services/issuance/issuance_config.h"
#include "services/issuance/issuance_store.h"
#include "services/issuance/migrations.h"
#include "services/issuance/order_workflow.h"
#include "services/issuance/peers.h"
#include "services/issuance/renewal_controller.h"
#include "services/issuance/renewal_schedule.h"
#include "services/testing/loopback.h"

namespace certplane::issuance {
namespace {

using ::Catch::Matchers::Contains;
using ::certplane::testing::ForEachBackend;
using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;
using Code = ::absl::StatusCode;
using Stub = v1::IssuanceService::Stub;
namespace inventory_v1 = ::certplane::inventory::v1;
namespace common = ::certplane::common::v1;

constexpr char kVaultPolicy[] =
    "admin      *\n"
    "inventory  import, get, export\n"
    "issuance   generate, get, create_csr, sign, delete\n";

constexpr char kConfig[] = R"pb(
  issuers {
    id: "internal"
    type: INTERNAL_CA
    display_name: "Test internal CA"
    crl_base_url: "http://crl.test.example"
  }
  issuers {
    id: "external"
    type: EXTERNAL_UPLOAD
    display_name: "Commercial CA"
    public_trust: true
    profiles {
      name: "tls-server"
      extended_key_usages: "serverAuth"
      default_validity_days: 90
      max_validity_days: 500
    }
  }
  approval_rules {
    issuer: "internal"
    team: "payments"
    auto_approve: true
    allowed_domains: "*.pay.example.com"
    allowed_domains: "pay.example.com"
  }
  approval_rules { team: "web" required_approvals: 2 }
  approval_rules { issuer: "external" auto_approve: true }
)pb";

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

// A clock the test moves.
class TestClock {
 public:
  TestClock() : now_(absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()))) {}
  absl::Time Now() {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Set(absl::Time t) {
    absl::MutexLock lock(&mu_);
    now_ = t;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }
  Clock AsClock() {
    return [this] { return Now(); };
  }

 private:
  absl::Mutex mu_;
  absl::Time now_;
};

// A CA that is down while `failing` is set, else the real one underneath.
class FlakyIssuer final : public Issuer {
 public:
  FlakyIssuer(std::unique_ptr<Issuer> real, std::atomic<bool>& failing)
      : real_(std::move(real)), failing_(failing) {}
  const v1::Issuer& description() const override {
    return real_->description();
  }
  absl::StatusOr<std::optional<IssuedCertificate>> Submit(
      const CaSubmission& submission) override {
    if (failing_.load()) {
      return absl::UnavailableError("CA: service temporarily unavailable");
    }
    return real_->Submit(submission);
  }
  absl::StatusOr<CrlSnapshot> Revoke(const std::string& serial_hex,
                                     const std::string& reason,
                                     const std::string& version,
                                     absl::Time now) override {
    return real_->Revoke(serial_hex, reason, version, now);
  }
  absl::StatusOr<CrlSnapshot> CurrentCrl(absl::Time now) override {
    return real_->CurrentCrl(now);
  }
  bool Issued(absl::string_view der) const override {
    return real_->Issued(der);
  }
  std::string IssuingCertificateDer() const override {
    return real_->IssuingCertificateDer();
  }

 private:
  std::unique_ptr<Issuer> real_;
  std::atomic<bool>& failing_;
};

// The real vault and inventory on loopback, each over its own fresh
// database; the inventory stores keys in that vault.
class VaultAndInventory {
 public:
  explicit VaultAndInventory(db::Dialect dialect)
      : vault(dialect, kVaultPolicy), db_(testing::OpenFreshDatabase(dialect)) {
    REQUIRE_THAT(db::Migrate(*db_, inventory::InventoryMigrations()), IsOk());
    store_ = inventory::NewSqlInventoryStore(db_.get());
    inventory::InventoryServiceOptions options;
    options.allow_development_identity = true;
    options.vault_development_identity = "inventory";
    service_ = std::make_unique<inventory::InventoryService>(
        *store_, vault::v1::VaultService::NewStub(vault.channel()),
        [] { return absl::Now(); }, options);
    runner_ = testing::ServeForTest(
        service_.get(), inventory_v1::InventoryService::service_full_name());
  }
  ~VaultAndInventory() {
    service_->Shutdown();
    runner_.reset();
  }

  int inventory_port() { return runner_->port(); }
  // Peers for an in-process issuance service.
  std::unique_ptr<Peers> NewPeers(int attempts = 3) {
    PeerOptions options;
    options.development_identity = "issuance";
    options.attempts = attempts;
    return std::make_unique<Peers>(
        vault::v1::VaultService::NewStub(vault.channel()),
        inventory_v1::InventoryService::NewStub(testing::ChannelTo(*runner_)),
        options);
  }

  testing::TestVault vault;

 private:
  std::unique_ptr<db::Database> db_;
  std::unique_ptr<inventory::InventoryStore> store_;
  std::unique_ptr<inventory::InventoryService> service_;
  std::unique_ptr<server::ServerRunner> runner_;
};

struct PlatformOptions {
  std::string config = kConfig;
  int max_step_attempts = 3;
};

// Vault, inventory and issuance on loopback, each over its own database.
class Platform {
 public:
  explicit Platform(db::Dialect dialect, PlatformOptions options = {})
      : backends_(dialect), issuance_db_(testing::OpenFreshDatabase(dialect)) {
    config_ = ValueOrDie(ParseConfig(options.config, "test config"));
    REQUIRE_THAT(db::Migrate(*issuance_db_, IssuanceMigrations()), IsOk());
    orders_ = NewSqlIssuanceStore(*issuance_db_);
    cas_ = NewSqlCaStore(*issuance_db_);
    renewals_ = NewSqlRenewalStore(*issuance_db_);
    peers_ = backends_.NewPeers(/*attempts=*/1);
    IssuerMap real =
        ValueOrDie(BuildIssuers(config_, *cas_, *peers_, clock_.Now()));
    internal_ca_ = dynamic_cast<InternalCa*>(real.at("internal").get());
    REQUIRE(internal_ca_ != nullptr);
    for (auto& [id, issuer] : real) {
      issuers_[id] =
          std::make_unique<FlakyIssuer>(std::move(issuer), ca_failing_);
    }
    WorkflowOptions workflow_options;
    workflow_options.worker_id = "test";
    workflow_options.max_step_attempts = options.max_step_attempts;
    workflow_options.step_retry_base = absl::Minutes(1);
    workflow_ = std::make_unique<OrderWorkflow>(
        *orders_, *renewals_, issuers_, *peers_, config_, clock_.AsClock(),
        workflow_options);
    RenewalControllerOptions renewal_options;
    renewal_options.worker_id = "test";
    renewal_options.recheck = absl::Minutes(10);
    controller_ = std::make_unique<RenewalController>(
        *renewals_, *orders_, *peers_, config_, *workflow_, clock_.AsClock(),
        renewal_options);
    IssuanceServiceOptions service_options;
    service_options.caller.allow_development_identity = true;
    service_ = std::make_unique<IssuanceService>(
        *orders_, *renewals_, issuers_, *peers_, *workflow_, config_,
        clock_.AsClock(), service_options);
    runner_ = testing::ServeForTest(service_.get(),
                                    v1::IssuanceService::service_full_name());
    stub_ = v1::IssuanceService::NewStub(testing::ChannelTo(*runner_));
  }

  ~Platform() {
    controller_->Stop();
    workflow_->Stop();
    runner_.reset();
  }

  template <typename Request, typename Response>
  absl::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*,
                                                 const Request&, Response*),
                    const Request& request, Response* response,
                    const std::string& identity = "alice",
                    const std::string& roles = "requester:*") {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    if (!identity.empty()) context.AddMetadata(server::kDevIdentityHeader, identity);
    if (!roles.empty()) context.AddMetadata(server::kDevRolesHeader, roles);
    return FromGrpcStatus((stub_.get()->*method)(&context, request, response));
  }

  absl::StatusOr<v1::Order> Create(const v1::CreateOrderRequest& request,
                                   const std::string& identity = "alice") {
    v1::Order order;
    absl::Status s = Call(&Stub::CreateOrder, request, &order, identity);
    if (!s.ok()) return s;
    return order;
  }

  v1::Order Get(const std::string& name) {
    v1::GetOrderRequest request;
    request.set_name(name);
    v1::Order order;
    REQUIRE_THAT(Call(&Stub::GetOrder, request, &order), IsOk());
    return order;
  }

  absl::StatusOr<v1::Order> Approve(const std::string& name,
                                    const std::string& approver,
                                    const std::string& roles) {
    v1::ApproveOrderRequest request;
    request.set_name(name);
    request.set_comment("looks right");
    v1::Order order;
    absl::Status s =
        Call(&Stub::ApproveOrder, request, &order, approver, roles);
    if (!s.ok()) return s;
    return order;
  }

  // Runs the workers until no order is due.
  void Drain() {
    for (int i = 0; i < 1000; ++i) {
      if (ValueOrDie(workflow_->RunOnce("test/0")) == 0) return;
    }
    FAIL("the workers never ran out of due orders");
  }

  inventory_v1::ManagedCertificate Certificate(const std::string& name) {
    return ValueOrDie(peers_->GetCertificate(name));
  }
  inventory_v1::CertificateVersion Version(const std::string& name) {
    return ValueOrDie(peers_->GetCertificateVersion(name));
  }

  InternalCa& internal_ca() { return *internal_ca_; }

  // A second replica of the issuance service: its own connection to the
  // same database, its own peers, workers and renewal controller.
  struct Replica {
    std::unique_ptr<db::Database> db;
    std::unique_ptr<IssuanceStore> orders;
    std::unique_ptr<CaStore> cas;
    std::unique_ptr<RenewalStore> renewals;
    std::unique_ptr<Peers> peers;
    IssuerMap issuers;
    std::unique_ptr<OrderWorkflow> workflow;
    std::unique_ptr<RenewalController> controller;
  };
  std::unique_ptr<Replica> AddReplica(const std::string& name) {
    auto r = std::make_unique<Replica>();
    r->db = testing::OpenSecondConnection(*issuance_db_);
    r->orders = NewSqlIssuanceStore(*r->db);
    r->cas = NewSqlCaStore(*r->db);
    r->renewals = NewSqlRenewalStore(*r->db);
    r->peers = backends_.NewPeers();
    r->issuers =
        ValueOrDie(BuildIssuers(config_, *r->cas, *r->peers, clock_.Now()));
    WorkflowOptions workflow_options;
    workflow_options.worker_id = name;
    r->workflow = std::make_unique<OrderWorkflow>(
        *r->orders, *r->renewals, r->issuers, *r->peers, config_,
        clock_.AsClock(), workflow_options);
    RenewalControllerOptions renewal_options;
    renewal_options.worker_id = name;
    r->controller = std::make_unique<RenewalController>(
        *r->renewals, *r->orders, *r->peers, config_, *r->workflow,
        clock_.AsClock(), renewal_options);
    return r;
  }

  TestClock& clock() { return clock_; }
  testing::TestVault& vault() { return backends_.vault; }
  OrderWorkflow& workflow() { return *workflow_; }
  RenewalController& controller() { return *controller_; }
  RenewalStore& renewals() { return *renewals_; }
  IssuanceStore& orders() { return *orders_; }
  IssuerMap& issuers() { return issuers_; }
  Peers& peers() { return *peers_; }
  std::atomic<bool>& ca_failing() { return ca_failing_; }

 private:
  TestClock clock_;
  VaultAndInventory backends_;
  std::unique_ptr<db::Database> issuance_db_;
  v1::IssuanceConfig config_;
  std::unique_ptr<IssuanceStore> orders_;
  std::unique_ptr<CaStore> cas_;
  std::unique_ptr<RenewalStore> renewals_;
  std::unique_ptr<Peers> peers_;
  std::atomic<bool> ca_failing_{false};
  InternalCa* internal_ca_ = nullptr;  // Inside issuers_.
  IssuerMap issuers_;
  std::unique_ptr<OrderWorkflow> workflow_;
  std::unique_ptr<RenewalController> controller_;
  std::unique_ptr<IssuanceService> service_;
  std::unique_ptr<server::ServerRunner> runner_;
  std::unique_ptr<Stub> stub_;
};

v1::CreateOrderRequest OrderFor(const std::string& dns, const std::string& team,
                                const std::string& issuer = "issuers/internal",
                                common::KeyType key = common::ECDSA_P256) {
  v1::CreateOrderRequest request;
  auto* cn = request.mutable_subject()->add_attributes();
  cn->set_type("CN");
  cn->set_value(dns);
  auto* san = request.add_sans();
  san->set_type(common::SubjectAltName::DNS);
  san->set_value(dns);
  request.mutable_key_spec()->set_type(key);
  request.set_issuer(issuer);
  request.set_owner(team);
  request.set_environment("prod");
  return request;
}

// Keys in the vault that are not destroyed.
size_t LiveKeys(testing::TestVault& vault) {
  size_t n = 0;
  for (const vault::v1::Key& key : vault.Keys()) {
    if (!key.has_destroy_time()) ++n;
  }
  return n;
}

crypto::Certificate Leaf(const inventory_v1::CertificateVersion& version) {
  return ValueOrDie(crypto::Certificate::FromDer(version.der()));
}

// ---------------------------------------------------------------------------

TEST_CASE("AnOrderNeedsItsApprovalsButNeverTheRequestersOwn") {
  ForEachBackend([](db::Database& db) {
    Platform platform(db.dialect());
    v1::Order order =
        ValueOrDie(platform.Create(OrderFor("www.web.example.com", "web")));
    CHECK(order.state() == v1::PENDING_APPROVAL);
    CHECK(order.required_approvals() == 2);
    CHECK(order.requester() == "alice");
    REQUIRE(order.events_size() == 1);
    CHECK_THAT(order.events(0).reason(), Contains("needs 2 approval"));

    // The requester cannot approve, even holding the approver role.
    CHECK_THAT(platform.Approve(order.name(), "alice", "approver:web"),
               StatusIs(Code::kPermissionDenied, "requested"));
    // Without the role for this team, nobody can.
    CHECK_THAT(platform.Approve(order.name(), "bob", "requester:web"),
               StatusIs(Code::kPermissionDenied));
    CHECK_THAT(platform.Approve(order.name(), "bob", "approver:payments"),
               StatusIs(Code::kPermissionDenied));
    // Nothing moves without approval.
    platform.Drain();
    CHECK(platform.Get(order.name()).state() == v1::PENDING_APPROVAL);

    v1::Order once =
        ValueOrDie(platform.Approve(order.name(), "carol", "approver:web"));
    CHECK(once.state() == v1::PENDING_APPROVAL);
    CHECK(once.approvals_size() == 1);
    CHECK_THAT(platform.Approve(order.name(), "carol", "approver:web"),
               StatusIs(Code::kAlreadyExists));
    v1::Order twice =
        ValueOrDie(platform.Approve(order.name(), "dave", "admin:*"));
    CHECK(twice.state() == v1::APPROVED);

    platform.Drain();
    v1::Order issued = platform.Get(order.name());
    REQUIRE(issued.state() == v1::ISSUED);
    std::vector<v1::OrderState> path;
    for (const v1::OrderEvent& e : issued.events())
      path.push_back(e.to_state());
    CHECK(path == std::vector<v1::OrderState>{
                      v1::PENDING_APPROVAL, v1::PENDING_APPROVAL, v1::APPROVED,
                      v1::KEY_READY, v1::SUBMITTED, v1::ISSUED});
    CHECK(issued.events(1).actor() == "carol");
    CHECK(issued.events(2).actor() == "dave");
    CHECK(issued.events(3).actor() == "issuance");
    // An approval after the fact is refused.
    CHECK_THAT(platform.Approve(order.name(), "erin", "approver:web"),
               StatusIs(Code::kFailedPrecondition));
  });
}

TEST_CASE("ARejectedOrderEndsWithTheReasonAndNoKey") {
  ForEachBackend([](db::Database& db) {
    Platform platform(db.dialect());
    v1::Order order =
        ValueOrDie(platform.Create(OrderFor("api.web.example.com", "web")));
    v1::RejectOrderRequest reject;
    reject.set_name(order.name());
    v1::Order out;
    CHECK_THAT(platform.Call(&Stub::RejectOrder, reject, &out, "carol",
                             "approver:web"),
               StatusIs(Code::kInvalidArgument, "comment"));
    reject.set_comment("use the shared wildcard");
    CHECK_THAT(platform.Call(&Stub::RejectOrder, reject, &out, "alice",
                             "approver:web"),
               StatusIs(Code::kPermissionDenied));
    REQUIRE_THAT(platform.Call(&Stub::RejectOrder, reject, &out, "carol",
                               "approver:web"),
                 IsOk());
    CHECK(out.state() == v1::REJECTED);
    CHECK_THAT(out.events(out.events_size() - 1).reason(),
               Contains("use the shared wildcard"));
    CHECK_THAT(platform.Approve(order.name(), "dave", "approver:web"),
               StatusIs(Code::kFailedPrecondition));
    platform.Drain();
    CHECK(platform.Get(order.name()).state() == v1::REJECTED);
    // Two CA keys only: the rejected order never got one.
    CHECK(LiveKeys(platform.vault()) == 2);

    // The requester may cancel its own order; a stranger may not.
    v1::Order other =
        ValueOrDie(platform.Create(OrderFor("b.web.example.com", "web")));
    v1::CancelOrderRequest cancel;
    cancel.set_name(other.name());
    CHECK_THAT(platform.Call(&Stub::CancelOrder, cancel, &out, "mallory",
                             "requester:web"),
               StatusIs(Code::kPermissionDenied));
    REQUIRE_THAT(platform.Call(&Stub::CancelOrder, cancel, &out), IsOk());
    CHECK(out.state() == v1::CANCELLED);
  });
}

TEST_CASE("TheInternalCaIssuesEveryKeyTypeWithAVerifiableChain") {
  ForEachBackend([](db::Database& db) {
    Platform platform(db.dialect());
    v1::GetIssuerRequest get;
    get.set_name("issuers/internal");
    v1::Issuer issuer;
    REQUIRE_THAT(platform.Call(&Stub::GetIssuer, get, &issuer), IsOk());
    CHECK(issuer.type() == v1::INTERNAL_CA);
    CHECK(issuer.profiles_size() == 3);
    crypto::Certificate intermediate =
        ValueOrDie(crypto::Certificate::FromPem(issuer.certificate_pem()));
    crypto::Certificate root =
        ValueOrDie(crypto::Certificate::FromPem(issuer.root_certificate_pem()));
    CHECK(intermediate.IsIssuedBy(root));
    CHECK(root.IsIssuedBy(root));
    CHECK(issuer.crl_url() == "http://crl.test.example/crl/internal.crl");

    const common::KeyType types[] = {common::RSA_2048,   common::RSA_3072,
                                     common::RSA_4096,   common::ECDSA_P256,
                                     common::ECDSA_P384, common::ED25519};
    std::vector<std::string> names;
    for (common::KeyType type : types) {
      v1::CreateOrderRequest request = OrderFor(
          absl::StrCat("k", static_cast<int>(type), ".pay.example.com"),
          "payments", "issuers/internal", type);
      request.set_validity_days(30);
      request.set_auto_renew(true);
      v1::Order order = ValueOrDie(platform.Create(request));
      CHECK(order.state() == v1::APPROVED);  // The team's own domain.
      names.push_back(order.name());
    }
    platform.Drain();
    std::set<std::string> keys;
    for (size_t i = 0; i < names.size(); ++i) {
      INFO("key type " << types[i]);
      v1::Order order = platform.Get(names[i]);
      REQUIRE(order.state() == v1::ISSUED);
      inventory_v1::CertificateVersion version =
          platform.Version(order.certificate_version());
      crypto::Certificate leaf = Leaf(version);
      const crypto::CertificateInfo& info = leaf.info();
      CHECK(leaf.IsIssuedBy(intermediate));
      CHECK(info.serial_hex == order.serial_hex());
      CHECK(info.serial_hex.size() >= 30);  // 128 random bits.
      CHECK(info.not_after - info.not_before ==
            absl::Hours(24 * 30) - absl::Seconds(1));
      CHECK(info.extended_key_usage == std::vector<std::string>{"serverAuth"});
      CHECK(
          info.crl_distribution_points ==
          std::vector<std::string>{"http://crl.test.example/crl/internal.crl"});
      CHECK(info.authority_key_id_hex ==
            intermediate.info().subject_key_id_hex);
      CHECK(version.key_name() == order.key_name());
      CHECK(version.chain_complete());
      keys.insert(order.key_name());
      // The key is in the vault and is the certificate's.
      vault::v1::Key key =
          ValueOrDie(platform.peers().GetKey(order.key_name()));
      CHECK(key.spki_sha256() == info.spki_sha256_hex);
      inventory_v1::ManagedCertificate cert =
          platform.Certificate(order.certificate());
      CHECK(cert.owner() == "payments");
      CHECK(cert.source() == inventory_v1::ISSUED);
      CHECK(cert.renewal().auto_renew());
      CHECK(cert.desired().issuer() == "issuers/internal");
    }
    CHECK(keys.size() == names.size());
  });
}

TEST_CASE("OrdersOutsideTheTeamsDomainsOrRulesAreRefusedWithTheReason") {
  ForEachBackend([](db::Database& db) {
    Platform platform(db.dialect());
    CHECK_THAT(platform.Create(OrderFor("evil.example.org", "payments")),
               StatusIs(Code::kFailedPrecondition, "evil.example.org"));
    v1::CreateOrderRequest bad = OrderFor("a.pay.example.com", "payments");
    bad.set_issuer("issuers/nope");
    CHECK_THAT(platform.Create(bad), StatusIs(Code::kNotFound, "issuer"));
    bad = OrderFor("a.pay.example.com", "payments");
    bad.clear_sans();
    CHECK_THAT(platform.Create(bad), StatusIs(Code::kInvalidArgument, "sans"));
    bad = OrderFor("a.pay.example.com", "payments");
    bad.set_reuse_key(true);
    CHECK_THAT(platform.Create(bad),
               StatusIs(Code::kInvalidArgument, "reuse_key"));
    v1::Order out;
    CHECK_THAT(
        platform.Call(&Stub::CreateOrder,
                      OrderFor("a.pay.example.com", "payments"), &out, "", ""),
        StatusIs(Code::kUnauthenticated));
    v1::GetOrderRequest get;
    get.set_name("orders/nope");
    CHECK_THAT(platform.Call(&Stub::GetOrder, get, &out),
               StatusIs(Code::kInvalidArgument, "name"));
    get.set_name("o123");
    CHECK_THAT(platform.Call(&Stub::GetOrder, get, &out),
               StatusIs(Code::kInvalidArgument, "name"));

    // Idempotent by request_id.
    v1::CreateOrderRequest request = OrderFor("b.pay.example.com", "payments");
    request.set_request_id("ticket-42");
    v1::Order first = ValueOrDie(platform.Create(request));
    v1::Order again = ValueOrDie(platform.Create(request));
    CHECK(again.name() == first.name());
    request.set_environment("staging");
    CHECK_THAT(platform.Create(request),
               StatusIs(Code::kAlreadyExists, "ticket-42"));

    // wait: carried through within the call.
    v1::CreateOrderRequest now = OrderFor("now.pay.example.com", "payments");
    now.set_wait(true);
    v1::Order issued = ValueOrDie(platform.Create(now));
    CHECK(issued.state() == v1::ISSUED);
    CHECK_FALSE(issued.certificate_version().empty());
    // A repeat of a waited request just returns the order.
    now.set_request_id("wait-1");
    v1::Order first_wait = ValueOrDie(platform.Create(now));
    CHECK(ValueOrDie(platform.Create(now)).name() == first_wait.name());

    // validate_only stores nothing.
    v1::CreateOrderRequest preview = OrderFor("c.pay.example.com", "payments");
    preview.set_validate_only(true);
    CHECK(ValueOrDie(platform.Create(preview)).state() == v1::APPROVED);
    v1::ListOrdersRequest list;
    list.set_filter("san = c.pay.example.com");
    v1::ListOrdersResponse listed;
    REQUIRE_THAT(platform.Call(&Stub::ListOrders, list, &listed), IsOk());
    CHECK(listed.orders_size() == 0);
    list.set_filter("owner = payments AND state = APPROVED");
    REQUIRE_THAT(platform.Call(&Stub::ListOrders, list, &listed), IsOk());
    CHECK(listed.total_size() == 1);
    list.set_filter("colour = red");
    CHECK_THAT(platform.Call(&Stub::ListOrders, list, &listed),
               StatusIs(Code::kInvalidArgument, "colour"));
  });
}

TEST_CASE("PublicValidityLimitsFollowTheIssueDate") {
  ForEachBackend([](db::Database& db) {
    Platform platform(db.dialect());
    struct Case {
      const char* date;
      int max_days;
    };
    const Case cases[] = {{"2026-03-14T12:00:00Z", 398},
                          {"2026-03-15T00:00:00Z", 200},
                          {"2027-03-15T00:00:00Z", 100},
                          {"2029-03-15T00:00:00Z", 47}};
    for (const Case& c : cases) {
      INFO(c.date);
      absl::Time t;
      std::string error;
      REQUIRE(absl::ParseTime(absl::RFC3339_full, c.date, &t, &error));
      platform.clock().Set(t);
      v1::CreateOrderRequest request =
          OrderFor("shop.example.com", "web", "issuers/external");
      request.set_validate_only(true);
      request.set_validity_days(c.max_days);
      CHECK_THAT(platform.Create(request).status(), IsOk());
      request.set_validity_days(c.max_days + 1);
      CHECK_THAT(platform.Create(request),
                 StatusIs(Code::kFailedPrecondition,
                          absl::StrCat(c.max_days, " days")));
    }
    // Ed25519 is not allowed for publicly trusted certificates.
    platform.clock().Set(absl::Now());
    v1::CreateOrderRequest ed = OrderFor("shop.example.com", "web",
                                         "issuers/external", common::ED25519);
    CHECK_THAT(platform.Create(ed),
               StatusIs(Code::kFailedPrecondition, "Ed25519"));
  });
}

TEST_CASE("AnExternalCaCertificateIsAcceptedOnlyWhenItMatchesTheOrder") {
  ForEachBackend([](db::Database& db) {
    Platform platform(db.dialect());
    v1::CreateOrderRequest request =
        OrderFor("shop.example.com", "web", "issuers/external");
    auto* www = request.add_sans();
    www->set_type(common::SubjectAltName::DNS);
    www->set_value("www.shop.example.com");
    v1::Order order = ValueOrDie(platform.Create(request));
    platform.Drain();
    order = platform.Get(order.name());
    REQUIRE(order.state() == v1::AWAITING_CERTIFICATE);

    v1::GetOrderCsrRequest csr_request;
    csr_request.set_name(order.name());
    v1::OrderCsr csr;
    REQUIRE_THAT(platform.Call(&Stub::GetOrderCsr, csr_request, &csr), IsOk());
    CHECK(csr.filename() == "shop.example.com.csr");
    crypto::CertificateRequest parsed =
        ValueOrDie(crypto::CertificateRequest::FromPem(csr.csr_pem()));

    // The "commercial CA".
    crypto::testing::TestCertOptions ca_options;
    ca_options.common_name = "Commercial Test CA";
    crypto::testing::TestIdentity ca =
        ValueOrDie(crypto::testing::MakeRootCa(ca_options));
    crypto::PrivateKeySigner signer(ca.key);
    auto sign = [&](const crypto::PublicKey& key,
                    std::vector<crypto::SubjectAltName> sans) {
      crypto::CertificateProfile profile;
      profile.not_before = absl::Now() - absl::Minutes(5);
      profile.not_after = absl::Now() + absl::Hours(24 * 90);
      profile.key_usage = {"digitalSignature"};
      profile.extended_key_usage = {"serverAuth"};
      crypto::IssueRequest issue{.subject = parsed.subject(),
                                 .public_key = key,
                                 .sans = std::move(sans)};
      return ValueOrDie(
          crypto::IssueCertificate(issue, profile, &ca.cert, signer));
    };
    auto upload = [&](const std::string& data) -> absl::StatusOr<v1::Order> {
      v1::UploadCertificateRequest up;
      up.set_name(order.name());
      up.set_certificate(data);
      v1::Order out;
      absl::Status s = platform.Call(&Stub::UploadCertificate, up, &out);
      if (!s.ok()) return s;
      return out;
    };

    CHECK_THAT(upload(""), StatusIs(Code::kInvalidArgument, "certificate"));
    CHECK_THAT(upload("this is not a certificate"),
               StatusIs(Code::kInvalidArgument, "certificate"));
    crypto::PrivateKey other =
        ValueOrDie(crypto::PrivateKey::Generate(crypto::KeyType::kEcdsaP256));
    crypto::Certificate wrong_key = sign(other.public_key(), parsed.sans());
    CHECK_THAT(upload(wrong_key.ToPem()),
               StatusIs(Code::kInvalidArgument, "not this order's key"));
    crypto::Certificate wrong_sans =
        sign(parsed.public_key(),
             {{crypto::SanType::kDns, "shop.example.com"},
              {crypto::SanType::kDns, "admin.shop.example.com"}});
    absl::Status mismatch = upload(wrong_sans.ToPem()).status();
    CHECK_THAT(mismatch, StatusIs(Code::kInvalidArgument, "SANs"));
    CHECK_THAT(std::string(mismatch.message()),
               Contains("missing DNS:www.shop.example.com"));
    CHECK_THAT(std::string(mismatch.message()),
               Contains("not ordered DNS:admin.shop.example.com"));
    CHECK_THAT(upload(ca.cert.ToPem()),
               StatusIs(Code::kInvalidArgument, "only CA certificates"));
    CHECK(platform.Get(order.name()).state() == v1::AWAITING_CERTIFICATE);

    // The right one, as DER PKCS#7 with its chain, issues the order.
    crypto::Certificate good = sign(parsed.public_key(), parsed.sans());
    std::vector<crypto::Certificate> bundle = {good, ca.cert};
    std::string p7 = ValueOrDie(crypto::WritePkcs7(bundle, /*pem=*/false));
    v1::Order issued = ValueOrDie(upload(p7));
    REQUIRE(issued.state() == v1::ISSUED);
    inventory_v1::CertificateVersion version =
        platform.Version(issued.certificate_version());
    CHECK(version.der() == good.der());
    CHECK(version.key_name() == order.key_name());
    CHECK(version.chain_complete());
    CHECK_THAT(upload(good.ToPem()), StatusIs(Code::kFailedPrecondition));
  });
}

std::string OpensslCrlText(const std::string& der,
                           const crypto::Certificate& issuer) {
  ::certplane::testing::ScratchDir dir("issuance-crl");
  dir.Write("crl.der", der);
  dir.Write("ca.pem", issuer.ToPem());
  ::certplane::testing::CommandResult r = dir.Run(
      "openssl crl -inform DER -in crl.der -CAfile ca.pem -noout -text");
  INFO(r.out << r.err);
  REQUIRE(r.ok());
  CHECK_THAT(r.err + r.out, Contains("verify OK"));
  return r.out;
}

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(c));
  return s;
}

TEST_CASE("RevocationPublishesANewCrlAndMarksTheInventoryVersion") {
  ForEachBackend([](db::Database& db) {
    Platform platform(db.dialect());
    v1::Order order =
        ValueOrDie(platform.Create(OrderFor("r.pay.example.com", "payments")));
    v1::Order keep =
        ValueOrDie(platform.Create(OrderFor("k.pay.example.com", "payments")));
    platform.Drain();
    order = platform.Get(order.name());
    REQUIRE(order.state() == v1::ISSUED);

    v1::GetCrlRequest get_crl;
    get_crl.set_issuer("issuers/internal");
    v1::Crl empty;
    REQUIRE_THAT(platform.Call(&Stub::GetCrl, get_crl, &empty), IsOk());
    CHECK(empty.crl_number() == 1);
    CHECK(empty.revoked_count() == 0);

    v1::RevokeCertificateRequest revoke;
    revoke.set_certificate_version(order.certificate_version());
    revoke.set_reason("keyCompromise");
    v1::Revocation revocation;
    CHECK_THAT(platform.Call(&Stub::RevokeCertificate, revoke, &revocation,
                             "alice", "requester:payments"),
               StatusIs(Code::kPermissionDenied, "operator"));
    revoke.set_reason("because");
    CHECK_THAT(platform.Call(&Stub::RevokeCertificate, revoke, &revocation,
                             "olga", "operator:payments"),
               StatusIs(Code::kInvalidArgument, "reason"));
    revoke.set_reason("keyCompromise");
    REQUIRE_THAT(platform.Call(&Stub::RevokeCertificate, revoke, &revocation,
                               "olga", "operator:payments"),
                 IsOk());
    CHECK(revocation.serial_hex() == order.serial_hex());
    CHECK(revocation.crl_number() == 2);
    CHECK(revocation.issuer() == "issuers/internal");

    v1::Crl crl;
    REQUIRE_THAT(platform.Call(&Stub::GetCrl, get_crl, &crl), IsOk());
    CHECK(crl.crl_number() == 2);
    CHECK(crl.revoked_count() == 1);
    const std::string text =
        OpensslCrlText(crl.der(), platform.internal_ca().intermediate());
    CHECK_THAT(text, Contains(Upper(order.serial_hex())));
    CHECK_THAT(text, Contains("Key Compromise"));
    CHECK_THAT(text, Contains("X509v3 CRL Number"));
    CHECK_THAT(Upper(text),
               !Contains(Upper(platform.Get(keep.name()).serial_hex())));

    inventory_v1::CertificateVersion version =
        platform.Version(order.certificate_version());
    CHECK(version.status() == inventory_v1::REVOKED);
    CHECK(version.revocation_reason() == "keyCompromise");

    // Revoking again is harmless and keeps the first record.
    v1::Revocation again;
    revoke.set_reason("superseded");
    REQUIRE_THAT(platform.Call(&Stub::RevokeCertificate, revoke, &again, "olga",
                               "operator:payments"),
                 IsOk());
    v1::Crl after;
    REQUIRE_THAT(platform.Call(&Stub::GetCrl, get_crl, &after), IsOk());
    CHECK(after.revoked_count() == 1);

    // The same CRL and the CA certificate over plain HTTP.
    std::unique_ptr<CrlHttpServer> http = ValueOrDie(CrlHttpServer::Start(
        platform.issuers(), platform.clock().AsClock(), {}));
    std::string response =
        ValueOrDie(server::testing::HttpGet(http->port(), "/crl/internal.crl"));
    CHECK_THAT(response, Contains("200 OK"));
    CHECK_THAT(response, Contains("application/pkix-crl"));
    CHECK(absl::EndsWith(response, after.der()));
    response =
        ValueOrDie(server::testing::HttpGet(http->port(), "/ca/internal.crt"));
    CHECK(
        absl::EndsWith(response, platform.internal_ca().intermediate().der()));
    CHECK_THAT(
        ValueOrDie(server::testing::HttpGet(http->port(), "/crl/external.crl")),
        Contains("404"));
    CHECK_THAT(ValueOrDie(server::testing::HttpGet(http->port(), "/")),
               Contains("404"));
    http->Stop();
  });
}

TEST_CASE("RenewalComesWithJitterAndBacksOffWhileTheCaFails") {
  ForEachBackend([](db::Database& db) {
    Platform platform(db.dialect());
    v1::CreateOrderRequest request = OrderFor("n.pay.example.com", "payments");
    request.set_auto_renew(true);
    request.set_validity_days(90);
    v1::Order order = ValueOrDie(platform.Create(request));
    platform.Drain();
    order = platform.Get(order.name());
    REQUIRE(order.state() == v1::ISSUED);
    const std::string cert_id(
        absl::StripPrefix(order.certificate(), "certificates/"));

    REQUIRE(ValueOrDie(platform.controller().FollowOnce()) > 0);
    RenewalRecord scheduled =
        ValueOrDie(platform.renewals().GetRenewal(cert_id));
    crypto::Certificate first =
        Leaf(platform.Version(order.certificate_version()));
    const absl::Time base =
        BaseRenewalTime(first.info().not_before, first.info().not_after, 0);
    CHECK(scheduled.renew_time <= base);
    CHECK(scheduled.renew_time > base - absl::Hours(24 * 3));
    CHECK(scheduled.version == order.certificate_version());

    // Not due yet.
    CHECK(ValueOrDie(platform.controller().RunDueOnce("r1")) == 0);
    // Due, but the CA is down: the renewal order fails after its attempts,
    // and the schedule counts a failure and backs off an hour.
    platform.ca_failing() = true;
    platform.clock().Set(scheduled.renew_time + absl::Minutes(1));
    REQUIRE(ValueOrDie(platform.controller().RunDueOnce("r1")) == 1);
    for (int i = 0; i < 3; ++i) {
      platform.Drain();
      platform.clock().Advance(absl::Minutes(5));
    }
    v1::ListOrdersRequest list;
    list.set_filter("reason = RENEWAL");
    v1::ListOrdersResponse renewals;
    REQUIRE_THAT(platform.Call(&Stub::ListOrders, list, &renewals), IsOk());
    REQUIRE(renewals.orders_size() == 1);
    CHECK(renewals.orders(0).state() == v1::FAILED);
    CHECK_THAT(renewals.orders(0).failure_reason(),
               Contains("gave up after 3 attempts"));
    const absl::Time failed_at = FromProto(renewals.orders(0).update_time());
    REQUIRE(ValueOrDie(platform.controller().RunDueOnce("r1")) == 1);
    RenewalRecord failing = ValueOrDie(platform.renewals().GetRenewal(cert_id));
    CHECK(failing.failure_count == 1);
    CHECK_THAT(failing.last_error, Contains("temporarily unavailable"));
    CHECK(failing.next_attempt_time == failed_at + absl::Hours(1));
    // The order's new key went away with it.
    CHECK(LiveKeys(platform.vault()) == 3);  // CA keys + the first one.

    v1::ListRenewalsRequest status_request;
    status_request.set_failing_only(true);
    v1::ListRenewalsResponse status;
    REQUIRE_THAT(platform.Call(&Stub::ListRenewals, status_request, &status),
                 IsOk());
    REQUIRE(status.renewals_size() == 1);
    CHECK(status.renewals(0).failure_count() == 1);

    // No new order before the backoff ends (no renewal loop)...
    platform.clock().Set(failed_at + absl::Minutes(59));
    CHECK(ValueOrDie(platform.controller().RunDueOnce("r1")) == 0);
    // ...then a second failure doubles it.
    platform.clock().Set(failed_at + absl::Hours(1));
    REQUIRE(ValueOrDie(platform.controller().RunDueOnce("r1")) == 1);
    for (int i = 0; i < 3; ++i) {
      platform.Drain();
      platform.clock().Advance(absl::Minutes(5));
    }
    REQUIRE(ValueOrDie(platform.controller().RunDueOnce("r1")) == 1);
    failing = ValueOrDie(platform.renewals().GetRenewal(cert_id));
    CHECK(failing.failure_count == 2);
    const absl::Time second_failure =
        failing.next_attempt_time - absl::Hours(2);

    // The CA is back: the next attempt renews, and the schedule moves to the
    // new version with its failures cleared.
    platform.ca_failing() = false;
    platform.clock().Set(second_failure + absl::Hours(2));
    REQUIRE(ValueOrDie(platform.controller().RunDueOnce("r1")) == 1);
    platform.Drain();
    REQUIRE(ValueOrDie(platform.controller().FollowOnce()) > 0);
    RenewalRecord renewed = ValueOrDie(platform.renewals().GetRenewal(cert_id));
    CHECK(renewed.failure_count == 0);
    CHECK(renewed.version != scheduled.version);
    CHECK(renewed.renew_time > platform.clock().Now() + absl::Hours(24 * 50));
    inventory_v1::ManagedCertificate cert =
        platform.Certificate(order.certificate());
    CHECK(cert.version_count() == 2);
    REQUIRE_THAT(platform.Call(&Stub::ListOrders, list, &renewals), IsOk());
    CHECK(renewals.orders_size() == 3);
    CHECK(renewals.orders(0).state() == v1::ISSUED);  // Newest first.
  });
}

// Counts the orders matching `filter`.
int CountOrders(Platform& platform, const std::string& filter) {
  v1::ListOrdersRequest list;
  list.set_filter(filter);
  list.set_page_size(1);
  v1::ListOrdersResponse response;
  REQUIRE_THAT(platform.Call(&Stub::ListOrders, list, &response), IsOk());
  return response.total_size();
}

TEST_CASE("TwoReplicasRenewAThousandCertificatesWithoutDuplicates") {
  ForEachBackend([](db::Database& db) {
    constexpr int kCertificates = 1000;
    Platform platform(db.dialect());
    for (int i = 0; i < kCertificates; ++i) {
      v1::CreateOrderRequest request =
          OrderFor(absl::StrCat("h", i, ".pay.example.com"), "payments");
      request.set_auto_renew(true);
      request.set_validity_days(90);
      REQUIRE_THAT(platform.Create(request).status(), IsOk());
    }
    platform.workflow().Start();
    const absl::Time give_up = absl::Now() + absl::Minutes(5);
    while (CountOrders(platform, "state = ISSUED") < kCertificates &&
           absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(200));
    }
    platform.workflow().Stop();
    REQUIRE(CountOrders(platform, "state = ISSUED") == kCertificates);

    std::unique_ptr<Platform::Replica> a = platform.AddReplica("replica-a");
    std::unique_ptr<Platform::Replica> b = platform.AddReplica("replica-b");
    // Both follow the feed (as every replica does); the schedule is shared.
    REQUIRE_THAT(a->controller->FollowOnce().status(), IsOk());
    REQUIRE_THAT(b->controller->FollowOnce().status(), IsOk());
    platform.clock().Advance(absl::Hours(24 * 70));  // All are due.

    std::atomic<int> renewals_by_a{0}, renewals_by_b{0};
    auto run = [&](Platform::Replica& replica, const std::string& worker,
                   std::atomic<int>& claimed) {
      for (int idle = 0; idle < 3;) {
        const int due = ValueOrDie(replica.controller->RunDueOnce(worker));
        const int orders = ValueOrDie(replica.workflow->RunOnce(worker));
        claimed += due;
        idle = due == 0 && orders == 0 ? idle + 1 : 0;
      }
    };
    std::thread ta([&] { run(*a, "replica-a/0", renewals_by_a); });
    std::thread tb([&] { run(*b, "replica-b/0", renewals_by_b); });
    ta.join();
    tb.join();
    // Outcomes are counted once the orders are done.
    while (ValueOrDie(a->controller->RunDueOnce("replica-a/0")) > 0) {
    }

    CHECK(CountOrders(platform, "reason = RENEWAL") == kCertificates);
    CHECK(CountOrders(platform, "reason = RENEWAL AND state = ISSUED") ==
          kCertificates);
    CHECK(renewals_by_a.load() > 0);
    CHECK(renewals_by_b.load() > 0);
    // Every certificate has exactly its first version and one renewal.
    inventory_v1::ListCertificatesRequest list;
    list.set_page_size(1000);
    list.set_filter("owner = payments");
    int certificates = 0;
    std::set<std::string> fingerprints;
    do {
      inventory_v1::ListCertificatesResponse page =
          ValueOrDie(platform.peers().ListCertificates(list));
      for (const inventory_v1::ManagedCertificate& c : page.certificates()) {
        ++certificates;
        CHECK(c.version_count() == 2);
        fingerprints.insert(
            c.current_version().details().sha256_fingerprint_hex());
      }
      list.set_page_token(page.next_page_token());
    } while (!list.page_token().empty());
    CHECK(certificates == kCertificates);
    CHECK(fingerprints.size() == static_cast<size_t>(kCertificates));
    // One live key per certificate version, plus the two CA keys.
    CHECK(LiveKeys(platform.vault()) == 2 * kCertificates + 2);
  });
}

// ---------------------------------------------------------------------------
// The certplane-issuance binary, killed in the middle of its work.

class IssuanceProcess {
 public:
  IssuanceProcess(std::vector<std::string> flags, int port) {
    flags.push_back(absl::StrCat("--listen_address=127.0.0.1:", port));
    flags.push_back("--metrics_address=");
    flags.push_back("--crl_listen_address=127.0.0.1:0");
    flags.push_back("--log_level=error");
    child_ = ValueOrDie(server::testing::ChildProcess::Start(
        CERTPLANE_ISSUANCE_PATH, flags, {}));
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                       grpc::InsecureChannelCredentials());
    REQUIRE(channel->WaitForConnected(
        absl::ToChronoTime(absl::Now() + absl::Seconds(60))));
    stub_ = v1::IssuanceService::NewStub(channel);
  }

  template <typename Request, typename Response>
  absl::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*,
                                                 const Request&, Response*),
                    const Request& request, Response* response) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    context.AddMetadata(server::kDevIdentityHeader, "alice");
    return FromGrpcStatus((stub_.get()->*method)(&context, request, response));
  }

  int Count(const std::string& filter) {
    v1::ListOrdersRequest list;
    list.set_filter(filter);
    list.set_page_size(1);
    v1::ListOrdersResponse response;
    REQUIRE_THAT(Call(&Stub::ListOrders, list, &response), IsOk());
    return response.total_size();
  }

  void Kill() {
    REQUIRE_THAT(child_->Signal(SIGKILL), IsOk());
    (void)child_->WaitForExit(absl::Seconds(20));
  }
  void Terminate() {
    REQUIRE_THAT(child_->Signal(SIGTERM), IsOk());
    CHECK(ValueOrDie(child_->WaitForExit(absl::Seconds(30))) == 0);
  }

 private:
  std::unique_ptr<server::testing::ChildProcess> child_;
  std::unique_ptr<Stub> stub_;
};

TEST_CASE("AKilledServiceResumesEveryOrderWithNoDuplicateOrOrphan") {
  for (db::Dialect dialect : testing::kAllDialects) {
    INFO("backend: " << db::DialectName(dialect));
    constexpr int kOrders = 200;
    VaultAndInventory backends(dialect);
    std::filesystem::path dir = testing::FreshTestDir("issuance_kill_test");
    ::certplane::testing::WriteFileContents((dir / "issuance.conf").string(),
                                            kConfig);
    std::vector<std::string> flags = {
        "--insecure_plaintext_for_development",
        "--allow_development_identity",
        absl::StrCat("--vault_address=127.0.0.1:", backends.vault.port()),
        absl::StrCat("--inventory_address=127.0.0.1:",
                     backends.inventory_port()),
        absl::StrCat("--config_file=", (dir / "issuance.conf").string()),
        "--order_lease=3s",
        "--worker_threads=2"};
    if (dialect == db::Dialect::kSqlite) {
      flags.push_back(absl::StrCat("--data_dir=", (dir / "data").string()));
    } else {
      flags.push_back(
          absl::StrCat("--database_url=", testing::FreshDatabaseUrl(dialect)));
    }
    const int port = testing::FreeLoopbackPort();
    std::set<std::string> names;
    {
      IssuanceProcess process(flags, port);
      for (int i = 0; i < kOrders; ++i) {
        v1::CreateOrderRequest request =
            OrderFor(absl::StrCat("k", i, ".pay.example.com"), "payments");
        request.set_request_id(absl::StrCat("kill-test-", i));
        v1::Order order;
        REQUIRE_THAT(process.Call(&Stub::CreateOrder, request, &order), IsOk());
        names.insert(order.name());
      }
      // Killed while the workers are half way.
      const absl::Time give_up = absl::Now() + absl::Minutes(2);
      while (process.Count("state = ISSUED") < kOrders / 4 &&
             absl::Now() < give_up) {
        absl::SleepFor(absl::Milliseconds(20));
      }
      process.Kill();
    }
    int issued_before_restart = 0;
    {
      // Killed again, sooner, after a restart.
      IssuanceProcess process(flags, port);
      issued_before_restart = process.Count("state = ISSUED");
      CHECK(issued_before_restart >= kOrders / 4);
      CHECK(issued_before_restart < kOrders);
      absl::SleepFor(absl::Seconds(4));
      process.Kill();
    }
    {
      IssuanceProcess process(flags, port);
      // Repeating the requests finds the same orders.
      for (int i = 0; i < kOrders; i += 37) {
        v1::CreateOrderRequest request =
            OrderFor(absl::StrCat("k", i, ".pay.example.com"), "payments");
        request.set_request_id(absl::StrCat("kill-test-", i));
        v1::Order order;
        REQUIRE_THAT(process.Call(&Stub::CreateOrder, request, &order), IsOk());
        CHECK(names.contains(order.name()));
      }
      const absl::Time give_up = absl::Now() + absl::Minutes(3);
      while (process.Count("state = ISSUED") < kOrders &&
             absl::Now() < give_up) {
        absl::SleepFor(absl::Milliseconds(200));
      }
      CHECK(process.Count("state = ISSUED") == kOrders);
      CHECK(process.Count("") == kOrders);
      process.Terminate();
    }
    // One certificate per order, each with one version, and one key per
    // order (plus the two CA keys): nothing doubled, nothing orphaned.
    std::unique_ptr<Peers> peers = backends.NewPeers();
    inventory_v1::ListCertificatesRequest list;
    list.set_page_size(1000);
    inventory_v1::ListCertificatesResponse page =
        ValueOrDie(peers->ListCertificates(list));
    CHECK(page.certificates_size() == kOrders);
    std::set<std::string> keys;
    for (const inventory_v1::ManagedCertificate& c : page.certificates()) {
      CHECK(c.version_count() == 1);
      keys.insert(c.current_version().key_name());
    }
    CHECK(keys.size() == static_cast<size_t>(kOrders));
    CHECK(LiveKeys(backends.vault) == kOrders + 2);
    std::filesystem::remove_all(dir);
  }
}

}  // namespace
}  // namespace certplane::issuance
