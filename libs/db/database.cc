#include "libs/db/database.h"

#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>
#include <soci/sqlite3/soci-sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "libs/db/internal/errors.h"
#include "libs/db/internal/url.h"
#include "libs/db/statement_cache.h"

namespace certplane::db {
namespace {

using internal::ClassifyCurrentException;
using internal::DbError;

bool IsValidServiceName(absl::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  if (!absl::ascii_islower(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    unsigned char u = static_cast<unsigned char>(c);
    if (!absl::ascii_islower(u) && !absl::ascii_isdigit(u) && c != '_') {
      return false;
    }
  }
  return true;
}

PGconn* PostgresHandle(soci::session& session) {
  return static_cast<soci::postgresql_session_backend*>(session.get_backend())
      ->conn_;
}

::sqlite_api::sqlite3* SqliteHandle(soci::session& session) {
  return static_cast<soci::sqlite3_session_backend*>(session.get_backend())
      ->conn_;
}

void SqliteExec(soci::session& session, const std::string& sql) {
  char* error = nullptr;
  int rc = ::sqlite_api::sqlite3_exec(SqliteHandle(session), sql.c_str(),
                                      nullptr, nullptr, &error);
  if (rc != SQLITE_OK) {
    std::string message = error != nullptr ? error : "unknown SQLite error";
    ::sqlite_api::sqlite3_free(error);
    throw soci::sqlite3_soci_error(message, rc);
  }
}

// The random_page_cost that sessions plan with unless the server, database
// or role sets one (see database.h).
constexpr char kRandomPageCost[] = "1.1";

// Runs `sql` and returns the command tag of its last statement ("COMMIT",
// "ROLLBACK", ...). Throws postgresql_soci_error on failure.
std::string PostgresExec(soci::session& session, const std::string& sql) {
  PGconn* conn = PostgresHandle(session);
  PGresult* result = PQexec(conn, sql.c_str());
  ExecStatusType status =
      result != nullptr ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK ||
      status == PGRES_EMPTY_QUERY) {
    std::string tag = PQcmdStatus(result);
    PQclear(result);
    return tag;
  }
  std::string message =
      result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(conn);
  const char* state = result != nullptr
                          ? PQresultErrorField(result, PG_DIAG_SQLSTATE)
                          : nullptr;
  // The exception copies the SQLSTATE (5 chars) before the result is freed.
  char state_copy[6] = "08006";  // connection_failure when unknown
  if (state != nullptr) {
    for (int i = 0; i < 5 && state[i] != '\0'; ++i) state_copy[i] = state[i];
  } else if (PQstatus(conn) == CONNECTION_OK) {
    std::string("XX000").copy(state_copy, 5);
  }
  PQclear(result);
  throw soci::postgresql_soci_error(message, state_copy);
}

// Whether `session` is inside a transaction that COMMIT could still save.
// OK when it is; ABORTED (with what happened) when PostgreSQL has marked it
// failed, or when it already ended (SQLite rolls back by itself after some
// errors; a body may also have ended it).
absl::Status CheckTransactionOpen(soci::session& session, Dialect dialect) {
  if (dialect == Dialect::kPostgres) {
    switch (PQtransactionStatus(PostgresHandle(session))) {
      case PQTRANS_INERROR:
        return absl::AbortedError(
            "the transaction was aborted by an earlier failed statement whose "
            "exception the transaction body caught before returning OK; "
            "PostgreSQL rolls such a transaction back, so nothing was saved. "
            "Return the statement's error from the body, or wrap the "
            "statement in a SAVEPOINT to recover from it");
      case PQTRANS_IDLE:
        return absl::AbortedError(
            "the transaction was no longer open when the body returned (the "
            "body must not run COMMIT or ROLLBACK itself); it was not "
            "committed by Transact()");
      default:
        return absl::OkStatus();  // a lost connection fails at COMMIT
    }
  }
  if (::sqlite_api::sqlite3_get_autocommit(SqliteHandle(session)) != 0) {
    return absl::AbortedError(
        "the transaction was no longer open when the body returned: SQLite "
        "rolled it back after an error the body caught, or the body ran "
        "COMMIT or ROLLBACK itself; it was not committed by Transact()");
  }
  return absl::OkStatus();
}

bool InTransaction(soci::session& session, Dialect dialect) {
  if (dialect == Dialect::kPostgres) {
    return PQtransactionStatus(PostgresHandle(session)) != PQTRANS_IDLE;
  }
  return ::sqlite_api::sqlite3_get_autocommit(SqliteHandle(session)) == 0;
}

}  // namespace

absl::string_view DialectName(Dialect dialect) {
  return dialect == Dialect::kPostgres ? "PostgreSQL" : "SQLite";
}

void Database::ExecuteScript(soci::session& session, const std::string& sql) {
  if (session.get_backend_name() == "postgresql") {
    PostgresExec(session, sql);
  } else {
    SqliteExec(session, sql);
  }
}

// A bounded set of sessions. Slots are opened lazily and reopened after a
// connection failure. Guarded by mu_; opening happens outside the lock.
class Database::Pool {
 public:
  Pool(Database& db, int size) : db_(db), slots_(size) {}

  struct Lease {
    int index;
    soci::session* session;
    // SQLite: whether the session is in PRAGMA query_only mode now. Owned by
    // the lease holder until Release().
    bool* query_only;
  };

  // `read_only`: on SQLite, a free session already in query_only mode is
  // preferred (and one not in it for writes): switching the pragma expires
  // every prepared statement of the session (statement_cache.h).
  absl::StatusOr<Lease> Acquire(absl::Duration timeout, bool read_only) {
    int index = -1;
    {
      absl::MutexLock lock(&mu_);
      auto has_free = [this]() {
        mu_.AssertHeld();
        for (const Slot& s : slots_)
          if (!s.in_use) return true;
        return false;
      };
      // LockWhenWithTimeout-style wait on an already held lock.
      if (!mu_.AwaitWithTimeout(absl::Condition(&has_free), timeout)) {
        return absl::UnavailableError(absl::StrCat(
            "all ", slots_.size(), " sessions to ", db_.redacted_url_,
            " stayed busy for ", absl::FormatDuration(timeout),
            "; raise the pool size or shorten transactions"));
      }
      for (size_t i = 0; i < slots_.size(); ++i) {
        if (slots_[i].in_use) continue;
        if (index < 0 || (slots_[i].query_only == read_only &&
                          slots_[index].query_only != read_only)) {
          index = static_cast<int>(i);
        }
      }
      slots_[index].in_use = true;
    }
    Slot& slot = slots_[index];  // owned by this lease now
    if (slot.session != nullptr && !Healthy(*slot.session)) {
      slot.statements.reset();
      slot.session.reset();
      slot.query_only = false;
    }
    if (slot.session == nullptr) {
      absl::StatusOr<std::unique_ptr<soci::session>> opened = db_.OpenSession();
      if (!opened.ok()) {
        Release(index, /*broken=*/false);
        return opened.status();
      }
      slot.session = *std::move(opened);
      if (db_.dialect_ == Dialect::kSqlite) {
        slot.statements = std::make_unique<StatementCache>(*slot.session);
      }
    }
    return Lease{index, slot.session.get(), &slot.query_only};
  }

  void Release(int index, bool broken) {
    absl::MutexLock lock(&mu_);
    if (broken) {
      slots_[index].statements.reset();
      slots_[index].session.reset();
      slots_[index].query_only = false;
    }
    slots_[index].in_use = false;
  }

 private:
  struct Slot {
    std::unique_ptr<soci::session> session;
    // Destroyed before the session it belongs to.
    std::unique_ptr<StatementCache> statements;
    bool query_only = false;
    bool in_use = false;
  };

  bool Healthy(soci::session& session) {
    if (db_.dialect_ != Dialect::kPostgres) return true;
    return PQstatus(PostgresHandle(session)) == CONNECTION_OK;
  }

  Database& db_;
  absl::Mutex mu_;
  std::vector<Slot> slots_;
};

Database::Database(Dialect dialect, std::string url, std::string redacted_url,
                   DatabaseOptions options)
    : dialect_(dialect),
      url_(std::move(url)),
      redacted_url_(std::move(redacted_url)),
      options_(std::move(options)) {}

Database::~Database() = default;

absl::StatusOr<std::unique_ptr<Database>> Database::Open(
    absl::string_view url, DatabaseOptions options) {
  absl::StatusOr<internal::ParsedUrl> parsed = internal::ParseDatabaseUrl(url);
  if (!parsed.ok()) return parsed.status();
  if (!IsValidServiceName(options.service)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "service name \"", options.service,
        "\" is not a valid schema name: use 1-63 lowercase letters, digits "
        "and '_', starting with a letter"));
  }
  if (options.schema.empty()) options.schema = options.service;
  if (!IsValidServiceName(options.schema)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "schema name \"", options.schema,
        "\" is not valid: use 1-63 lowercase letters, digits and '_', "
        "starting with a letter"));
  }
  if (options.pool_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "database pool_size must be at least 1, got ", options.pool_size));
  }
  if (options.max_retries < 0) options.max_retries = 0;
  if (parsed->dialect == Dialect::kSqlite && parsed->target == ":memory:") {
    options.pool_size = 1;
  }
  int pool_size = options.pool_size;
  std::unique_ptr<Database> db(
      new Database(parsed->dialect, parsed->target,
                   internal::ScrubSecrets(parsed->redacted, parsed->secrets),
                   std::move(options)));
  db->secrets_ = std::move(parsed->secrets);
  db->pool_ = std::make_unique<Pool>(*db, pool_size);
  if (absl::Status s = db->Initialize(); !s.ok()) return db->Scrub(s);
  return db;
}

absl::StatusOr<std::unique_ptr<soci::session>> Database::OpenSession() {
  auto session = std::make_unique<soci::session>();
  try {
    if (dialect_ == Dialect::kPostgres) {
      session->open(soci::postgresql, url_);
      // The schema exists (Initialize creates it before any other session
      // is used); quoting keeps the validated name literal.
      // Notices ("already exists, skipping") would go to stderr otherwise.
      // random_page_cost: see "Query planning" in database.h.
      PostgresExec(
          *session,
          absl::StrCat(
              "SET client_min_messages TO warning; "
              "SET search_path TO \"",
              options_.schema,
              "\"; "
              "SELECT pg_catalog.set_config('random_page_cost', '",
              kRandomPageCost,
              "', false) FROM pg_catalog.pg_settings "
              "WHERE name = 'random_page_cost' AND source = 'default'"));
    } else {
      session->open(soci::sqlite3, absl::StrCat("db=", url_));
      int64_t busy_ms = absl::ToInt64Milliseconds(options_.sqlite_busy_timeout);
      SqliteExec(*session, absl::StrCat("PRAGMA busy_timeout = ", busy_ms,
                                        "; PRAGMA foreign_keys = ON;"));
      // WAL lets readers run beside the single writer. Switching the
      // journal mode takes a lock, so it waits under the busy timeout.
      SqliteExec(*session,
                 "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
    }
  } catch (...) {
    DbError error = ClassifyCurrentException(absl::StrCat(
        "cannot open ", DialectName(dialect_), " database ", redacted_url_));
    // Failing to open is always a reachability problem for the caller.
    if (error.status.code() == absl::StatusCode::kInternal) {
      return absl::UnavailableError(error.status.message());
    }
    return error.status;
  }
  return session;
}

absl::Status Database::Scrub(const absl::Status& status) const {
  if (status.ok() || secrets_.empty()) return status;
  return absl::Status(status.code(),
                      internal::ScrubSecrets(status.message(), secrets_));
}

absl::Status Database::Initialize() {
  if (dialect_ == Dialect::kSqlite) {
    // Opening one session proves the file can be opened and sets WAL mode.
    return Transact([](soci::session&) { return absl::OkStatus(); },
                    TxMode::kReadOnly);
  }
  // Replicas starting together would race on CREATE SCHEMA (both see it
  // missing, one fails with a unique violation), so the check and the
  // creation run under an advisory lock. CREATE SCHEMA IF NOT EXISTS is not
  // used on an existing schema: it needs CREATE on the database even then,
  // which a least-privilege role owning its schema lacks. The search_path
  // set on every session may name a schema that does not exist yet;
  // PostgreSQL accepts that.
  return Transact([this](soci::session& sql) -> absl::Status {
    PostgresExec(sql, absl::StrCat("SELECT pg_advisory_xact_lock(hashtext("
                                   "'certplane schema ",
                                   options_.schema, "'))"));
    int exists = 0;
    sql << "SELECT COUNT(*) FROM pg_catalog.pg_namespace WHERE nspname = :n",
        soci::use(options_.schema), soci::into(exists);
    if (exists > 0) return absl::OkStatus();
    try {
      PostgresExec(sql,
                   absl::StrCat("CREATE SCHEMA \"", options_.schema, "\""));
    } catch (const soci::postgresql_soci_error& e) {
      if (e.sqlstate() != "42501") throw;  // insufficient_privilege
      return absl::FailedPreconditionError(absl::StrCat(
          "schema \"", options_.schema, "\" does not exist in ", redacted_url_,
          " and the connecting role may not create it (",
          absl::StripAsciiWhitespace(e.get_error_message()),
          "); create it beforehand (CREATE SCHEMA \"", options_.schema,
          "\" AUTHORIZATION <role>) or GRANT CREATE ON DATABASE to the role"));
    }
    return absl::OkStatus();
  });
}

absl::string_view Database::ClaimLockClause() const {
  return dialect_ == Dialect::kPostgres ? " FOR UPDATE SKIP LOCKED" : "";
}

absl::Status Database::Transact(TxFn fn, TxMode mode) {
  absl::Duration backoff = options_.retry_backoff;
  absl::BitGen rng;
  for (int attempt = 0;; ++attempt) {
    bool retryable = false;
    absl::Status status = TransactOnce(fn, mode, retryable);
    if (status.ok() || !retryable || attempt >= options_.max_retries) {
      return Scrub(status);
    }
    absl::SleepFor(backoff * absl::Uniform(rng, 0.5, 1.5));
    backoff *= 2;
  }
}

absl::Status Database::TransactOnce(TxFn fn, TxMode mode, bool& retryable) {
  retryable = false;
  const bool read_only = mode == TxMode::kReadOnly;
  absl::StatusOr<Pool::Lease> lease =
      pool_->Acquire(options_.acquire_timeout, read_only);
  if (!lease.ok()) return lease.status();
  soci::session& session = *lease->session;
  auto release = [&](bool broken) { pool_->Release(lease->index, broken); };

  std::string begin_sql;
  bool switched_mode = false;
  if (dialect_ == Dialect::kPostgres) {
    begin_sql = read_only ? "BEGIN READ ONLY" : "BEGIN";
  } else {
    // SQLite has no read-only transactions; query_only makes every write on
    // the connection fail (SQLITE_READONLY). A session stays in the mode of
    // its last transaction, since switching expires its statements.
    if (*lease->query_only != read_only) {
      begin_sql =
          read_only ? "PRAGMA query_only = ON; " : "PRAGMA query_only = OFF; ";
      *lease->query_only = read_only;
      switched_mode = true;
    }
    absl::StrAppend(&begin_sql, read_only ? "BEGIN" : "BEGIN IMMEDIATE");
  }
  try {
    ExecuteScript(session, begin_sql);
  } catch (...) {
    DbError error = ClassifyCurrentException("begin transaction");
    // A session whose mode switch may not have happened is not reused.
    release(error.connection_lost || switched_mode);
    // Nothing ran yet, so a lost connection is safe to retry on a new one.
    retryable = error.retryable || error.connection_lost;
    return error.status;
  }

  absl::Status status;
  DbError error;
  bool failed_by_exception = false;
  try {
    status = fn(session);
  } catch (...) {
    error = ClassifyCurrentException("");
    status = error.status;
    failed_by_exception = true;
  }
  // A body that caught a statement's exception and returned OK may leave a
  // transaction that COMMIT cannot save: PostgreSQL answers COMMIT on an
  // aborted transaction with ROLLBACK, not an error.
  if (status.ok()) status = CheckTransactionOpen(session, dialect_);
  bool commit_sent = false;
  if (status.ok()) {
    try {
      commit_sent = true;
      if (dialect_ == Dialect::kPostgres) {
        std::string tag = PostgresExec(session, "COMMIT");
        if (tag != "COMMIT") {
          release(false);
          return absl::AbortedError(absl::StrCat(
              "PostgreSQL answered COMMIT with \"", tag,
              "\": the transaction was rolled back and nothing was saved"));
        }
      } else {
        SqliteExec(session, "COMMIT");
      }
      release(false);
      return absl::OkStatus();
    } catch (...) {
      error = ClassifyCurrentException("commit");
      status = error.status;
      failed_by_exception = true;
    }
  }
  bool broken = false;
  if (failed_by_exception) {
    broken = error.connection_lost;
    retryable = error.retryable;
    if (dialect_ == Dialect::kPostgres &&
        PQstatus(PostgresHandle(session)) != CONNECTION_OK) {
      // libpq reports a dropped connection without a SQLSTATE.
      broken = true;
      status = absl::UnavailableError(absl::StrCat(
          "lost connection to ", redacted_url_, ": ", status.message()));
    }
    // The server discards an uncommitted transaction when the connection
    // drops, so running it again is safe unless COMMIT itself was sent.
    if (broken && !commit_sent) retryable = true;
  }
  if (!broken && InTransaction(session, dialect_)) {
    try {
      ExecuteScript(session, "ROLLBACK");
    } catch (...) {
      // A session whose rollback fails is in an unknown state: drop it.
      broken = true;
    }
  }
  release(broken);
  return status;
}

absl::Status PrepareSqliteDirectory(absl::string_view url) {
  absl::string_view path = url;
  if (!absl::ConsumePrefix(&path, "sqlite://") || path == ":memory:") {
    return absl::OkStatus();
  }
  std::filesystem::path parent =
      std::filesystem::path(std::string(path)).parent_path();
  if (parent.empty()) return absl::OkStatus();
  std::error_code error;
  std::filesystem::create_directories(parent, error);
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat("--database_url: cannot create directory ",
                     parent.string(), ": ", error.message()));
  }
  return absl::OkStatus();
}

}  // namespace certplane::db
