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
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "libs/aip/filter.h"
#include "libs/db/database.h"
#include "libs/db/query.h"
#include "libs/db/sql_params.h"
#include "libs/db/statement_cache.h"
#include "services/issuance/issuance_store.h"

namespace certplane::issuance {
namespace {

using db::Dialect;
using db::RunQuery;
using db::SqlParams;

constexpr absl::string_view kStates[] = {
    kPendingApproval, kApproved, kKeyReady, kSubmitted, kAwaitingCertificate,
    kIssued,          kRejected, kFailed,   kCancelled};

long long Micros(absl::Time t) { return db::TimeToMicros(t); }
absl::Time FromMicros(long long us) { return db::MicrosToTime(us); }

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
    "certificate_der, chain_pem, serial_hex, not_after_us, failure_reason, "
    "attempts, "
    "next_attempt_us, lease_owner, lease_expiry_us, create_time_us, "
    "update_time_us, etag";

struct OrderRow {
  std::string order_id, state, reason, issuer_id, owner, environment, requester,
      common_name, sans, spec_hex, request_id, request_hash, renewal_of,
      key_name, csr_pem, certificate_id, certificate_version, der_hex,
      chain_pem, serial_hex, failure_reason, lease_owner, etag;
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
    st.exchange(soci::into(chain_pem));
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
    r.chain_pem = chain_pem;
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
  absl::StatusOr<OrderPage> ListOrders(const OrderQuery& query) override;

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
    if (out.lease_owner.empty()) out.lease_expiry = absl::InfinitePast();
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
        p.Add(out.chain_pem),
        p.Add(out.serial_hex),
        out.not_after_us.has_value()
            ? p.Add(static_cast<long long>(*out.not_after_us))
            : "NULL",
        p.Add(out.failure_reason),
        p.Add(static_cast<long long>(out.attempts)),
        p.Add(Micros(out.next_attempt_time)),
        p.Add(out.lease_owner),
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
    set_text("chain_pem", update.chain_pem, r.chain_pem);
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
    if (!update.take_lease.empty() && !IsFinalOrderState(r.state)) {
      r.lease_owner = update.take_lease;
      r.lease_expiry = update.take_lease_expiry;
      sets.push_back(
          absl::StrCat("lease_owner = ", p.Add(r.lease_owner),
                       ", lease_expiry_us = ", p.Add(Micros(r.lease_expiry))));
    } else if (update.release_lease || IsFinalOrderState(r.state)) {
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

// ListOrders: the filter fields (ListOrdersRequest) over the orders table.

// A field whose API value is "<prefix><stored value>" ("issuers/internal"),
// also accepted without the prefix.
aip::CustomCompiler NamedField(std::string column, std::string prefix) {
  return [column, prefix](const aip::Comparison& c,
                          SqlParams& p) -> absl::StatusOr<std::string> {
    if (c.op != aip::Comparator::kEq && c.op != aip::Comparator::kNe &&
        c.op != aip::Comparator::kHas) {
      return absl::InvalidArgumentError(absl::StrCat(
          "filter: \"", aip::ComparatorSymbol(c.op),
          "\" does not apply to field ", c.field, " (use = or !=)"));
    }
    absl::string_view value = c.value;
    absl::ConsumePrefix(&value, prefix);
    return absl::StrCat(column, c.op == aip::Comparator::kNe ? " <> " : " = ",
                        p.Add(std::string(value)));
  };
}

// reason: NEW_CERTIFICATE or RENEWAL (as in the API), stored new/renewal.
absl::StatusOr<std::string> ReasonCondition(const aip::Comparison& c,
                                            SqlParams& p) {
  const std::string v = absl::AsciiStrToUpper(c.value);
  std::string stored;
  if (v == "NEW_CERTIFICATE" || v == "NEW") {
    stored = "new";
  } else if (v == "RENEWAL") {
    stored = "renewal";
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("filter: \"", c.value,
                     "\" is not a value of field reason (one of: "
                     "NEW_CERTIFICATE, RENEWAL)"));
  }
  if (c.op == aip::Comparator::kNe) {
    return absl::StrCat("reason <> ", p.Add(stored));
  }
  if (c.op != aip::Comparator::kEq && c.op != aip::Comparator::kHas) {
    return absl::InvalidArgumentError("filter: reason takes only = and !=");
  }
  return absl::StrCat("reason = ", p.Add(stored));
}

// san: any of the order's SANs (stored one per line), exactly or with "*"
// at the start and/or end under ":".
absl::StatusOr<std::string> SanCondition(const aip::Comparison& c,
                                         SqlParams& p) {
  absl::string_view value = c.value;
  bool prefix_wild = false, suffix_wild = false;
  if (c.op == aip::Comparator::kHas) {
    prefix_wild = absl::ConsumePrefix(&value, "*");
    suffix_wild = absl::ConsumeSuffix(&value, "*");
  } else if (c.op != aip::Comparator::kEq && c.op != aip::Comparator::kNe) {
    return absl::InvalidArgumentError(
        "filter: san takes =, != and \":\" (with * wildcards)");
  }
  if (value.find('\n') != absl::string_view::npos) {
    return absl::InvalidArgumentError("filter: san values have no newlines");
  }
  const std::string pattern =
      absl::StrCat("%\n", prefix_wild ? "%" : "", aip::EscapeLike(value),
                   suffix_wild ? "%" : "", "\n%");
  return absl::StrCat(c.op == aip::Comparator::kNe ? "NOT " : "",
                      "(('\n' || sans || '\n') LIKE ", p.Add(pattern),
                      " ESCAPE '\\')");
}

const aip::FieldSchema& OrderFilterSchema() {
  static const aip::FieldSchema* const kSchema = [] {
    auto* schema = new aip::FieldSchema();
    std::vector<std::string> states(std::begin(kStates), std::end(kStates));
    schema->Enum("state", "state", states)
        .Custom("reason", ReasonCondition)
        .Custom("issuer", NamedField("issuer_id", "issuers/"))
        .Custom("certificate", NamedField("certificate_id", "certificates/"))
        .Column("owner", aip::FieldType::kString, "owner")
        .Column("environment", aip::FieldType::kString, "environment")
        .Column("requester", aip::FieldType::kString, "requester")
        .Column("common_name", aip::FieldType::kString, "common_name")
        .Custom("san", SanCondition)
        .Column("create_time", aip::FieldType::kTimestamp, "create_time_us")
        .Column("update_time", aip::FieldType::kTimestamp, "update_time_us");
    return schema;
  }();
  return *kSchema;
}

struct OrderSortColumn {
  const char* field;
  const char* sql;
  bool integer;
};
constexpr OrderSortColumn kOrderSortColumns[] = {
    {"create_time", "create_time_us", true},
    {"update_time", "update_time_us", true},
    {"state", "state", false},
};

std::string SortValue(absl::string_view field, const OrderRecord& r) {
  if (field == "create_time") return absl::StrCat(Micros(r.create_time));
  if (field == "update_time") return absl::StrCat(Micros(r.update_time));
  return r.state;
}

absl::StatusOr<OrderPage> SqlIssuanceStore::ListOrders(
    const OrderQuery& query) {
  if (query.page_size < 1 || query.page_size > kMaxOrderPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size ", query.page_size, " is outside [1, ",
                     kMaxOrderPageSize, "]"));
  }
  std::vector<std::string> allowed;
  for (const OrderSortColumn& c : kOrderSortColumns) allowed.push_back(c.field);
  absl::StatusOr<std::vector<aip::OrderField>> order = aip::ParseOrderBy(
      query.order_by, allowed, {{.field = "create_time", .descending = true}});
  if (!order.ok()) return order.status();
  std::vector<aip::KeysetColumn> keyset;
  std::vector<std::string> order_sql;
  for (const aip::OrderField& f : *order) {
    for (const OrderSortColumn& c : kOrderSortColumns) {
      if (f.field != c.field) continue;
      keyset.push_back(
          {.sql = c.sql, .descending = f.descending, .integer = c.integer});
      order_sql.push_back(absl::StrCat(c.sql, f.descending ? " DESC" : ""));
    }
  }
  const bool tie_desc = order->back().descending;
  keyset.push_back({.sql = "order_id", .descending = tie_desc});
  order_sql.push_back(tie_desc ? "order_id DESC" : "order_id");

  // The token holds the last row's sort values, then the first page's
  // total_size (later pages reuse it).
  const std::string fingerprint =
      absl::StrCat("orders\n", query.filter, "\n", query.order_by);
  std::optional<aip::PageCursor> cursor;
  long long carried_total = 0;
  if (!query.page_token.empty()) {
    absl::StatusOr<aip::PageCursor> c =
        aip::DecodePageToken(fingerprint, query.page_token);
    if (!c.ok()) return c.status();
    if (c->values.size() != keyset.size() + 1 ||
        !absl::SimpleAtoi(c->values.back(), &carried_total) ||
        carried_total < 0 || carried_total > kOrderTotalSizeCap + 1) {
      return absl::InvalidArgumentError(
          "page_token is malformed: not from a previous page of this query");
    }
    c->values.pop_back();
    cursor = *std::move(c);
  }
  // Compiled before any SQL runs, so a bad filter or token is
  // INVALID_ARGUMENT.
  auto where = [&](SqlParams& p,
                   bool with_cursor) -> absl::StatusOr<std::string> {
    absl::StatusOr<std::string> w =
        aip::CompileFilter(query.filter, OrderFilterSchema(), p);
    if (!w.ok() || !with_cursor || !cursor.has_value()) return w;
    absl::StatusOr<std::string> k = aip::KeysetCondition(keyset, *cursor, p);
    if (!k.ok()) return k.status();
    return absl::StrCat("(", *w, ") AND ", *k);
  };
  {
    SqlParams p;
    if (absl::StatusOr<std::string> w = where(p, true); !w.ok()) {
      return w.status();
    }
  }
  OrderPage page;
  absl::Status s = db_.Transact(
      [&](soci::session& sql) -> absl::Status {
        page = OrderPage();
        if (cursor.has_value()) {
          page.total_size = carried_total;
        } else {
          SqlParams cp;
          absl::StatusOr<std::string> w = where(cp, false);
          if (!w.ok()) return w.status();
          long long total = 0;
          const std::string count_sql =
              absl::StrCat("SELECT COUNT(*) FROM (SELECT 1 FROM orders WHERE ",
                           *w, " LIMIT ", kOrderTotalSizeCap + 1, ") capped");
          db::ReusableStatement st(sql, count_sql);
          st->exchange(soci::into(total));
          cp.BindTo(*st);
          st.Bind();
          st->execute(true);
          page.total_size = total;
        }
        SqlParams p;
        absl::StatusOr<std::string> w = where(p, true);
        if (!w.ok()) return w.status();
        OrderRow row;
        absl::Status qs = RunQuery(
            sql,
            absl::StrCat("SELECT ", kOrderColumns, " FROM orders WHERE ", *w,
                         " ORDER BY ", absl::StrJoin(order_sql, ", "),
                         " LIMIT ", query.page_size + 1),
            p, row, [&]() -> absl::Status {
              absl::StatusOr<OrderRecord> r = row.ToRecord();
              if (!r.ok()) return r.status();
              page.orders.push_back(*std::move(r));
              return absl::OkStatus();
            });
        if (!qs.ok()) return qs;
        if (page.orders.size() > static_cast<size_t>(query.page_size)) {
          page.orders.resize(query.page_size);
          aip::PageCursor next;
          for (const aip::OrderField& f : *order) {
            next.values.push_back(SortValue(f.field, page.orders.back()));
          }
          next.values.push_back(page.orders.back().order_id);
          next.values.push_back(absl::StrCat(page.total_size));
          page.next_page_token = aip::EncodePageToken(fingerprint, next);
        }
        return absl::OkStatus();
      },
      db::TxMode::kReadOnly);
  if (!s.ok()) return s;
  return page;
}

// ---------------------------------------------------------------------------
// Internal CAs.

constexpr char kCaColumns[] =
    "issuer_id, root_key_name, root_der, intermediate_key_name, "
    "intermediate_der, create_time_us, crl_number, crl_der, "
    "crl_this_update_us, crl_next_update_us";

struct CaRow {
  std::string issuer_id, root_key_name, root_hex, intermediate_key_name,
      intermediate_hex, crl_hex;
  long long create_us = 0, crl_number = 0, this_update_us = 0,
            next_update_us = 0;
  void Exchange(soci::statement& st) {
    st.exchange(soci::into(issuer_id));
    st.exchange(soci::into(root_key_name));
    st.exchange(soci::into(root_hex));
    st.exchange(soci::into(intermediate_key_name));
    st.exchange(soci::into(intermediate_hex));
    st.exchange(soci::into(create_us));
    st.exchange(soci::into(crl_number));
    st.exchange(soci::into(crl_hex));
    st.exchange(soci::into(this_update_us));
    st.exchange(soci::into(next_update_us));
  }
  absl::StatusOr<CaRecord> ToRecord() const {
    CaRecord r;
    r.issuer_id = issuer_id;
    r.root_key_name = root_key_name;
    r.intermediate_key_name = intermediate_key_name;
    absl::StatusOr<std::string> root = FromHex(root_hex, "root certificate");
    if (!root.ok()) return root.status();
    r.root_der = *std::move(root);
    absl::StatusOr<std::string> inter =
        FromHex(intermediate_hex, "intermediate certificate");
    if (!inter.ok()) return inter.status();
    r.intermediate_der = *std::move(inter);
    absl::StatusOr<std::string> crl = FromHex(crl_hex, "CRL");
    if (!crl.ok()) return crl.status();
    r.crl_der = *std::move(crl);
    r.create_time = FromMicros(create_us);
    r.crl_number = crl_number;
    r.crl_this_update = FromMicros(this_update_us);
    r.crl_next_update = FromMicros(next_update_us);
    return r;
  }
};

absl::StatusOr<std::optional<CaRecord>> ReadCa(soci::session& sql,
                                               const std::string& issuer_id,
                                               absl::string_view lock) {
  std::optional<CaRecord> out;
  CaRow row;
  SqlParams p;
  absl::Status s =
      RunQuery(sql,
               absl::StrCat("SELECT ", kCaColumns,
                            " FROM certificate_authorities WHERE issuer_id = ",
                            p.Add(issuer_id), lock),
               p, row, [&]() -> absl::Status {
                 absl::StatusOr<CaRecord> r = row.ToRecord();
                 if (!r.ok()) return r.status();
                 out = *std::move(r);
                 return absl::OkStatus();
               });
  if (!s.ok()) return s;
  return out;
}

struct RevocationRow {
  std::string issuer_id, serial_hex, reason, certificate_version;
  long long revoke_us = 0, crl_number = 0;
  void Exchange(soci::statement& st) {
    st.exchange(soci::into(issuer_id));
    st.exchange(soci::into(serial_hex));
    st.exchange(soci::into(reason));
    st.exchange(soci::into(revoke_us));
    st.exchange(soci::into(certificate_version));
    st.exchange(soci::into(crl_number));
  }
  RevocationRecord ToRecord() const {
    return {issuer_id,           serial_hex, reason, FromMicros(revoke_us),
            certificate_version, crl_number};
  }
};

constexpr char kRevocationColumns[] =
    "issuer_id, serial_hex, reason, revoke_time_us, certificate_version, "
    "crl_number";

absl::Status ReadRevocations(soci::session& sql, const std::string& where,
                             SqlParams& p, std::vector<RevocationRecord>& out) {
  RevocationRow row;
  return RunQuery(
      sql,
      absl::StrCat("SELECT ", kRevocationColumns, " FROM revocations WHERE ",
                   where, " ORDER BY revoke_time_us, serial_hex"),
      p, row, [&]() -> absl::Status {
        out.push_back(row.ToRecord());
        return absl::OkStatus();
      });
}

class SqlCaStore final : public CaStore {
 public:
  explicit SqlCaStore(db::Database& db)
      : db_(db),
        row_lock_(db.dialect() == Dialect::kPostgres ? " FOR UPDATE" : "") {}

  absl::StatusOr<std::optional<CaRecord>> GetCa(
      absl::string_view issuer_id) override {
    std::optional<CaRecord> out;
    absl::Status s = db_.Transact(
        [&](soci::session& sql) -> absl::Status {
          absl::StatusOr<std::optional<CaRecord>> r =
              ReadCa(sql, std::string(issuer_id), "");
          if (!r.ok()) return r.status();
          out = *std::move(r);
          return absl::OkStatus();
        },
        db::TxMode::kReadOnly);
    if (!s.ok()) return s;
    return out;
  }

  absl::StatusOr<CaRecord> CreateCa(const CaRecord& ca) override {
    if (ca.issuer_id.empty() || ca.root_der.empty() ||
        ca.intermediate_der.empty()) {
      return absl::InvalidArgumentError(
          "a CA needs an issuer id and both certificates");
    }
    CaRecord out;
    absl::Status s = db_.Transact([&](soci::session& sql) -> absl::Status {
      absl::StatusOr<std::optional<CaRecord>> existing =
          ReadCa(sql, ca.issuer_id, "");
      if (!existing.ok()) return existing.status();
      if (existing->has_value()) {
        out = **std::move(existing);
        return absl::OkStatus();
      }
      out = ca;
      SqlParams p;
      std::vector<std::string> v = {
          p.Add(ca.issuer_id),
          p.Add(ca.root_key_name),
          p.Add(absl::BytesToHexString(ca.root_der)),
          p.Add(ca.intermediate_key_name),
          p.Add(absl::BytesToHexString(ca.intermediate_der)),
          p.Add(Micros(ca.create_time)),
          p.Add(static_cast<long long>(ca.crl_number)),
          p.Add(absl::BytesToHexString(ca.crl_der)),
          p.Add(Micros(ca.crl_this_update)),
          p.Add(Micros(ca.crl_next_update))};
      db::ExecuteWithParams(
          sql,
          absl::StrCat("INSERT INTO certificate_authorities (", kCaColumns,
                       ") VALUES (", absl::StrJoin(v, ", "), ")"),
          p);
      return absl::OkStatus();
    });
    if (absl::IsAlreadyExists(s)) {
      // Another replica inserted first: use its CA.
      absl::StatusOr<std::optional<CaRecord>> stored = GetCa(ca.issuer_id);
      if (stored.ok() && stored->has_value()) return **std::move(stored);
    }
    if (!s.ok()) return s;
    return out;
  }

  absl::StatusOr<RevocationRecord> AddRevocation(
      const RevocationRecord& revocation) override {
    if (revocation.issuer_id.empty() || revocation.serial_hex.empty() ||
        revocation.reason.empty()) {
      return absl::InvalidArgumentError(
          "a revocation needs an issuer, a serial and a reason");
    }
    RevocationRecord out;
    absl::Status s = db_.Transact([&](soci::session& sql) -> absl::Status {
      std::vector<RevocationRecord> found;
      SqlParams p;
      absl::Status rs = ReadRevocations(
          sql,
          absl::StrCat("issuer_id = ", p.Add(revocation.issuer_id),
                       " AND serial_hex = ", p.Add(revocation.serial_hex)),
          p, found);
      if (!rs.ok()) return rs;
      if (!found.empty()) {
        out = found.front();
        return absl::OkStatus();
      }
      out = revocation;
      out.crl_number = 0;
      long long revoke_us = Micros(out.revoke_time);
      sql << "INSERT INTO revocations (issuer_id, serial_hex, reason, "
             "revoke_time_us, certificate_version, crl_number) VALUES (:i, "
             ":s, :r, :t, :v, 0)",
          soci::use(out.issuer_id), soci::use(out.serial_hex),
          soci::use(out.reason), soci::use(revoke_us),
          soci::use(out.certificate_version);
      return absl::OkStatus();
    });
    if (absl::IsAlreadyExists(s)) {
      // A concurrent revocation of the same serial won; return it.
      absl::StatusOr<std::vector<RevocationRecord>> all =
          ListRevocations(revocation.issuer_id);
      if (all.ok()) {
        for (const RevocationRecord& r : *all) {
          if (r.serial_hex == revocation.serial_hex) return r;
        }
      }
    }
    if (!s.ok()) return s;
    return out;
  }

  absl::StatusOr<std::vector<RevocationRecord>> ListRevocations(
      absl::string_view issuer_id) override {
    std::vector<RevocationRecord> out;
    absl::Status s = db_.Transact(
        [&](soci::session& sql) -> absl::Status {
          out.clear();
          SqlParams p;
          return ReadRevocations(
              sql, absl::StrCat("issuer_id = ", p.Add(std::string(issuer_id))),
              p, out);
        },
        db::TxMode::kReadOnly);
    if (!s.ok()) return s;
    return out;
  }

  absl::StatusOr<CaRecord> PublishCrl(absl::string_view issuer_id,
                                      int64_t crl_number,
                                      const std::string& der,
                                      absl::Time this_update,
                                      absl::Time next_update) override {
    const std::string id(issuer_id);
    CaRecord out;
    absl::Status s = db_.Transact([&](soci::session& sql) -> absl::Status {
      absl::StatusOr<std::optional<CaRecord>> ca = ReadCa(sql, id, row_lock_);
      if (!ca.ok()) return ca.status();
      if (!ca->has_value()) {
        return absl::NotFoundError(
            absl::StrCat("issuer ", id, " has no CA yet"));
      }
      out = **std::move(ca);
      if (crl_number != out.crl_number + 1) {
        return absl::AbortedError(absl::StrCat(
            "CRL ", crl_number, " of issuer ", id, " is not the next one (",
            out.crl_number, " is published)"));
      }
      out.crl_number = crl_number;
      out.crl_der = der;
      out.crl_this_update = this_update;
      out.crl_next_update = next_update;
      long long number = crl_number;
      std::string hex = absl::BytesToHexString(der);
      long long this_us = Micros(this_update);
      long long next_us = Micros(next_update);
      sql << "UPDATE certificate_authorities SET crl_number = :n, crl_der = "
             ":d, crl_this_update_us = :t, crl_next_update_us = :u WHERE "
             "issuer_id = :i",
          soci::use(number), soci::use(hex), soci::use(this_us),
          soci::use(next_us), soci::use(id);
      sql << "UPDATE revocations SET crl_number = :n WHERE issuer_id = :i "
             "AND crl_number = 0 AND revoke_time_us <= :t",
          soci::use(number), soci::use(id), soci::use(this_us);
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return out;
  }

 private:
  db::Database& db_;
  const std::string row_lock_;
};

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

std::unique_ptr<CaStore> NewSqlCaStore(db::Database& db) {
  return std::make_unique<SqlCaStore>(db);
}

}  // namespace certplane::issuance
