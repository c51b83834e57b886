// The SOCI implementation of RenewalStore (see issuance_store.h, and
// migrations.cc for the renewals and feed_cursors tables).
#include <soci/soci.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/aip/filter.h"
#include "libs/db/database.h"
#include "libs/db/query.h"
#include "libs/db/sql_params.h"
#include "services/issuance/issuance_store.h"

namespace certplane::issuance {
namespace {

using db::MicrosToTime;
using db::RunQuery;
using db::SqlParams;
using db::TimeToMicros;

constexpr char kColumns[] =
    "certificate_id, version, not_after_us, renew_time_us, failure_count, "
    "last_error, last_order_id, next_attempt_us, lease_owner, "
    "lease_expiry_us, update_time_us";

struct RenewalRow {
  std::string certificate_id, version, last_error, last_order_id, lease_owner;
  long long not_after_us = 0, renew_us = 0, next_us = 0, lease_us = 0,
            update_us = 0;
  int failures = 0;
  void Exchange(soci::statement& st) {
    st.exchange(soci::into(certificate_id));
    st.exchange(soci::into(version));
    st.exchange(soci::into(not_after_us));
    st.exchange(soci::into(renew_us));
    st.exchange(soci::into(failures));
    st.exchange(soci::into(last_error));
    st.exchange(soci::into(last_order_id));
    st.exchange(soci::into(next_us));
    st.exchange(soci::into(lease_owner));
    st.exchange(soci::into(lease_us));
    st.exchange(soci::into(update_us));
  }
  RenewalRecord ToRecord() const {
    RenewalRecord r;
    r.certificate_id = certificate_id;
    r.version = version;
    r.not_after = MicrosToTime(not_after_us);
    r.renew_time = MicrosToTime(renew_us);
    r.failure_count = failures;
    r.last_error = last_error;
    r.last_order_id = last_order_id;
    r.next_attempt_time = MicrosToTime(next_us);
    r.lease_owner = lease_owner;
    r.lease_expiry = MicrosToTime(lease_us);
    r.update_time = MicrosToTime(update_us);
    return r;
  }
};

absl::Status Select(soci::session& sql, const std::string& where_and_order,
                    SqlParams& p, std::vector<RenewalRecord>& out) {
  RenewalRow row;
  return RunQuery(
      sql,
      absl::StrCat("SELECT ", kColumns, " FROM renewals ", where_and_order), p,
      row, [&]() -> absl::Status {
        out.push_back(row.ToRecord());
        return absl::OkStatus();
      });
}

absl::StatusOr<std::optional<RenewalRecord>> ReadOne(soci::session& sql,
                                                     const std::string& id,
                                                     absl::string_view lock) {
  std::vector<RenewalRecord> found;
  SqlParams p;
  absl::Status s = Select(
      sql, absl::StrCat("WHERE certificate_id = ", p.Add(id), lock), p, found);
  if (!s.ok()) return s;
  if (found.empty()) return std::optional<RenewalRecord>();
  return std::optional<RenewalRecord>(std::move(found.front()));
}

class SqlRenewalStore final : public RenewalStore {
 public:
  explicit SqlRenewalStore(db::Database& db)
      : db_(db),
        row_lock_(db.dialect() == db::Dialect::kPostgres ? " FOR UPDATE" : "") {
  }

  absl::Status UpsertRenewal(const RenewalRecord& renewal,
                             absl::Time now) override {
    if (renewal.certificate_id.empty() || renewal.version.empty()) {
      return absl::InvalidArgumentError(
          "a renewal needs a certificate id and a version");
    }
    return db_.Transact([&](soci::session& sql) -> absl::Status {
      absl::StatusOr<std::optional<RenewalRecord>> current =
          ReadOne(sql, renewal.certificate_id, row_lock_);
      if (!current.ok()) return current.status();
      long long not_after = TimeToMicros(renewal.not_after);
      long long renew = TimeToMicros(renewal.renew_time);
      long long now_us = TimeToMicros(now);
      if (!current->has_value()) {
        long long never = INT64_MIN;
        sql << "INSERT INTO renewals (" << kColumns
            << ") VALUES (:c, :v, :na, :r, 0, '', '', :n, '', :l, :u)",
            soci::use(renewal.certificate_id), soci::use(renewal.version),
            soci::use(not_after), soci::use(renew), soci::use(never),
            soci::use(never), soci::use(now_us);
        return absl::OkStatus();
      }
      if ((*current)->version == renewal.version) {
        sql << "UPDATE renewals SET not_after_us = :na, renew_time_us = :r, "
               "update_time_us = :u WHERE certificate_id = :c",
            soci::use(not_after), soci::use(renew), soci::use(now_us),
            soci::use(renewal.certificate_id);
        return absl::OkStatus();
      }
      long long never = INT64_MIN;
      sql << "UPDATE renewals SET version = :v, not_after_us = :na, "
             "renew_time_us = :r, failure_count = 0, last_error = '', "
             "last_order_id = '', next_attempt_us = :n, update_time_us = :u "
             "WHERE certificate_id = :c",
          soci::use(renewal.version), soci::use(not_after), soci::use(renew),
          soci::use(never), soci::use(now_us),
          soci::use(renewal.certificate_id);
      return absl::OkStatus();
    });
  }

  absl::Status DeleteRenewal(absl::string_view certificate_id) override {
    const std::string id(certificate_id);
    return db_.Transact([&](soci::session& sql) -> absl::Status {
      sql << "DELETE FROM renewals WHERE certificate_id = :c", soci::use(id);
      return absl::OkStatus();
    });
  }

  absl::StatusOr<RenewalRecord> GetRenewal(
      absl::string_view certificate_id) override {
    std::optional<RenewalRecord> out;
    absl::Status s = db_.Transact(
        [&](soci::session& sql) -> absl::Status {
          absl::StatusOr<std::optional<RenewalRecord>> r =
              ReadOne(sql, std::string(certificate_id), "");
          if (!r.ok()) return r.status();
          out = *std::move(r);
          return absl::OkStatus();
        },
        db::TxMode::kReadOnly);
    if (!s.ok()) return s;
    if (!out.has_value()) {
      return absl::NotFoundError(absl::StrCat("certificate ", certificate_id,
                                              " is not followed for renewal"));
    }
    return *std::move(out);
  }

  absl::StatusOr<std::vector<RenewalRecord>> ClaimDueRenewals(
      absl::string_view worker, absl::Time now, absl::Duration lease,
      int limit) override {
    if (worker.empty() || limit < 1 || lease <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          "ClaimDueRenewals needs a worker, a positive limit and a lease");
    }
    std::vector<RenewalRecord> out;
    absl::Status s = db_.Transact([&](soci::session& sql) -> absl::Status {
      out.clear();
      SqlParams p;
      const long long now_us = TimeToMicros(now);
      absl::Status qs =
          Select(sql,
                 absl::StrCat("WHERE renew_time_us <= ", p.Add(now_us),
                              " AND next_attempt_us <= ", p.Add(now_us),
                              " AND lease_expiry_us <= ", p.Add(now_us),
                              " ORDER BY renew_time_us, certificate_id LIMIT ",
                              p.Add(static_cast<long long>(limit)),
                              db_.ClaimLockClause()),
                 p, out);
      if (!qs.ok() || out.empty()) return qs;
      SqlParams up;
      std::vector<std::string> ids;
      for (RenewalRecord& r : out) {
        r.lease_owner = std::string(worker);
        r.lease_expiry = now + lease;
        ids.push_back(up.Add(r.certificate_id));
      }
      db::ExecuteWithParams(
          sql,
          absl::StrCat(
              "UPDATE renewals SET lease_owner = ", up.Add(std::string(worker)),
              ", lease_expiry_us = ", up.Add(TimeToMicros(now + lease)),
              " WHERE certificate_id IN (", absl::StrJoin(ids, ", "), ")"),
          up);
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return out;
  }

  absl::Status FinishRenewal(absl::string_view certificate_id,
                             absl::string_view worker,
                             const RenewalUpdate& update,
                             absl::Time now) override {
    const std::string id(certificate_id);
    return db_.Transact([&](soci::session& sql) -> absl::Status {
      absl::StatusOr<std::optional<RenewalRecord>> current =
          ReadOne(sql, id, row_lock_);
      if (!current.ok()) return current.status();
      if (!current->has_value() || (*current)->lease_owner != worker) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the renewal of ", id, " is no longer leased to ", worker));
      }
      SqlParams p;
      std::vector<std::string> sets = {
          "lease_owner = ''",
          absl::StrCat("lease_expiry_us = ", p.Add(INT64_MIN)),
          absl::StrCat("update_time_us = ", p.Add(TimeToMicros(now)))};
      if (update.last_order_id.has_value()) {
        sets.push_back(
            absl::StrCat("last_order_id = ", p.Add(*update.last_order_id)));
      }
      if (update.failure_count.has_value()) {
        sets.push_back(
            absl::StrCat("failure_count = ",
                         p.Add(static_cast<long long>(*update.failure_count))));
      }
      if (update.last_error.has_value()) {
        sets.push_back(
            absl::StrCat("last_error = ", p.Add(*update.last_error)));
      }
      if (update.next_attempt_time.has_value()) {
        sets.push_back(
            absl::StrCat("next_attempt_us = ",
                         p.Add(TimeToMicros(*update.next_attempt_time))));
      }
      db::ExecuteWithParams(
          sql,
          absl::StrCat("UPDATE renewals SET ", absl::StrJoin(sets, ", "),
                       " WHERE certificate_id = ", p.Add(id)),
          p);
      return absl::OkStatus();
    });
  }

  absl::Status PokeRenewal(absl::string_view certificate_id,
                           absl::string_view order_id,
                           absl::Time now) override {
    const std::string id(certificate_id), order(order_id);
    return db_.Transact([&](soci::session& sql) -> absl::Status {
      long long now_us = TimeToMicros(now);
      sql << "UPDATE renewals SET next_attempt_us = :n WHERE certificate_id "
             "= :c AND last_order_id = :o AND next_attempt_us > :m",
          soci::use(now_us), soci::use(id), soci::use(order), soci::use(now_us);
      return absl::OkStatus();
    });
  }

  absl::StatusOr<RenewalPage> ListRenewals(int page_size,
                                           absl::string_view page_token,
                                           bool failing_only) override {
    if (page_size < 1 || page_size > kMaxOrderPageSize) {
      return absl::InvalidArgumentError(absl::StrCat(
          "page_size ", page_size, " is outside [1, ", kMaxOrderPageSize, "]"));
    }
    const std::string fingerprint =
        absl::StrCat("renewals\n", failing_only ? "failing" : "all");
    std::string after;
    if (!page_token.empty()) {
      absl::StatusOr<aip::PageCursor> c =
          aip::DecodePageToken(fingerprint, page_token);
      if (!c.ok()) return c.status();
      if (c->values.size() != 1) {
        return absl::InvalidArgumentError(
            "page_token is malformed: not from a previous page");
      }
      after = c->values[0];
    }
    RenewalPage page;
    absl::Status s = db_.Transact(
        [&](soci::session& sql) -> absl::Status {
          page = RenewalPage();
          SqlParams p;
          std::string where =
              absl::StrCat("WHERE certificate_id > ", p.Add(after));
          if (failing_only) absl::StrAppend(&where, " AND failure_count > 0");
          absl::Status qs =
              Select(sql,
                     absl::StrCat(where, " ORDER BY certificate_id LIMIT ",
                                  p.Add(static_cast<long long>(page_size + 1))),
                     p, page.renewals);
          if (!qs.ok()) return qs;
          if (page.renewals.size() > static_cast<size_t>(page_size)) {
            page.renewals.resize(page_size);
            page.next_page_token = aip::EncodePageToken(
                fingerprint, {{page.renewals.back().certificate_id}});
          }
          return absl::OkStatus();
        },
        db::TxMode::kReadOnly);
    if (!s.ok()) return s;
    return page;
  }

  absl::StatusOr<int64_t> GetCursor(absl::string_view name) override {
    long long value = 0;
    absl::Status s = db_.Transact(
        [&](soci::session& sql) -> absl::Status {
          value = 0;
          std::string n(name);
          soci::indicator ind = soci::i_null;
          sql << "SELECT revision FROM feed_cursors WHERE name = :n",
              soci::use(n), soci::into(value, ind);
          if (ind != soci::i_ok) value = 0;
          return absl::OkStatus();
        },
        db::TxMode::kReadOnly);
    if (!s.ok()) return s;
    return value;
  }

  absl::Status SetCursor(absl::string_view name, int64_t value) override {
    const std::string n(name);
    long long v = value;
    return db_.Transact([&](soci::session& sql) -> absl::Status {
      long long current = -1;
      soci::indicator ind = soci::i_null;
      sql << "SELECT revision FROM feed_cursors WHERE name = :n" << row_lock_,
          soci::use(n), soci::into(current, ind);
      if (ind != soci::i_ok) {
        sql << "INSERT INTO feed_cursors (name, revision) VALUES (:n, :v)",
            soci::use(n), soci::use(v);
      } else if (v > current) {
        sql << "UPDATE feed_cursors SET revision = :v WHERE name = :n",
            soci::use(v), soci::use(n);
      }
      return absl::OkStatus();
    });
  }

 private:
  db::Database& db_;
  const std::string row_lock_;
};

}  // namespace

std::unique_ptr<RenewalStore> NewSqlRenewalStore(db::Database& db) {
  return std::make_unique<SqlRenewalStore>(db);
}

}  // namespace certplane::issuance
