#include "libs/server/server_runner.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "certplane/testing/v1/echo.grpc.pb.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "libs/server/client.h"
#include "libs/server/json_log.h"
#include "libs/server/request_id.h"
#include "libs/server/server_options.h"
#include "libs/server/testing/echo_service.h"
#include "libs/server/testing/test_client.h"
#include "libs/status/grpc_status.h"
#include "libs/testing/status_matchers.h"

namespace certplane::server {
namespace {

using ::certplane::server::testing::ChildProcess;
using ::certplane::server::testing::EchoServiceImpl;
using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;
using ::certplane::testing::v1::EchoRequest;
using ::certplane::testing::v1::EchoResponse;
using ::certplane::testing::v1::EchoService;
using ::certplane::testing::v1::WireHealthCheckResponse;

constexpr char kEchoServiceName[] = "certplane.testing.v1.EchoService";

ServerOptions PlaintextOptions() {
  ServerOptions options;
  options.app_name = "echo-test";
  options.listen_address = "127.0.0.1:0";
  // No exposer by default: stopping one takes civetweb ~2 s.
  options.metrics_address = "";
  options.insecure_plaintext_for_development = true;
  options.handle_shutdown_signals = false;
  options.shutdown_grace_period = absl::Seconds(2);
  return options;
}

// A running runner with the echo service and a client channel to it
// (plaintext; TLS tests make their own).
struct EchoServer {
  explicit EchoServer(ServerOptions options = PlaintextOptions())
      : runner(std::move(options)) {
    REQUIRE_THAT(runner.AddService(&service, EchoService::service_full_name()),
                 IsOk());
    REQUIRE_THAT(runner.Start(), IsOk());
    REQUIRE(runner.port() > 0);
    channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", runner.port()),
                                  grpc::InsecureChannelCredentials());
    stub = EchoService::NewStub(channel);
  }

  grpc::Status Echo(const EchoRequest& request, EchoResponse* response,
                    grpc::ClientContext* context) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    return stub->Echo(context, request, response);
  }

  EchoServiceImpl service;
  ServerRunner runner;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<EchoService::Stub> stub;
};

// Collects log lines for the lifetime of the object.
class CapturedLogs {
 public:
  CapturedLogs() {
    log::SetSinkForTesting([this](absl::string_view line) {
      absl::MutexLock lock(&mu_);
      lines_.emplace_back(line);
    });
  }
  ~CapturedLogs() { log::SetSinkForTesting({}); }
  std::vector<std::string> LinesContaining(absl::string_view text) {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> found;
    for (const std::string& line : lines_) {
      if (absl::StrContains(line, text)) found.push_back(line);
    }
    return found;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> lines_;
};

std::string InitialMetadata(const grpc::ClientContext& context,
                            const std::string& key) {
  const auto& metadata = context.GetServerInitialMetadata();
  auto it = metadata.find(key);
  if (it == metadata.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

bool IsLowerHex(absl::string_view text) {
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

TEST_CASE("HealthCheckReportsServingForTheServerAndEachService") {
  EchoServer server;
  CHECK(ValueOrDie(testing::CheckHealth(server.channel, "")) ==
        WireHealthCheckResponse::SERVING);
  CHECK(ValueOrDie(testing::CheckHealth(server.channel, kEchoServiceName)) ==
        WireHealthCheckResponse::SERVING);
  CHECK_THAT(testing::CheckHealth(server.channel, "no.such.Service"),
             StatusIs(absl::StatusCode::kNotFound));
}

TEST_CASE("ReflectionListsTheRegisteredServices") {
  EchoServer server;
  std::vector<std::string> names =
      ValueOrDie(testing::ListServicesByReflection(server.channel));
  CHECK(std::find(names.begin(), names.end(), kEchoServiceName) != names.end());
  CHECK(std::find(names.begin(), names.end(), "grpc.health.v1.Health") !=
        names.end());
}

TEST_CASE("ClientRequestIdReachesTheHandlerAndComesBack") {
  EchoServer server;
  EchoRequest request;
  request.set_message("hello");
  EchoResponse response;
  grpc::ClientContext context;
  context.AddMetadata("x-request-id", "req-2b7e1516");
  REQUIRE(server.Echo(request, &response, &context).ok());
  CHECK(response.message() == "hello");
  CHECK(response.request_id() == "req-2b7e1516");
  CHECK(InitialMetadata(context, "x-request-id") == "req-2b7e1516");
}

TEST_CASE("MissingOrUnusableRequestIdIsReplacedByAFreshOne") {
  EchoServer server;
  std::vector<std::string> ids;
  for (const char* given : {"", "has space", ""}) {
    EchoRequest request;
    EchoResponse response;
    grpc::ClientContext context;
    if (*given != '\0') context.AddMetadata("x-request-id", given);
    REQUIRE(server.Echo(request, &response, &context).ok());
    INFO(response.request_id());
    CHECK(response.request_id().size() == 32);
    CHECK(IsLowerHex(response.request_id()));
    CHECK(InitialMetadata(context, "x-request-id") == response.request_id());
    ids.push_back(response.request_id());
  }
  CHECK(ids[0] != ids[1]);
  CHECK(ids[1] != ids[2]);
}

TEST_CASE("OutgoingCallsCarryTheIncomingRequestIdAndADeadline") {
  EchoServer server;
  EchoRequest request;
  request.set_message("via a hop");
  request.set_forward_to_port(server.runner.port());
  EchoResponse response;
  grpc::ClientContext context;
  context.AddMetadata("x-request-id", "hop-7");
  grpc::Status status = server.Echo(request, &response, &context);
  INFO(status.error_message());
  REQUIRE(status.ok());
  CHECK(response.message() == "via a hop");
  CHECK(response.request_id() == "hop-7");  // Seen by the second handler.

  std::unique_ptr<grpc::ClientContext> outgoing =
      NewClientContext(absl::Seconds(3));
  absl::Duration left = absl::FromChrono(outgoing->deadline()) - absl::Now();
  CHECK(left > absl::Seconds(2));
  CHECK(left <= absl::Seconds(3));
}

TEST_CASE("SetServingStatusIsReportedByHealthChecks") {
  EchoServer server;
  REQUIRE_THAT(server.runner.SetServingStatus(kEchoServiceName, false), IsOk());
  CHECK(ValueOrDie(testing::CheckHealth(server.channel, kEchoServiceName)) ==
        WireHealthCheckResponse::NOT_SERVING);
  REQUIRE_THAT(server.runner.SetServingStatus(kEchoServiceName, true), IsOk());
  CHECK(ValueOrDie(testing::CheckHealth(server.channel, kEchoServiceName)) ==
        WireHealthCheckResponse::SERVING);
  CHECK_THAT(server.runner.SetServingStatus("other.Service", false),
             StatusIs(absl::StatusCode::kNotFound, "other.Service"));
}

// An echo service whose handler, once called, keeps calling
// SetServingStatus() until the runner refuses because shutdown began. Each
// call runs on a helper thread so a deadlocked call is noticed (after 1 s)
// instead of hanging the test.
class SetsServingStatusDuringShutdown final : public EchoService::Service {
 public:
  grpc::Status Echo(grpc::ServerContext*, const EchoRequest*,
                    EchoResponse*) override {
    started.Notify();
    absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (absl::Now() < give_up) {
      auto result = std::make_shared<std::promise<absl::Status>>();
      std::future<absl::Status> status = result->get_future();
      callers.emplace_back([this, result]() {
        result->set_value(runner->SetServingStatus(kEchoServiceName, false));
      });
      if (status.wait_for(std::chrono::seconds(1)) !=
          std::future_status::ready) {
        outcome = "SetServingStatus blocked during shutdown";
        return grpc::Status::OK;
      }
      absl::Status s = status.get();
      if (absl::IsFailedPrecondition(s)) {
        outcome = "refused";
        return grpc::Status::OK;
      }
      absl::SleepFor(absl::Milliseconds(2));
    }
    outcome = "shutdown never began";
    return grpc::Status::OK;
  }

  ServerRunner* runner = nullptr;
  absl::Notification started;
  // Written by the one handler call; read after Shutdown() returned.
  std::vector<std::thread> callers;
  std::string outcome;
};

TEST_CASE("HandlerMaySetServingStatusWhileShutdownDrains") {
  SetsServingStatusDuringShutdown service;
  ServerRunner runner(PlaintextOptions());
  service.runner = &runner;
  REQUIRE_THAT(runner.AddService(&service, EchoService::service_full_name()),
               IsOk());
  REQUIRE_THAT(runner.Start(), IsOk());
  auto stub = EchoService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", runner.port()),
                          grpc::InsecureChannelCredentials()));
  std::thread client([&]() {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    EchoRequest request;
    EchoResponse response;
    stub->Echo(&context, request, &response);
  });
  REQUIRE(service.started.WaitForNotificationWithTimeout(absl::Seconds(10)));
  // A second caller must also wait until the server has stopped.
  std::atomic<bool> second_returned{false};
  std::thread second([&]() {
    absl::SleepFor(absl::Milliseconds(20));
    runner.Shutdown();
    second_returned = true;
  });
  runner.Shutdown();
  second.join();
  client.join();
  for (std::thread& t : service.callers) t.join();
  CHECK(service.outcome == "refused");
  CHECK(second_returned);
  CHECK_THAT(runner.SetServingStatus(kEchoServiceName, true),
             StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_CASE("HandlerErrorReachesTheClientWithTheSameCodeAndMessage") {
  EchoServer server;
  for (absl::StatusCode code :
       {absl::StatusCode::kNotFound, absl::StatusCode::kFailedPrecondition,
        absl::StatusCode::kInvalidArgument}) {
    EchoRequest request;
    request.set_error_code(static_cast<int>(code));
    request.set_error_message("certificate \"7\" not found in team \"web\"");
    EchoResponse response;
    grpc::ClientContext context;
    CHECK_THAT(FromGrpcStatus(server.Echo(request, &response, &context)),
               StatusIs(code, "certificate \"7\" not found in team \"web\""));
  }
}

TEST_CASE("MetricsCountRpcsPerMethodAndCodeAndAreServedOnMetrics") {
  ServerOptions options = PlaintextOptions();
  options.metrics_address = "127.0.0.1:0";
  EchoServer server(options);
  REQUIRE(server.runner.metrics_port() > 0);
  for (int i = 0; i < 2; ++i) {
    EchoResponse response;
    grpc::ClientContext context;
    REQUIRE(server.Echo(EchoRequest(), &response, &context).ok());
  }
  EchoRequest failing;
  failing.set_error_code(static_cast<int>(absl::StatusCode::kNotFound));
  EchoResponse response;
  grpc::ClientContext context;
  REQUIRE_FALSE(server.Echo(failing, &response, &context).ok());

  std::string scrape =
      ValueOrDie(testing::HttpGet(server.runner.metrics_port(), "/metrics"));
  INFO(scrape);
  CHECK((absl::StartsWith(scrape, "HTTP/1.1 200") ||
         absl::StartsWith(scrape, "HTTP/1.0 200")));
  CHECK(absl::StrContains(
      scrape,
      "certplane_grpc_server_handled_total{grpc_code=\"OK\",grpc_method="
      "\"Echo\",grpc_service=\"certplane.testing.v1.EchoService\"} 2\n"));
  CHECK(absl::StrContains(
      scrape,
      "certplane_grpc_server_handled_total{grpc_code=\"NOT_FOUND\","
      "grpc_method=\"Echo\",grpc_service=\"certplane.testing.v1."
      "EchoService\"} 1\n"));
  CHECK(absl::StrContains(
      scrape,
      "certplane_grpc_server_handling_seconds_count{grpc_method=\"Echo\","
      "grpc_service=\"certplane.testing.v1.EchoService\"} 3\n"));
}

TEST_CASE("MethodsNoProtoDeclaresAreCountedAsUnknownNotByTheirNames") {
  ServerOptions options = PlaintextOptions();
  options.metrics_address = "127.0.0.1:0";
  EchoServer server(options);
  grpc::GenericStub stub(server.channel);
  for (const char* method : {"/made.Up/Call1", "/made.Up/Call2", "/x"}) {
    grpc::ClientContext context;
    grpc::Slice empty("");
    grpc::ByteBuffer request(&empty, 1), response;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                   [&](grpc::Status s) { done.set_value(s); });
    CHECK(done.get_future().get().error_code() ==
          grpc::StatusCode::UNIMPLEMENTED);
  }
  std::string scrape =
      ValueOrDie(testing::HttpGet(server.runner.metrics_port(), "/metrics"));
  INFO(scrape);
  CHECK_FALSE(absl::StrContains(scrape, "made.Up"));
  CHECK_FALSE(absl::StrContains(scrape, "Call1"));
  CHECK(absl::StrContains(
      scrape,
      "certplane_grpc_server_handled_total{grpc_code=\"UNIMPLEMENTED\","
      "grpc_method=\"unknown\",grpc_service=\"unknown\"} 3\n"));
}

TEST_CASE("EachRpcWritesOneJsonLogLine") {
  CapturedLogs logs;
  EchoServer server;
  EchoRequest request;
  request.set_error_code(static_cast<int>(absl::StatusCode::kAlreadyExists));
  request.set_error_message("order exists");
  EchoResponse response;
  grpc::ClientContext context;
  context.AddMetadata("x-request-id", "log-line-test-1");
  REQUIRE_FALSE(server.Echo(request, &response, &context).ok());

  std::vector<std::string> lines = logs.LinesContaining("log-line-test-1");
  REQUIRE(lines.size() == 1);
  INFO(lines[0]);
  google::protobuf::Struct parsed;
  REQUIRE(google::protobuf::util::JsonStringToMessage(lines[0], &parsed).ok());
  const auto& fields = parsed.fields();
  CHECK(fields.at("level").string_value() == "info");
  CHECK(fields.at("msg").string_value() == "rpc");
  CHECK(fields.at("app").string_value() == "echo-test");
  CHECK(fields.at("service").string_value() == kEchoServiceName);
  CHECK(fields.at("method").string_value() == "Echo");
  CHECK(fields.at("request_id").string_value() == "log-line-test-1");
  CHECK(fields.at("grpc_code").string_value() == "ALREADY_EXISTS");
  CHECK(fields.at("error").string_value() == "order exists");
  CHECK(fields.at("latency_ms").kind_case() ==
        google::protobuf::Value::kNumberValue);
  CHECK(fields.at("latency_ms").number_value() >= 0);
  CHECK(absl::StartsWith(fields.at("peer").string_value(), "ipv4:127.0.0.1:"));
  CHECK(absl::StrContains(fields.at("ts").string_value(), "T"));
}

TEST_CASE("ClientChannelRefusesToGoPlaintextWithoutTheDevelopmentFlag") {
  CHECK_THAT(CreateClientChannel("vault:7002", ClientOptions()),
             StatusIs(absl::StatusCode::kInvalidArgument, "mutual TLS"));
  ClientOptions options;
  options.tls_cert_file = "/nonexistent/client.pem";
  options.tls_key_file = "/nonexistent/client.key";
  options.tls_ca_file = "/nonexistent/ca.pem";
  CHECK_THAT(CreateClientChannel("vault:7002", options),
             StatusIs(absl::StatusCode::kNotFound, "/nonexistent/client.pem"));
}

TEST_CASE("AddServiceRejectsANameThatIsNotALinkedService") {
  ServerRunner runner(PlaintextOptions());
  EchoServiceImpl service;
  CHECK_THAT(runner.AddService(&service, "certplane.testing.v1.Typo"),
             StatusIs(absl::StatusCode::kInvalidArgument, "Typo"));
}

TEST_CASE("StartFailsWhenThePortIsAlreadyServed") {
  EchoServer first;
  ServerOptions options = PlaintextOptions();
  options.listen_address = absl::StrCat("127.0.0.1:", first.runner.port());
  ServerRunner second(options);
  CHECK_THAT(second.Start(),
             StatusIs(absl::StatusCode::kUnavailable, "--listen_address"));
}

TEST_CASE("StartFailsWithAClearErrorWhenATlsFileIsMissing") {
  ServerOptions options = PlaintextOptions();
  options.insecure_plaintext_for_development = false;
  options.tls_cert_file = "/nonexistent/server.pem";
  options.tls_key_file = "/nonexistent/server.key";
  options.tls_client_ca_file = "/nonexistent/ca.pem";
  ServerRunner runner(options);
  CHECK_THAT(runner.Start(),
             StatusIs(absl::StatusCode::kNotFound,
                      "--tls_cert_file \"/nonexistent/server.pem\""));
}

TEST_CASE("SigtermLetsTheInFlightRpcFinishAndExitsZero") {
  auto child = ValueOrDie(
      ChildProcess::Start(CERTPLANE_ECHO_SERVER_PATH, {},
                          {"CERTPLANE_INSECURE_PLAINTEXT_FOR_DEVELOPMENT=true",
                           "CERTPLANE_LISTEN_ADDRESS=127.0.0.1:0",
                           "CERTPLANE_SHUTDOWN_GRACE_PERIOD=5s"}));
  std::string port_line = ValueOrDie(child->ReadLine(absl::Seconds(10)));
  REQUIRE(absl::StartsWith(port_line, "port "));
  auto channel =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_line.substr(5)),
                          grpc::InsecureChannelCredentials());
  auto stub = EchoService::NewStub(channel);

  EchoRequest request;
  request.set_message("finish me");
  request.set_delay_ms(500);
  EchoResponse response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  std::promise<grpc::Status> done;
  stub->async()->Echo(&context, &request, &response,
                      [&done](grpc::Status status) { done.set_value(status); });

  REQUIRE(ValueOrDie(child->ReadLine(absl::Seconds(10))) ==
          "slow call started");
  REQUIRE_THAT(child->Signal(SIGTERM), IsOk());

  std::future<grpc::Status> result = done.get_future();
  REQUIRE(result.wait_for(std::chrono::seconds(10)) ==
          std::future_status::ready);
  grpc::Status status = result.get();
  INFO(status.error_message());
  CHECK(status.ok());
  CHECK(response.message() == "finish me");
  CHECK(ValueOrDie(child->WaitForExit(absl::Seconds(5))) == 0);
}

TEST_CASE("BadEnvironmentValueStopsTheBinaryAtStartup") {
  auto child = ValueOrDie(ChildProcess::Start(
      CERTPLANE_ECHO_SERVER_PATH, {},
      {"CERTPLANE_INSECURE_PLAINTEXT_FOR_DEVELOPMENT=maybe"}));
  CHECK(ValueOrDie(child->WaitForExit(absl::Seconds(10))) == 2);
}

TEST_CASE("MissingTlsConfigurationStopsTheBinaryAtStartup") {
  auto child = ValueOrDie(ChildProcess::Start(
      CERTPLANE_ECHO_SERVER_PATH, {"--listen_address=127.0.0.1:0"}, {}));
  CHECK(ValueOrDie(child->WaitForExit(absl::Seconds(10))) == 1);
}

}  // namespace
}  // namespace certplane::server

namespace certplane::server {
namespace {

// A throwaway PKI made with the openssl CLI: a CA, a server certificate for
// localhost/127.0.0.1, a client certificate, and a self-signed "stranger"
// client certificate the CA never issued; all EC P-256.
class TestPki {
 public:
  TestPki() {
    char pattern[] = "/tmp/certplane_mtls_XXXXXX";
    REQUIRE(mkdtemp(pattern) != nullptr);
    dir_ = pattern;
    const std::string script = absl::StrCat(
        "set -e; cd '", dir_, "'\n",
        "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n"
        "extendedKeyUsage=serverAuth\\n' > server.ext\n",
        "printf 'extendedKeyUsage=clientAuth\\n' > client.ext\n",
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
        "-keyout ca.key -out ca.pem -days 1 -subj /CN=certplane-test-ca "
        "-addext basicConstraints=critical,CA:TRUE "
        "-addext keyUsage=critical,keyCertSign,cRLSign\n",
        "for name in server client; do\n"
        "  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
        "-keyout $name.key -out $name.csr -subj /CN=$name\n"
        "  openssl x509 -req -in $name.csr -CA ca.pem -CAkey ca.key "
        "-set_serial 0x$(openssl rand -hex 8) -days 1 -extfile $name.ext "
        "-out $name.pem\n"
        "done\n",
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
        "-keyout stranger.key -out stranger.pem -days 1 -subj /CN=client "
        "-addext extendedKeyUsage=clientAuth\n");
    std::ofstream(dir_ + "/make.sh") << script;
    REQUIRE(std::system(absl::StrCat("sh '", dir_, "/make.sh' >'", dir_,
                                     "/openssl.log' 2>&1")
                            .c_str()) == 0);
  }
  ~TestPki() { std::filesystem::remove_all(dir_); }

  // A new key and certificate for `name` ("server" or "client"), with
  // common name `cn`, from the same CA, each moved into place whole (key
  // first), as certplane-admin bootstrap renews them.
  void Renew(const std::string& name, const std::string& cn) {
    const std::string script = absl::StrCat(
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
        "-keyout new.key -out new.csr -subj /CN=",
        cn, "\n",
        "openssl x509 -req -in new.csr -CA ca.pem -CAkey ca.key "
        "-set_serial 0x$(openssl rand -hex 8) -days 1 -extfile ",
        name, ".ext -out new.pem\n", "mv new.key ", name, ".key\n",
        "mv new.pem ", name, ".pem\n");
    Run(script);
  }

  // Runs `script` with sh in the PKI's folder; the test fails if it does.
  void Run(const std::string& script) {
    std::ofstream(dir_ + "/run.sh") << "set -e; cd '" << dir_ << "'\n"
                                    << script;
    REQUIRE(std::system(absl::StrCat("sh '", dir_, "/run.sh' >'", dir_,
                                     "/openssl.log' 2>&1")
                            .c_str()) == 0);
  }

  // A server on this PKI's server certificate and `key`.
  ServerOptions Server(const std::string& key = "server.key") const {
    ServerOptions options = PlaintextOptions();
    options.insecure_plaintext_for_development = false;
    options.tls_cert_file = Path("server.pem");
    options.tls_key_file = Path(key);
    options.tls_client_ca_file = Path("ca.pem");
    return options;
  }
  // A client with the client certificate, expecting "localhost".
  ClientOptions Client() const {
    ClientOptions client;
    client.tls_cert_file = Path("client.pem");
    client.tls_key_file = Path("client.key");
    client.tls_ca_file = Path("ca.pem");
    client.tls_server_name = "localhost";
    return client;
  }

  std::string Path(const std::string& name) const {
    return absl::StrCat(dir_, "/", name);
  }
  std::string Read(const std::string& name) const {
    std::ifstream in(Path(name));
    std::stringstream contents;
    contents << in.rdbuf();
    return contents.str();
  }

 private:
  std::string dir_;
};

std::unique_ptr<EchoService::Stub> TlsStub(
    int port, const grpc::SslCredentialsOptions& ssl) {
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  return EchoService::NewStub(grpc::CreateCustomChannel(
      absl::StrCat("127.0.0.1:", port), grpc::SslCredentials(ssl), args));
}

TEST_CASE("MutualTlsAcceptsAClientCertificateFromTheCaAndRejectsNone") {
  TestPki pki;
  EchoServer server(pki.Server());
  ServerRunner& runner = server.runner;

  EchoRequest request;
  request.set_message("over mtls");
  {
    CapturedLogs logs;
    ClientOptions client = pki.Client();
    auto channel = ValueOrDie(
        CreateClientChannel(absl::StrCat("127.0.0.1:", runner.port()), client));
    std::unique_ptr<grpc::ClientContext> context =
        NewClientContext(absl::Seconds(5));
    context->AddMetadata("x-request-id", "mtls-ok");
    EchoResponse response;
    grpc::Status status =
        EchoService::NewStub(channel)->Echo(context.get(), request, &response);
    INFO(status.error_message());
    CHECK(status.ok());
    CHECK(response.message() == "over mtls");
    std::vector<std::string> lines = logs.LinesContaining("mtls-ok");
    REQUIRE(lines.size() == 1);
    CHECK(absl::StrContains(lines[0], "\"peer_identity\":\"client\""));
  }
  {
    grpc::SslCredentialsOptions ssl;  // Trusts the server, has no client cert.
    ssl.pem_root_certs = pki.Read("ca.pem");
    auto stub = TlsStub(runner.port(), ssl);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    EchoResponse response;
    grpc::Status status = stub->Echo(&context, request, &response);
    CHECK(status.error_code() == grpc::StatusCode::UNAVAILABLE);
  }
  {
    // A client certificate that the server's CA did not issue.
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = pki.Read("ca.pem");
    ssl.pem_private_key = pki.Read("stranger.key");
    ssl.pem_cert_chain = pki.Read("stranger.pem");
    auto stub = TlsStub(runner.port(), ssl);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    EchoResponse response;
    CHECK(stub->Echo(&context, request, &response).error_code() ==
          grpc::StatusCode::UNAVAILABLE);
  }
  {
    grpc::ClientContext context;  // Plaintext to a TLS port fails too.
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    auto stub = EchoService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", runner.port()),
                            grpc::InsecureChannelCredentials()));
    EchoResponse response;
    CHECK(stub->Echo(&context, request, &response).error_code() ==
          grpc::StatusCode::UNAVAILABLE);
  }
}

TEST_CASE("AKeyThatIsNotTheCertificatesStopsTheServerAndTheChannelAtStart") {
  TestPki pki;
  ServerRunner runner(pki.Server("stranger.key"));
  CHECK_THAT(runner.Start(),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      absl::StrCat("the key in --tls_key_file \"",
                                   pki.Path("stranger.key"),
                                   "\" does not belong to the first "
                                   "certificate in --tls_cert_file")));
  // A chain with a PKCS7 block, which gRPC cannot read.
  REQUIRE(std::system(absl::StrCat("openssl crl2pkcs7 -nocrl -certfile '",
                                   pki.Path("server.pem"), "' >> '",
                                   pki.Path("server-p7.pem"), "'")
                          .c_str()) == 0);
  std::ofstream(pki.Path("server-p7.pem"), std::ios::app)
      << pki.Read("server.pem");
  ServerOptions p7 = pki.Server();
  p7.tls_cert_file = pki.Path("server-p7.pem");
  ServerRunner p7_runner(p7);
  CHECK_THAT(p7_runner.Start(),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "(CERTIFICATE blocks only): it holds other blocks"));

  ClientOptions client = pki.Client();
  client.tls_ca_file = pki.Path("client.key");
  CHECK_THAT(CreateClientChannel("127.0.0.1:1", client).status(),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "does not hold CA certificates"));
  client.tls_ca_file = pki.Path("missing.pem");
  CHECK_THAT(CreateClientChannel("127.0.0.1:1", client).status(),
             StatusIs(absl::StatusCode::kNotFound, "cannot open CA bundle"));
}

// The server's certificate as a client saw it on a new connection, or the
// call's error.
absl::StatusOr<std::string> ServedCertificate(int port,
                                              const ClientOptions& client,
                                              const std::string& request_id) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      CreateClientChannel(absl::StrCat("127.0.0.1:", port), client);
  if (!channel.ok()) return channel.status();
  std::unique_ptr<grpc::ClientContext> context =
      NewClientContext(absl::Seconds(5));
  context->AddMetadata("x-request-id", request_id);
  EchoRequest request;
  request.set_message("which certificate?");
  EchoResponse response;
  grpc::Status status =
      EchoService::NewStub(*channel)->Echo(context.get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  std::vector<grpc::string_ref> pem =
      context->auth_context()->FindPropertyValues("x509_pem_cert");
  if (pem.size() != 1) return absl::InternalError("no peer certificate");
  return std::string(pem[0].data(), pem[0].size());
}

TEST_CASE("RenewedTlsFilesReachNewConnectionsWithoutARestart") {
  TestPki pki;
  ServerOptions options = pki.Server();
  options.tls_reload_interval = absl::Seconds(1);
  EchoServer server(options);
  ServerRunner& runner = server.runner;
  ClientOptions client = pki.Client();
  client.tls_reload_interval = absl::Seconds(1);

  CapturedLogs logs;
  const std::string first = pki.Read("server.pem");
  CHECK(ValueOrDie(ServedCertificate(runner.port(), client, "before")) ==
        first);
  // Channels made before the renewal, first used after it (several: each
  // gets one try, a second apart, to have re-read its identity).
  std::vector<std::shared_ptr<grpc::Channel>> late;
  for (int i = 0; i < 10; ++i) {
    late.push_back(ValueOrDie(CreateClientChannel(
        absl::StrCat("127.0.0.1:", runner.port()), client)));
  }

  pki.Renew("server", "server");
  pki.Renew("client", "client-renewed");
  const std::string renewed = pki.Read("server.pem");
  REQUIRE(renewed != first);
  // Within a few reload intervals, new connections get the new certificate.
  absl::StatusOr<std::string> served;
  for (absl::Time deadline = absl::Now() + absl::Seconds(15);
       absl::Now() < deadline; absl::SleepFor(absl::Milliseconds(250))) {
    served = ServedCertificate(runner.port(), client, "after");
    if (served.ok() && *served == renewed) break;
  }
  REQUIRE_THAT(served, IsOk());
  CHECK(*served == renewed);
  // The client side re-read its identity too: the server sees the renewed
  // client certificate on a channel made before the renewal.
  bool renewed_identity_seen = false;
  for (size_t i = 0; i < late.size() && !renewed_identity_seen; ++i) {
    absl::SleepFor(absl::Seconds(1));
    const std::string id = absl::StrCat("late-channel-", i);
    std::unique_ptr<grpc::ClientContext> context =
        NewClientContext(absl::Seconds(5));
    context->AddMetadata("x-request-id", id);
    EchoRequest request;
    EchoResponse response;
    REQUIRE(EchoService::NewStub(late[i])
                ->Echo(context.get(), request, &response)
                .ok());
    std::vector<std::string> lines = logs.LinesContaining(id);
    REQUIRE(lines.size() == 1);
    renewed_identity_seen =
        absl::StrContains(lines[0], "\"peer_identity\":\"client-renewed\"");
  }
  CHECK(renewed_identity_seen);

  // The server's name is still checked.
  ClientOptions wrong_name = client;
  wrong_name.tls_server_name = "elsewhere.example";
  CHECK_THAT(ServedCertificate(runner.port(), wrong_name, "wrong-name"),
             StatusIs(absl::StatusCode::kUnavailable));

  // A file that stops being a certificate (a botched copy) leaves the last
  // good one in service: once the stage has refused it, and gRPC's watcher
  // has had time to read the stage again, the renewed one is still served.
  auto refused = [&](absl::string_view error) {
    for (absl::Time deadline = absl::Now() + absl::Seconds(15);
         absl::Now() < deadline; absl::SleepFor(absl::Milliseconds(100))) {
      for (const std::string& line : logs.LinesContaining("not reloaded")) {
        if (absl::StrContains(line, error)) return true;
      }
    }
    return false;
  };
  std::ofstream(pki.Path("server.pem"), std::ios::trunc) << "not a pem\n";
  REQUIRE(refused("holds no PEM block"));
  absl::SleepFor(absl::Milliseconds(2500));
  CHECK(ValueOrDie(ServedCertificate(runner.port(), client, "garbage")) ==
        renewed);
  // So does a key that does not belong to the certificate beside it.
  std::ofstream(pki.Path("server.pem"), std::ios::trunc) << renewed;
  std::filesystem::copy_file(pki.Path("stranger.key"), pki.Path("server.key"),
                             std::filesystem::copy_options::overwrite_existing);
  REQUIRE(refused("does not belong to the first certificate"));
  absl::SleepFor(absl::Milliseconds(2500));
  CHECK(ValueOrDie(ServedCertificate(runner.port(), client, "mismatch")) ==
        renewed);
}

TEST_CASE("AClientCaAddedToTheBundleIsTrustedWithoutARestart") {
  TestPki pki;
  // A second CA (a CA rollover) and a client certificate from it; that
  // client trusts both CAs.
  pki.Run(absl::StrCat(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
      "-keyout ca2.key -out ca2.pem -days 1 -subj /CN=certplane-test-ca-2 "
      "-addext basicConstraints=critical,CA:TRUE "
      "-addext keyUsage=critical,keyCertSign,cRLSign\n",
      "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
      "-keyout client2.key -out client2.csr -subj /CN=client-of-ca-2\n",
      "openssl x509 -req -in client2.csr -CA ca2.pem -CAkey ca2.key "
      "-set_serial 0x$(openssl rand -hex 8) -days 1 -extfile client.ext "
      "-out client2.pem\n",
      "cat ca.pem ca2.pem > both.pem\n"));
  ServerOptions options = pki.Server();
  options.tls_reload_interval = absl::Seconds(1);
  EchoServer server(options);
  ServerRunner& runner = server.runner;
  ClientOptions client = pki.Client();
  client.tls_cert_file = pki.Path("client2.pem");
  client.tls_key_file = pki.Path("client2.key");
  client.tls_ca_file = pki.Path("both.pem");
  CHECK_THAT(ServedCertificate(runner.port(), client, "ca2-before"),
             StatusIs(absl::StatusCode::kUnavailable));

  std::ofstream(pki.Path("ca.pem"), std::ios::app) << pki.Read("ca2.pem");
  absl::StatusOr<std::string> served;
  for (absl::Time deadline = absl::Now() + absl::Seconds(15);
       absl::Now() < deadline && !served.ok();
       absl::SleepFor(absl::Milliseconds(250))) {
    served = ServedCertificate(runner.port(), client, "ca2-after");
  }
  CHECK_THAT(served, IsOk());
}

}  // namespace
}  // namespace certplane::server
