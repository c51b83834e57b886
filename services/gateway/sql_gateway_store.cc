// The SOCI implementation of GatewayStore (gateway_store.h; schema in
// migrations.h).
#include <soci/soci.h>

#include <algorithm>
#include <bit>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/aip/filter.h"
#include "libs/audit/merkle.h"
#include "libs/db/database.h"
#include "libs/db/query.h"
#include "libs/db/sql_params.h"
#include "services/gateway/gateway_store.h"

namespace certplane::gateway {
namespace {

using audit::AuditRecord;
using audit::Checkpoint;
using db::RunQuery;
using db::SqlParams;

long long Micros(absl::Time t) { return db::TimeToMicros(t); }
absl::Time FromMicros(long long us) { return db::MicrosToTime(us); }

std::string Hex(absl::string_view bytes) {
  return absl::BytesToHexString(bytes);
}

// Subtree rows are upserted: every hash is derived from the leaves, so a
// row that an append and a start-up rebuild both write gets one value, and
// a damaged one is overwritten.
constexpr char kUpsertNode[] =
    " ON CONFLICT (level, idx) DO UPDATE SET hash = excluded.hash";

// Stores the subtrees CompactRange::Append reported as `completed` when the
// log grew to `size` records.
void InsertNodes(soci::session& sql, uint64_t size,
                 const std::vector<std::string>& completed) {
  for (size_t j = 0; j < completed.size(); ++j) {
    int level = static_cast<int>(j) + 1;
    long long idx = static_cast<long long>((size >> level) - 1);
    std::string hex = Hex(completed[j]);
    sql << absl::StrCat(
        "INSERT INTO audit_nodes (level, idx, hash) VALUES (:l, :i, :h)",
        kUpsertNode),
        soci::use(level), soci::use(idx), soci::use(hex);
  }
}

// The stored hash of subtree (`level`, `index`): a record's leaf hash for
// level 0, else an audit_nodes row; nullopt when there is no such row.
absl::StatusOr<std::optional<std::string>> ReadSubtree(soci::session& sql,
                                                       int level,
                                                       uint64_t index) {
  long long i = static_cast<long long>(index);
  std::string hex;
  soci::indicator ind = soci::i_null;
  if (level == 0) {
    sql << "SELECT leaf_hash FROM audit_entries WHERE idx = :i", soci::use(i),
        soci::into(hex, ind);
  } else {
    sql << "SELECT hash FROM audit_nodes WHERE level = :l AND idx = :i",
        soci::use(level), soci::use(i), soci::into(hex, ind);
  }
  if (!sql.got_data() || ind != soci::i_ok) return std::nullopt;
  const std::string name =
      absl::StrCat("audit subtree ", level, "/", index, " (level/index)");
  absl::StatusOr<std::string> hash = db::DecodeHexColumn(hex, name);
  if (!hash.ok()) return hash.status();
  if (hash->size() != 32) {
    return absl::DataLossError(absl::StrCat(name, " is not a SHA-256 hash"));
  }
  return std::optional<std::string>(*std::move(hash));
}

// How many stored hashes one proof may read. A proof reads O(log^2 n) when
// every subtree is stored (under 2,100 at 2^45 records); subtrees an older
// gateway did not store are hashed from the leaves under them, and past
// this bound the proof is refused rather than read record by record.
constexpr int kMaxSubtreeReads = 1 << 16;

constexpr char kTokenColumns[] =
    "token_id, principal, kind, roles, description, created_by, "
    "secret_sha256, create_time_us, expire_time_us, revoke_time_us";

struct TokenRow {
  TokenRecord t;
  long long create_us = 0;
  long long expire_us = 0;
  long long revoke_us = 0;
  soci::indicator revoke_ind = soci::i_null;

  void Exchange(soci::statement& st) {
    st.exchange(soci::into(t.id));
    st.exchange(soci::into(t.principal));
    st.exchange(soci::into(t.kind));
    st.exchange(soci::into(t.roles));
    st.exchange(soci::into(t.description));
    st.exchange(soci::into(t.created_by));
    st.exchange(soci::into(t.secret_sha256));
    st.exchange(soci::into(create_us));
    st.exchange(soci::into(expire_us));
    st.exchange(soci::into(revoke_us, revoke_ind));
  }
  TokenRecord Get() const {
    TokenRecord out = t;
    out.create_time = FromMicros(create_us);
    out.expire_time = FromMicros(expire_us);
    out.revoke_time.reset();
    if (revoke_ind == soci::i_ok) out.revoke_time = FromMicros(revoke_us);
    return out;
  }
};

constexpr char kAuditColumns[] =
    "idx, time_us, principal, method, resource, request_id, phase, code, "
    "message, leaf_hash, root_after";

struct AuditRow {
  long long idx = 0;
  long long time_us = 0;
  AuditRecord r;
  std::string leaf_hex;
  std::string root_hex;

  void Exchange(soci::statement& st) {
    st.exchange(soci::into(idx));
    st.exchange(soci::into(time_us));
    st.exchange(soci::into(r.principal));
    st.exchange(soci::into(r.method));
    st.exchange(soci::into(r.resource));
    st.exchange(soci::into(r.request_id));
    st.exchange(soci::into(r.phase));
    st.exchange(soci::into(r.code));
    st.exchange(soci::into(r.message));
    st.exchange(soci::into(leaf_hex));
    st.exchange(soci::into(root_hex));
  }
  absl::StatusOr<AuditRecord> Get() const {
    AuditRecord out = r;
    out.index = static_cast<uint64_t>(idx);
    out.time = FromMicros(time_us);
    std::string what = absl::StrCat("leaf hash of audit record ", idx);
    absl::StatusOr<std::string> leaf = db::DecodeHexColumn(leaf_hex, what);
    if (!leaf.ok()) return leaf.status();
    absl::StatusOr<std::string> root = db::DecodeHexColumn(
        root_hex, absl::StrCat("root of audit record ", idx));
    if (!root.ok()) return root.status();
    out.leaf_hash = *std::move(leaf);
    out.root_after = *std::move(root);
    return out;
  }
};

aip::FieldSchema AuditSchema() {
  aip::FieldSchema s;
  s.Column("principal", aip::FieldType::kString, "principal")
      .Column("method", aip::FieldType::kString, "method")
      .Column("resource", aip::FieldType::kString, "resource")
      .Column("request_id", aip::FieldType::kString, "request_id")
      .Column("phase", aip::FieldType::kString, "phase")
      .Column("code", aip::FieldType::kString, "code")
      .Column("time", aip::FieldType::kTimestamp, "time_us");
  return s;
}

class SqlGatewayStore final : public GatewayStore {
 public:
  explicit SqlGatewayStore(db::Database& db) : db_(db) {}

  absl::Status InsertToken(const TokenRecord& t) override {
    return db_.Transact([&](soci::session& sql) -> absl::Status {
      long long create_us = Micros(t.create_time);
      long long expire_us = Micros(t.expire_time);
      sql << "INSERT INTO api_tokens (token_id, principal, kind, roles, "
             "description, created_by, secret_sha256, create_time_us, "
             "expire_time_us, revoke_time_us) VALUES (:id, :p, :k, :r, :d, "
             ":c, :s, :ct, :et, NULL)",
          soci::use(t.id), soci::use(t.principal), soci::use(t.kind),
          soci::use(t.roles), soci::use(t.description), soci::use(t.created_by),
          soci::use(t.secret_sha256), soci::use(create_us),
          soci::use(expire_us);
      return absl::OkStatus();
    });
  }

  absl::StatusOr<TokenRecord> GetToken(absl::string_view id) override {
    std::optional<TokenRecord> found;
    absl::Status s = db_.Transact(
        [&](soci::session& sql) -> absl::Status {
          SqlParams p;
          TokenRow row;
          return RunQuery(sql,
                          absl::StrCat("SELECT ", kTokenColumns,
                                       " FROM api_tokens WHERE token_id = ",
                                       p.Add(std::string(id))),
                          p, row, [&] {
                            found = row.Get();
                            return absl::OkStatus();
                          });
        },
        db::TxMode::kReadOnly);
    if (!s.ok()) return s;
    if (!found) {
      return absl::NotFoundError(absl::StrCat("no token ", id));
    }
    return *std::move(found);
  }

  absl::StatusOr<std::vector<TokenRecord>> ListTokens(
      const TokenListOptions& o) override {
    std::vector<TokenRecord> out;
    absl::Status s = db_.Transact(
        [&](soci::session& sql) -> absl::Status {
          out.clear();
          SqlParams p;
          std::string q = absl::StrCat("SELECT ", kTokenColumns,
                                       " FROM api_tokens WHERE token_id > ",
                                       p.Add(o.after_id));
          if (!o.principal.empty()) {
            absl::StrAppend(&q, " AND principal = ", p.Add(o.principal));
          }
          if (!o.show_inactive) {
            absl::StrAppend(&q, " AND revoke_time_us IS NULL AND ",
                            "expire_time_us > ",
                            p.Add(static_cast<long long>(Micros(o.now))));
          }
          absl::StrAppend(&q, " ORDER BY token_id LIMIT ",
                          p.Add(static_cast<long long>(o.page_size) + 1));
          TokenRow row;
          return RunQuery(sql, q, p, row, [&] {
            out.push_back(row.Get());
            return absl::OkStatus();
          });
        },
        db::TxMode::kReadOnly);
    if (!s.ok()) return s;
    return out;
  }

  absl::StatusOr<TokenRecord> RevokeToken(absl::string_view id,
                                          absl::Time time) override {
    absl::Status s = db_.Transact([&](soci::session& sql) -> absl::Status {
      SqlParams p;
      std::string q =
          absl::StrCat("UPDATE api_tokens SET revoke_time_us = ",
                       p.Add(static_cast<long long>(Micros(time))),
                       " WHERE revoke_time_us IS NULL AND token_id = ",
                       p.Add(std::string(id)));
      db::ExecuteWithParams(sql, q, p);
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return GetToken(id);
  }

  absl::StatusOr<int64_t> CountTokens() override {
    long long n = 0;
    absl::Status s = db_.Transact(
        [&](soci::session& sql) -> absl::Status {
          sql << "SELECT COUNT(*) FROM api_tokens", soci::into(n);
          return absl::OkStatus();
        },
        db::TxMode::kReadOnly);
    if (!s.ok()) return s;
    return n;
  }

  absl::StatusOr<AuditRecord> AppendAudit(AuditRecord record) override {
    absl::Status s = db_.Transact([&](soci::session& sql) -> absl::Status {
      long long size = 0;
      std::string range_hex;
      std::string lock =
          db_.dialect() == db::Dialect::kPostgres ? " FOR UPDATE" : "";
      sql << "SELECT size, compact_range FROM audit_head WHERE id = 1" + lock,
          soci::into(size), soci::into(range_hex);
      absl::StatusOr<std::string> range_bytes =
          db::DecodeHexColumn(range_hex, "audit log head");
      if (!range_bytes.ok()) return range_bytes.status();
      absl::StatusOr<audit::CompactRange> range =
          audit::CompactRange::Decode(size, *range_bytes);
      if (!range.ok()) {
        return absl::DataLossError(
            absl::StrCat("audit log head: ", range.status().message()));
      }
      record.index = static_cast<uint64_t>(size);
      record.time = absl::FromUnixMicros(absl::ToUnixMicros(record.time));
      record.leaf_hash = audit::LeafHash(audit::LeafBytes(record));
      std::vector<std::string> completed;
      range->Append(record.leaf_hash, &completed);
      record.root_after = range->Root();
      long long time_us = Micros(record.time);
      std::string leaf_hex = Hex(record.leaf_hash);
      std::string root_hex = Hex(record.root_after);
      sql << "INSERT INTO audit_entries (idx, time_us, principal, method, "
             "resource, request_id, phase, code, message, leaf_hash, "
             "root_after) VALUES (:i, :t, :p, :m, :r, :q, :ph, :c, :msg, :l, "
             ":ra)",
          soci::use(size), soci::use(time_us), soci::use(record.principal),
          soci::use(record.method), soci::use(record.resource),
          soci::use(record.request_id), soci::use(record.phase),
          soci::use(record.code), soci::use(record.message),
          soci::use(leaf_hex), soci::use(root_hex);
      long long new_size = size + 1;
      InsertNodes(sql, static_cast<uint64_t>(new_size), completed);
      std::string new_range = Hex(range->Encode());
      sql << "UPDATE audit_head SET size = :s, compact_range = :r WHERE id = 1",
          soci::use(new_size), soci::use(new_range);
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return record;
  }

  absl::StatusOr<std::vector<AuditRecord>> ListAudit(
      uint64_t start_index, int limit, absl::string_view filter) override {
    static const aip::FieldSchema* const kSchema =
        new aip::FieldSchema(AuditSchema());
    std::vector<AuditRecord> out;
    absl::Status s = db_.Transact(
        [&](soci::session& sql) -> absl::Status {
          out.clear();
          SqlParams p;
          std::string q = absl::StrCat(
              "SELECT ", kAuditColumns, " FROM audit_entries WHERE idx >= ",
              p.Add(static_cast<long long>(start_index)));
          if (!filter.empty()) {
            absl::StatusOr<std::string> where =
                aip::CompileFilter(filter, *kSchema, p);
            if (!where.ok()) return where.status();
            absl::StrAppend(&q, " AND (", *where, ")");
          }
          absl::StrAppend(&q, " ORDER BY idx LIMIT ",
                          p.Add(static_cast<long long>(limit)));
          AuditRow row;
          return RunQuery(sql, q, p, row, [&]() -> absl::Status {
            absl::StatusOr<AuditRecord> r = row.Get();
            if (!r.ok()) return r.status();
            out.push_back(*std::move(r));
            return absl::OkStatus();
          });
        },
        db::TxMode::kReadOnly);
    if (!s.ok()) return s;
    return out;
  }

  absl::StatusOr<uint64_t> AuditSize() override {
    long long size = 0;
    absl::Status s = db_.Transact(
        [&](soci::session& sql) -> absl::Status {
          sql << "SELECT size FROM audit_head WHERE id = 1", soci::into(size);
          return absl::OkStatus();
        },
        db::TxMode::kReadOnly);
    if (!s.ok()) return s;
    return static_cast<uint64_t>(size);
  }

  absl::Status ReadSubtrees(
      absl::FunctionRef<absl::Status(audit::SubtreeHashes)> read) override {
    return db_.Transact(
        [&](soci::session& sql) -> absl::Status {
          long long size = 0;
          sql << "SELECT size FROM audit_head WHERE id = 1", soci::into(size);
          // A subtree the table lacks (appended by a gateway from before
          // subtrees were stored, not yet completed at a start) is hashed
          // from its two halves: slower, never wrong.
          int reads = 0;
          std::function<absl::StatusOr<std::string>(int, uint64_t)> subtree =
              [&](int level, uint64_t index) -> absl::StatusOr<std::string> {
            if (level < 0 || level >= 63 ||
                index >= (static_cast<uint64_t>(size) >> level)) {
              return absl::OutOfRangeError(absl::StrCat(
                  "audit subtree ", level, "/", index,
                  " (level/index) is beyond the log's ", size, " records"));
            }
            if (++reads > kMaxSubtreeReads) {
              return absl::UnavailableError(absl::StrCat(
                  "this proof would read more than ", kMaxSubtreeReads,
                  " audit records: subtree hashes written by an older "
                  "gateway are missing until a gateway of this version "
                  "starts and completes them"));
            }
            absl::StatusOr<std::optional<std::string>> stored =
                ReadSubtree(sql, level, index);
            if (!stored.ok()) return stored.status();
            if (stored->has_value()) return **std::move(stored);
            if (level == 0) {
              return absl::DataLossError(absl::StrCat(
                  "audit record ", index, " is missing from the log"));
            }
            absl::StatusOr<std::string> left = subtree(level - 1, 2 * index);
            if (!left.ok()) return left.status();
            absl::StatusOr<std::string> right =
                subtree(level - 1, 2 * index + 1);
            if (!right.ok()) return right.status();
            return audit::NodeHash(*left, *right);
          };
          return read(subtree);
        },
        db::TxMode::kReadOnly);
  }

  absl::StatusOr<uint64_t> CompleteAuditNodes() override {
    // Whether anything is missing or damaged: the number of subtrees, and
    // the log's peaks (the perfect subtrees its head keeps) against the
    // stored ones, O(log n) reads.
    long long size = 0;
    bool complete = false;
    absl::Status s = db_.Transact(
        [&](soci::session& sql) -> absl::Status {
          std::string head_hex;
          sql << "SELECT size, compact_range FROM audit_head WHERE id = 1",
              soci::into(size), soci::into(head_hex);
          long long have = 0;
          sql << "SELECT COUNT(*) FROM audit_nodes", soci::into(have);
          // n records have n - popcount(n) subtrees of level 1 and up.
          const uint64_t n = static_cast<uint64_t>(size);
          complete = static_cast<uint64_t>(have) == n - std::popcount(n);
          if (!complete) return absl::OkStatus();
          absl::StatusOr<std::string> head =
              db::DecodeHexColumn(head_hex, "audit log head");
          if (!head.ok()) return head.status();
          uint64_t offset = 0;
          size_t k = 0;
          for (int level = 63; level >= 0 && complete; --level) {
            if ((n >> level & 1) == 0) continue;
            absl::StatusOr<std::optional<std::string>> stored =
                ReadSubtree(sql, level, offset >> level);
            if (!stored.ok()) return stored.status();
            complete = stored->has_value() && k * 32 + 32 <= head->size() &&
                       **stored == head->substr(k * 32, 32);
            offset += uint64_t{1} << level;
            ++k;
          }
          return absl::OkStatus();
        },
        db::TxMode::kReadOnly);
    if (!s.ok()) return s;
    if (complete) return 0;

    // Rebuilt from the first `size` records' leaf hashes, a chunk a
    // transaction, so that appends (which store their own subtrees) wait
    // for one chunk at most. Rows are upserted: every value is derived
    // from the leaves, so a row an append wrote meanwhile gets the same
    // value, and a damaged one is overwritten.
    audit::CompactRange range;
    uint64_t written = 0;
    constexpr long long kChunk = 10000;
    for (long long from = 0; from < size; from += kChunk) {
      const long long to = std::min<long long>(size, from + kChunk);
      audit::CompactRange next;
      size_t rows_written = 0;
      s = db_.Transact([&](soci::session& sql) -> absl::Status {
        next = range;
        std::vector<std::string> leaves;
        long long idx = 0;
        std::string hex;
        soci::statement st =
            (sql.prepare << "SELECT idx, leaf_hash FROM audit_entries WHERE "
                            "idx >= :a AND idx < :b ORDER BY idx",
             soci::use(from), soci::use(to), soci::into(idx), soci::into(hex));
        st.execute(false);
        while (st.fetch()) {
          if (idx != from + static_cast<long long>(leaves.size())) break;
          absl::StatusOr<std::string> h = db::DecodeHexColumn(
              hex, absl::StrCat("leaf hash of audit record ", idx));
          if (!h.ok()) return h.status();
          leaves.push_back(*std::move(h));
        }
        if (static_cast<long long>(leaves.size()) != to - from) {
          return absl::DataLossError(absl::StrCat("audit record ",
                                                  from + leaves.size(),
                                                  " is missing from the log"));
        }
        // Many rows a statement: the values are integers and hex.
        std::vector<std::string> rows;
        for (const std::string& leaf : leaves) {
          std::vector<std::string> completed;
          next.Append(leaf, &completed);
          for (size_t j = 0; j < completed.size(); ++j) {
            const int level = static_cast<int>(j) + 1;
            rows.push_back(absl::StrCat("(", level, ", ",
                                        (next.size() >> level) - 1, ", '",
                                        Hex(completed[j]), "')"));
          }
        }
        for (size_t r = 0; r < rows.size(); r += 500) {
          const size_t end = std::min(rows.size(), r + 500);
          sql << absl::StrCat(
              "INSERT INTO audit_nodes (level, idx, hash) VALUES ",
              absl::StrJoin(rows.begin() + r, rows.begin() + end, ", "),
              kUpsertNode);
        }
        rows_written = rows.size();
        return absl::OkStatus();
      });
      if (!s.ok()) return s;
      range = std::move(next);
      written += rows_written;
    }
    if (size > 0) {
      absl::StatusOr<std::string> root = RootAt(static_cast<uint64_t>(size));
      if (!root.ok()) return root.status();
      if (range.Root() != *root) {
        return absl::DataLossError(absl::StrCat(
            "the audit log's leaf hashes do not add up to the root it "
            "recorded at ",
            size, " records (`certplane audit verify` names the changed one)"));
      }
    }
    // Rows beyond the log's end (put there by hand) would make an append
    // that completes them overwrite them, and the count above wrong. The
    // size is read by the statement itself, so that subtrees an append
    // committed meanwhile stay.
    s = db_.Transact([&](soci::session& sql) -> absl::Status {
      sql << "DELETE FROM audit_nodes WHERE idx >= "
             "((SELECT size FROM audit_head WHERE id = 1) >> level)";
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return written;
  }

  absl::StatusOr<std::string> RootAt(uint64_t size) override {
    if (size == 0) return audit::EmptyTreeHash();
    std::string hex;
    bool found = false;
    absl::Status s = db_.Transact(
        [&](soci::session& sql) -> absl::Status {
          long long idx = static_cast<long long>(size - 1);
          soci::indicator ind = soci::i_null;
          sql << "SELECT root_after FROM audit_entries WHERE idx = :i",
              soci::use(idx), soci::into(hex, ind);
          found = sql.got_data() && ind == soci::i_ok;
          return absl::OkStatus();
        },
        db::TxMode::kReadOnly);
    if (!s.ok()) return s;
    if (!found) {
      return absl::OutOfRangeError(
          absl::StrCat("the audit log has fewer than ", size, " records"));
    }
    return db::DecodeHexColumn(hex,
                               absl::StrCat("root of audit record ", size - 1));
  }

  absl::Status InsertCheckpoint(const Checkpoint& c) override {
    return db_.Transact([&](soci::session& sql) -> absl::Status {
      long long size = static_cast<long long>(c.tree_size);
      long long existing = 0;
      sql << "SELECT COUNT(*) FROM audit_checkpoints WHERE tree_size = :s",
          soci::use(size), soci::into(existing);
      if (existing > 0) return absl::OkStatus();
      long long time_us = Micros(c.time);
      std::string root = Hex(c.root);
      std::string sig = Hex(c.signature);
      sql << "INSERT INTO audit_checkpoints (tree_size, root_hash, time_us, "
             "key_id, signature) VALUES (:s, :r, :t, :k, :g)",
          soci::use(size), soci::use(root), soci::use(time_us),
          soci::use(c.key_id), soci::use(sig);
      return absl::OkStatus();
    });
  }

  absl::StatusOr<std::vector<Checkpoint>> ListCheckpoints() override {
    return Checkpoints(
        "SELECT tree_size, root_hash, time_us, key_id, "
        "signature FROM audit_checkpoints ORDER BY tree_size");
  }

  absl::StatusOr<std::optional<Checkpoint>> LatestCheckpoint() override {
    absl::StatusOr<std::vector<Checkpoint>> list = Checkpoints(
        "SELECT tree_size, root_hash, time_us, key_id, signature FROM "
        "audit_checkpoints ORDER BY tree_size DESC LIMIT 1");
    if (!list.ok()) return list.status();
    if (list->empty()) return std::optional<Checkpoint>();
    return std::optional<Checkpoint>(list->front());
  }

 private:
  absl::StatusOr<std::vector<Checkpoint>> Checkpoints(const std::string& q) {
    std::vector<Checkpoint> out;
    absl::Status s = db_.Transact(
        [&](soci::session& sql) -> absl::Status {
          out.clear();
          long long size = 0;
          long long time_us = 0;
          std::string root_hex, key_id, sig_hex;
          soci::statement st =
              (sql.prepare << q, soci::into(size), soci::into(root_hex),
               soci::into(time_us), soci::into(key_id), soci::into(sig_hex));
          st.execute(false);
          while (st.fetch()) {
            Checkpoint c;
            c.tree_size = static_cast<uint64_t>(size);
            c.time = FromMicros(time_us);
            c.key_id = key_id;
            std::string what = absl::StrCat("checkpoint ", size);
            absl::StatusOr<std::string> root =
                db::DecodeHexColumn(root_hex, what);
            if (!root.ok()) return root.status();
            absl::StatusOr<std::string> sig =
                db::DecodeHexColumn(sig_hex, what);
            if (!sig.ok()) return sig.status();
            c.root = *std::move(root);
            c.signature = *std::move(sig);
            out.push_back(std::move(c));
          }
          return absl::OkStatus();
        },
        db::TxMode::kReadOnly);
    if (!s.ok()) return s;
    return out;
  }

  db::Database& db_;
};

}  // namespace

std::unique_ptr<GatewayStore> NewSqlGatewayStore(db::Database& db) {
  return std::make_unique<SqlGatewayStore>(db);
}

}  // namespace certplane::gateway
