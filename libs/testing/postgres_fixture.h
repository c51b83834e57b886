// A throwaway PostgreSQL server for tests.
//
// The first call to StartSharedPostgres() (or SharedPostgres()) in a test
// process runs initdb into a fresh temporary folder and starts a postmaster
// that listens only on a unix socket in that folder (no TCP port, so test
// binaries running in parallel never collide), with fsync off for speed.
// When the process runs as root (CI does), initdb and postgres run as the
// `postgres` system user that Debian's postgresql package creates, since
// PostgreSQL refuses to run as root. At process exit the server is stopped
// (immediate shutdown) and the folder removed; if the test process dies
// without running exit handlers, the kernel sends the postmaster SIGQUIT
// (PR_SET_PDEATHSIG), which is also an immediate shutdown.
//
// Never skips: if PostgreSQL cannot start, StartSharedPostgres() returns
// the reason (with the server's log) and SharedPostgres() fails the test.
//
// Binaries are found in $CERTPLANE_PG_BINDIR, else the newest
// /usr/lib/postgresql/<version>/bin holding initdb. Settings in
// $CERTPLANE_PG_EXTRA_SETTINGS (space-separated name=value) are added to
// the server's command line.
//
// Thread-safe: all functions may be called from any thread.
#ifndef CERTPLANE_LIBS_TESTING_POSTGRES_FIXTURE_H_
#define CERTPLANE_LIBS_TESTING_POSTGRES_FIXTURE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace certplane::testing {

struct PostgresServer {
  std::string socket_dir;  // holds .s.PGSQL.<port>
  int port = 0;
  std::string user;      // superuser, trust authentication
  std::string log_path;  // the server's stdout/stderr

  // libpq URL of database `dbname` on this server.
  std::string Url(absl::string_view dbname) const;
};

// Starts the process-wide server on first use; later calls return the same
// server (or the same startup error).
absl::StatusOr<const PostgresServer*> StartSharedPostgres();

// As StartSharedPostgres(), but FAILs the current Catch2 test with the
// reason when the server cannot start. (Defined in db_test_util.cc, so the
// rest of this file needs no Catch2 and benchmarks can start the server.)
const PostgresServer& SharedPostgres();

// Creates an empty database `name` (letters, digits, '_') on the shared
// server and returns its URL. ALREADY_EXISTS if the name is taken.
absl::StatusOr<std::string> CreateDatabase(absl::string_view name);

}  // namespace certplane::testing

#endif  // CERTPLANE_LIBS_TESTING_POSTGRES_FIXTURE_H_
