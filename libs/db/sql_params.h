// Parameters for a statement whose SQL is built at run time (filters,
// multi-row INSERTs). Each value is bound by name (":p<n>"), so the order
// in which placeholders appear in the SQL does not matter; each placeholder
// may appear only once (SOCI's PostgreSQL backend binds a repeated name only
// at its first occurrence). Values live in deques, so the references SOCI
// keeps stay valid while more are added.
//
//   db::SqlParams params;
//   std::string sql = "SELECT id FROM t WHERE owner = " + params.Add(owner);
//   db::ReusableStatement st(session, sql);   // statement_cache.h
//   params.BindTo(*st);
//   st.Bind(); st->execute(true);
//
// or db::ExecuteWithParams(session, sql, params) for statements without
// results (returns the affected row count on both backends).
#ifndef CERTPLANE_LIBS_DB_SQL_PARAMS_H_
#define CERTPLANE_LIBS_DB_SQL_PARAMS_H_

#include <deque>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace soci {
class session;
class statement;
}  // namespace soci

namespace certplane::db {

class SqlParams {
 public:
  // Each returns the placeholder (":p<n>") to put into the SQL.
  std::string Add(std::string value);
  std::string Add(long long value);

  // Binds every value to `statement` by name (before prepare()).
  void BindTo(soci::statement& statement);

  int size() const { return static_cast<int>(bound_.size()); }

 private:
  struct Bound {
    std::string name;
    std::string* string_value;
    long long* int_value;
  };
  std::string Name(std::string* s, long long* i);

  std::deque<std::string> strings_;
  std::deque<long long> ints_;
  std::vector<Bound> bound_;
};

// Prepares and runs `sql` with `params`; returns the number of rows it
// changed (asked of SQLite with changes(), whose count SOCI 4.0 does not
// always report). Throws soci::soci_error like any statement; call it
// inside a Database::Transact body.
long long ExecuteWithParams(soci::session& session, const std::string& sql,
                            SqlParams& params);

// The bytes of a binary value stored as hex (a SQLite TEXT column, or
// PostgreSQL's encode(..., 'hex')). DATA_LOSS naming `what` when it is not
// an even number of hex digits: the row was edited or damaged.
absl::StatusOr<std::string> DecodeHexColumn(absl::string_view hex,
                                            absl::string_view what);

// Times as stored: int64 microseconds since the Unix epoch, with
// absl::InfinitePast()/InfiniteFuture() as INT64_MIN/INT64_MAX, so "never"
// and "always" survive a round trip and compare correctly in SQL.
long long TimeToMicros(absl::Time t);
absl::Time MicrosToTime(long long us);

}  // namespace certplane::db

#endif  // CERTPLANE_LIBS_DB_SQL_PARAMS_H_
