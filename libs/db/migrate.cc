#include "libs/db/migrate.h"

#include <soci/soci.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/types/span.h"
#include "libs/db/database.h"
#include "libs/db/internal/errors.h"

namespace certplane::db {
namespace {

uint64_t Fnv1a64(absl::string_view data) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : data) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

constexpr char kPostgresTable[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
    " checksum TEXT NOT NULL)";

constexpr char kSqliteTable[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " applied_at TEXT NOT NULL"
    "   DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),"
    " checksum TEXT NOT NULL)";

struct Recorded {
  std::string name;
  std::string checksum;
};

absl::Status Validate(absl::Span<const Migration> migrations) {
  int previous = 0;
  for (const Migration& m : migrations) {
    if (m.version <= previous) {
      return absl::InvalidArgumentError(absl::StrCat(
          "migration versions must be positive and strictly increasing; "
          "version ",
          m.version, " (\"", m.name, "\") follows version ", previous));
    }
    if (m.name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("migration version ", m.version, " has no name"));
    }
    previous = m.version;
  }
  return absl::OkStatus();
}

}  // namespace

std::string MigrationChecksum(const std::string& sql) {
  return absl::StrFormat("%016x", Fnv1a64(sql));
}

absl::Status Migrate(Database& db, absl::Span<const Migration> migrations) {
  if (absl::Status s = Validate(migrations); !s.ok()) return s;
  const bool postgres = db.dialect() == Dialect::kPostgres;
  const int newest_known = migrations.empty() ? 0 : migrations.back().version;
  const int64_t lock_key = static_cast<int64_t>(
      Fnv1a64(absl::StrCat("certplane migrations ", db.schema())));

  // One transaction per migration. Each re-reads what is recorded under the
  // lock, so a replica that lost the race simply finds nothing to do.
  for (;;) {
    bool done = false;
    absl::Status status = db.Transact([&](soci::session& sql) -> absl::Status {
      if (postgres) {
        Database::ExecuteScript(
            sql, absl::StrCat("SELECT pg_advisory_xact_lock(", lock_key, ")"));
      }
      Database::ExecuteScript(sql, postgres ? kPostgresTable : kSqliteTable);

      std::map<int, Recorded> recorded;
      int version = 0;
      std::string name, checksum;
      soci::statement st =
          (sql.prepare << "SELECT version, name, checksum "
                          "FROM schema_migrations ORDER BY version",
           soci::into(version), soci::into(name), soci::into(checksum));
      st.execute();
      while (st.fetch()) recorded[version] = Recorded{name, checksum};

      if (!recorded.empty() && recorded.rbegin()->first > newest_known) {
        return absl::FailedPreconditionError(absl::StrCat(
            "database schema of service \"", db.service(), "\" is at version ",
            recorded.rbegin()->first, " (\"", recorded.rbegin()->second.name,
            "\"), newer than the newest migration this binary knows (",
            newest_known, "); run a binary at least that new"));
      }
      const Migration* pending = nullptr;
      for (const Migration& m : migrations) {
        const std::string& m_sql = postgres ? m.postgres_sql : m.sqlite_sql;
        auto it = recorded.find(m.version);
        if (it == recorded.end()) {
          if (pending == nullptr) pending = &m;
          continue;
        }
        if (pending != nullptr) {
          return absl::FailedPreconditionError(absl::StrCat(
              "migration ", pending->version, " (\"", pending->name,
              "\") is not applied but later migration ", m.version,
              " is; new migrations must have versions above every applied "
              "one"));
        }
        if (it->second.checksum != MigrationChecksum(m_sql)) {
          return absl::FailedPreconditionError(absl::StrCat(
              "migration ", m.version, " (\"", m.name,
              "\") was changed after it was applied to service \"",
              db.service(), "\" (recorded checksum ", it->second.checksum,
              ", now ", MigrationChecksum(m_sql),
              "); restore its SQL and add a new migration instead"));
        }
      }
      for (const auto& [v, r] : recorded) {
        bool known = false;
        for (const Migration& m : migrations) known |= m.version == v;
        if (!known) {
          return absl::FailedPreconditionError(
              absl::StrCat("database records migration ", v, " (\"", r.name,
                           "\") that this binary does not know"));
        }
      }
      if (pending == nullptr) {
        done = true;
        return absl::OkStatus();
      }

      const std::string& pending_sql =
          postgres ? pending->postgres_sql : pending->sqlite_sql;
      try {
        Database::ExecuteScript(sql, pending_sql);
      } catch (...) {
        internal::DbError error = internal::ClassifyCurrentException(
            absl::StrCat("migration ", pending->version, " (\"", pending->name,
                         "\") failed"));
        return error.status;
      }
      std::string sum = MigrationChecksum(pending_sql);
      int v = pending->version;
      sql << "INSERT INTO schema_migrations(version, name, checksum) "
             "VALUES (:version, :name, :checksum)",
          soci::use(v), soci::use(pending->name), soci::use(sum);
      return absl::OkStatus();
    });
    if (!status.ok()) return status;
    if (done) return absl::OkStatus();
  }
}

}  // namespace certplane::db
