// Database access for certplane services: SOCI sessions over PostgreSQL
// (libpq) or SQLite, opened from a URL, held in a bounded pool, and used only
// through transactions whose failures come back as absl::Status.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<Database> db,
//                    Database::Open("postgresql://svc@db:5432/certplane",
//                               {.service = "inventory"}));
//   absl::Status s = db->Transact([&](soci::session& sql) -> absl::Status {
//     sql << "INSERT INTO hosts(name) VALUES (:n)", soci::use(name);
//     return absl::OkStatus();
//   });
//
// URLs:
//   postgresql://user[:password]@host[:port]/dbname[?param=value...]
//       (also postgres://; handed to libpq unchanged, so every libpq URI
//       parameter works, e.g. ?host=/unix/socket/dir&sslmode=require)
//   sqlite:///absolute/path/file.db, sqlite://relative/path.db,
//   sqlite::memory:
//
// Per-service isolation: on PostgreSQL, Open() creates the schema named by
// DatabaseOptions::service (or ::schema) if missing (an existing schema
// needs no CREATE privilege on the database, so a least-privilege role that
// owns its schema works), and every pooled session's
// search_path is set to it, so unqualified table names refer to the
// service's own tables. On SQLite the service owns the whole file.
//
// Query planning on PostgreSQL: sessions plan with random_page_cost = 1.1
// (a random page read costs about as much as a sequential one), unless the
// server, the database or the role sets random_page_cost itself, which is
// then kept. PostgreSQL's default of 4 models spinning disks; certplane's
// databases live on SSDs or in memory, and with 4 the planner prefers a
// sequential scan that stops at the first N matches over an index walk,
// which reads most of the table when the matches cluster (rows stored in
// import batches). At 1M inventory certificates, counting the first 1,001
// certificates of one owner took 8 ms that way and 2 ms by the owner index.
// The choice is made when a session connects: a value the server is given
// later (and reloaded) reaches pooled sessions when they reconnect.
//
// SQLite sessions run in WAL mode with foreign keys on and a busy timeout,
// and keep their prepared statements for reuse (statement_cache.h).
// Write transactions begin with BEGIN IMMEDIATE, so concurrent writers queue
// on the database lock instead of deadlocking on lock upgrade.
// A sqlite::memory: database exists only inside one connection, so its pool
// always has exactly one session.
//
// Errors: SOCI and standard exceptions never escape this library. They are
// mapped to the most specific canonical code:
//   - unique violation (SQLSTATE 23505, SQLite UNIQUE): ALREADY_EXISTS
//   - foreign key violation (23503, SQLite FOREIGN KEY): FAILED_PRECONDITION
//   - serialization failure or deadlock (40001, 40P01): ABORTED (retried)
//   - connection failures, SQLite busy/locked, pool exhausted: UNAVAILABLE
//   - anything else: INTERNAL
// Messages never contain the password from the URL, neither as written nor
// percent-decoded: it is scrubbed from driver messages too.
//
// Thread safety: Database is thread-safe; Transact() may be called from many
// threads at once, each call gets its own pooled session. A soci::session
// handed to a callback must not be kept or used after the callback returns.
#ifndef CERTPLANE_LIBS_DB_DATABASE_H_
#define CERTPLANE_LIBS_DB_DATABASE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace soci {
class session;
}  // namespace soci

namespace certplane::db {

// The SQL dialect behind a Database, for the few places where SQL differs.
enum class Dialect { kPostgres, kSqlite };

absl::string_view DialectName(Dialect dialect);

// Whether a transaction writes. On SQLite a write transaction takes the
// database's write lock up front (BEGIN IMMEDIATE); a read-only one does not.
// A write inside a read-only transaction fails with INTERNAL on both
// backends: on PostgreSQL it is BEGIN READ ONLY ("read-only transaction"),
// on SQLite the session runs with PRAGMA query_only = ON ("attempt to
// write a readonly database"). A SQLite session keeps the mode of its last
// transaction, and the pool hands out one already in the wanted mode when
// it can: switching the pragma expires the session's prepared statements
// (statement_cache.h).
enum class TxMode { kReadWrite, kReadOnly };

struct DatabaseOptions {
  // The owning service, e.g. "inventory": the PostgreSQL schema name.
  // Lowercase letters, digits and '_', starting with a letter, at most 63
  // characters. Required.
  std::string service;
  // The PostgreSQL schema holding the service's tables; empty means
  // `service`. Same syntax rules. Lets tests (and unusual deployments) keep
  // several copies of one service's tables in one database.
  std::string schema;
  // Maximum number of open sessions (forced to 1 for sqlite::memory:).
  int pool_size = 4;
  // How long Transact() waits for a free session before UNAVAILABLE.
  absl::Duration acquire_timeout = absl::Seconds(10);
  // How long a SQLite statement waits on another connection's lock.
  absl::Duration sqlite_busy_timeout = absl::Seconds(10);
  // How many times Transact() re-runs a transaction that failed with a
  // serialization failure, a deadlock, a busy SQLite database, or a broken
  // connection before any work was done. 0 disables retries.
  int max_retries = 4;
  // First backoff before a retry; doubles each attempt, with jitter.
  absl::Duration retry_backoff = absl::Milliseconds(20);
};

// A transaction body. It runs inside BEGIN ... COMMIT on a pooled session;
// returning a non-OK status or throwing rolls the transaction back and
// Transact() returns that status (exceptions converted as above). The body
// may run more than once when Transact() retries, so it must not have side
// effects outside the database that would be wrong to repeat.
//
// A body that catches a failed statement's exception and returns OK gets
// each backend's own semantics, which differ:
//   - PostgreSQL: the failed statement aborts the whole transaction; nothing
//     is saved and Transact() returns ABORTED ("aborted by an earlier failed
//     statement"). Use a SAVEPOINT to recover from a statement's failure.
//   - SQLite: only the failed statement is undone (constraint errors); the
//     transaction's other changes are committed and Transact() returns OK.
//     If SQLite rolled the whole transaction back by itself (e.g. disk
//     full), Transact() returns ABORTED.
// Portable code returns the statement's error instead of swallowing it.
using TxFn = absl::FunctionRef<absl::Status(soci::session&)>;

class Database {
 public:
  // Opens a database from a URL (see above) and checks that it is reachable.
  // INVALID_ARGUMENT for a malformed URL, unknown scheme or bad service name;
  // UNAVAILABLE when the database cannot be reached or opened;
  // FAILED_PRECONDITION when the PostgreSQL schema is missing and the role
  // may not create it.
  static absl::StatusOr<std::unique_ptr<Database>> Open(
      absl::string_view url, DatabaseOptions options);

  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  Dialect dialect() const { return dialect_; }
  const std::string& service() const { return options_.service; }
  // The PostgreSQL schema in use (DatabaseOptions::schema, else service).
  const std::string& schema() const { return options_.schema; }
  // The URL with any password replaced by "***", safe for logs.
  const std::string& redacted_url() const { return redacted_url_; }

  // Runs fn in one transaction; see TxFn. Returns OK only after COMMIT
  // succeeded. Must not be called from inside another Transact() callback on
  // the same Database (it would wait for a second session).
  absl::Status Transact(TxFn fn, TxMode mode = TxMode::kReadWrite);

  // Work-queue claiming. Append this to a row-selecting query run inside a
  // kReadWrite transaction, after any ORDER BY / LIMIT:
  //
  //   sql << "SELECT id FROM renewals WHERE state = 'pending' "
  //          "ORDER BY due LIMIT 1" + std::string(db.ClaimLockClause()), ...
  //
  // then mark the claimed rows in the same transaction. On PostgreSQL this
  // is " FOR UPDATE SKIP LOCKED": each replica locks different rows and never
  // waits for another's. On SQLite it is empty: the write transaction
  // (BEGIN IMMEDIATE) already holds the only write lock, so claims are
  // serialized and two workers can never take the same row.
  absl::string_view ClaimLockClause() const;

  // Implementation detail, public only for the migrations runner: runs `sql`
  // (one or more ';'-separated statements) on `session` with the backend's
  // native multi-statement execution (PQexec / sqlite3_exec). Throws
  // soci::soci_error on failure; call it only inside a transaction body.
  static void ExecuteScript(soci::session& session, const std::string& sql);

 private:
  class Pool;
  Database(Dialect dialect, std::string url, std::string redacted_url,
           DatabaseOptions options);

  absl::Status Initialize();
  // `status` with the URL's passwords (raw and percent-decoded) removed
  // from its message: libpq and SOCI may quote parts of the URL.
  absl::Status Scrub(const absl::Status& status) const;
  absl::StatusOr<std::unique_ptr<soci::session>> OpenSession();
  // One attempt; sets `retryable` when running fn again may succeed.
  absl::Status TransactOnce(TxFn fn, TxMode mode, bool& retryable);

  Dialect dialect_;
  std::string url_;
  std::string redacted_url_;
  std::vector<std::string> secrets_;  // see internal::UrlSecrets
  DatabaseOptions options_;
  std::unique_ptr<Pool> pool_;
};

// For a "sqlite://<path>" URL, creates the folder the file goes in (a
// fresh data directory); other URLs and ":memory:" are left alone.
// FAILED_PRECONDITION naming the folder when it cannot be made.
absl::Status PrepareSqliteDirectory(absl::string_view url);

}  // namespace certplane::db

#endif  // CERTPLANE_LIBS_DB_DATABASE_H_
