// Prepared statements kept for reuse on SQLite sessions.
//
// Preparing (parsing and planning) a statement is most of what a short
// SQLite query costs: for the inventory's GetCertificate, over half of the
// service's CPU went to sqlite3_prepare_v2 of the same four SELECTs. Each
// SQLite session of a Database pool therefore keeps its prepared statements
// by their text (up to 256 of them, each at most 4 KiB of SQL; multi-row
// INSERTs of many rows are not kept), and ReusableStatement hands a kept
// one out again with fresh bindings.
//
//   db::ReusableStatement st(sql, query);
//   st->exchange(soci::into(name));     // into and use elements, as usual
//   params.BindTo(*st);
//   st.Bind();
//   st->execute(true);
//
// Elsewhere (PostgreSQL, sessions outside a pool, long SQL) it is a fresh
// one-time statement: on PostgreSQL one PQexecParams round trip. (Keeping
// named PostgreSQL statements would need DEALLOCATE on a connection that
// may be broken or mid-transaction, which SOCI reports by throwing from a
// destructor; that is not done.)
//
// A statement is used by one thread at a time, like its session.
#ifndef CERTPLANE_LIBS_DB_STATEMENT_CACHE_H_
#define CERTPLANE_LIBS_DB_STATEMENT_CACHE_H_

#include <soci/soci.h>

#include <memory>
#include <string>

namespace certplane::db {

class StatementCache;

class ReusableStatement {
 public:
  // Allocated and prepared for `sql`, with nothing bound. `sql` may be a
  // temporary: a statement that will be kept holds a copy of it.
  ReusableStatement(soci::session& session, const std::string& sql);
  // Gives a kept statement back (bindings released, SQLite cursor reset).
  ~ReusableStatement();

  ReusableStatement(const ReusableStatement&) = delete;
  ReusableStatement& operator=(const ReusableStatement&) = delete;

  soci::statement& operator*() { return *st_; }
  soci::statement* operator->() { return st_.get(); }

  // Defines and binds the exchanged into and use elements.
  void Bind() { st_->define_and_bind(); }

 private:
  StatementCache* cache_;  // Null: not kept.
  std::string sql_;        // The key it is kept under; empty when not kept.
  std::unique_ptr<soci::statement> st_;
};

// The statements of one SQLite session; owned by the pool next to the
// session and destroyed before it. Internal to libs/db.
class StatementCache {
 public:
  explicit StatementCache(soci::session& session);
  ~StatementCache();

  StatementCache(const StatementCache&) = delete;
  StatementCache& operator=(const StatementCache&) = delete;

  // The cache of `session`; null when it has none.
  static StatementCache* Of(soci::session& session);

  std::unique_ptr<soci::statement> Take(const std::string& sql);
  void Return(const std::string& sql, std::unique_ptr<soci::statement> st);

 private:
  struct Kept;
  soci::session& session_;
  std::unique_ptr<Kept> kept_;
};

}  // namespace certplane::db

#endif  // CERTPLANE_LIBS_DB_STATEMENT_CACHE_H_
