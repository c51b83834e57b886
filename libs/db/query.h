// Reading rows of a run-time built SELECT (see sql_params.h) into a struct.
//
//   struct HostRow {
//     std::string name; long long seen_us = 0;
//     void Exchange(soci::statement& st) {
//       st.exchange(soci::into(name));
//       st.exchange(soci::into(seen_us));
//     }
//   } row;
//   RETURN_IF_ERROR(db::RunQuery(sql, "SELECT name, seen_us FROM hosts "
//                                "WHERE team = " + params.Add(team),
//                                params, row, [&] { ...; return OkStatus();
//                                }));
//
// `on_row` runs once per row with `row` filled; a non-OK status stops the
// query and is returned. SOCI errors throw (soci::soci_error) like any
// statement: call it inside a Database::Transact body. Included only by
// store implementations (it pulls in SOCI's headers).
#ifndef CERTPLANE_LIBS_DB_QUERY_H_
#define CERTPLANE_LIBS_DB_QUERY_H_

#include <soci/soci.h>

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "libs/db/sql_params.h"
#include "libs/db/statement_cache.h"

namespace certplane::db {

template <typename Row>
absl::Status RunQuery(soci::session& sql, const std::string& query,
                      SqlParams& params, Row& row,
                      const std::function<absl::Status()>& on_row) {
  ReusableStatement st(sql, query);
  row.Exchange(*st);
  params.BindTo(*st);
  st.Bind();
  st->execute(false);
  while (st->fetch()) {
    if (absl::Status s = on_row(); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace certplane::db

#endif  // CERTPLANE_LIBS_DB_QUERY_H_
