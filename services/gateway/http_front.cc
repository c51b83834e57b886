#include "services/gateway/http_front.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/client_callback.h"
#include "grpcpp/support/stub_options.h"
#include "libs/server/json_log.h"
#include "services/gateway/rpc_util.h"

namespace certplane::gateway {
namespace {

constexpr char kJson[] = "application/json";

std::string CodeName(int code) {
  return absl::AsciiStrToLower(
      absl::StatusCodeToString(static_cast<absl::StatusCode>(code)));
}

std::string ErrorJson(int code, absl::string_view message) {
  return absl::StrCat("{\"code\":", log::JsonQuote(CodeName(code)),
                      ",\"message\":", log::JsonQuote(message), "}");
}

void SendError(server::HttpResponder& responder, int code,
               absl::string_view message) {
  responder.Send(HttpStatusForCode(code), kJson,
                 ErrorJson(code, message) + "\n");
}

// A server-streaming call driven from one thread through a private
// completion queue, one message at a time.
class StreamCall {
 public:
  StreamCall(grpc::GenericStub& stub, grpc::ClientContext* context,
             const std::string& method)
      : call_(stub.PrepareCall(context, method, &cq_)) {}
  ~StreamCall() {
    cq_.Shutdown();
    void* tag;
    bool ok;
    while (cq_.Next(&tag, &ok)) {
    }
  }

  // Sends the request and half-closes; false when the call is already over.
  bool Start(const grpc::ByteBuffer& request) {
    call_->StartCall(this);
    if (!Wait()) return false;
    call_->Write(request, this);
    if (!Wait()) return false;
    call_->WritesDone(this);
    return Wait();
  }
  bool Next(std::string* out) {
    grpc::ByteBuffer buffer;
    call_->Read(&buffer, this);
    if (!Wait()) return false;
    *out = FlattenByteBuffer(buffer);
    return true;
  }
  grpc::Status Finish() {
    grpc::Status status;
    call_->Finish(&status, this);
    Wait();
    return status;
  }

 private:
  bool Wait() {
    void* tag;
    bool ok = false;
    if (!cq_.Next(&tag, &ok)) return false;
    return ok;
  }

  grpc::CompletionQueue cq_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call_;
};

std::string ContentType(const std::filesystem::path& path) {
  static const auto* const kTypes =
      new std::vector<std::pair<std::string, std::string>>{
          {".html", "text/html; charset=utf-8"},
          {".js", "text/javascript; charset=utf-8"},
          {".mjs", "text/javascript; charset=utf-8"},
          {".css", "text/css; charset=utf-8"},
          {".json", "application/json"},
          {".svg", "image/svg+xml"},
          {".png", "image/png"},
          {".ico", "image/x-icon"},
          {".woff2", "font/woff2"},
          {".map", "application/json"},
          {".txt", "text/plain; charset=utf-8"}};
  std::string ext = path.extension().string();
  for (const auto& [e, type] : *kTypes) {
    if (e == ext) return type;
  }
  return "application/octet-stream";
}

}  // namespace

int HttpStatusForCode(int code) {
  switch (static_cast<grpc::StatusCode>(code)) {
    case grpc::StatusCode::OK:
      return 200;
    case grpc::StatusCode::CANCELLED:
      return 499;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
      return 400;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 504;
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::ABORTED:
      return 409;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 429;
    case grpc::StatusCode::UNIMPLEMENTED:
      return 501;
    case grpc::StatusCode::UNAVAILABLE:
      return 503;
    default:
      return 500;
  }
}

HttpFront::HttpFront(std::shared_ptr<grpc::Channel> channel,
                     HttpFrontOptions options)
    : channel_(std::move(channel)), options_(std::move(options)) {}

HttpFront::~HttpFront() {
  if (listener_ != nullptr) listener_->Stop();
}

absl::StatusOr<std::unique_ptr<HttpFront>> HttpFront::Start(
    std::shared_ptr<grpc::Channel> channel, HttpFrontOptions options) {
  std::unique_ptr<HttpFront> front(
      new HttpFront(std::move(channel), std::move(options)));
  server::HttpListenerOptions listener_options;
  listener_options.listen_address = front->options_.listen_address;
  listener_options.server_name = "certplane-gateway";
  HttpFront* raw = front.get();
  absl::StatusOr<std::unique_ptr<server::HttpListener>> listener =
      server::HttpListener::Start(listener_options,
                                  [raw](const server::HttpRequest& request,
                                        server::HttpResponder& responder) {
                                    raw->Handle(request, responder);
                                  });
  if (!listener.ok()) return listener.status();
  front->listener_ = *std::move(listener);
  return front;
}

void HttpFront::Handle(const server::HttpRequest& request,
                       server::HttpResponder& responder) {
  if (request.path == "/healthz") {
    responder.Send(200, "text/plain; charset=utf-8", "ok\n");
    return;
  }
  // "/<package>.<Service>/<Method>": two segments, the first with a dot.
  std::vector<absl::string_view> parts =
      absl::StrSplit(absl::string_view(request.path).substr(1), '/');
  if (parts.size() == 2 && absl::StrContains(parts[0], '.') &&
      !parts[1].empty() && !absl::StrContains(parts[1], '.')) {
    HandleRpc(request, responder);
    return;
  }
  HandleStatic(request, responder);
}

void HttpFront::HandleRpc(const server::HttpRequest& request,
                          server::HttpResponder& responder) {
  using grpc::StatusCode;
  if (request.method != "POST") {
    responder.Send(405, kJson,
                   ErrorJson(static_cast<int>(StatusCode::UNIMPLEMENTED),
                             "RPCs are called with POST") +
                       "\n",
                   {{"Allow", "POST"}});
    return;
  }
  const google::protobuf::MethodDescriptor* method =
      FindRpcMethod(request.path);
  if (method == nullptr) {
    SendError(responder, static_cast<int>(StatusCode::UNIMPLEMENTED),
              absl::StrCat("no RPC ", request.path));
    return;
  }
  if (method->client_streaming()) {
    SendError(
        responder, static_cast<int>(StatusCode::UNIMPLEMENTED),
        absl::StrCat(request.path,
                     " streams requests, which HTTP/JSON does not carry"));
    return;
  }
  auto* factory = google::protobuf::MessageFactory::generated_factory();
  std::unique_ptr<google::protobuf::Message> message(
      factory->GetPrototype(method->input_type())->New());
  if (!absl::StripAsciiWhitespace(request.body).empty()) {
    google::protobuf::util::JsonParseOptions parse;
    parse.ignore_unknown_fields = false;
    auto parsed = google::protobuf::util::JsonStringToMessage(
        request.body, message.get(), parse);
    if (!parsed.ok()) {
      SendError(responder, static_cast<int>(StatusCode::INVALID_ARGUMENT),
                absl::StrCat("the request body is not a ",
                             method->input_type()->full_name(),
                             " in JSON: ", std::string(parsed.message())));
      return;
    }
  }
  std::string bytes = message->SerializeAsString();
  grpc::ByteBuffer in = ToByteBuffer(bytes);

  grpc::ClientContext context;
  const std::string authorization = request.Header("authorization");
  if (!authorization.empty())
    context.AddMetadata("authorization", authorization);
  const std::string request_id = request.Header("x-request-id");
  if (!request_id.empty()) context.AddMetadata("x-request-id", request_id);
  grpc::GenericStub stub(channel_);
  const std::string full =
      absl::StrCat("/", method->service()->full_name(), "/", method->name());
  std::unique_ptr<google::protobuf::Message> response(
      factory->GetPrototype(method->output_type())->New());
  google::protobuf::util::JsonPrintOptions print;
  auto to_json = [&](const std::string& wire) -> std::string {
    response->Clear();
    if (!response->ParseFromString(wire)) return "{}";
    std::string json;
    (void)google::protobuf::util::MessageToJsonString(*response, &json, print);
    return json;
  };

  if (!method->server_streaming()) {
    context.set_deadline(
        absl::ToChronoTime(absl::Now() + options_.call_timeout));
    grpc::ByteBuffer out;
    absl::Notification done;
    grpc::Status status;
    stub.UnaryCall(&context, full, grpc::StubOptions(), &in, &out,
                   [&](grpc::Status s) {
                     status = std::move(s);
                     done.Notify();
                   });
    done.WaitForNotification();
    if (!status.ok()) {
      SendError(responder, status.error_code(), status.error_message());
      return;
    }
    responder.Send(200, kJson, to_json(FlattenByteBuffer(out)) + "\n");
    return;
  }

  StreamCall call(stub, &context, full);
  (void)call.Start(in);
  std::string wire;
  bool started = false;
  bool client_gone = false;
  while (call.Next(&wire)) {
    if (client_gone) continue;  // Drain after cancelling.
    if (!started) {
      started = true;
      if (!responder.BeginStream(200, "application/x-ndjson")) {
        client_gone = true;
        context.TryCancel();
        continue;
      }
    }
    if (!responder.WriteChunk(to_json(wire) + "\n")) {
      client_gone = true;
      context.TryCancel();
    }
  }
  grpc::Status status = call.Finish();
  if (client_gone) return;
  if (!started) {
    if (!status.ok()) {
      SendError(responder, status.error_code(), status.error_message());
      return;
    }
    responder.BeginStream(200, "application/x-ndjson");
  } else if (!status.ok()) {
    responder.WriteChunk(absl::StrCat(
        "{\"error\":", ErrorJson(status.error_code(), status.error_message()),
        "}\n"));
  }
  responder.EndStream();
}

void HttpFront::HandleStatic(const server::HttpRequest& request,
                             server::HttpResponder& responder) {
  if (request.method != "GET" && request.method != "HEAD") {
    responder.Send(405, "text/plain; charset=utf-8", "method not allowed\n");
    return;
  }
  if (options_.web_root.empty()) {
    responder.Send(404, "text/plain; charset=utf-8",
                   "not found (no web UI is installed)\n");
    return;
  }
  std::string rel(absl::StripPrefix(request.path, "/"));
  for (absl::string_view segment : absl::StrSplit(rel, '/')) {
    if (segment == ".." || absl::StrContains(segment, '\0') ||
        absl::StrContains(segment, '\\')) {
      responder.Send(400, "text/plain; charset=utf-8", "bad path\n");
      return;
    }
  }
  std::filesystem::path root(options_.web_root);
  std::filesystem::path file = root / rel;
  std::error_code ec;
  if (rel.empty() || std::filesystem::is_directory(file, ec)) {
    file = file / "index.html";
  } else if (!std::filesystem::exists(file, ec) &&
             std::filesystem::path(rel).extension().empty()) {
    file = root / "index.html";  // Client-side routes of the UI.
  }
  std::ifstream in(file, std::ios::binary);
  if (!in || !std::filesystem::is_regular_file(file, ec)) {
    responder.Send(404, "text/plain; charset=utf-8", "not found\n");
    return;
  }
  std::stringstream body;
  body << in.rdbuf();
  responder.Send(200, ContentType(file), body.str(),
                 {{"X-Content-Type-Options", "nosniff"}});
}

}  // namespace certplane::gateway
