#include "libs/testing/postgres_fixture.h"

#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace certplane::testing {
namespace {

namespace fs = std::filesystem;

constexpr int kPort = 5432;  // names the socket file; no TCP listener
constexpr char kUser[] = "certplane";
constexpr absl::Duration kStartTimeout = absl::Seconds(60);

struct RunAs {
  uid_t uid;
  gid_t gid;
};

std::string ErrnoText(absl::string_view what) {
  return absl::StrCat(what, ": ", std::strerror(errno));
}

std::string ReadTail(const std::string& path, size_t max_bytes = 4000) {
  std::ifstream in(path);
  if (!in) return "(no log)";
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  if (text.size() > max_bytes)
    text = "..." + text.substr(text.size() - max_bytes);
  return text.empty() ? "(log is empty)" : text;
}

absl::StatusOr<std::string> FindBinDir() {
  if (const char* env = std::getenv("CERTPLANE_PG_BINDIR"); env && *env) {
    if (fs::exists(fs::path(env) / "initdb")) return std::string(env);
    return absl::FailedPreconditionError(
        absl::StrCat("CERTPLANE_PG_BINDIR=", env, " holds no initdb"));
  }
  std::optional<fs::path> best;
  int best_version = -1;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    fs::path bin = entry.path() / "bin";
    if (!fs::exists(bin / "initdb") || !fs::exists(bin / "postgres")) continue;
    int version = std::atoi(entry.path().filename().c_str());
    if (version > best_version) {
      best_version = version;
      best = bin;
    }
  }
  if (!best) {
    return absl::FailedPreconditionError(
        "no PostgreSQL server binaries found under /usr/lib/postgresql/*/bin "
        "(install postgresql, e.g. scripts/install-deps.sh, or set "
        "CERTPLANE_PG_BINDIR)");
  }
  return best->string();
}

// Forks and execs argv with stdout/stderr appended to log_path, as `run_as`
// when set. The child gets SIGQUIT if the forking thread dies.
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& args,
                            const std::string& log_path,
                            const std::optional<RunAs>& run_as,
                            const std::string& cwd) {
  std::vector<char*> argv;
  for (const std::string& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int log_fd =
      open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return absl::InternalError(ErrnoText("open " + log_path));
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    close(log_fd);
    return absl::InternalError(ErrnoText("fork"));
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    if (run_as) {
      if (setgroups(0, nullptr) != 0 || setgid(run_as->gid) != 0 ||
          setuid(run_as->uid) != 0) {
        _exit(126);
      }
    }
    // After setuid, which clears the death signal.
    prctl(PR_SET_PDEATHSIG, SIGQUIT);
    if (getppid() != parent) _exit(125);
    if (chdir(cwd.c_str()) != 0) _exit(124);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(log_fd);
  return pid;
}

std::string DescribeExit(int wstatus) {
  if (WIFEXITED(wstatus)) {
    int code = WEXITSTATUS(wstatus);
    switch (code) {
      case 124:
        return "exited 124 (could not chdir)";
      case 125:
        return "exited 125 (parent died during start)";
      case 126:
        return "exited 126 (could not switch to the postgres user)";
      case 127:
        return "exited 127 (could not exec)";
      default:
        return absl::StrCat("exited with status ", code);
    }
  }
  if (WIFSIGNALED(wstatus)) {
    return absl::StrCat("killed by signal ", WTERMSIG(wstatus));
  }
  return "ended";
}

struct Cluster {
  PostgresServer server;
  std::string dir;
  pid_t postmaster = -1;
};

Cluster* g_cluster = nullptr;  // set once, read by the exit handler

void StopAtExit() {
  Cluster* c = g_cluster;
  if (c == nullptr) return;
  if (c->postmaster > 0) {
    kill(c->postmaster, SIGQUIT);  // immediate shutdown
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    int wstatus = 0;
    while (waitpid(c->postmaster, &wstatus, WNOHANG) == 0) {
      if (absl::Now() > deadline) {
        kill(c->postmaster, SIGKILL);
        waitpid(c->postmaster, &wstatus, 0);
        break;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  std::error_code ec;
  fs::remove_all(c->dir, ec);
}

// Removes folders left by test processes that were killed (SIGKILL skips
// exit handlers; the server itself dies with them via PR_SET_PDEATHSIG).
// Only folders older than an hour whose postmaster is not running, so a
// concurrently starting test process is never disturbed.
void RemoveStaleFolders() {
  std::error_code ec;
  auto cutoff = fs::file_time_type::clock::now() - std::chrono::hours(1);
  for (const auto& entry : fs::directory_iterator("/tmp", ec)) {
    if (!absl::StartsWith(entry.path().filename().string(), "certplane-pg-")) {
      continue;
    }
    std::error_code entry_ec;
    if (fs::last_write_time(entry.path(), entry_ec) > cutoff || entry_ec) {
      continue;
    }
    std::ifstream pid_file(entry.path() / "data" / "postmaster.pid");
    pid_t pid = 0;
    if (pid_file >> pid && pid > 0 && kill(pid, 0) == 0) continue;
    fs::remove_all(entry.path(), entry_ec);
  }
}

absl::StatusOr<Cluster*> StartCluster() {
  RemoveStaleFolders();
  absl::StatusOr<std::string> bindir = FindBinDir();
  if (!bindir.ok()) return bindir.status();

  std::optional<RunAs> run_as;
  if (geteuid() == 0) {
    struct passwd* pw = getpwnam("postgres");
    if (pw == nullptr) {
      return absl::FailedPreconditionError(
          "running as root, and PostgreSQL refuses to run as root, but there "
          "is no 'postgres' system user to run it as (install the postgresql "
          "package, or run the tests as a non-root user)");
    }
    run_as = RunAs{pw->pw_uid, pw->pw_gid};
  }

  // The socket path must fit in sun_path (107 bytes): stay short.
  std::string tmpl = "/tmp/certplane-pg-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    return absl::InternalError(ErrnoText("mkdtemp /tmp/certplane-pg-XXXXXX"));
  }
  auto cluster = std::make_unique<Cluster>();
  cluster->dir = tmpl;
  if (run_as && chown(tmpl.c_str(), run_as->uid, run_as->gid) != 0) {
    std::string error = ErrnoText("chown " + tmpl + " to postgres");
    fs::remove_all(tmpl);
    return absl::InternalError(error);
  }
  std::string data = tmpl + "/data";
  std::string log = tmpl + "/server.log";

  // Everything from here on is cleaned up at exit, even on failure.
  g_cluster = cluster.release();
  std::atexit(StopAtExit);

  absl::StatusOr<pid_t> initdb =
      Spawn({*bindir + "/initdb", "-D", data, "-U", kUser, "-A", "trust", "-E",
             "UTF8", "--locale=C", "--no-sync", "--no-instructions"},
            log, run_as, tmpl);
  if (!initdb.ok()) return initdb.status();
  int wstatus = 0;
  if (waitpid(*initdb, &wstatus, 0) < 0 || !WIFEXITED(wstatus) ||
      WEXITSTATUS(wstatus) != 0) {
    return absl::InternalError(absl::StrCat(
        "initdb ", DescribeExit(wstatus), "; log ", log, ":\n", ReadTail(log)));
  }

  std::vector<std::string> argv = {*bindir + "/postgres",
                                   "-D",
                                   data,
                                   "-k",
                                   tmpl,
                                   "-p",
                                   std::to_string(kPort),
                                   "-c",
                                   "listen_addresses=",
                                   "-c",
                                   "fsync=off",
                                   "-c",
                                   "synchronous_commit=off",
                                   "-c",
                                   "full_page_writes=off",
                                   "-c",
                                   "max_connections=200",
                                   "-c",
                                   "unix_socket_permissions=0777"};
  // More settings for benchmarks that look inside the server, such as
  // "shared_preload_libraries=pg_stat_statements".
  if (const char* extra = std::getenv("CERTPLANE_PG_EXTRA_SETTINGS");
      extra != nullptr) {
    for (absl::string_view setting :
         absl::StrSplit(extra, ' ', absl::SkipEmpty())) {
      argv.push_back("-c");
      argv.push_back(std::string(setting));
    }
  }
  absl::StatusOr<pid_t> postmaster = Spawn(argv, log, run_as, tmpl);
  if (!postmaster.ok()) return postmaster.status();
  g_cluster->postmaster = *postmaster;

  g_cluster->server = PostgresServer{tmpl, kPort, kUser, log};
  std::string conninfo = g_cluster->server.Url("postgres");
  absl::Time deadline = absl::Now() + kStartTimeout;
  for (;;) {
    pid_t done = waitpid(*postmaster, &wstatus, WNOHANG);
    if (done == *postmaster) {
      g_cluster->postmaster = -1;
      return absl::InternalError(
          absl::StrCat("postgres ", DescribeExit(wstatus),
                       " during startup; log ", log, ":\n", ReadTail(log)));
    }
    if (PQping(conninfo.c_str()) == PQPING_OK) break;
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("postgres did not accept connections within ",
                       absl::FormatDuration(kStartTimeout), "; log ", log,
                       ":\n", ReadTail(log)));
    }
    absl::SleepFor(absl::Milliseconds(25));
  }
  return g_cluster;
}

absl::StatusOr<Cluster*> StartOnKeeperThread() {
  // PR_SET_PDEATHSIG fires when the *thread* that forked exits, so the
  // server is forked from a thread that lives as long as the process.
  std::promise<absl::StatusOr<Cluster*>> promise;
  std::future<absl::StatusOr<Cluster*>> result = promise.get_future();
  // The promise moves into the thread, which outlives every use of it.
  std::thread([promise = std::move(promise)]() mutable {
    promise.set_value(StartCluster());
    for (;;) pause();
  }).detach();
  return result.get();
}

}  // namespace

std::string PostgresServer::Url(absl::string_view dbname) const {
  return absl::StrCat("postgresql://", user, "@/", dbname, "?host=", socket_dir,
                      "&port=", port);
}

absl::StatusOr<const PostgresServer*> StartSharedPostgres() {
  static const absl::StatusOr<Cluster*>* started =
      new absl::StatusOr<Cluster*>(StartOnKeeperThread());
  if (!started->ok()) {
    return absl::Status(
        started->status().code(),
        absl::StrCat("cannot start the test PostgreSQL server: ",
                     started->status().message()));
  }
  return &(**started)->server;
}

absl::StatusOr<std::string> CreateDatabase(absl::string_view name) {
  if (name.empty() || name.size() > 63) {
    return absl::InvalidArgumentError("database name must be 1-63 characters");
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') {
      return absl::InvalidArgumentError(absl::StrCat(
          "database name \"", name, "\" may hold only letters, digits, '_'"));
    }
  }
  absl::StatusOr<const PostgresServer*> server = StartSharedPostgres();
  if (!server.ok()) return server.status();
  PGconn* conn = PQconnectdb((*server)->Url("postgres").c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string error = PQerrorMessage(conn);
    PQfinish(conn);
    return absl::UnavailableError(
        absl::StrCat("cannot connect to the test PostgreSQL server: ", error));
  }
  PGresult* result =
      PQexec(conn, absl::StrCat("CREATE DATABASE \"", name, "\"").c_str());
  absl::Status status;
  if (PQresultStatus(result) != PGRES_COMMAND_OK) {
    const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    std::string message = absl::StrCat("CREATE DATABASE ", name, ": ",
                                       PQresultErrorMessage(result));
    status = state != nullptr && absl::string_view(state) == "42P04"
                 ? absl::AlreadyExistsError(message)
                 : absl::InternalError(message);
  }
  PQclear(result);
  PQfinish(conn);
  if (!status.ok()) return status;
  return (*server)->Url(name);
}

}  // namespace certplane::testing
