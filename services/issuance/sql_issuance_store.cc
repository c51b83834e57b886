// The SOCI implementation of IssuanceStore (see issuance_store.h and
// migrations.h for the schema).
#include <soci/soci.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "libs/db/database.h"
#include "libs/db/query.h"
#include "libs/db/sql_params.h"
#include "services/issuance/issuance_store.h"

namespace certplane::issuance {
namespace {

using db::Dialect;
using db::RunQuery;
using db::SqlParams;

constexpr absl::string_view kStates[] = {
    kPendingApproval, kApproved, kKeyReady, kSubmitted, kAwaitingCertificate,
    kIssued,          kRejected, kFailed,   kCancelled};

long long Micros(absl::Time t) {
  if (t == absl::InfinitePast()) return INT64_MIN;
  if (t == absl::InfiniteFuture()) return INT64_MAX;
  return absl::ToUnixMicros(t);
}

absl::Time FromMicros(long long us) {
  if (us == INT64_MIN) return absl::InfinitePast();
  if (us == INT64_MAX) return absl::InfiniteFuture();
  return absl::FromUnixMicros(us);
}

std::string RandomHex(absl::BitGen& gen, int words) {
  std::string out;
  for (int i = 0; i < words; ++i) {
    const uint64_t v = absl::Uniform<uint64_t>(gen);
    out += absl::BytesToHexString(
        absl::string_view(reinterpret_cast<const char*>(&v), sizeof(v)));
  }
  return out;
}

std::string NewOrderId(absl::BitGen& gen) {
  return absl::StrCat("o", RandomHex(gen, 2));
}

absl::Status CheckOrderId(absl::string_view id) {
  const bool ok = id.size() == 33 && id[0] == 'o' &&
                  std::all_of(id.begin() + 1, id.end(), [](char c) {
                    return absl::ascii_isdigit(c) || (c >= 'a' && c <= 'f');
                  });
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("order id \"", absl::CHexEscape(id.substr(0, 64)),
                   "\" is malformed: expected \"o\" and 32 lowercase hex "
                   "digits"));
}

absl::StatusOr<std::string> FromHex(absl::string_view hex,
                                    absl::string_view what) {
  return db::DecodeHexColumn(hex, absl::StrCat("stored ", what));
}

// The columns of an order row, in the order OrderRow binds them.
constexpr char kOrderColumns[] =
    "order_id, state, reason, issuer_id, owner, environment, requester, "
    "common_name, sans, spec, request_id, request_hash, required_approvals, "
    "renewal_of, key_name, csr_pem, certificate_id, certificate_version, "
    "certificate_der, serial_hex, not_after_us, failure_reason, attempts, "
    "next_attempt_us, lease_owner, lease_expiry_us, create_time_us, "
    "update_time_us, etag";

struct OrderRow {
  std::string order_id, state, reason, issuer_id, owner, environment, requester,
      common_name, sans, spec_hex, request_id, request_hash, renewal_of,
      key_name, csr_pem, certificate_id, certificate_version, der_hex,
      serial_hex, failure_reason, lease_owner, etag;
  int required_approvals = 0, attempts = 0;
  long long not_after_us = 0, next_attempt_us = 0, lease_expiry_us = 0,
            create_us = 0, update_us = 0;
  soci::indicator not_after_ind = soci::i_null;

  void Exchange(soci::statement& st) {
    st.exchange(soci::into(order_id));
    st.exchange(soci::into(state));
    st.exchange(soci::into(reason));
    st.exchange(soci::into(issuer_id));
    st.exchange(soci::into(owner));
    st.exchange(soci::into(environment));
    st.exchange(soci::into(requester));
    st.exchange(soci::into(common_name));
    st.exchange(soci::into(sans));
    st.exchange(soci::into(spec_hex));
    st.exchange(soci::into(request_id));
    st.exchange(soci::into(request_hash));
    st.exchange(soci::into(required_approvals));
    st.exchange(soci::into(renewal_of));
    st.exchange(soci::into(key_name));
    st.exchange(soci::into(csr_pem));
    st.exchange(soci::into(certificate_id));
    st.exchange(soci::into(certificate_version));
    st.exchange(soci::into(der_hex));
    st.exchange(soci::into(serial_hex));
    st.exchange(soci::into(not_after_us, not_after_ind));
    st.exchange(soci::into(failure_reason));
    st.exchange(soci::into(attempts));
    st.exchange(soci::into(next_attempt_us));
    st.exchange(soci::into(lease_owner));
    st.exchange(soci::into(lease_expiry_us));
    st.exchange(soci::into(create_us));
    st.exchange(soci::into(update_us));
    st.exchange(soci::into(etag));
  }

  absl::StatusOr<OrderRecord> ToRecord() const {
    OrderRecord r;
    r.order_id = order_id;
    r.state = state;
    r.reason = reason;
    r.issuer_id = issuer_id;
    r.owner = owner;
    r.environment = environment;
    r.requester = requester;
    r.common_name = common_name;
    if (!sans.empty()) r.sans = absl::StrSplit(sans, '\n');
    absl::StatusOr<std::string> spec = FromHex(spec_hex, "order spec");
    if (!spec.ok()) return spec.status();
    r.spec = *std::move(spec);
    r.request_id = request_id;
    r.request_hash = request_hash;
    r.required_approvals = required_approvals;
    r.renewal_of = renewal_of;
    r.key_name = key_name;
    r.csr_pem = csr_pem;
    r.certificate_id = certificate_id;
    r.certificate_version = certificate_version;
    absl::StatusOr<std::string> der = FromHex(der_hex, "certificate");
    if (!der.ok()) return der.status();
    r.certificate_der = *std::move(der);
    r.serial_hex = serial_hex;
    if (not_after_ind == soci::i_ok) r.not_after_us = not_after_us;
    r.failure_reason = failure_reason;
    r.attempts = attempts;
    r.next_attempt_time = FromMicros(next_attempt_us);
    r.lease_owner = lease_owner;
    r.lease_expiry = FromMicros(lease_expiry_us);
    r.create_time = FromMicros(create_us);
    r.update_time = FromMicros(update_us);
    r.etag = etag;
    return r;
  }
};

struct EventRow {
  std::string from_state, to_state, actor, reason;
  long long time_us = 0;
  void Exchange(soci::statement& st) {
    st.exchange(soci::into(from_state));
    st.exchange(soci::into(to_state));
    st.exchange(soci::into(time_us));
    st.exchange(soci::into(actor));
    st.exchange(soci::into(reason));
  }
};

struct ApprovalRow {
  std::string approver, comment;
  long long time_us = 0;
  void Exchange(soci::statement& st) {
    st.exchange(soci::into(approver));
    st.exchange(soci::into(time_us));
    st.exchange(soci::into(comment));
  }
};

struct StringRow {
  std::string value;
  void Exchange(soci::statement& st) { st.exchange(soci::into(value)); }
};

std::string InList(SqlParams& p, absl::Span<const std::string> values) {
  std::vector<std::string> ph;
  ph.reserve(values.size());
  for (const std::string& v : values) ph.push_back(p.Add(v));
  return absl::StrCat("(", absl::StrJoin(ph, ", "), ")");
}

// Reads an order with its events and approvals; nullopt when absent.
// `lock`: the row-locking suffix (" FOR UPDATE" on PostgreSQL) or "".
absl::StatusOr<std::optional<OrderRecord>> ReadOrder(soci::session& sql,
                                                     const std::string& id,
                                                     absl::string_view lock) {
  std::optional<OrderRecord> out;
  OrderRow row;
  SqlParams p;
  absl::Status s =
      RunQuery(sql,
               absl::StrCat("SELECT ", kOrderColumns,
                            " FROM orders WHERE order_id = ", p.Add(id), lock),
               p, row, [&]() -> absl::Status {
                 absl::StatusOr<OrderRecord> r = row.ToRecord();
                 if (!r.ok()) return r.status();
                 out = *std::move(r);
                 return absl::OkStatus();
               });
  if (!s.ok()) return s;
  if (!out.has_value()) return out;
  EventRow event;
  SqlParams ep;
  s = RunQuery(sql,
               absl::StrCat("SELECT from_state, to_state, time_us, actor, "
                            "reason FROM order_events WHERE order_id = ",
                            ep.Add(id), " ORDER BY seq"),
               ep, event, [&]() -> absl::Status {
                 out->events.push_back({event.from_state, event.to_state,
                                        FromMicros(event.time_us), event.actor,
                                        event.reason});
                 return absl::OkStatus();
               });
  if (!s.ok()) return s;
  ApprovalRow approval;
  SqlParams ap;
  s = RunQuery(sql,
               absl::StrCat("SELECT approver, time_us, comment FROM "
                            "order_approvals WHERE order_id = ",
                            ap.Add(id), " ORDER BY time_us, approver"),
               ap, approval, [&]() -> absl::Status {
                 out->approvals.push_back({approval.approver,
                                           FromMicros(approval.time_us),
                                           approval.comment});
                 return absl::OkStatus();
               });
  if (!s.ok()) return s;
  return out;
}

// The order whose unique `column` ("request_id", "open_renewal_of") is
// `value`, if any.
absl::StatusOr<std::optional<OrderRecord>> FindOrderBy(
    soci::session& sql, absl::string_view column, const std::string& value) {
  StringRow row;
  SqlParams p;
  std::string id;
  absl::Status s = RunQuery(sql,
                            absl::StrCat("SELECT order_id FROM orders WHERE ",
                                         column, " = ", p.Add(value)),
                            p, row, [&]() -> absl::Status {
                              id = row.value;
                              return absl::OkStatus();
                            });
  if (!s.ok()) return s;
  if (id.empty()) return std::optional<OrderRecord>();
  return ReadOrder(sql, id, "");
}

// The order `id`, locked for this transaction; NOT_FOUND when absent.
absl::StatusOr<OrderRecord> LockOrder(soci::session& sql, const std::string& id,
                                      absl::string_view row_lock) {
  absl::StatusOr<std::optional<OrderRecord>> current =
      ReadOrder(sql, id, row_lock);
  if (!current.ok()) return current.status();
  if (!current->has_value()) {
    return absl::NotFoundError(absl::StrCat("order ", id, " does not exist"));
  }
  return **std::move(current);
}

// ABORTED when `expected_etag` is set and is not the order's.
absl::Status CheckEtag(const OrderRecord& order,
                       absl::string_view expected_etag) {
  if (expected_etag.empty() || expected_etag == order.etag) {
    return absl::OkStatus();
  }
  return absl::AbortedError(absl::StrCat(
      "order ", order.order_id, " changed since it was read (etag mismatch)"));
}

void AppendEvent(soci::session& sql, const std::string& id,
                 const OrderEventRecord& e) {
  long long seq = 0;
  sql << "SELECT COALESCE(MAX(seq), 0) FROM order_events WHERE order_id = :id",
      soci::use(id), soci::into(seq);
  ++seq;
  long long time_us = Micros(e.time);
  sql << "INSERT INTO order_events (order_id, seq, from_state, to_state, "
         "time_us, actor, reason) VALUES (:id, :seq, :f, :t, :tm, :a, :r)",
      soci::use(id), soci::use(seq), soci::use(e.from_state),
      soci::use(e.to_state), soci::use(time_us), soci::use(e.actor),
      soci::use(e.reason);
}

class SqlIssuanceStore final : public IssuanceStore {
 public:
  explicit SqlIssuanceStore(db::Database& db)
      : db_(db),
        row_lock_(db.dialect() == Dialect::kPostgres ? " FOR UPDATE" : "") {}

  absl::StatusOr<OrderRecord> CreateOrder(
      const OrderRecord& order, const OrderEventRecord& created) override;
  absl::StatusOr<OrderRecord> GetOrder(absl::string_view order_id) override;
  absl::StatusOr<std::optional<OrderRecord>> FindOpenRenewal(
      absl::string_view certificate_id) override;
  absl::StatusOr<OrderRecord> Transition(
      absl::string_view order_id, absl::Span<const std::string> from_states,
      const OrderEventRecord& event, const OrderUpdate& update,
      absl::string_view expected_etag, absl::string_view lease_owner) override;
  absl::StatusOr<OrderRecord> AddApproval(
      absl::string_view order_id, const ApprovalRecord& approval,
      absl::string_view expected_etag) override;
  absl::StatusOr<std::vector<OrderRecord>> ClaimOrders(
      absl::Span<const std::string> states, absl::string_view worker,
      absl::Time now, absl::Duration lease, int limit) override;

 private:
  absl::StatusOr<OrderRecord> ExistingForRequest(const OrderRecord& order,
                                                 const OrderRecord& stored);

  db::Database& db_;
  const std::string row_lock_;
};

absl::StatusOr<OrderRecord> SqlIssuanceStore::ExistingForRequest(
    const OrderRecord& order, const OrderRecord& stored) {
  if (stored.request_hash == order.request_hash) return stored;
  return absl::AlreadyExistsError(
      absl::StrCat("request_id \"", absl::CHexEscape(order.request_id),
                   "\" was already used for a different request (order ",
                   stored.order_id, ")"));
}

absl::StatusOr<OrderRecord> SqlIssuanceStore::CreateOrder(
    const OrderRecord& order, const OrderEventRecord& created) {
  if (!IsOrderState(order.state)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown order state \"", order.state, "\""));
  }
  if (order.reason != "new" && order.reason != "renewal") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown order reason \"", order.reason, "\""));
  }
  OrderRecord out;
  bool existing = false;
  absl::Status status = db_.Transact([&](soci::session& sql) -> absl::Status {
    existing = false;
    if (!order.request_id.empty()) {
      absl::StatusOr<std::optional<OrderRecord>> found =
          FindOrderBy(sql, "request_id", order.request_id);
      if (!found.ok()) return found.status();
      if (found->has_value()) {
        existing = true;
        out = **std::move(found);
        return absl::OkStatus();
      }
    }
    const bool open_renewal =
        !order.renewal_of.empty() && !IsFinalOrderState(order.state);
    if (open_renewal) {
      absl::StatusOr<std::optional<OrderRecord>> open =
          FindOrderBy(sql, "open_renewal_of", order.renewal_of);
      if (!open.ok()) return open.status();
      if (open->has_value()) {
        return absl::AlreadyExistsError(absl::StrCat(
            "certificate ", order.renewal_of,
            " already has an open renewal order ", (*open)->order_id));
      }
    }
    absl::BitGen gen;
    out = order;
    out.order_id = NewOrderId(gen);
    out.etag = RandomHex(gen, 1);
    out.create_time = created.time;
    out.update_time = created.time;
    out.lease_owner.clear();
    out.lease_expiry = absl::InfinitePast();
    out.events.clear();
    out.approvals.clear();
    SqlParams p;
    std::vector<std::string> v = {
        p.Add(out.order_id),
        p.Add(out.state),
        p.Add(out.reason),
        p.Add(out.issuer_id),
        p.Add(out.owner),
        p.Add(out.environment),
        p.Add(out.requester),
        p.Add(out.common_name),
        p.Add(absl::StrJoin(out.sans, "\n")),
        p.Add(absl::BytesToHexString(out.spec)),
        p.Add(out.request_id),
        p.Add(out.request_hash),
        p.Add(static_cast<long long>(out.required_approvals)),
        p.Add(out.renewal_of),
        p.Add(out.key_name),
        p.Add(out.csr_pem),
        p.Add(out.certificate_id),
        p.Add(out.certificate_version),
        p.Add(absl::BytesToHexString(out.certificate_der)),
        p.Add(out.serial_hex),
        out.not_after_us.has_value()
            ? p.Add(static_cast<long long>(*out.not_after_us))
            : "NULL",
        p.Add(out.failure_reason),
        p.Add(static_cast<long long>(out.attempts)),
        p.Add(Micros(out.next_attempt_time)),
        p.Add(std::string()),
        p.Add(Micros(out.lease_expiry)),
        p.Add(Micros(out.create_time)),
        p.Add(Micros(out.update_time)),
        p.Add(out.etag),
        open_renewal ? p.Add(out.renewal_of) : "NULL"};
    db::ExecuteWithParams(sql,
                          absl::StrCat("INSERT INTO orders (", kOrderColumns,
                                       ", open_renewal_of) VALUES (",
                                       absl::StrJoin(v, ", "), ")"),
                          p);
    OrderEventRecord event = created;
    event.from_state.clear();
    event.to_state = out.state;
    AppendEvent(sql, out.order_id, event);
    out.events = {event};
    return absl::OkStatus();
  });
  if (status.ok()) {
    return existing ? ExistingForRequest(order, out) : out;
  }
  if (absl::IsAlreadyExists(status) && !order.request_id.empty()) {
    // A concurrent create with the same request_id may have won the unique
    // index; answer as a repeat would.
    absl::StatusOr<std::optional<OrderRecord>> found;
    absl::Status s = db_.Transact(
        [&](soci::session& sql) -> absl::Status {
          found = FindOrderBy(sql, "request_id", order.request_id);
          return found.status();
        },
        db::TxMode::kReadOnly);
    if (s.ok() && found->has_value()) {
      return ExistingForRequest(order, **found);
    }
  }
  return status;
}

absl::StatusOr<OrderRecord> SqlIssuanceStore::GetOrder(
    absl::string_view order_id) {
  const std::string id(order_id);
  if (absl::Status s = CheckOrderId(id); !s.ok()) return s;
  std::optional<OrderRecord> out;
  absl::Status s = db_.Transact(
      [&](soci::session& sql) -> absl::Status {
        absl::StatusOr<std::optional<OrderRecord>> r = ReadOrder(sql, id, "");
        if (!r.ok()) return r.status();
        out = *std::move(r);
        return absl::OkStatus();
      },
      db::TxMode::kReadOnly);
  if (!s.ok()) return s;
  if (!out.has_value()) {
    return absl::NotFoundError(absl::StrCat("order ", id, " does not exist"));
  }
  return *std::move(out);
}

absl::StatusOr<std::optional<OrderRecord>> SqlIssuanceStore::FindOpenRenewal(
    absl::string_view certificate_id) {
  std::optional<OrderRecord> out;
  absl::Status s = db_.Transact(
      [&](soci::session& sql) -> absl::Status {
        absl::StatusOr<std::optional<OrderRecord>> r =
            FindOrderBy(sql, "open_renewal_of", std::string(certificate_id));
        if (!r.ok()) return r.status();
        out = *std::move(r);
        return absl::OkStatus();
      },
      db::TxMode::kReadOnly);
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<OrderRecord> SqlIssuanceStore::Transition(
    absl::string_view order_id, absl::Span<const std::string> from_states,
    const OrderEventRecord& event, const OrderUpdate& update,
    absl::string_view expected_etag, absl::string_view lease_owner) {
  const std::string id(order_id);
  if (absl::Status s = CheckOrderId(id); !s.ok()) return s;
  if (!IsOrderState(event.to_state)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown order state \"", event.to_state, "\""));
  }
  OrderRecord out;
  absl::Status status = db_.Transact([&](soci::session& sql) -> absl::Status {
    absl::StatusOr<OrderRecord> locked = LockOrder(sql, id, row_lock_);
    if (!locked.ok()) return locked.status();
    OrderRecord r = *std::move(locked);
    if (std::find(from_states.begin(), from_states.end(), r.state) ==
        from_states.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat("order ", id, " is ", r.state, "; it cannot become ",
                       event.to_state, " from there"));
    }
    if (absl::Status s = CheckEtag(r, expected_etag); !s.ok()) return s;
    if (!lease_owner.empty() && r.lease_owner != lease_owner) {
      return absl::FailedPreconditionError(
          absl::StrCat("order ", id, " is no longer leased to ", lease_owner));
    }
    OrderEventRecord e = event;
    e.from_state = r.state;
    absl::BitGen gen;
    r.state = e.to_state;
    r.etag = RandomHex(gen, 1);
    r.update_time = e.time;
    SqlParams p;
    std::vector<std::string> sets = {
        absl::StrCat("state = ", p.Add(r.state)),
        absl::StrCat("etag = ", p.Add(r.etag)),
        absl::StrCat("update_time_us = ", p.Add(Micros(r.update_time)))};
    auto set_text = [&](const char* column,
                        const std::optional<std::string>& value,
                        std::string& field, bool hex = false) {
      if (!value.has_value()) return;
      field = *value;
      sets.push_back(absl::StrCat(
          column, " = ", p.Add(hex ? absl::BytesToHexString(field) : field)));
    };
    set_text("key_name", update.key_name, r.key_name);
    set_text("csr_pem", update.csr_pem, r.csr_pem);
    set_text("certificate_id", update.certificate_id, r.certificate_id);
    set_text("certificate_version", update.certificate_version,
             r.certificate_version);
    set_text("certificate_der", update.certificate_der, r.certificate_der,
             /*hex=*/true);
    set_text("serial_hex", update.serial_hex, r.serial_hex);
    set_text("failure_reason", update.failure_reason, r.failure_reason);
    if (update.not_after_us.has_value()) {
      r.not_after_us = update.not_after_us;
      sets.push_back(
          absl::StrCat("not_after_us = ",
                       p.Add(static_cast<long long>(*update.not_after_us))));
    }
    if (update.attempts.has_value()) {
      r.attempts = *update.attempts;
      sets.push_back(absl::StrCat("attempts = ",
                                  p.Add(static_cast<long long>(r.attempts))));
    }
    if (update.next_attempt_time.has_value()) {
      r.next_attempt_time = *update.next_attempt_time;
      sets.push_back(absl::StrCat("next_attempt_us = ",
                                  p.Add(Micros(r.next_attempt_time))));
    }
    if (update.release_lease || IsFinalOrderState(r.state)) {
      r.lease_owner.clear();
      r.lease_expiry = absl::InfinitePast();
      sets.push_back(absl::StrCat("lease_owner = '', lease_expiry_us = ",
                                  p.Add(Micros(r.lease_expiry))));
    }
    if (IsFinalOrderState(r.state)) sets.push_back("open_renewal_of = NULL");
    db::ExecuteWithParams(
        sql,
        absl::StrCat("UPDATE orders SET ", absl::StrJoin(sets, ", "),
                     " WHERE order_id = ", p.Add(id)),
        p);
    AppendEvent(sql, id, e);
    r.events.push_back(e);
    out = std::move(r);
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<OrderRecord> SqlIssuanceStore::AddApproval(
    absl::string_view order_id, const ApprovalRecord& approval,
    absl::string_view expected_etag) {
  const std::string id(order_id);
  if (absl::Status s = CheckOrderId(id); !s.ok()) return s;
  OrderRecord out;
  absl::Status status = db_.Transact([&](soci::session& sql) -> absl::Status {
    absl::StatusOr<OrderRecord> locked = LockOrder(sql, id, row_lock_);
    if (!locked.ok()) return locked.status();
    OrderRecord r = *std::move(locked);
    if (r.state != kPendingApproval) {
      return absl::FailedPreconditionError(
          absl::StrCat("order ", id, " is ", r.state,
                       "; only orders pending approval can "
                       "be approved"));
    }
    if (absl::Status s = CheckEtag(r, expected_etag); !s.ok()) return s;
    for (const ApprovalRecord& a : r.approvals) {
      if (a.approver == approval.approver) {
        return absl::AlreadyExistsError(absl::StrCat(
            approval.approver, " has already approved order ", id));
      }
    }
    long long time_us = Micros(approval.time);
    sql << "INSERT INTO order_approvals (order_id, approver, time_us, "
           "comment) VALUES (:id, :a, :t, :c)",
        soci::use(id), soci::use(approval.approver), soci::use(time_us),
        soci::use(approval.comment);
    r.approvals.push_back(approval);
    const int have = static_cast<int>(r.approvals.size());
    OrderEventRecord e;
    e.from_state = r.state;
    e.time = approval.time;
    e.actor = approval.approver;
    if (have >= r.required_approvals) {
      e.to_state = kApproved;
      e.reason = absl::StrCat("approved (", have, " of ", r.required_approvals,
                              " approvals)");
    } else {
      e.to_state = r.state;
      e.reason = absl::StrCat("approval ", have, " of ", r.required_approvals);
    }
    if (!approval.comment.empty()) {
      absl::StrAppend(&e.reason, ": ", approval.comment);
    }
    absl::BitGen gen;
    r.state = e.to_state;
    r.etag = RandomHex(gen, 1);
    r.update_time = approval.time;
    sql << "UPDATE orders SET state = :s, etag = :e, update_time_us = :t "
           "WHERE order_id = :id",
        soci::use(r.state), soci::use(r.etag), soci::use(time_us),
        soci::use(id);
    AppendEvent(sql, id, e);
    r.events.push_back(e);
    out = std::move(r);
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<std::vector<OrderRecord>> SqlIssuanceStore::ClaimOrders(
    absl::Span<const std::string> states, absl::string_view worker,
    absl::Time now, absl::Duration lease, int limit) {
  if (worker.empty()) {
    return absl::InvalidArgumentError("worker: must not be empty");
  }
  if (states.empty() || limit < 1 || lease <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "ClaimOrders needs states, a positive limit and a positive lease");
  }
  for (const std::string& state : states) {
    if (!IsOrderState(state) || IsFinalOrderState(state)) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot claim orders in state \"", state, "\""));
    }
  }
  std::vector<OrderRecord> out;
  absl::Status status = db_.Transact([&](soci::session& sql) -> absl::Status {
    out.clear();
    SqlParams p;
    const long long now_us = Micros(now);
    std::vector<std::string> ids;
    StringRow row;
    absl::Status s = RunQuery(
        sql,
        absl::StrCat(
            "SELECT order_id FROM orders WHERE state IN ", InList(p, states),
            " AND next_attempt_us <= ", p.Add(now_us),
            " AND lease_expiry_us <= ", p.Add(now_us),
            " ORDER BY next_attempt_us, order_id LIMIT ",
            p.Add(static_cast<long long>(limit)), db_.ClaimLockClause()),
        p, row, [&]() -> absl::Status {
          ids.push_back(row.value);
          return absl::OkStatus();
        });
    if (!s.ok() || ids.empty()) return s;
    SqlParams up;
    db::ExecuteWithParams(
        sql,
        absl::StrCat(
            "UPDATE orders SET lease_owner = ", up.Add(std::string(worker)),
            ", lease_expiry_us = ", up.Add(Micros(now + lease)),
            " WHERE order_id IN ", InList(up, ids)),
        up);
    for (const std::string& id : ids) {
      absl::StatusOr<std::optional<OrderRecord>> r = ReadOrder(sql, id, "");
      if (!r.ok()) return r.status();
      if (r->has_value()) out.push_back(**std::move(r));
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return out;
}

}  // namespace

bool IsOrderState(absl::string_view state) {
  return std::find(std::begin(kStates), std::end(kStates), state) !=
         std::end(kStates);
}

bool IsFinalOrderState(absl::string_view state) {
  return state == kIssued || state == kRejected || state == kFailed ||
         state == kCancelled;
}

std::unique_ptr<IssuanceStore> NewSqlIssuanceStore(db::Database& db) {
  return std::make_unique<SqlIssuanceStore>(db);
}

}  // namespace certplane::issuance
