#include "services/admin/health.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/stub_options.h"

namespace certplane::admin {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// grpc.health.v1.HealthCheckResponse is one enum field (1); SERVING = 1.
bool IsServing(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return false;
  std::string bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return bytes.size() == 2 && bytes[0] == 0x08 && bytes[1] == 0x01;
}

}  // namespace

absl::Status WaitForHealthy(const HealthOptions& o) {
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (o.ca_file.empty()) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = Read(o.ca_file);
    if (!o.cert_file.empty()) {
      ssl.pem_cert_chain = Read(o.cert_file);
      ssl.pem_private_key = Read(o.key_file);
    }
    creds = grpc::SslCredentials(ssl);
  }
  const absl::Time give_up = absl::Now() + o.timeout;
  std::string last = "no answer";
  while (absl::Now() < give_up) {
    auto channel = grpc::CreateChannel(o.address, creds);
    grpc::GenericStub stub(channel);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
    grpc::ByteBuffer request;  // HealthCheckRequest{service: ""}.
    grpc::Slice empty("", 0);
    request = grpc::ByteBuffer(&empty, 1);
    grpc::ByteBuffer response;
    absl::Notification done;
    grpc::Status status;
    stub.UnaryCall(&context, "/grpc.health.v1.Health/Check",
                   grpc::StubOptions(), &request, &response,
                   [&](grpc::Status s) {
                     status = std::move(s);
                     done.Notify();
                   });
    done.WaitForNotification();
    if (status.ok() && IsServing(response)) return absl::OkStatus();
    last = status.ok() ? "not SERVING" : status.error_message();
    absl::SleepFor(absl::Milliseconds(200));
  }
  return absl::DeadlineExceededError(
      absl::StrCat(o.address, " is not healthy: ", last));
}

}  // namespace certplane::admin
