#include "libs/db/statement_cache.h"

#include <soci/sqlite3/soci-sqlite3.h>

#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace certplane::db {
namespace {

constexpr size_t kMaxKeptStatements = 256;
constexpr size_t kMaxKeptSqlBytes = 4096;

// Which session has which cache. Leaked on purpose (no static destructor).
absl::Mutex& RegistryMutex() {
  static absl::Mutex* mu = new absl::Mutex;
  return *mu;
}
absl::flat_hash_map<const soci::session*, StatementCache*>& Registry() {
  static auto* registry =
      new absl::flat_hash_map<const soci::session*, StatementCache*>;
  return *registry;
}

std::unique_ptr<soci::statement> Prepare(soci::session& session,
                                         const std::string& sql) {
  auto st = std::make_unique<soci::statement>(session);
  st->alloc();
  st->prepare(sql, soci::details::st_one_time_query);
  return st;
}

}  // namespace

struct StatementCache::Kept {
  absl::flat_hash_map<std::string, std::unique_ptr<soci::statement>> by_sql;
};

StatementCache::StatementCache(soci::session& session)
    : session_(session), kept_(std::make_unique<Kept>()) {
  absl::MutexLock lock(&RegistryMutex());
  Registry()[&session_] = this;
}

StatementCache::~StatementCache() {
  absl::MutexLock lock(&RegistryMutex());
  Registry().erase(&session_);
}

StatementCache* StatementCache::Of(soci::session& session) {
  absl::ReaderMutexLock lock(&RegistryMutex());
  auto it = Registry().find(&session);
  return it == Registry().end() ? nullptr : it->second;
}

std::unique_ptr<soci::statement> StatementCache::Take(const std::string& sql) {
  auto it = kept_->by_sql.find(sql);
  if (it == kept_->by_sql.end()) return Prepare(session_, sql);
  std::unique_ptr<soci::statement> st = std::move(it->second);
  kept_->by_sql.erase(it);
  return st;
}

void StatementCache::Return(const std::string& sql,
                            std::unique_ptr<soci::statement> st) {
  st->bind_clean_up();
  // A statement whose rows were not all read still holds its cursor.
  auto* backend =
      static_cast<soci::sqlite3_statement_backend*>(st->get_backend());
  if (backend != nullptr && backend->stmt_ != nullptr) {
    sqlite_api::sqlite3_reset(backend->stmt_);
  }
  if (kept_->by_sql.size() >= kMaxKeptStatements) kept_->by_sql.clear();
  kept_->by_sql.try_emplace(sql, std::move(st));
}

ReusableStatement::ReusableStatement(soci::session& session,
                                     const std::string& sql)
    : cache_(sql.size() <= kMaxKeptSqlBytes ? StatementCache::Of(session)
                                            : nullptr),
      sql_(cache_ != nullptr ? sql : std::string()),
      st_(cache_ != nullptr ? cache_->Take(sql) : Prepare(session, sql)) {}

ReusableStatement::~ReusableStatement() {
  if (cache_ != nullptr) cache_->Return(sql_, std::move(st_));
}

}  // namespace certplane::db
