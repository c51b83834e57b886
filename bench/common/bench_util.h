// Small helpers shared by the benchmarks in bench/: fatal error checks (a
// benchmark has no test framework, so it stops with a message), loopback
// ports, percentiles and process memory.
#ifndef CERTPLANE_BENCH_COMMON_BENCH_UTIL_H_
#define CERTPLANE_BENCH_COMMON_BENCH_UTIL_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace grpc {
class Status;
}  // namespace grpc

namespace certplane::server::testing {
class ChildProcess;
}  // namespace certplane::server::testing

namespace certplane::bench {

// Prints "<program>: <what>: <status>" to stderr, kills the services
// StartService started that are still running, and exits 1. SetProgram
// names the benchmark in those messages.
void SetProgram(absl::string_view name);
[[noreturn]] void Die(absl::string_view what, const absl::Status& status);

template <typename T>
T ValueOrDie(absl::string_view what, absl::StatusOr<T> value) {
  if (!value.ok()) Die(what, value.status());
  return *std::move(value);
}

void CheckOk(absl::string_view what, const absl::Status& status);
void CheckOk(absl::string_view what, const grpc::Status& status);

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

// Starts the certplane service binary `path` with `flags`, in plaintext
// development mode on 127.0.0.1:`port` (no /metrics, warnings only); under
// valgrind's callgrind when `callgrind` (output in
// /tmp/callgrind.<label>.<pid>). Dies unless it accepts connections within
// 90 s.
std::unique_ptr<server::testing::ChildProcess> StartService(
    const std::string& path, std::vector<std::string> flags, int port,
    bool callgrind, absl::string_view label);

// The p-quantile (0..1) of `values`, nearest rank; 0 when empty.
double Percentile(std::vector<double> values, double p);

// "VmHWM" or "VmRSS" of `pid` from /proc, in KiB; -1 when unreadable.
long ProcStatusKb(pid_t pid, absl::string_view field);

// CPU time (user + system) `pid` has used so far, in seconds; -1 when
// unreadable.
double ProcessCpuSeconds(pid_t pid);

// The summed CPU seconds of every live process whose name (/proc/PID/comm)
// is `comm`, such as all PostgreSQL backends ("postgres").
double CpuSecondsOfProcessesNamed(absl::string_view comm);

// Latencies of a closed-loop run and how long it took.
struct LoopResult {
  double seconds = 0;
  std::vector<double> latencies_ms;
};

// Runs `call(client, n)` for n = 0 .. total-1 from `clients` threads, each
// taking the next n when its previous call returns; a call that returns
// false stops the benchmark (Die).
LoopResult RunClosedLoop(int total, int clients,
                         const std::function<bool(int client, int n)>& call);

}  // namespace certplane::bench

#endif  // CERTPLANE_BENCH_COMMON_BENCH_UTIL_H_
