#include "libs/server/testing/test_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/client_context.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/impl/codegen/proto_utils.h"

extern char** environ;

namespace certplane::server::testing {
namespace {

using certplane::testing::v1::WireHealthCheckRequest;
using certplane::testing::v1::WireHealthCheckResponse;
using certplane::testing::v1::WireReflectionRequest;
using certplane::testing::v1::WireReflectionResponse;

// Waits for the completion queue event `tag`; false when the op failed.
bool Await(grpc::CompletionQueue& cq, void* tag) {
  void* got = nullptr;
  bool ok = false;
  if (!cq.Next(&got, &ok)) return false;
  return got == tag && ok;
}

absl::Status Errno(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", strerror(errno)));
}

}  // namespace

absl::StatusOr<WireHealthCheckResponse::ServingStatus> CheckHealth(
    const std::shared_ptr<grpc::Channel>& channel, const std::string& service) {
  grpc::TemplatedGenericStub<WireHealthCheckRequest, WireHealthCheckResponse>
      stub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  grpc::CompletionQueue cq;
  WireHealthCheckRequest request;
  request.set_service(service);
  auto call = stub.PrepareUnaryCall(&context, "/grpc.health.v1.Health/Check",
                                    request, &cq);
  call->StartCall();
  WireHealthCheckResponse response;
  grpc::Status status;
  int tag = 0;
  call->Finish(&response, &status, &tag);
  Await(cq, &tag);
  cq.Shutdown();
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        status.error_message());
  }
  return response.status();
}

absl::StatusOr<std::vector<std::string>> ListServicesByReflection(
    const std::shared_ptr<grpc::Channel>& channel) {
  grpc::TemplatedGenericStub<WireReflectionRequest, WireReflectionResponse>
      stub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  grpc::CompletionQueue cq;
  auto stream = stub.PrepareCall(
      &context,
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  int tag = 0;
  stream->StartCall(&tag);
  bool ok = Await(cq, &tag);
  WireReflectionRequest request;
  request.set_list_services("*");
  if (ok) {
    stream->Write(request, &tag);
    ok = Await(cq, &tag);
  }
  WireReflectionResponse response;
  if (ok) {
    stream->Read(&response, &tag);
    ok = Await(cq, &tag);
  }
  stream->WritesDone(&tag);
  Await(cq, &tag);
  grpc::Status status;
  stream->Finish(&status, &tag);
  Await(cq, &tag);
  cq.Shutdown();
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        status.error_message());
  }
  if (!ok) return absl::UnavailableError("reflection stream failed");
  std::vector<std::string> names;
  for (const auto& service : response.list_services_response().service()) {
    names.push_back(service.name());
  }
  return names;
}

absl::StatusOr<std::string> HttpGet(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) !=
      0) {
    absl::Status status = Errno("connect");
    ::close(fd);
    return status;
  }
  std::string request =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    absl::Status status = Errno("send");
    ::close(fd);
    return status;
  }
  std::string response;
  char buffer[4096];
  while (true) {
    ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status status = Errno("recv");
      ::close(fd);
      return status;
    }
    if (n == 0) break;
    response.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return response;
}

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(
    const std::string& path, const std::vector<std::string>& args,
    const std::vector<std::string>& env) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return Errno("pipe2");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);

  std::vector<std::string> argv_storage = {path};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_storage(env);
  for (char** entry = environ; *entry != nullptr; ++entry) {
    env_storage.emplace_back(*entry);
  }
  std::vector<char*> envp;
  for (std::string& entry : env_storage) envp.push_back(entry.data());
  envp.push_back(nullptr);

  pid_t pid = 0;
  int error = posix_spawn(&pid, path.c_str(), &actions, nullptr, argv.data(),
                          envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  if (error != 0) {
    ::close(pipe_fds[0]);
    return absl::InternalError(
        absl::StrCat("posix_spawn ", path, ": ", strerror(error)));
  }
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid, pipe_fds[0]));
}

ChildProcess::~ChildProcess() {
  if (!exited_) {
    ::kill(pid_, SIGKILL);
    int status;
    ::waitpid(pid_, &status, 0);
  }
  ::close(stdout_fd_);
}

absl::StatusOr<std::string> ChildProcess::ReadLine(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    size_t newline = buffered_.find('\n');
    if (newline != std::string::npos) {
      std::string line = buffered_.substr(0, newline);
      buffered_.erase(0, newline + 1);
      return line;
    }
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError("no line from the child in time");
    }
    pollfd pfd{stdout_fd_, POLLIN, 0};
    int ready =
        ::poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return Errno("poll");
    if (ready == 0) continue;
    char buffer[512];
    ssize_t n = ::read(stdout_fd_, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("read");
    if (n == 0) {
      if (!buffered_.empty()) {  // A last line without "\n".
        std::string line = std::move(buffered_);
        buffered_.clear();
        return line;
      }
      return absl::OutOfRangeError("child closed stdout");
    }
    buffered_.append(buffer, static_cast<size_t>(n));
  }
}

absl::Status ChildProcess::Signal(int signal_number) {
  if (::kill(pid_, signal_number) != 0) return Errno("kill");
  return absl::OkStatus();
}

absl::StatusOr<int> ChildProcess::WaitForExit(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status = 0;
    pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done < 0) return Errno("waitpid");
    if (done == pid_) {
      exited_ = true;
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      return absl::InternalError(
          absl::StrCat("child killed by signal ", WTERMSIG(status)));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError("child still running");
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

absl::StatusOr<CommandResult> RunShellCommand(const std::string& command,
                                              absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<std::unique_ptr<ChildProcess>> child =
      ChildProcess::Start("/bin/sh", {"-c", command + " 2>&1"}, {});
  if (!child.ok()) return child.status();
  CommandResult result;
  for (;;) {
    absl::StatusOr<std::string> line = (*child)->ReadLine(
        std::max(deadline - absl::Now(), absl::ZeroDuration()));
    if (!line.ok()) break;  // The end of the output, or the deadline.
    absl::StrAppend(&result.output, *line, "\n");
  }
  absl::StatusOr<int> code = (*child)->WaitForExit(
      std::max(deadline - absl::Now(), absl::ZeroDuration()));
  if (!code.ok()) return code.status();  // The destructor kills it.
  result.exit_code = *code;
  return result;
}

}  // namespace certplane::server::testing
