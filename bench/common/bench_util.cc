#include "bench/common/bench_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "libs/server/testing/test_client.h"

namespace certplane::bench {
namespace {

std::string& Program() {
  static std::string* name = new std::string("bench");
  return *name;
}

// The services StartService started, for Die to stop: a benchmark that
// exits on an error would otherwise leave them running. (A pid stays listed
// after its ChildProcess waited for it; Die then skips it unless this
// process has started another child that got the same pid, which a
// benchmark about to exit on an error accepts.)
absl::Mutex g_started_mu;
std::vector<pid_t>& Started() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_started_mu) {
  static auto* pids = new std::vector<pid_t>;
  return *pids;
}

void KillStartedServices() {
  absl::MutexLock lock(&g_started_mu);
  for (pid_t pid : Started()) {
    // Only a child not yet waited for: waitpid says 0 for one still
    // running, and ECHILD for a pid that is no longer this process's child
    // (waited for already, perhaps reused).
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == 0) ::kill(pid, SIGKILL);
  }
}

}  // namespace

void SetProgram(absl::string_view name) { Program() = std::string(name); }

void Die(absl::string_view what, const absl::Status& status) {
  std::fprintf(stderr, "%s: %s: %s\n", Program().c_str(),
               std::string(what).c_str(), status.ToString().c_str());
  KillStartedServices();
  std::exit(1);
}

void CheckOk(absl::string_view what, const absl::Status& status) {
  if (!status.ok()) Die(what, status);
}

void CheckOk(absl::string_view what, const grpc::Status& status) {
  if (!status.ok()) {
    Die(what, absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                           status.error_message()));
  }
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) Die("socket", absl::InternalError("cannot open a socket"));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    Die("bind", absl::InternalError("cannot bind a loopback port"));
  }
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t index = static_cast<size_t>(p * (values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

long ProcStatusKb(pid_t pid, absl::string_view field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, absl::StrCat(field, ":"))) {
      long kb = 0;
      std::vector<std::string> parts =
          absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (parts.size() >= 2 && absl::SimpleAtoi(parts[1], &kb)) return kb;
    }
  }
  return -1;
}

double ProcessCpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  // The name (field 2) is in parentheses and may hold spaces; utime and
  // stime are fields 14 and 15, the 12th and 13th after it.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::vector<std::string> fields =
      absl::StrSplit(stat.substr(close + 1), ' ', absl::SkipEmpty());
  long utime = 0;
  long stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return -1;
  }
  return static_cast<double>(utime + stime) /
         static_cast<double>(sysconf(_SC_CLK_TCK));
}

double CpuSecondsOfProcessesNamed(absl::string_view comm) {
  double total = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &pid)) continue;
    std::ifstream in(entry.path() / "comm");
    std::string name;
    if (!std::getline(in, name) || name != comm) continue;
    if (double seconds = ProcessCpuSeconds(pid); seconds > 0) total += seconds;
  }
  return total;
}

LoopResult RunClosedLoop(int total, int clients,
                         const std::function<bool(int client, int n)>& call) {
  using Clock = std::chrono::steady_clock;
  auto seconds_since = [](Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
  };
  std::atomic<int> next{0};
  std::mutex mu;
  LoopResult result;
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      std::vector<double> mine;
      for (int n = next++; n < total; n = next++) {
        const Clock::time_point t0 = Clock::now();
        if (!call(c, n)) Die("call", absl::InternalError("a request failed"));
        mine.push_back(seconds_since(t0) * 1000);
      }
      std::lock_guard<std::mutex> lock(mu);
      result.latencies_ms.insert(result.latencies_ms.end(), mine.begin(),
                                 mine.end());
    });
  }
  for (std::thread& t : threads) t.join();
  result.seconds = seconds_since(start);
  return result;
}

std::unique_ptr<server::testing::ChildProcess> StartService(
    const std::string& path, std::vector<std::string> flags, int port,
    bool callgrind, absl::string_view label) {
  flags.push_back(absl::StrCat("--listen_address=127.0.0.1:", port));
  flags.push_back("--metrics_address=");
  flags.push_back("--insecure_plaintext_for_development");
  flags.push_back("--log_level=warning");
  std::string program = path;
  if (callgrind) {
    flags.insert(
        flags.begin(),
        {"--tool=callgrind",
         absl::StrCat("--callgrind-out-file=/tmp/callgrind.", label, ".%p"),
         path});
    program = "/usr/bin/valgrind";
  }
  auto child =
      ValueOrDie(absl::StrCat("start ", path),
                 server::testing::ChildProcess::Start(program, flags, {}));
  {
    absl::MutexLock lock(&g_started_mu);
    Started().push_back(child->pid());
  }
  // A fresh channel per try: a channel whose first connection failed waits
  // out its reconnect backoff.
  const absl::Time give_up = absl::Now() + absl::Seconds(90);
  while (absl::Now() < give_up) {
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                       grpc::InsecureChannelCredentials());
    if (channel->WaitForConnected(
            absl::ToChronoTime(absl::Now() + absl::Milliseconds(500)))) {
      return child;
    }
  }
  Die("start", absl::UnavailableError(absl::StrCat(path, " did not start")));
}

}  // namespace certplane::bench
