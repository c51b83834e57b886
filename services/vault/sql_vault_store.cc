#include "services/vault/sql_vault_store.h"

#include <soci/soci.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/db/database.h"
#include "libs/db/sql_params.h"
#include "libs/db/statement_cache.h"
#include "services/vault/vault_store.h"

namespace certplane::vault {
namespace {

using db::Dialect;

constexpr absl::string_view kPageTokenVersion = "v1";

// ---------------------------------------------------------------------------
// Value conversions.

absl::string_view StateName(KeyState state) {
  return state == KeyState::kActive ? "active" : "destroyed";
}

bool IsKeyId(absl::string_view id) {
  if (id.size() != 33 || id[0] != 'k') return false;
  for (char c : id.substr(1)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

absl::Status CheckKeyId(absl::string_view id) {
  if (IsKeyId(id)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "key id \"", absl::CHexEscape(id.substr(0, 64)),
      "\" is malformed: want \"k\" followed by 32 lowercase hex digits"));
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes a hex column; DATA_LOSS names the column when it is not hex.
absl::StatusOr<std::string> FromHex(absl::string_view hex,
                                    absl::string_view column,
                                    absl::string_view key_id) {
  if (hex.size() % 2 != 0) {
    return absl::DataLossError(absl::StrCat("column ", column, " of key ",
                                            key_id, " has odd hex length"));
  }
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = HexValue(hex[2 * i]);
    int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return absl::DataLossError(
          absl::StrCat("column ", column, " of key ", key_id, " is not hex"));
    }
    out[i] = static_cast<char>((hi << 4) | lo);
  }
  return out;
}

// SQL turning a bound lowercase-hex parameter into the column's storage.
std::string BytesIn(Dialect dialect, absl::string_view param) {
  if (dialect == Dialect::kPostgres) {
    return absl::StrCat("decode(", param, ", 'hex')");
  }
  return std::string(param);
}

// SQL reading a binary column as hex.
std::string BytesOut(Dialect dialect, absl::string_view column) {
  if (dialect == Dialect::kPostgres) {
    return absl::StrCat("encode(", column, ", 'hex')");
  }
  return std::string(column);
}

// FNV-1a 64: a stable hash for binding page tokens to their filter.
uint64_t Fnv1a64(absl::string_view data) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string FilterFingerprint(const KeyFilter& filter) {
  // Length-prefixed fields, so no two filters serialize alike.
  std::string s;
  auto add = [&s](absl::string_view field) {
    absl::StrAppend(&s, field.size(), ":", field, ";");
  };
  add(filter.owner);
  add(filter.algorithm);
  add(filter.origin);
  add(filter.state.has_value() ? StateName(*filter.state) : "");
  absl::StrAppend(&s, filter.labels.size(), "{");
  for (const auto& [name, value] : filter.labels) {
    add(name);
    add(value);
  }
  return absl::StrCat(absl::Hex(Fnv1a64(s), absl::kZeroPad16));
}

std::string MakePageToken(const KeyFilter& filter,
                          absl::string_view last_key_id) {
  return absl::WebSafeBase64Escape(absl::StrCat(
      kPageTokenVersion, "|", last_key_id, "|", FilterFingerprint(filter)));
}

// The key id to continue after.
absl::StatusOr<std::string> ParsePageToken(const KeyFilter& filter,
                                           absl::string_view token) {
  std::string raw;
  if (token.size() > 256 || !absl::WebSafeBase64Unescape(token, &raw)) {
    return absl::InvalidArgumentError(
        "page token is malformed: not from a previous ListKeys page");
  }
  std::vector<absl::string_view> parts = absl::StrSplit(raw, '|');
  if (parts.size() != 3 || parts[0] != kPageTokenVersion ||
      !IsKeyId(parts[1])) {
    return absl::InvalidArgumentError(
        "page token is malformed: not from a previous ListKeys page");
  }
  if (parts[2] != FilterFingerprint(filter)) {
    return absl::InvalidArgumentError(
        "page token was issued for a different filter; start again without "
        "a token");
  }
  return std::string(parts[1]);
}

absl::Status CheckAudit(const AuditRecord& audit) {
  if (audit.operation.empty()) {
    return absl::InvalidArgumentError("audit record has no operation");
  }
  if (audit.result.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("audit record for ", audit.operation, " has no result"));
  }
  return absl::OkStatus();
}

absl::Status CheckNewKey(const KeyRecord& r) {
  if (absl::Status s = CheckKeyId(r.key_id); !s.ok()) return s;
  auto bad = [&r](absl::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat("key ", r.key_id, ": ", what));
  };
  if (r.version < 1) return bad("version must be at least 1");
  if (r.owner.empty()) return bad("owner is empty");
  if (r.algorithm.empty()) return bad("algorithm is empty");
  if (r.bits < 0) return bad("bits is negative");
  if (r.public_key_der.empty()) return bad("public key is empty");
  if (r.state != KeyState::kActive) return bad("a new key must be active");
  if (r.destroy_time.has_value()) return bad("a new key has no destroy time");
  if (r.origin.empty()) return bad("origin is empty");
  if (r.sealed_key.empty()) return bad("sealed key is empty");
  if (r.wrapped_dek.empty()) return bad("wrapped data key is empty");
  if (r.kek_version < 1) return bad("KEK version must be at least 1");
  for (const auto& [name, value] : r.labels) {
    if (name.empty()) return bad("a label has an empty name");
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// SQL helpers.

std::string KeyColumns(Dialect d) {
  return absl::StrCat(
      "key_id, version, owner, algorithm, bits, curve, ",
      BytesOut(d, "public_key_der"), ", spki_sha256, state, origin, ",
      BytesOut(d, "sealed_key"), ", ", BytesOut(d, "wrapped_dek"),
      ", kek_version, request_id, create_time_us, destroy_time_us");
}

// Loads the labels of `keys` (all from the current transaction).
void LoadLabels(soci::session& sql, std::vector<KeyRecord>& keys) {
  if (keys.empty()) return;
  db::SqlParams params;
  std::vector<std::string> placeholders;
  std::map<std::string, KeyRecord*> by_id;
  for (KeyRecord& k : keys) {
    placeholders.push_back(params.Add(k.key_id));
    by_id[k.key_id] = &k;
  }
  std::string key_id, name, value;
  const std::string query = absl::StrCat(
      "SELECT key_id, name, value FROM key_labels WHERE key_id IN (",
      absl::StrJoin(placeholders, ", "), ")");
  db::ReusableStatement st(sql, query);
  st->exchange(soci::into(key_id));
  st->exchange(soci::into(name));
  st->exchange(soci::into(value));
  params.BindTo(*st);
  st.Bind();
  st->execute(false);
  while (st->fetch()) {
    auto it = by_id.find(key_id);
    if (it != by_id.end()) it->second->labels[name] = value;
  }
}

// SELECT <key columns> FROM keys <tail>, with labels.
absl::StatusOr<std::vector<KeyRecord>> QueryKeys(soci::session& sql,
                                                 Dialect dialect,
                                                 absl::string_view tail,
                                                 db::SqlParams& params) {
  std::string key_id, owner, algorithm, curve, public_key_hex, spki, state,
      origin, sealed_hex, wrapped_hex, request_id;
  long long version = 0, create_us = 0, destroy_us = 0;
  int bits = 0, kek_version = 0;
  soci::indicator destroy_ind = soci::i_null;
  const std::string query =
      absl::StrCat("SELECT ", KeyColumns(dialect), " FROM keys ", tail);
  db::ReusableStatement st(sql, query);
  st->exchange(soci::into(key_id));
  st->exchange(soci::into(version));
  st->exchange(soci::into(owner));
  st->exchange(soci::into(algorithm));
  st->exchange(soci::into(bits));
  st->exchange(soci::into(curve));
  st->exchange(soci::into(public_key_hex));
  st->exchange(soci::into(spki));
  st->exchange(soci::into(state));
  st->exchange(soci::into(origin));
  st->exchange(soci::into(sealed_hex));
  st->exchange(soci::into(wrapped_hex));
  st->exchange(soci::into(kek_version));
  st->exchange(soci::into(request_id));
  st->exchange(soci::into(create_us));
  st->exchange(soci::into(destroy_us, destroy_ind));
  params.BindTo(*st);
  st.Bind();
  st->execute(false);

  std::vector<KeyRecord> out;
  while (st->fetch()) {
    KeyRecord r;
    r.key_id = key_id;
    r.version = version;
    r.owner = owner;
    r.algorithm = algorithm;
    r.bits = bits;
    r.curve = curve;
    absl::StatusOr<std::string> pub =
        FromHex(public_key_hex, "public_key_der", key_id);
    if (!pub.ok()) return pub.status();
    r.public_key_der = *std::move(pub);
    r.spki_sha256 = spki;
    if (state == "active") {
      r.state = KeyState::kActive;
    } else if (state == "destroyed") {
      r.state = KeyState::kDestroyed;
    } else {
      return absl::DataLossError(absl::StrCat("key ", key_id,
                                              " has unknown state \"",
                                              absl::CHexEscape(state), "\""));
    }
    r.origin = origin;
    absl::StatusOr<std::string> sealed =
        FromHex(sealed_hex, "sealed_key", key_id);
    if (!sealed.ok()) return sealed.status();
    r.sealed_key = *std::move(sealed);
    absl::StatusOr<std::string> wrapped =
        FromHex(wrapped_hex, "wrapped_dek", key_id);
    if (!wrapped.ok()) return wrapped.status();
    r.wrapped_dek = *std::move(wrapped);
    r.kek_version = kek_version;
    r.request_id = request_id;
    r.create_time = absl::FromUnixMicros(create_us);
    if (destroy_ind == soci::i_ok) {
      r.destroy_time = absl::FromUnixMicros(destroy_us);
    }
    out.push_back(std::move(r));
  }
  LoadLabels(sql, out);
  return out;
}

void InsertAudit(soci::session& sql, const AuditRecord& audit) {
  long long time_us = absl::ToUnixMicros(audit.time);
  sql << "INSERT INTO audit (time_us, identity, operation, key_id, result, "
         "detail, request_id) VALUES (:t, :i, :o, :k, :r, :d, :q)",
      soci::use(time_us), soci::use(audit.identity), soci::use(audit.operation),
      soci::use(audit.key_id), soci::use(audit.result), soci::use(audit.detail),
      soci::use(audit.request_id);
}

// Counts one encryption under KEK `version`; FAILED_PRECONDITION when the
// version was never recorded.
absl::Status CountEncryption(soci::session& sql, int version) {
  db::SqlParams params;
  std::string query = absl::StrCat(
      "UPDATE kek_versions SET encryption_count = "
      "encryption_count + 1 WHERE version = ",
      params.Add(static_cast<long long>(version)));
  if (db::ExecuteWithParams(sql, query, params) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("KEK version ", version, " is not recorded in the vault"));
  }
  return absl::OkStatus();
}

// FAILED_PRECONDITION when KEK `version` was never recorded.
absl::Status CheckKekVersionKnown(soci::session& sql, int version) {
  long long known = 0;
  long long v = version;
  sql << "SELECT COUNT(*) FROM kek_versions WHERE version = :v",
      soci::into(known), soci::use(v);
  if (known == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("KEK version ", version, " is not recorded in the vault"));
  }
  return absl::OkStatus();
}

// The state of a key, or nullopt when there is no such row.
std::optional<std::string> KeyStateOf(soci::session& sql,
                                      const std::string& key_id,
                                      int* kek_version = nullptr) {
  std::string state;
  int kek = 0;
  soci::indicator ind = soci::i_null;
  sql << "SELECT state, kek_version FROM keys WHERE key_id = :k",
      soci::into(state, ind), soci::into(kek), soci::use(key_id);
  if (!sql.got_data()) return std::nullopt;
  if (kek_version != nullptr) *kek_version = kek;
  return state;
}

// ---------------------------------------------------------------------------

class SqlVaultStore final : public VaultStore {
 public:
  explicit SqlVaultStore(db::Database* database) : db_(*database) {}

  absl::Status InsertKey(const KeyRecord& record,
                         const AuditRecord& audit) override {
    if (absl::Status s = CheckNewKey(record); !s.ok()) return s;
    if (absl::Status s = CheckAudit(audit); !s.ok()) return s;
    const Dialect d = db_.dialect();
    return db_.Transact([&](soci::session& sql) -> absl::Status {
      // Friendlier errors than the constraint messages; the UNIQUE
      // constraints still decide under concurrency (ALREADY_EXISTS either
      // way).
      if (KeyStateOf(sql, record.key_id).has_value()) {
        return absl::AlreadyExistsError(
            absl::StrCat("key ", record.key_id, " already exists"));
      }
      if (!record.request_id.empty()) {
        std::string other;
        sql << "SELECT key_id FROM keys WHERE request_id = :r",
            soci::into(other), soci::use(record.request_id);
        if (sql.got_data()) {
          return absl::AlreadyExistsError(
              absl::StrCat("request id \"", record.request_id,
                           "\" was already used to create key ", other));
        }
      }
      // Checked first for the clear error; counted last (below), since the
      // count's row is shared by every insert and stays locked to COMMIT.
      if (absl::Status s = CheckKekVersionKnown(sql, record.kek_version);
          !s.ok()) {
        return s;
      }
      db::SqlParams p;
      std::vector<std::string> v = {
          p.Add(record.key_id),
          p.Add(static_cast<long long>(record.version)),
          p.Add(record.owner),
          p.Add(record.algorithm),
          p.Add(static_cast<long long>(record.bits)),
          p.Add(record.curve),
          BytesIn(d, p.Add(absl::BytesToHexString(record.public_key_der))),
          p.Add(record.spki_sha256),
          p.Add(std::string(StateName(KeyState::kActive))),
          p.Add(record.origin),
          BytesIn(d, p.Add(absl::BytesToHexString(record.sealed_key))),
          BytesIn(d, p.Add(absl::BytesToHexString(record.wrapped_dek))),
          p.Add(static_cast<long long>(record.kek_version)),
          p.Add(record.request_id),
          p.Add(static_cast<long long>(absl::ToUnixMicros(record.create_time))),
      };
      db::ExecuteWithParams(
          sql,
          absl::StrCat("INSERT INTO keys (key_id, version, owner, "
                       "algorithm, bits, curve, public_key_der, "
                       "spki_sha256, state, origin, sealed_key, "
                       "wrapped_dek, kek_version, request_id, "
                       "create_time_us) VALUES (",
                       absl::StrJoin(v, ", "), ")"),
          p);
      for (const auto& [name, value] : record.labels) {
        sql << "INSERT INTO key_labels (key_id, name, value) "
               "VALUES (:k, :n, :v)",
            soci::use(record.key_id), soci::use(name), soci::use(value);
      }
      InsertAudit(sql, audit);
      return CountEncryption(sql, record.kek_version);
    });
  }

  absl::StatusOr<KeyRecord> GetKey(absl::string_view key_id) override {
    if (absl::Status s = CheckKeyId(key_id); !s.ok()) return s;
    absl::StatusOr<std::vector<KeyRecord>> found;
    absl::Status s = db_.Transact(
        [&](soci::session& sql) -> absl::Status {
          db::SqlParams p;
          std::string tail =
              absl::StrCat("WHERE key_id = ", p.Add(std::string(key_id)));
          found = QueryKeys(sql, db_.dialect(), tail, p);
          return found.status();
        },
        db::TxMode::kReadOnly);
    if (!s.ok()) return s;
    if (found->empty()) {
      return absl::NotFoundError(absl::StrCat("no key ", key_id));
    }
    return std::move(found->front());
  }

  absl::StatusOr<std::optional<KeyRecord>> FindByRequestId(
      absl::string_view request_id) override {
    if (request_id.empty()) {
      return absl::InvalidArgumentError("request id is empty");
    }
    absl::StatusOr<std::vector<KeyRecord>> found;
    absl::Status s = db_.Transact(
        [&](soci::session& sql) -> absl::Status {
          db::SqlParams p;
          std::string tail = absl::StrCat("WHERE request_id = ",
                                          p.Add(std::string(request_id)));
          found = QueryKeys(sql, db_.dialect(), tail, p);
          return found.status();
        },
        db::TxMode::kReadOnly);
    if (!s.ok()) return s;
    if (found->empty()) return std::optional<KeyRecord>();
    return std::optional<KeyRecord>(std::move(found->front()));
  }

  absl::StatusOr<KeyPage> ListKeys(const KeyFilter& filter, int page_size,
                                   absl::string_view page_token) override {
    if (page_size < 1 || page_size > kMaxVaultPageSize) {
      return absl::InvalidArgumentError(absl::StrCat(
          "page size ", page_size, " is outside [1, ", kMaxVaultPageSize, "]"));
    }
    std::string after;
    if (!page_token.empty()) {
      absl::StatusOr<std::string> parsed = ParsePageToken(filter, page_token);
      if (!parsed.ok()) return parsed.status();
      after = *std::move(parsed);
    }
    absl::StatusOr<std::vector<KeyRecord>> found;
    absl::Status s = db_.Transact(
        [&](soci::session& sql) -> absl::Status {
          db::SqlParams p;
          std::vector<std::string> where = {
              absl::StrCat("key_id > ", p.Add(after))};
          if (!filter.owner.empty()) {
            where.push_back(absl::StrCat("owner = ", p.Add(filter.owner)));
          }
          if (!filter.algorithm.empty()) {
            where.push_back(
                absl::StrCat("algorithm = ", p.Add(filter.algorithm)));
          }
          if (!filter.origin.empty()) {
            where.push_back(absl::StrCat("origin = ", p.Add(filter.origin)));
          }
          if (filter.state.has_value()) {
            where.push_back(absl::StrCat(
                "state = ", p.Add(std::string(StateName(*filter.state)))));
          }
          for (const auto& [name, value] : filter.labels) {
            std::string n = p.Add(name);
            std::string v = p.Add(value);
            where.push_back(absl::StrCat(
                "EXISTS (SELECT 1 FROM key_labels l WHERE l.key_id = "
                "keys.key_id AND l.name = ",
                n, " AND l.value = ", v, ")"));
          }
          std::string tail =
              absl::StrCat("WHERE ", absl::StrJoin(where, " AND "),
                           " ORDER BY key_id LIMIT ",
                           p.Add(static_cast<long long>(page_size) + 1));
          found = QueryKeys(sql, db_.dialect(), tail, p);
          return found.status();
        },
        db::TxMode::kReadOnly);
    if (!s.ok()) return s;
    KeyPage page;
    page.keys = *std::move(found);
    if (page.keys.size() > static_cast<size_t>(page_size)) {
      page.keys.resize(page_size);
      page.next_page_token = MakePageToken(filter, page.keys.back().key_id);
    }
    return page;
  }

  absl::Status DestroyKey(absl::string_view key_id, absl::Time when,
                          const AuditRecord& audit) override {
    if (absl::Status s = CheckKeyId(key_id); !s.ok()) return s;
    if (absl::Status s = CheckAudit(audit); !s.ok()) return s;
    const Dialect d = db_.dialect();
    const std::string id(key_id);
    return db_.Transact([&](soci::session& sql) -> absl::Status {
      db::SqlParams p;
      std::string empty_hex = BytesIn(d, p.Add(std::string()));
      std::string query = absl::StrCat(
          "UPDATE keys SET state = 'destroyed', sealed_key = ", empty_hex,
          ", wrapped_dek = ", BytesIn(d, p.Add(std::string())),
          ", destroy_time_us = ",
          p.Add(static_cast<long long>(absl::ToUnixMicros(when))),
          " WHERE key_id = ", p.Add(id), " AND state = 'active'");
      if (db::ExecuteWithParams(sql, query, p) == 0) {
        if (!KeyStateOf(sql, id).has_value()) {
          return absl::NotFoundError(absl::StrCat("no key ", id));
        }
        return absl::FailedPreconditionError(
            absl::StrCat("key ", id, " is already destroyed"));
      }
      InsertAudit(sql, audit);
      return absl::OkStatus();
    });
  }

  absl::Status ReplaceWrappedDek(absl::string_view key_id,
                                 int expected_kek_version, int new_kek_version,
                                 absl::string_view wrapped_dek) override {
    if (absl::Status s = CheckKeyId(key_id); !s.ok()) return s;
    if (wrapped_dek.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("key ", key_id, ": new wrapped data key is empty"));
    }
    if (new_kek_version < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("key ", key_id, ": new KEK version ", new_kek_version,
                       " must be at least 1"));
    }
    const Dialect d = db_.dialect();
    const std::string id(key_id);
    return db_.Transact([&](soci::session& sql) -> absl::Status {
      if (absl::Status s = CountEncryption(sql, new_kek_version); !s.ok()) {
        return s;
      }
      db::SqlParams p;
      std::string query = absl::StrCat(
          "UPDATE keys SET wrapped_dek = ",
          BytesIn(d, p.Add(absl::BytesToHexString(wrapped_dek))),
          ", kek_version = ", p.Add(static_cast<long long>(new_kek_version)),
          " WHERE key_id = ", p.Add(id), " AND state = 'active'",
          " AND kek_version = ",
          p.Add(static_cast<long long>(expected_kek_version)));
      if (db::ExecuteWithParams(sql, query, p) == 1) return absl::OkStatus();
      int current = 0;
      std::optional<std::string> state = KeyStateOf(sql, id, &current);
      if (!state.has_value()) {
        return absl::NotFoundError(absl::StrCat("no key ", id));
      }
      if (*state != "active") {
        return absl::FailedPreconditionError(
            absl::StrCat("key ", id, " is destroyed; nothing to rewrap"));
      }
      return absl::FailedPreconditionError(
          absl::StrCat("key ", id, " is wrapped under KEK version ", current,
                       ", not the expected ", expected_kek_version,
                       " (changed concurrently)"));
    });
  }

  absl::StatusOr<std::vector<KeyRecord>> KeysWrappedBelow(int version,
                                                          int limit) override {
    if (limit < 1 || limit > kMaxVaultPageSize) {
      return absl::InvalidArgumentError(absl::StrCat(
          "limit ", limit, " is outside [1, ", kMaxVaultPageSize, "]"));
    }
    absl::StatusOr<std::vector<KeyRecord>> found;
    absl::Status s = db_.Transact(
        [&](soci::session& sql) -> absl::Status {
          db::SqlParams p;
          std::string tail = absl::StrCat(
              "WHERE state = 'active' AND kek_version < ",
              p.Add(static_cast<long long>(version)), " ORDER BY key_id LIMIT ",
              p.Add(static_cast<long long>(limit)));
          found = QueryKeys(sql, db_.dialect(), tail, p);
          return found.status();
        },
        db::TxMode::kReadOnly);
    if (!s.ok()) return s;
    return found;
  }

  absl::Status AddKekVersion(int version, absl::Time when,
                             const AuditRecord& audit) override {
    if (version < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("KEK version ", version, " must be at least 1"));
    }
    if (absl::Status s = CheckAudit(audit); !s.ok()) return s;
    return db_.Transact([&](soci::session& sql) -> absl::Status {
      long long v = version;
      long long t = absl::ToUnixMicros(when);
      sql << "INSERT INTO kek_versions (version, create_time_us, "
             "encryption_count) VALUES (:v, :t, 0) "
             "ON CONFLICT (version) DO NOTHING",
          soci::use(v), soci::use(t);
      InsertAudit(sql, audit);
      return absl::OkStatus();
    });
  }

  using VaultStore::KekVersions;
  absl::StatusOr<std::vector<KekVersionRecord>> KekVersions(
      KekCounts counts) override {
    const std::string key_count =
        counts == KekCounts::kWithKeyCounts
            ? "(SELECT COUNT(*) FROM keys k WHERE k.kek_version = v.version "
              "AND k.state = 'active')"
            : "0";
    std::vector<KekVersionRecord> out;
    absl::Status s = db_.Transact(
        [&](soci::session& sql) -> absl::Status {
          out.clear();
          int version = 0;
          long long create_us = 0, count = 0, wrapped = 0;
          soci::statement st =
              (sql.prepare << "SELECT v.version, v.create_time_us, "
                              "v.encryption_count, "
                           << key_count
                           << " FROM kek_versions v ORDER BY v.version",
               soci::into(version), soci::into(create_us), soci::into(count),
               soci::into(wrapped));
          st.execute(false);
          while (st.fetch()) {
            out.push_back({.version = version,
                           .create_time = absl::FromUnixMicros(create_us),
                           .encryption_count = count,
                           .wrapped_key_count = wrapped});
          }
          return absl::OkStatus();
        },
        db::TxMode::kReadOnly);
    if (!s.ok()) return s;
    return out;
  }

  absl::Status AppendAudit(const AuditRecord& audit) override {
    if (absl::Status s = CheckAudit(audit); !s.ok()) return s;
    return db_.Transact([&](soci::session& sql) -> absl::Status {
      InsertAudit(sql, audit);
      return absl::OkStatus();
    });
  }

  absl::StatusOr<std::vector<AuditRecord>> RecentAudit(int limit) override {
    if (limit < 1 || limit > kMaxVaultAuditLimit) {
      return absl::InvalidArgumentError(absl::StrCat(
          "limit ", limit, " is outside [1, ", kMaxVaultAuditLimit, "]"));
    }
    std::vector<AuditRecord> out;
    absl::Status s = db_.Transact(
        [&](soci::session& sql) -> absl::Status {
          out.clear();
          long long time_us = 0;
          long long n = limit;
          AuditRecord a;
          soci::statement st =
              (sql.prepare << "SELECT time_us, identity, operation, key_id, "
                              "result, detail, request_id FROM audit "
                              "ORDER BY id DESC LIMIT :n",
               soci::into(time_us), soci::into(a.identity),
               soci::into(a.operation), soci::into(a.key_id),
               soci::into(a.result), soci::into(a.detail),
               soci::into(a.request_id), soci::use(n));
          st.execute(false);
          while (st.fetch()) {
            a.time = absl::FromUnixMicros(time_us);
            out.push_back(a);
          }
          return absl::OkStatus();
        },
        db::TxMode::kReadOnly);
    if (!s.ok()) return s;
    return out;
  }

 private:
  db::Database& db_;
};

}  // namespace

std::unique_ptr<VaultStore> NewSqlVaultStore(db::Database* database) {
  return std::make_unique<SqlVaultStore>(database);
}

}  // namespace certplane::vault
