#include "services/inventory/sql_inventory_store.h"

#include <soci/soci.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/aip/filter.h"
#include "libs/db/database.h"
#include "libs/db/query.h"
#include "libs/db/sql_params.h"
#include "libs/db/statement_cache.h"
#include "services/inventory/inventory_store.h"

namespace certplane::inventory {
namespace {

using db::Dialect;

// Stored for a certificate without a version (see migrations.h).
constexpr int64_t kNoNotAfter = std::numeric_limits<int64_t>::max();
constexpr int64_t kNoNotBefore = std::numeric_limits<int64_t>::min();
// Parameters per multi-row statement: well below PostgreSQL's 65,535 and
// SQLite's 32,766.
constexpr int kMaxParamsPerStatement = 20000;
// Ids per IN list.
constexpr size_t kMaxInList = 1000;
constexpr int64_t kMicrosPerDay = int64_t{86400} * 1000 * 1000;
// Above any other code point: `value < prefix + kMaxChar` bounds the values
// starting with `prefix` (bytewise order).
constexpr absl::string_view kMaxChar = "\xF4\x8F\xBF\xBF";
constexpr int kImportAttempts = 3;

// ---------------------------------------------------------------------------
// Validation.

bool IsLowerHex(absl::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool IsCertificateId(absl::string_view id) {
  return id.size() == 33 && id[0] == 'c' && IsLowerHex(id.substr(1));
}

bool IsSha256Hex(absl::string_view s) {
  return s.size() == 64 && IsLowerHex(s);
}

std::string Quote(absl::string_view s) {
  return absl::StrCat("\"", absl::CHexEscape(s.substr(0, 80)),
                      s.size() > 80 ? "..." : "", "\"");
}

absl::Status CheckCertificateId(absl::string_view id, absl::string_view what) {
  if (IsCertificateId(id)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what, " ", Quote(id),
                   " is malformed: want \"c\" followed by 32 lowercase hex "
                   "digits"));
}

absl::Status CheckSha256(absl::string_view sha, absl::string_view what) {
  if (IsSha256Hex(sha)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      what, " ", Quote(sha), " is malformed: want 64 lowercase hex digits"));
}

// Text both databases store unchanged: valid UTF-8 without NUL bytes
// (PostgreSQL refuses both).
bool IsStorableText(absl::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == 0) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (int k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
        (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

absl::Status CheckText(absl::string_view value, absl::string_view field) {
  if (IsStorableText(value)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      field, " ", Quote(value), " is not valid UTF-8 or contains a NUL byte"));
}

// Facts text a certificate may really carry; checked per import item.
absl::Status CheckFactsText(const CertificateFacts& f, absl::string_view what) {
  const std::pair<absl::string_view, const std::string*> fields[] = {
      {"subject_dn", &f.subject_dn},
      {"common_name", &f.common_name},
      {"issuer_dn", &f.issuer_dn},
      {"issuer_cn", &f.issuer_cn},
      {"serial_hex", &f.serial_hex},
      {"key_algorithm", &f.key_algorithm},
      {"key_curve", &f.key_curve},
      {"signature_algorithm", &f.signature_algorithm},
      {"subject_key_id_hex", &f.subject_key_id_hex},
      {"authority_key_id_hex", &f.authority_key_id_hex},
  };
  for (const auto& [name, value] : fields) {
    if (absl::Status s = CheckText(*value, absl::StrCat(what, ".", name));
        !s.ok()) {
      return s;
    }
  }
  for (size_t i = 0; i < f.sans.size(); ++i) {
    if (absl::Status s =
            CheckText(f.sans[i], absl::StrCat(what, ".sans[", i, "]"));
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

// Caller mistakes in a version's facts (INVALID_ARGUMENT for the call).
absl::Status CheckFactsShape(const CertificateFacts& f,
                             absl::string_view what) {
  if (absl::Status s =
          CheckSha256(f.sha256_hex, absl::StrCat(what, ".sha256_hex"));
      !s.ok()) {
    return s;
  }
  if (f.key_bits < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ".key_bits is negative (", f.key_bits, ")"));
  }
  return absl::OkStatus();
}

bool IsSource(absl::string_view s) {
  return s == "issued" || s == "imported" || s == "discovered";
}

absl::Status CheckSource(absl::string_view source, absl::string_view what) {
  if (IsSource(source)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what, " ", Quote(source),
                   " is not one of \"issued\", \"imported\", \"discovered\""));
}

// Metadata of a new or updated certificate.
absl::Status CheckMetadata(const CertificateRecord& r, absl::string_view what) {
  const std::pair<absl::string_view, const std::string*> fields[] = {
      {"display_name", &r.display_name},
      {"owner", &r.owner},
      {"request_id", &r.request_id},
  };
  for (const auto& [name, value] : fields) {
    if (absl::Status s = CheckText(*value, absl::StrCat(what, ".", name));
        !s.ok()) {
      return s;
    }
  }
  for (const std::string& env : r.environments) {
    if (env.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ".environments has an empty value"));
    }
    if (absl::Status s = CheckText(env, absl::StrCat(what, ".environments"));
        !s.ok()) {
      return s;
    }
  }
  for (const auto& [key, value] : r.tags) {
    if (key.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ".tags has an empty key"));
    }
    if (absl::Status s = CheckText(key, absl::StrCat(what, ".tags key"));
        !s.ok()) {
      return s;
    }
    if (absl::Status s =
            CheckText(value, absl::StrCat(what, ".tags[", key, "]"));
        !s.ok()) {
      return s;
    }
  }
  if (r.renew_before_days < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ".renew_before_days is negative (", r.renew_before_days, ")"));
  }
  return absl::OkStatus();
}

std::vector<std::string> SortedUnique(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

// ---------------------------------------------------------------------------
// Value encodings.

absl::StatusOr<std::string> FromHex(absl::string_view hex,
                                    absl::string_view column,
                                    absl::string_view row) {
  return db::DecodeHexColumn(hex, absl::StrCat("column ", column, " of ", row));
}

// SQL turning a bound lowercase-hex parameter into the column's storage.
std::string BytesIn(Dialect d, absl::string_view param) {
  if (d == Dialect::kPostgres)
    return absl::StrCat("decode(", param, ", 'hex')");
  return std::string(param);
}

// SQL reading a binary column as hex.
std::string BytesOut(Dialect d, absl::string_view column) {
  if (d == Dialect::kPostgres)
    return absl::StrCat("encode(", column, ", 'hex')");
  return std::string(column);
}

// A list of strings in one TEXT column: each C-escaped, joined by '\n'.
std::string EncodeList(const std::vector<std::string>& values) {
  std::vector<std::string> escaped;
  escaped.reserve(values.size());
  for (const std::string& v : values) escaped.push_back(absl::CEscape(v));
  return absl::StrJoin(escaped, "\n");
}

absl::StatusOr<std::vector<std::string>> DecodeList(absl::string_view text,
                                                    absl::string_view column,
                                                    absl::string_view row) {
  std::vector<std::string> out;
  if (text.empty()) return out;
  for (absl::string_view part : absl::StrSplit(text, '\n')) {
    std::string v;
    if (!absl::CUnescape(part, &v)) {
      return absl::DataLossError(
          absl::StrCat("column ", column, " of ", row, " is not a valid list"));
    }
    out.push_back(std::move(v));
  }
  return out;
}

// Reverses by UTF-8 character (valid UTF-8 in, valid UTF-8 out), so that a
// suffix of a value is a prefix of the reversed value.
std::string ReverseChars(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) {
      --start;
    }
    out.append(s.data() + start, end - start);
    end = start;
  }
  return out;
}

// SAN values stored for filtering: non-empty, unique.
std::vector<std::string> FilterSans(const std::vector<std::string>& sans) {
  std::vector<std::string> out;
  for (const std::string& s : sans) {
    if (!s.empty()) out.push_back(s);
  }
  return SortedUnique(std::move(out));
}

std::string Int(long long v) { return absl::StrCat(v); }

long long Micros(absl::Time t) { return absl::ToUnixMicros(t); }

std::string RandomHex(absl::BitGen& gen, int words) {
  std::string out;
  for (int i = 0; i < words; ++i) {
    absl::StrAppend(&out,
                    absl::Hex(absl::Uniform<uint64_t>(gen), absl::kZeroPad16));
  }
  return out;
}

std::string NewCertificateId(absl::BitGen& gen) {
  return absl::StrCat("c", RandomHex(gen, 2));
}

std::string NewEtag(absl::BitGen& gen) { return RandomHex(gen, 1); }

// Default display name: the common name, else the first SAN.
std::string DefaultDisplayName(const CertificateFacts& f) {
  if (!f.common_name.empty()) return f.common_name;
  for (const std::string& s : f.sans) {
    if (!s.empty()) return s;
  }
  return "";
}

// ---------------------------------------------------------------------------
// Rows.

std::string Qualify(absl::string_view alias, absl::string_view columns) {
  std::vector<std::string> out;
  for (absl::string_view c : absl::StrSplit(columns, ", ")) {
    out.push_back(absl::StrCat(alias, ".", c));
  }
  return absl::StrJoin(out, ", ");
}

constexpr absl::string_view kFactsColumns =
    "subject_dn, common_name, issuer_dn, issuer_cn, serial_hex, "
    "not_before_us, not_after_us, key_algorithm, key_bits, key_curve, "
    "signature_algorithm, sans, subject_key_id_hex, authority_key_id_hex, "
    "is_ca, self_signed";

// Values for kFactsColumns, in order.
std::vector<std::string> FactsValues(const CertificateFacts& f,
                                     db::SqlParams& p) {
  return {p.Add(f.subject_dn),
          p.Add(f.common_name),
          p.Add(f.issuer_dn),
          p.Add(f.issuer_cn),
          p.Add(f.serial_hex),
          Int(f.not_before_us),
          Int(f.not_after_us),
          p.Add(f.key_algorithm),
          Int(f.key_bits),
          p.Add(f.key_curve),
          p.Add(f.signature_algorithm),
          p.Add(EncodeList(f.sans)),
          p.Add(f.subject_key_id_hex),
          p.Add(f.authority_key_id_hex),
          Int(f.is_ca ? 1 : 0),
          Int(f.self_signed ? 1 : 0)};
}

struct FactsRow {
  std::string subject_dn, common_name, issuer_dn, issuer_cn, serial_hex,
      key_algorithm, key_curve, signature_algorithm, sans, ski, aki;
  long long not_before_us = 0, not_after_us = 0;
  int key_bits = 0, is_ca = 0, self_signed = 0;

  void Exchange(soci::statement& st) {
    st.exchange(soci::into(subject_dn));
    st.exchange(soci::into(common_name));
    st.exchange(soci::into(issuer_dn));
    st.exchange(soci::into(issuer_cn));
    st.exchange(soci::into(serial_hex));
    st.exchange(soci::into(not_before_us));
    st.exchange(soci::into(not_after_us));
    st.exchange(soci::into(key_algorithm));
    st.exchange(soci::into(key_bits));
    st.exchange(soci::into(key_curve));
    st.exchange(soci::into(signature_algorithm));
    st.exchange(soci::into(sans));
    st.exchange(soci::into(ski));
    st.exchange(soci::into(aki));
    st.exchange(soci::into(is_ca));
    st.exchange(soci::into(self_signed));
  }

  absl::StatusOr<CertificateFacts> ToFacts(const std::string& sha256_hex,
                                           absl::string_view row) const {
    CertificateFacts f;
    f.sha256_hex = sha256_hex;
    f.subject_dn = subject_dn;
    f.common_name = common_name;
    f.issuer_dn = issuer_dn;
    f.issuer_cn = issuer_cn;
    f.serial_hex = serial_hex;
    f.not_before_us = not_before_us;
    f.not_after_us = not_after_us;
    f.key_algorithm = key_algorithm;
    f.key_bits = key_bits;
    f.key_curve = key_curve;
    f.signature_algorithm = signature_algorithm;
    absl::StatusOr<std::vector<std::string>> list =
        DecodeList(sans, "sans", row);
    if (!list.ok()) return list.status();
    f.sans = *std::move(list);
    f.subject_key_id_hex = ski;
    f.authority_key_id_hex = aki;
    f.is_ca = is_ca != 0;
    f.self_signed = self_signed != 0;
    return f;
  }
};

std::string VersionColumns(Dialect d, absl::string_view alias) {
  return absl::StrCat(alias, ".certificate_id, ", alias, ".version, ", alias,
                      ".sha256_hex, ", BytesOut(d, absl::StrCat(alias, ".der")),
                      ", ", BytesOut(d, absl::StrCat(alias, ".details")), ", ",
                      alias, ".status, ", Qualify(alias, kFactsColumns), ", ",
                      Qualify(alias,
                              "chain_sha256, chain_complete, key_name, "
                              "origin, create_time_us, revoke_time_us, "
                              "revocation_reason"));
}

struct VersionRow {
  std::string certificate_id, sha256_hex, der_hex, details_hex, status, chain,
      key_name, origin, reason;
  long long version = 0, create_us = 0, revoke_us = 0;
  soci::indicator revoke_ind = soci::i_null;
  int chain_complete = 0;
  FactsRow facts;

  void Exchange(soci::statement& st) {
    st.exchange(soci::into(certificate_id));
    st.exchange(soci::into(version));
    st.exchange(soci::into(sha256_hex));
    st.exchange(soci::into(der_hex));
    st.exchange(soci::into(details_hex));
    st.exchange(soci::into(status));
    facts.Exchange(st);
    st.exchange(soci::into(chain));
    st.exchange(soci::into(chain_complete));
    st.exchange(soci::into(key_name));
    st.exchange(soci::into(origin));
    st.exchange(soci::into(create_us));
    st.exchange(soci::into(revoke_us, revoke_ind));
    st.exchange(soci::into(reason));
  }

  absl::StatusOr<VersionRecord> ToRecord() const {
    const std::string row =
        absl::StrCat("version ", version, " of certificate ", certificate_id);
    VersionRecord r;
    r.certificate_id = certificate_id;
    r.version = version;
    r.status = status;
    absl::StatusOr<std::string> der = FromHex(der_hex, "der", row);
    if (!der.ok()) return der.status();
    r.der = *std::move(der);
    absl::StatusOr<std::string> details = FromHex(details_hex, "details", row);
    if (!details.ok()) return details.status();
    r.details = *std::move(details);
    absl::StatusOr<CertificateFacts> f = facts.ToFacts(sha256_hex, row);
    if (!f.ok()) return f.status();
    r.facts = *std::move(f);
    if (!chain.empty()) r.chain_sha256 = absl::StrSplit(chain, ',');
    r.chain_complete = chain_complete != 0;
    r.key_name = key_name;
    r.origin = origin;
    r.create_time = absl::FromUnixMicros(create_us);
    if (revoke_ind == soci::i_ok) {
      r.revoke_time = absl::FromUnixMicros(revoke_us);
    }
    r.revocation_reason = reason;
    return r;
  }
};

constexpr absl::string_view kVersionInsertColumns =
    "certificate_id, version, sha256_hex, der, details, status, subject_dn, "
    "common_name, issuer_dn, issuer_cn, serial_hex, not_before_us, "
    "not_after_us, key_algorithm, key_bits, key_curve, signature_algorithm, "
    "sans, subject_key_id_hex, authority_key_id_hex, is_ca, self_signed, "
    "chain_sha256, chain_complete, key_name, origin, create_time_us, "
    "revoke_time_us, revocation_reason";

// "(...)" values for kVersionInsertColumns; a new version is never revoked.
std::string VersionValues(Dialect d, db::SqlParams& p,
                          const std::string& certificate_id, int64_t version,
                          absl::string_view status, const std::string& der,
                          const std::string& details,
                          const CertificateFacts& facts,
                          const std::vector<std::string>& chain,
                          bool chain_complete, const std::string& key_name,
                          const std::string& origin, absl::Time create_time) {
  std::vector<std::string> v = {
      p.Add(certificate_id),
      Int(version),
      p.Add(facts.sha256_hex),
      BytesIn(d, p.Add(absl::BytesToHexString(der))),
      BytesIn(d, p.Add(absl::BytesToHexString(details))),
      p.Add(std::string(status))};
  std::vector<std::string> fv = FactsValues(facts, p);
  v.insert(v.end(), fv.begin(), fv.end());
  v.push_back(p.Add(absl::StrJoin(chain, ",")));
  v.push_back(Int(chain_complete ? 1 : 0));
  v.push_back(p.Add(key_name));
  v.push_back(p.Add(origin));
  v.push_back(Int(Micros(create_time)));
  v.push_back("NULL");
  v.push_back(p.Add(std::string()));
  return absl::StrCat("(", absl::StrJoin(v, ", "), ")");
}

std::string CertSelectColumns(Dialect d) {
  return absl::StrCat(
      "c.certificate_id, c.display_name, c.owner, c.source, ",
      BytesOut(d, "c.desired"),
      ", c.auto_renew, c.renew_before_days, c.reuse_key, c.current_version, "
      "c.version_count, c.create_time_us, c.update_time_us, "
      "c.delete_time_us, c.etag, c.request_id, c.common_name, "
      "c.not_before_us, c.not_after_us, c.key_bits, c.sha256_hex");
}

// One certificates row, with the denormalized columns that orderings and
// change rows need.
struct CertRow {
  CertificateRecord record;
  std::string common_name;
  std::string sha256_hex;
  long long not_before_us = 0, not_after_us = 0;
  int key_bits = 0;
};

struct CertRowBuffer {
  std::string certificate_id, display_name, owner, source, desired_hex, etag,
      request_id, common_name, sha256_hex;
  int auto_renew = 0, renew_before_days = 0, reuse_key = 0, key_bits = 0;
  long long current_version = 0, version_count = 0, create_us = 0,
            update_us = 0, delete_us = 0, not_before_us = 0, not_after_us = 0;
  soci::indicator delete_ind = soci::i_null;

  void Exchange(soci::statement& st) {
    st.exchange(soci::into(certificate_id));
    st.exchange(soci::into(display_name));
    st.exchange(soci::into(owner));
    st.exchange(soci::into(source));
    st.exchange(soci::into(desired_hex));
    st.exchange(soci::into(auto_renew));
    st.exchange(soci::into(renew_before_days));
    st.exchange(soci::into(reuse_key));
    st.exchange(soci::into(current_version));
    st.exchange(soci::into(version_count));
    st.exchange(soci::into(create_us));
    st.exchange(soci::into(update_us));
    st.exchange(soci::into(delete_us, delete_ind));
    st.exchange(soci::into(etag));
    st.exchange(soci::into(request_id));
    st.exchange(soci::into(common_name));
    st.exchange(soci::into(not_before_us));
    st.exchange(soci::into(not_after_us));
    st.exchange(soci::into(key_bits));
    st.exchange(soci::into(sha256_hex));
  }

  absl::StatusOr<CertRow> ToRow() const {
    CertRow row;
    CertificateRecord& r = row.record;
    r.certificate_id = certificate_id;
    r.display_name = display_name;
    r.owner = owner;
    r.source = source;
    absl::StatusOr<std::string> desired = FromHex(
        desired_hex, "desired", absl::StrCat("certificate ", certificate_id));
    if (!desired.ok()) return desired.status();
    r.desired = *std::move(desired);
    r.auto_renew = auto_renew != 0;
    r.renew_before_days = renew_before_days;
    r.reuse_key = reuse_key != 0;
    r.current_version = current_version;
    r.version_count = version_count;
    r.create_time = absl::FromUnixMicros(create_us);
    r.update_time = absl::FromUnixMicros(update_us);
    if (delete_ind == soci::i_ok) {
      r.delete_time = absl::FromUnixMicros(delete_us);
    }
    r.etag = etag;
    r.request_id = request_id;
    row.common_name = common_name;
    row.sha256_hex = sha256_hex;
    row.not_before_us = not_before_us;
    row.not_after_us = not_after_us;
    row.key_bits = key_bits;
    return row;
  }
};

using db::RunQuery;

// A single string column.
struct StringRow {
  std::string value;
  void Exchange(soci::statement& st) { st.exchange(soci::into(value)); }
};

// IN-list placeholders for `values`.
std::string InList(db::SqlParams& p, const std::vector<std::string>& values) {
  std::vector<std::string> ph;
  ph.reserve(values.size());
  for (const std::string& v : values) ph.push_back(p.Add(v));
  return absl::StrCat("(", absl::StrJoin(ph, ", "), ")");
}

// Chunks of at most kMaxInList.
std::vector<std::vector<std::string>> Chunks(
    const std::vector<std::string>& values) {
  std::vector<std::vector<std::string>> out;
  for (size_t i = 0; i < values.size(); i += kMaxInList) {
    out.emplace_back(values.begin() + i,
                     values.begin() + std::min(values.size(), i + kMaxInList));
  }
  return out;
}

// A multi-row INSERT, executed in chunks that stay below
// kMaxParamsPerStatement parameters.
class MultiInsert {
 public:
  MultiInsert(soci::session& sql, std::string head)
      : sql_(sql), head_(std::move(head)) {}

  db::SqlParams& params() { return *params_; }

  // `row` is "(...)" built with params().
  void Add(std::string row) {
    rows_.push_back(std::move(row));
    if (params_->size() >= kMaxParamsPerStatement - 100 ||
        rows_.size() >= 2000) {
      Flush();
    }
  }

  void Flush() {
    if (rows_.empty()) return;
    db::ExecuteWithParams(
        sql_, absl::StrCat(head_, " VALUES ", absl::StrJoin(rows_, ", ")),
        *params_);
    rows_.clear();
    params_ = std::make_unique<db::SqlParams>();
  }

 private:
  soci::session& sql_;
  std::string head_;
  std::unique_ptr<db::SqlParams> params_ = std::make_unique<db::SqlParams>();
  std::vector<std::string> rows_;
};

// ---------------------------------------------------------------------------
// Change rows.

struct PendingChange {
  std::string kind;
  std::string certificate_id;
  int64_t version = 0;
  std::vector<std::string> changed_fields;
  std::optional<int64_t> not_after_us;
  std::string sha256_hex;
};

PendingChange Change(std::string kind, std::string certificate_id,
                     int64_t version, std::optional<int64_t> not_after_us,
                     std::string sha256_hex,
                     std::vector<std::string> changed_fields = {}) {
  PendingChange c;
  c.kind = std::move(kind);
  c.certificate_id = std::move(certificate_id);
  c.version = version;
  c.not_after_us = not_after_us;
  c.sha256_hex = std::move(sha256_hex);
  c.changed_fields = std::move(changed_fields);
  return c;
}

// The current version's not_after as a change carries it.
std::optional<int64_t> ChangeNotAfter(int64_t current_version,
                                      int64_t not_after_us) {
  if (current_version == 0 || not_after_us == kNoNotAfter) return std::nullopt;
  return not_after_us;
}

// Takes revisions for `changes` from the counter row and writes them. Call
// it last in a transaction: on PostgreSQL the counter row stays locked from
// here to COMMIT, which is what makes revisions commit in order.
void WriteChanges(soci::session& sql, Dialect d,
                  const std::vector<PendingChange>& changes,
                  absl::string_view actor, absl::Time now) {
  if (changes.empty()) return;
  long long n = static_cast<long long>(changes.size());
  long long last = 0;
  if (d == Dialect::kPostgres) {
    sql << "UPDATE counters SET value = value + :n WHERE name = 'revision' "
           "RETURNING value",
        soci::use(n), soci::into(last);
  } else {
    sql << "UPDATE counters SET value = value + :n WHERE name = 'revision'",
        soci::use(n);
    sql << "SELECT value FROM counters WHERE name = 'revision'",
        soci::into(last);
  }
  long long revision = last - n + 1;
  const std::string time = Int(Micros(now));
  MultiInsert insert(sql,
                     "INSERT INTO changes (revision, kind, certificate_id, "
                     "version, time_us, actor, changed_fields, not_after_us, "
                     "sha256_hex)");
  const std::string actor_str(actor);
  for (const PendingChange& c : changes) {
    db::SqlParams& p = insert.params();
    insert.Add(absl::StrCat(
        "(", Int(revision++), ", ", p.Add(c.kind), ", ",
        p.Add(c.certificate_id), ", ", Int(c.version), ", ", time, ", ",
        p.Add(actor_str), ", ", p.Add(absl::StrJoin(c.changed_fields, ",")),
        ", ", c.not_after_us.has_value() ? Int(*c.not_after_us) : "NULL", ", ",
        p.Add(c.sha256_hex), ")"));
  }
  insert.Flush();
}

// ---------------------------------------------------------------------------
// Reading certificates.

// SELECT <cert columns> FROM certificates c <tail>.
absl::StatusOr<std::vector<CertRow>> QueryCertRows(soci::session& sql,
                                                   Dialect d,
                                                   absl::string_view tail,
                                                   db::SqlParams& params) {
  std::vector<CertRow> out;
  CertRowBuffer buf;
  absl::Status s = RunQuery(sql,
                            absl::StrCat("SELECT ", CertSelectColumns(d),
                                         " FROM certificates c ", tail),
                            params, buf, [&]() -> absl::Status {
                              absl::StatusOr<CertRow> row = buf.ToRow();
                              if (!row.ok()) return row.status();
                              out.push_back(*std::move(row));
                              return absl::OkStatus();
                            });
  if (!s.ok()) return s;
  return out;
}

// SELECT <version columns> FROM certificate_versions v <tail>.
absl::StatusOr<std::vector<VersionRecord>> QueryVersions(
    soci::session& sql, Dialect d, absl::string_view tail,
    db::SqlParams& params) {
  std::vector<VersionRecord> out;
  VersionRow buf;
  absl::Status s = RunQuery(sql,
                            absl::StrCat("SELECT ", VersionColumns(d, "v"),
                                         " FROM certificate_versions v ", tail),
                            params, buf, [&]() -> absl::Status {
                              absl::StatusOr<VersionRecord> r = buf.ToRecord();
                              if (!r.ok()) return r.status();
                              out.push_back(*std::move(r));
                              return absl::OkStatus();
                            });
  if (!s.ok()) return s;
  return out;
}

// Fills environments, tags and the current version of `rows`.
absl::Status LoadDetails(soci::session& sql, Dialect d,
                         std::vector<CertRow>& rows) {
  if (rows.empty()) return absl::OkStatus();
  std::map<std::string, CertificateRecord*> by_id;
  std::vector<std::string> ids;
  std::vector<std::string> with_version;
  for (CertRow& row : rows) {
    by_id[row.record.certificate_id] = &row.record;
    ids.push_back(row.record.certificate_id);
    if (row.record.current_version > 0) {
      with_version.push_back(row.record.certificate_id);
    }
  }
  for (const std::vector<std::string>& chunk : Chunks(ids)) {
    {
      db::SqlParams p;
      struct {
        std::string id, env;
        void Exchange(soci::statement& st) {
          st.exchange(soci::into(id));
          st.exchange(soci::into(env));
        }
      } buf;
      absl::Status s = RunQuery(
          sql,
          absl::StrCat("SELECT certificate_id, environment FROM "
                       "certificate_environments WHERE certificate_id IN ",
                       InList(p, chunk),
                       " ORDER BY certificate_id, environment"),
          p, buf, [&]() -> absl::Status {
            by_id[buf.id]->environments.push_back(buf.env);
            return absl::OkStatus();
          });
      if (!s.ok()) return s;
    }
    {
      db::SqlParams p;
      struct {
        std::string id, key, value;
        void Exchange(soci::statement& st) {
          st.exchange(soci::into(id));
          st.exchange(soci::into(key));
          st.exchange(soci::into(value));
        }
      } buf;
      absl::Status s =
          RunQuery(sql,
                   absl::StrCat("SELECT certificate_id, key, value FROM "
                                "certificate_tags WHERE certificate_id IN ",
                                InList(p, chunk)),
                   p, buf, [&]() -> absl::Status {
                     by_id[buf.id]->tags[buf.key] = buf.value;
                     return absl::OkStatus();
                   });
      if (!s.ok()) return s;
    }
  }
  for (const std::vector<std::string>& chunk : Chunks(with_version)) {
    db::SqlParams p;
    absl::StatusOr<std::vector<VersionRecord>> versions = QueryVersions(
        sql, d,
        absl::StrCat("JOIN certificates c ON c.certificate_id = "
                     "v.certificate_id AND c.current_version = v.version "
                     "WHERE c.certificate_id IN ",
                     InList(p, chunk)),
        p);
    if (!versions.ok()) return versions.status();
    for (VersionRecord& v : *versions) {
      by_id[v.certificate_id]->current = std::move(v);
    }
  }
  return absl::OkStatus();
}

// The certificate with details, or nullopt. `lock`: FOR UPDATE on PostgreSQL.
absl::StatusOr<std::optional<CertRow>> LoadCertificate(
    soci::session& sql, Dialect d, const std::string& certificate_id,
    bool lock) {
  db::SqlParams p;
  absl::StatusOr<std::vector<CertRow>> rows = QueryCertRows(
      sql, d,
      absl::StrCat("WHERE c.certificate_id = ", p.Add(certificate_id),
                   lock && d == Dialect::kPostgres ? " FOR UPDATE" : ""),
      p);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::optional<CertRow>();
  if (absl::Status s = LoadDetails(sql, d, *rows); !s.ok()) return s;
  return std::optional<CertRow>(std::move(rows->front()));
}

absl::Status NoCertificate(absl::string_view id) {
  return absl::NotFoundError(absl::StrCat("certificate ", id, " not found"));
}

// ---------------------------------------------------------------------------
// Writing certificates.

// "col = value, ..." for the current-version columns of `certificates`.
std::string CurrentAssignments(db::SqlParams& p, const CertificateFacts& f,
                               bool has_key) {
  return absl::StrCat("common_name = ", p.Add(f.common_name),
                      ", issuer_cn = ", p.Add(f.issuer_cn),
                      ", issuer_dn = ", p.Add(f.issuer_dn),
                      ", serial_hex = ", p.Add(f.serial_hex),
                      ", sha256_hex = ", p.Add(f.sha256_hex),
                      ", not_before_us = ", Int(f.not_before_us),
                      ", not_after_us = ", Int(f.not_after_us),
                      ", key_algorithm = ", p.Add(f.key_algorithm),
                      ", key_bits = ", Int(f.key_bits),
                      ", key_curve = ", p.Add(f.key_curve),
                      ", signature_algorithm = ", p.Add(f.signature_algorithm),
                      ", status = 'active', has_key = ", Int(has_key ? 1 : 0));
}

// Points certificate `id` at its new current version: its facts, version
// numbers, update time and a new etag.
void SetCurrentVersion(soci::session& sql, const std::string& id,
                       const CertificateFacts& facts, bool has_key,
                       int64_t current_version, int64_t version_count,
                       absl::Time now, absl::BitGen& gen) {
  db::SqlParams p;
  db::ExecuteWithParams(
      sql,
      absl::StrCat("UPDATE certificates SET ",
                   CurrentAssignments(p, facts, has_key),
                   ", current_version = ", Int(current_version),
                   ", version_count = ", Int(version_count),
                   ", update_time_us = ", Int(Micros(now)), ", etag = ",
                   p.Add(NewEtag(gen)), " WHERE certificate_id = ", p.Add(id)),
      p);
}

constexpr absl::string_view kCertInsertColumns =
    "certificate_id, display_name, owner, source, desired, auto_renew, "
    "renew_before_days, reuse_key, current_version, version_count, "
    "create_time_us, update_time_us, deleted, etag, request_id, common_name, "
    "issuer_cn, issuer_dn, serial_hex, sha256_hex, not_before_us, "
    "not_after_us, key_algorithm, key_bits, key_curve, signature_algorithm, "
    "status, has_key";

// PostgreSQL keeps a certificate's environments and tags ("key=value"; keys
// never hold '=') in arrays on its row as well as in their own tables, so
// that `environment = x` and `tags.k = v` are a GIN index lookup or a cheap
// test of the row being scanned instead of a probe of another table per row.
constexpr absl::string_view kPostgresListColumns =
    ", environment_list, tag_list";

std::string CertInsertColumns(Dialect d) {
  return absl::StrCat(kCertInsertColumns,
                      d == Dialect::kPostgres ? kPostgresListColumns : "");
}

// A PostgreSQL text[] literal: every element double-quoted, with '"' and
// '\' escaped.
std::string PostgresArrayLiteral(const std::vector<std::string>& values) {
  std::vector<std::string> quoted;
  quoted.reserve(values.size());
  for (const std::string& v : values) {
    std::string q = "\"";
    for (char ch : v) {
      if (ch == '"' || ch == '\\') q.push_back('\\');
      q.push_back(ch);
    }
    q.push_back('"');
    quoted.push_back(std::move(q));
  }
  return absl::StrCat("{", absl::StrJoin(quoted, ","), "}");
}

std::vector<std::string> TagListElements(
    const std::map<std::string, std::string>& tags) {
  std::vector<std::string> out;
  out.reserve(tags.size());
  for (const auto& [key, value] : tags)
    out.push_back(absl::StrCat(key, "=", value));
  return out;
}

// "environment_list = ..., tag_list = ..." for an UPDATE (PostgreSQL).
std::string ListAssignments(db::SqlParams& p,
                            const std::vector<std::string>& environments,
                            const std::map<std::string, std::string>& tags) {
  return absl::StrCat(
      "environment_list = CAST(", p.Add(PostgresArrayLiteral(environments)),
      " AS TEXT[]), tag_list = CAST(",
      p.Add(PostgresArrayLiteral(TagListElements(tags))), " AS TEXT[])");
}

// "(...)" for kCertInsertColumns. `facts` null: no version yet.
std::string CertValues(Dialect d, db::SqlParams& p, const CertificateRecord& r,
                       const CertificateFacts* facts, bool has_key) {
  std::vector<std::string> v = {
      p.Add(r.certificate_id),
      p.Add(r.display_name),
      p.Add(r.owner),
      p.Add(r.source),
      BytesIn(d, p.Add(absl::BytesToHexString(r.desired))),
      Int(r.auto_renew ? 1 : 0),
      Int(r.renew_before_days),
      Int(r.reuse_key ? 1 : 0),
      Int(r.current_version),
      Int(r.version_count),
      Int(Micros(r.create_time)),
      Int(Micros(r.update_time)),
      "0",
      p.Add(r.etag),
      p.Add(r.request_id)};
  if (facts != nullptr) {
    v.push_back(p.Add(facts->common_name));
    v.push_back(p.Add(facts->issuer_cn));
    v.push_back(p.Add(facts->issuer_dn));
    v.push_back(p.Add(facts->serial_hex));
    v.push_back(p.Add(facts->sha256_hex));
    v.push_back(Int(facts->not_before_us));
    v.push_back(Int(facts->not_after_us));
    v.push_back(p.Add(facts->key_algorithm));
    v.push_back(Int(facts->key_bits));
    v.push_back(p.Add(facts->key_curve));
    v.push_back(p.Add(facts->signature_algorithm));
    v.push_back("'active'");
    v.push_back(Int(has_key ? 1 : 0));
  } else {
    for (int i = 0; i < 5; ++i) v.push_back("''");
    v.push_back(Int(kNoNotBefore));
    v.push_back(Int(kNoNotAfter));
    v.push_back("''");
    v.push_back("0");
    v.push_back("''");
    v.push_back("''");
    v.push_back("''");
    v.push_back("0");
  }
  if (d == Dialect::kPostgres) {
    v.push_back(absl::StrCat(
        "CAST(", p.Add(PostgresArrayLiteral(r.environments)), " AS TEXT[])"));
    v.push_back(absl::StrCat(
        "CAST(", p.Add(PostgresArrayLiteral(TagListElements(r.tags))),
        " AS TEXT[])"));
  }
  return absl::StrCat("(", absl::StrJoin(v, ", "), ")");
}

void InsertSans(MultiInsert& insert, const std::string& certificate_id,
                const std::vector<std::string>& sans) {
  for (const std::string& san : FilterSans(sans)) {
    db::SqlParams& p = insert.params();
    insert.Add(absl::StrCat("(", p.Add(certificate_id), ", ", p.Add(san), ", ",
                            p.Add(ReverseChars(san)), ")"));
  }
}

void InsertEnvironments(MultiInsert& insert, const std::string& certificate_id,
                        const std::vector<std::string>& environments) {
  for (const std::string& env : SortedUnique(environments)) {
    db::SqlParams& p = insert.params();
    insert.Add(absl::StrCat("(", p.Add(certificate_id), ", ", p.Add(env), ")"));
  }
}

void InsertTags(MultiInsert& insert, const std::string& certificate_id,
                const std::map<std::string, std::string>& tags) {
  for (const auto& [key, value] : tags) {
    db::SqlParams& p = insert.params();
    insert.Add(absl::StrCat("(", p.Add(certificate_id), ", ", p.Add(key), ", ",
                            p.Add(value), ")"));
  }
}

constexpr char kSansInsert[] =
    "INSERT INTO certificate_sans (certificate_id, value, value_rev)";
constexpr char kEnvironmentsInsert[] =
    "INSERT INTO certificate_environments (certificate_id, environment)";
constexpr char kTagsInsert[] =
    "INSERT INTO certificate_tags (certificate_id, key, value)";

void DeleteWhereId(soci::session& sql, absl::string_view table,
                   const std::string& certificate_id) {
  sql << absl::StrCat("DELETE FROM ", table, " WHERE certificate_id = :id"),
      soci::use(certificate_id);
}

// ---------------------------------------------------------------------------
// Filters.

absl::Status FilterError(absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("filter: ", message));
}

absl::Status BadComparator(const aip::Comparison& c) {
  return FilterError(absl::StrCat("field ", c.field, " does not support \"",
                                  aip::ComparatorSymbol(c.op), "\""));
}

std::string SqlOp(aip::Comparator op) {
  switch (op) {
    case aip::Comparator::kEq:
    case aip::Comparator::kHas:
      return "=";
    case aip::Comparator::kNe:
      return "<>";
    case aip::Comparator::kLt:
      return "<";
    case aip::Comparator::kLe:
      return "<=";
    case aip::Comparator::kGt:
      return ">";
    case aip::Comparator::kGe:
      return ">=";
  }
  return "=";
}

std::string EscapeLikePattern(absl::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '%' || c == '_' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

std::string EscapeGlobPattern(absl::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '*' || c == '?' || c == '[') {
      out.push_back('[');
      out.push_back(c);
      out.push_back(']');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// A case-sensitive "contains" match of `column` on both backends (SQLite's
// LIKE ignores ASCII case; GLOB does not).
std::string ContainsCondition(Dialect d, absl::string_view column,
                              absl::string_view text, db::SqlParams& p) {
  if (d == Dialect::kPostgres) {
    return absl::StrCat(column, " LIKE ",
                        p.Add(absl::StrCat("%", EscapeLikePattern(text), "%")),
                        " ESCAPE '\\'");
  }
  return absl::StrCat(column, " GLOB ",
                      p.Add(absl::StrCat("*", EscapeGlobPattern(text), "*")));
}

// `column` starts with `prefix`: a range, which both backends serve from a
// B-tree (bytewise: COLLATE "C" on PostgreSQL, BINARY on SQLite).
std::string PrefixCondition(absl::string_view column, absl::string_view prefix,
                            db::SqlParams& p) {
  return absl::StrCat("(", column, " >= ", p.Add(std::string(prefix)), " AND ",
                      column, " < ", p.Add(absl::StrCat(prefix, kMaxChar)),
                      ")");
}

// A condition on one text column for =, <, <=, >, >=, and ":" with "*"
// wildcards at the start and/or end. `reversed_column`, when set, holds the
// value reversed, for indexable suffix matches. != is left to the caller.
absl::StatusOr<std::string> TextCondition(Dialect d, const aip::Comparison& c,
                                          absl::string_view column,
                                          absl::string_view reversed_column,
                                          db::SqlParams& p) {
  if (!IsStorableText(c.value)) {
    return FilterError(absl::StrCat("the value for ", c.field,
                                    " is not valid UTF-8 or contains NUL"));
  }
  if (c.op != aip::Comparator::kHas) {
    return absl::StrCat(column, " ", SqlOp(c.op), " ", p.Add(c.value));
  }
  absl::string_view v = c.value;
  const bool leading = absl::StartsWith(v, "*");
  const bool trailing = v.size() > 1 && absl::EndsWith(v, "*");
  if (leading) v.remove_prefix(1);
  if (trailing) v.remove_suffix(1);
  if (v.empty()) return std::string("1 = 1");  // "*": any value.
  if (leading && trailing) return ContainsCondition(d, column, v, p);
  if (trailing) return PrefixCondition(column, v, p);
  if (leading) {
    if (!reversed_column.empty()) {
      return PrefixCondition(reversed_column, ReverseChars(v), p);
    }
    if (d == Dialect::kPostgres) {
      return absl::StrCat(column, " LIKE ",
                          p.Add(absl::StrCat("%", EscapeLikePattern(v))),
                          " ESCAPE '\\'");
    }
    return absl::StrCat(column, " GLOB ",
                        p.Add(absl::StrCat("*", EscapeGlobPattern(v))));
  }
  return absl::StrCat(column, " = ", p.Add(std::string(v)));
}

// A text column of `certificates`.
aip::CustomCompiler TextField(Dialect d, std::string column) {
  return [d, column](const aip::Comparison& c,
                     db::SqlParams& p) -> absl::StatusOr<std::string> {
    if (c.op == aip::Comparator::kNe) {
      if (!IsStorableText(c.value)) return std::string("1 = 1");
      return absl::StrCat(column, " <> ", p.Add(c.value));
    }
    return TextCondition(d, c, column, "", p);
  };
}

// A field held in a side table, matched with an IN subquery (a semi-join
// that starts from the side table's index). `scope` narrows the side table
// (the tag key), `reversed` names its reversed-value column if any.
// `array_column`: the row's PostgreSQL array of the same values (see
// kPostgresListColumns), used for exact matches; empty: none.
aip::CustomCompiler SetField(Dialect d, std::string table, std::string column,
                             std::string reversed, bool is_tag,
                             std::string array_column = "") {
  return [=](const aip::Comparison& c,
             db::SqlParams& p) -> absl::StatusOr<std::string> {
    std::string scope;
    if (is_tag) {
      if (c.key.empty() || !IsStorableText(c.key)) {
        return FilterError(
            absl::StrCat("tag field ", Quote(c.field), " has no valid key"));
      }
      scope = absl::StrCat("key = ", p.Add(c.key), " AND ");
    }
    aip::Comparison positive = c;
    if (c.op == aip::Comparator::kNe) positive.op = aip::Comparator::kEq;
    if (!IsStorableText(c.value)) {
      return std::string(c.op == aip::Comparator::kNe ? "1 = 1" : "1 = 0");
    }
    if (!array_column.empty() &&
        (c.op == aip::Comparator::kEq || c.op == aip::Comparator::kNe) &&
        !absl::StrContains(c.key, '=')) {
      std::string element =
          is_tag ? absl::StrCat(c.key, "=", c.value) : c.value;
      return absl::StrCat(c.op == aip::Comparator::kNe ? "NOT " : "", "(",
                          array_column, " @> ARRAY[CAST(", p.Add(element),
                          " AS TEXT)])");
    }
    absl::StatusOr<std::string> cond =
        TextCondition(d, positive, column, reversed, p);
    if (!cond.ok()) return cond.status();
    return absl::StrCat(c.op == aip::Comparator::kNe ? "NOT " : "",
                        "c.certificate_id IN (SELECT certificate_id FROM ",
                        table, " WHERE ", scope, *cond, ")");
  };
}

// An integer of the current version (versionless certificates never match).
aip::CustomCompiler IntegerField(std::string column) {
  return [column](const aip::Comparison& c,
                  db::SqlParams& p) -> absl::StatusOr<std::string> {
    long long v = 0;
    if (!absl::SimpleAtoi(c.value, &v)) {
      return FilterError(absl::StrCat(
          Quote(c.value), " is not an integer for field ", c.field));
    }
    if (c.op == aip::Comparator::kHas) return BadComparator(c);
    return absl::StrCat("(c.current_version > 0 AND ", column, " ", SqlOp(c.op),
                        " ", p.Add(v), ")");
  };
}

aip::CustomCompiler BooleanField(std::string column) {
  return [column](const aip::Comparison& c,
                  db::SqlParams&) -> absl::StatusOr<std::string> {
    std::string v = absl::AsciiStrToLower(c.value);
    if (v != "true" && v != "false") {
      return FilterError(absl::StrCat(
          Quote(c.value), " is not true or false for field ", c.field));
    }
    bool want = v == "true";
    if (c.op == aip::Comparator::kNe) {
      want = !want;
    } else if (c.op != aip::Comparator::kEq && c.op != aip::Comparator::kHas) {
      return BadComparator(c);
    }
    return absl::StrCat(column, " = ", want ? 1 : 0);
  };
}

// A time of the current version (versionless certificates never match).
aip::CustomCompiler TimeField(std::string column) {
  return [column](const aip::Comparison& c,
                  db::SqlParams& p) -> absl::StatusOr<std::string> {
    if (c.op == aip::Comparator::kHas) return BadComparator(c);
    absl::StatusOr<int64_t> us = aip::ParseTimestampMicros(
        c.value, absl::StrCat("filter: field ", c.field));
    if (!us.ok()) return us.status();
    return absl::StrCat("(c.current_version > 0 AND ", column, " ", SqlOp(c.op),
                        " ", p.Add(static_cast<long long>(*us)), ")");
  };
}

// days_to_expiry: `< n` is not_after < now + n days; `= n` is
// [now + n days, now + n + 1 days).
aip::CustomCompiler DaysToExpiryField(int64_t now_us) {
  return [now_us](const aip::Comparison& c,
                  db::SqlParams& p) -> absl::StatusOr<std::string> {
    double days = 0;
    if (!absl::SimpleAtod(c.value, &days) || !std::isfinite(days) ||
        std::fabs(days) > 1e6) {
      return FilterError(absl::StrCat(
          Quote(c.value), " is not a number of days for field ", c.field));
    }
    if (c.op == aip::Comparator::kHas) return BadComparator(c);
    const long long bound =
        now_us + static_cast<long long>(std::llround(days * kMicrosPerDay));
    std::string cond;
    if (c.op == aip::Comparator::kEq || c.op == aip::Comparator::kNe) {
      cond =
          absl::StrCat("c.not_after_us >= ", p.Add(bound),
                       " AND c.not_after_us < ", p.Add(bound + kMicrosPerDay));
      if (c.op == aip::Comparator::kNe) cond = absl::StrCat("NOT (", cond, ")");
    } else {
      cond = absl::StrCat("c.not_after_us ", SqlOp(c.op), " ", p.Add(bound));
    }
    return absl::StrCat("(c.current_version > 0 AND ", cond, ")");
  };
}

aip::CustomCompiler StatusField(int64_t now_us) {
  return [now_us](const aip::Comparison& c,
                  db::SqlParams& p) -> absl::StatusOr<std::string> {
    std::string v = absl::AsciiStrToUpper(c.value);
    std::string cond;
    if (v == "ACTIVE") {
      cond = absl::StrCat("c.status = 'active' AND c.not_after_us >= ",
                          p.Add(static_cast<long long>(now_us)));
    } else if (v == "EXPIRED") {
      cond = absl::StrCat("c.status = 'active' AND c.not_after_us < ",
                          p.Add(static_cast<long long>(now_us)));
    } else if (v == "REVOKED") {
      cond = "c.status = 'revoked'";
    } else if (v == "SUPERSEDED") {
      cond = "c.status = 'superseded'";
    } else {
      return FilterError(
          absl::StrCat(Quote(c.value),
                       " is not a status for field status (ACTIVE, "
                       "SUPERSEDED, REVOKED, EXPIRED)"));
    }
    if (c.op == aip::Comparator::kEq || c.op == aip::Comparator::kHas) {
      return absl::StrCat("(", cond, ")");
    }
    if (c.op == aip::Comparator::kNe) {
      return absl::StrCat("(c.current_version > 0 AND NOT (", cond, "))");
    }
    return BadComparator(c);
  };
}

aip::CustomCompiler SourceField() {
  return [](const aip::Comparison& c,
            db::SqlParams& p) -> absl::StatusOr<std::string> {
    std::string v = absl::AsciiStrToLower(c.value);
    if (!IsSource(v)) {
      return FilterError(absl::StrCat(
          Quote(c.value),
          " is not a source for field source (ISSUED, IMPORTED, DISCOVERED)"));
    }
    if (c.op == aip::Comparator::kEq || c.op == aip::Comparator::kHas) {
      return absl::StrCat("c.source = ", p.Add(v));
    }
    if (c.op == aip::Comparator::kNe) {
      return absl::StrCat("c.source <> ", p.Add(v));
    }
    return BadComparator(c);
  };
}

aip::FieldSchema MakeSchema(Dialect d, int64_t now_us) {
  aip::FieldSchema s;
  s.Custom("common_name", TextField(d, "c.common_name"))
      .Custom("san", SetField(d, "certificate_sans", "value", "value_rev",
                              /*is_tag=*/false))
      .Custom("issuer", TextField(d, "c.issuer_cn"))
      .Custom("issuer_dn", TextField(d, "c.issuer_dn"))
      .Custom("serial", TextField(d, "c.serial_hex"))
      .Custom("fingerprint", TextField(d, "c.sha256_hex"))
      .Custom("not_before", TimeField("c.not_before_us"))
      .Custom("not_after", TimeField("c.not_after_us"))
      .Custom("days_to_expiry", DaysToExpiryField(now_us))
      .Custom("owner", TextField(d, "c.owner"))
      .Custom("environment",
              SetField(d, "certificate_environments", "environment", "",
                       /*is_tag=*/false,
                       d == Dialect::kPostgres ? "c.environment_list" : ""))
      .Prefix("tags",
              SetField(d, "certificate_tags", "value", "", /*is_tag=*/true,
                       d == Dialect::kPostgres ? "c.tag_list" : ""))
      .Custom("key_algorithm", TextField(d, "c.key_algorithm"))
      .Custom("key_bits", IntegerField("c.key_bits"))
      .Custom("key_curve", TextField(d, "c.key_curve"))
      .Custom("signature_algorithm", TextField(d, "c.signature_algorithm"))
      .Custom("status", StatusField(now_us))
      .Custom("source", SourceField())
      .Custom("display_name", TextField(d, "c.display_name"))
      .Custom("auto_renew", BooleanField("c.auto_renew"))
      .Custom("has_key", BooleanField("c.has_key"));
  return s;
}

// The WHERE condition for non-deleted (unless show_deleted) certificates
// matching `filter`.
absl::StatusOr<std::string> CompileWhere(Dialect d, absl::string_view filter,
                                         bool show_deleted, int64_t now_us,
                                         db::SqlParams& p) {
  aip::FieldSchema schema = MakeSchema(d, now_us);
  absl::StatusOr<std::string> cond = aip::CompileFilter(filter, schema, p);
  if (!cond.ok()) return cond.status();
  return absl::StrCat(show_deleted ? "" : "c.deleted = 0 AND ", "(", *cond,
                      ")");
}

// order_by fields: (name, SQL column, integer).
struct OrderColumn {
  absl::string_view name;
  absl::string_view sql;
  bool integer;
};
constexpr OrderColumn kOrderColumns[] = {
    {"display_name", "c.display_name", false},
    {"common_name", "c.common_name", false},
    {"not_after", "c.not_after_us", true},
    {"not_before", "c.not_before_us", true},
    {"owner", "c.owner", false},
    {"create_time", "c.create_time_us", true},
    {"update_time", "c.update_time_us", true},
    {"key_bits", "c.key_bits", true},
};

const OrderColumn* FindOrderColumn(absl::string_view name) {
  for (const OrderColumn& c : kOrderColumns) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

// The value of order field `name` in `row`, as the page cursor stores it.
std::string CursorValue(absl::string_view name, const CertRow& row) {
  const CertificateRecord& r = row.record;
  if (name == "display_name") return r.display_name;
  if (name == "common_name") return row.common_name;
  if (name == "not_after") return Int(row.not_after_us);
  if (name == "not_before") return Int(row.not_before_us);
  if (name == "owner") return r.owner;
  if (name == "create_time") return Int(Micros(r.create_time));
  if (name == "update_time") return Int(Micros(r.update_time));
  if (name == "key_bits") return Int(row.key_bits);
  return "";
}

std::string ListFingerprint(const ListQuery& q) {
  return absl::StrCat("certificates|", q.filter.size(), ":", q.filter, "|",
                      q.order_by.size(), ":", q.order_by, "|",
                      q.show_deleted ? "deleted" : "live");
}

// ---------------------------------------------------------------------------
// Stats.

std::string KeyName(const std::string& algorithm, int bits,
                    const std::string& curve) {
  if (!curve.empty()) return absl::StrCat(algorithm, " ", curve);
  if (bits <= 0 || absl::StartsWith(algorithm, "Ed") ||
      absl::StartsWith(algorithm, "X")) {
    return algorithm;
  }
  return absl::StrCat(algorithm, " ", bits);
}

bool IsWeakSignature(const std::string& algorithm) {
  std::string a = absl::AsciiStrToLower(algorithm);
  return absl::StrContains(a, "sha1") || absl::StrContains(a, "sha-1") ||
         absl::StrContains(a, "md5") || absl::StrContains(a, "md2");
}

std::vector<StatsCount> SortedCounts(const std::map<std::string, int64_t>& m) {
  std::vector<StatsCount> out;
  for (const auto& [key, count] : m) out.push_back({key, count});
  std::stable_sort(out.begin(), out.end(),
                   [](const StatsCount& a, const StatsCount& b) {
                     return a.count > b.count;
                   });
  return out;
}

std::string SourceName(const std::string& source) {
  return absl::AsciiStrToUpper(source);
}

// ---------------------------------------------------------------------------

class SqlInventoryStore final : public InventoryStore {
 public:
  explicit SqlInventoryStore(db::Database* database) : db_(*database) {}

  absl::StatusOr<ImportBatchResult> ImportBatch(
      const std::vector<CaCertificateRecord>& ca_certificates,
      const std::vector<ImportItem>& items, absl::string_view actor,
      absl::Time now) override;

  absl::StatusOr<CertificateRecord> CreateCertificate(
      const CertificateRecord& record, absl::string_view actor,
      absl::Time now) override;

  absl::StatusOr<VersionRecord> AddVersion(absl::string_view certificate_id,
                                           const VersionRecord& version,
                                           absl::string_view actor,
                                           absl::Time now) override;

  absl::StatusOr<CertificateRecord> GetCertificate(
      absl::string_view certificate_id) override;

  absl::StatusOr<std::optional<VersionRecord>> FindVersionBySha256(
      absl::string_view sha256_hex) override;

  absl::StatusOr<CertificatePage> ListCertificates(
      const ListQuery& query) override;

  absl::StatusOr<VersionPage> ListVersions(
      absl::string_view certificate_id, int page_size,
      absl::string_view page_token) override;

  absl::StatusOr<VersionRecord> GetVersion(absl::string_view certificate_id,
                                           int64_t version) override;

  absl::StatusOr<CertificateRecord> UpdateMetadata(
      absl::string_view certificate_id, const MetadataUpdate& update,
      absl::string_view actor, absl::Time now) override;

  absl::StatusOr<CertificateRecord> DeleteCertificate(
      absl::string_view certificate_id, absl::string_view expected_etag,
      absl::string_view actor, absl::Time now) override;

  absl::StatusOr<VersionRecord> RevokeVersion(absl::string_view certificate_id,
                                              int64_t version,
                                              absl::string_view reason,
                                              absl::Time revoke_time,
                                              absl::string_view actor,
                                              absl::Time now) override;

  absl::StatusOr<std::vector<CaCertificateRecord>> FindCaBySubject(
      absl::string_view subject_dn) override;

  absl::StatusOr<CaCertificateRecord> GetCaCertificate(
      absl::string_view sha256_hex) override;

  absl::StatusOr<StatsRecord> Stats(absl::string_view filter,
                                    absl::Time now) override;

  absl::StatusOr<std::vector<ChangeRecord>> ChangesAfter(int64_t after_revision,
                                                         int limit) override;

  absl::StatusOr<int64_t> LatestRevision() override;

 private:
  absl::Status ImportTx(soci::session& sql,
                        const std::vector<CaCertificateRecord>& cas,
                        const std::vector<ImportItem>& items,
                        absl::string_view actor, absl::Time now,
                        ImportBatchResult& result);

  absl::StatusOr<std::vector<CaCertificateRecord>> QueryCas(
      absl::string_view where, db::SqlParams& params);

  db::Database& db_;
};

// ---------------------------------------------------------------------------
// ImportBatch.

absl::StatusOr<ImportBatchResult> SqlInventoryStore::ImportBatch(
    const std::vector<CaCertificateRecord>& ca_certificates,
    const std::vector<ImportItem>& items, absl::string_view actor,
    absl::Time now) {
  for (size_t i = 0; i < ca_certificates.size(); ++i) {
    const CaCertificateRecord& ca = ca_certificates[i];
    const std::string what = absl::StrCat("ca_certificates[", i, "]");
    if (absl::Status s = CheckSha256(ca.sha256_hex, what + ".sha256_hex");
        !s.ok()) {
      return s;
    }
    if (ca.facts.sha256_hex != ca.sha256_hex) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ".facts.sha256_hex differs from ", what, ".sha256_hex"));
    }
    if (ca.der.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(what, ".der is empty"));
    }
    if (absl::Status s = CheckFactsText(ca.facts, what + ".facts"); !s.ok()) {
      return s;
    }
  }
  for (size_t i = 0; i < items.size(); ++i) {
    const ImportItem& item = items[i];
    const std::string what = absl::StrCat("items[", i, "]");
    if (absl::Status s = CheckFactsShape(item.facts, what + ".facts");
        !s.ok()) {
      return s;
    }
    if (item.der.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(what, ".der is empty"));
    }
    if (absl::Status s = CheckSource(item.source, what + ".source"); !s.ok()) {
      return s;
    }
    if (!item.target_certificate_id.empty()) {
      if (absl::Status s = CheckCertificateId(item.target_certificate_id,
                                              what + ".target_certificate_id");
          !s.ok()) {
        return s;
      }
    }
    for (size_t k = 0; k < item.chain_sha256.size(); ++k) {
      if (absl::Status s =
              CheckSha256(item.chain_sha256[k],
                          absl::StrCat(what, ".chain_sha256[", k, "]"));
          !s.ok()) {
        return s;
      }
    }
  }
  absl::Status status;
  ImportBatchResult result;
  for (int attempt = 1; attempt <= kImportAttempts; ++attempt) {
    status = db_.Transact([&](soci::session& sql) -> absl::Status {
      result = ImportBatchResult();
      return ImportTx(sql, ca_certificates, items, actor, now, result);
    });
    // A unique violation means a concurrent batch stored one of these
    // certificates first; running again reports it as already present.
    if (status.code() != absl::StatusCode::kAlreadyExists) break;
  }
  if (!status.ok()) return status;
  return result;
}

absl::Status SqlInventoryStore::ImportTx(
    soci::session& sql, const std::vector<CaCertificateRecord>& cas,
    const std::vector<ImportItem>& items, absl::string_view actor,
    absl::Time now, ImportBatchResult& result) {
  const Dialect d = db_.dialect();
  absl::BitGen gen;
  std::vector<PendingChange> changes;

  // CA certificates: new ones (first occurrence of each SHA-256) are added.
  result.ca_certificates_added.assign(cas.size(), false);
  if (!cas.empty()) {
    std::vector<std::string> shas;
    for (const CaCertificateRecord& ca : cas) shas.push_back(ca.sha256_hex);
    shas = SortedUnique(shas);
    std::set<std::string> stored;
    for (const std::vector<std::string>& chunk : Chunks(shas)) {
      db::SqlParams p;
      StringRow buf;
      absl::Status s =
          RunQuery(sql,
                   absl::StrCat("SELECT sha256_hex FROM ca_certificates WHERE "
                                "sha256_hex IN ",
                                InList(p, chunk)),
                   p, buf, [&]() -> absl::Status {
                     stored.insert(buf.value);
                     return absl::OkStatus();
                   });
      if (!s.ok()) return s;
    }
    MultiInsert insert(
        sql, absl::StrCat("INSERT INTO ca_certificates (sha256_hex, der, ",
                          kFactsColumns, ", create_time_us)"));
    for (size_t i = 0; i < cas.size(); ++i) {
      const CaCertificateRecord& ca = cas[i];
      if (!stored.insert(ca.sha256_hex).second) continue;
      result.ca_certificates_added[i] = true;
      db::SqlParams& p = insert.params();
      std::vector<std::string> v = {
          p.Add(ca.sha256_hex),
          BytesIn(d, p.Add(absl::BytesToHexString(ca.der)))};
      std::vector<std::string> fv = FactsValues(ca.facts, p);
      v.insert(v.end(), fv.begin(), fv.end());
      v.push_back(Int(Micros(now)));
      insert.Add(absl::StrCat("(", absl::StrJoin(v, ", "), ")"));
      changes.push_back(Change("ca_certificate_added", ca.sha256_hex, 0,
                               std::nullopt, ca.sha256_hex));
    }
    insert.Flush();
  }

  result.items.resize(items.size());
  if (items.empty()) {
    WriteChanges(sql, d, changes, actor, now);
    return absl::OkStatus();
  }

  // Versions already stored with the items' SHA-256s.
  struct Stored {
    std::string certificate_id;
    int64_t version = 0;
    std::string key_name;
    int64_t current_version = 0;
    int64_t current_not_after_us = 0;
    std::string current_sha256;
  };
  std::map<std::string, Stored> stored;
  {
    std::vector<std::string> shas;
    for (const ImportItem& item : items) shas.push_back(item.facts.sha256_hex);
    shas = SortedUnique(shas);
    for (const std::vector<std::string>& chunk : Chunks(shas)) {
      db::SqlParams p;
      struct {
        std::string sha, id, key_name, current_sha;
        long long version = 0, current_version = 0, not_after = 0;
        void Exchange(soci::statement& st) {
          st.exchange(soci::into(sha));
          st.exchange(soci::into(id));
          st.exchange(soci::into(version));
          st.exchange(soci::into(key_name));
          st.exchange(soci::into(current_version));
          st.exchange(soci::into(not_after));
          st.exchange(soci::into(current_sha));
        }
      } buf;
      absl::Status s = RunQuery(
          sql,
          absl::StrCat(
              "SELECT v.sha256_hex, v.certificate_id, v.version, v.key_name, "
              "c.current_version, c.not_after_us, c.sha256_hex FROM "
              "certificate_versions v JOIN certificates c ON "
              "c.certificate_id = v.certificate_id WHERE v.sha256_hex IN ",
              InList(p, chunk)),
          p, buf, [&]() -> absl::Status {
            stored[buf.sha] = {buf.id,        buf.version,
                               buf.key_name,  buf.current_version,
                               buf.not_after, buf.current_sha};
            return absl::OkStatus();
          });
      if (!s.ok()) return s;
    }
  }

  // Target certificates, locked until commit on PostgreSQL.
  struct Target {
    bool deleted = false;
    int64_t version_count = 0;
    int64_t current_version = 0;
    int latest_item = -1;  // The batch's last new version for it.
    bool has_new = false;
  };
  std::map<std::string, Target> targets;
  {
    std::vector<std::string> ids;
    for (const ImportItem& item : items) {
      if (!item.target_certificate_id.empty()) {
        ids.push_back(item.target_certificate_id);
      }
    }
    ids = SortedUnique(ids);
    for (const std::vector<std::string>& chunk : Chunks(ids)) {
      db::SqlParams p;
      struct {
        std::string id;
        int deleted = 0;
        long long count = 0, current = 0;
        void Exchange(soci::statement& st) {
          st.exchange(soci::into(id));
          st.exchange(soci::into(deleted));
          st.exchange(soci::into(count));
          st.exchange(soci::into(current));
        }
      } buf;
      absl::Status s = RunQuery(
          sql,
          absl::StrCat("SELECT certificate_id, deleted, version_count, "
                       "current_version FROM certificates WHERE "
                       "certificate_id IN ",
                       InList(p, chunk), " ORDER BY certificate_id",
                       d == Dialect::kPostgres ? " FOR UPDATE" : ""),
          p, buf, [&]() -> absl::Status {
            targets[buf.id] = {.deleted = buf.deleted != 0,
                               .version_count = buf.count,
                               .current_version = buf.current};
            return absl::OkStatus();
          });
      if (!s.ok()) return s;
    }
  }

  // Decide each item, in order.
  struct NewVersion {
    int item = 0;
    std::string certificate_id;
    int64_t version = 0;
    std::string status = "active";
    std::string key_name;
  };
  std::vector<NewVersion> new_versions;
  std::vector<int> new_certs;               // Indexes into new_versions.
  std::map<std::string, size_t> batch_sha;  // SHA-256 -> new_versions index.
  struct KeyUpdate {
    std::string sha256_hex;
    std::string certificate_id;
    std::string key_name;
    bool is_current = false;
  };
  std::vector<KeyUpdate> key_updates;

  for (size_t i = 0; i < items.size(); ++i) {
    const ImportItem& item = items[i];
    ImportItemResult& out = result.items[i];
    const std::string& sha = item.facts.sha256_hex;
    if (auto it = batch_sha.find(sha); it != batch_sha.end()) {
      NewVersion& nv = new_versions[it->second];
      out.outcome = ImportItemOutcome::kAlreadyPresent;
      out.certificate_id = nv.certificate_id;
      out.version = nv.version;
      if (nv.key_name.empty() && !item.key_name.empty()) {
        nv.key_name = item.key_name;
        out.key_added = true;
      }
      out.key_name = nv.key_name;
      continue;
    }
    if (auto it = stored.find(sha); it != stored.end()) {
      Stored& st = it->second;
      out.outcome = ImportItemOutcome::kAlreadyPresent;
      out.certificate_id = st.certificate_id;
      out.version = st.version;
      if (st.key_name.empty() && !item.key_name.empty()) {
        if (absl::Status s = CheckText(item.key_name, "key_name"); !s.ok()) {
          out = ImportItemResult();
          out.error = std::string(s.message());
          continue;
        }
        st.key_name = item.key_name;
        out.key_added = true;
        const bool is_current = st.version == st.current_version;
        key_updates.push_back(
            {sha, st.certificate_id, st.key_name, is_current});
        changes.push_back(
            Change("certificate_updated", st.certificate_id, st.version,
                   ChangeNotAfter(st.current_version, st.current_not_after_us),
                   st.current_sha256, {"key_name"}));
      }
      out.key_name = st.key_name;
      continue;
    }
    // New version: text the database cannot store fails this item alone.
    absl::Status text = CheckFactsText(item.facts, "certificate");
    if (text.ok()) {
      for (const std::string* s :
           {&item.key_name, &item.origin, &item.display_name, &item.owner}) {
        if (!IsStorableText(*s)) {
          text = absl::InvalidArgumentError(
              "key name, origin, display name or owner is not valid UTF-8 "
              "or contains a NUL byte");
        }
      }
      CertificateRecord meta;
      meta.environments = item.environments;
      meta.tags = item.tags;
      if (text.ok()) text = CheckMetadata(meta, "import");
      if (text.ok()) {
        for (const std::string& c : item.chain_sha256) {
          if (c == sha) text = absl::InvalidArgumentError("chain holds itself");
        }
      }
    }
    if (!text.ok()) {
      out.outcome = ImportItemOutcome::kFailed;
      out.error = std::string(text.message());
      continue;
    }
    NewVersion nv;
    nv.item = static_cast<int>(i);
    nv.key_name = item.key_name;
    if (!item.target_certificate_id.empty()) {
      auto it = targets.find(item.target_certificate_id);
      if (it == targets.end()) {
        out.outcome = ImportItemOutcome::kFailed;
        out.error = absl::StrCat("target certificate ",
                                 item.target_certificate_id, " not found");
        continue;
      }
      Target& t = it->second;
      if (t.deleted) {
        out.outcome = ImportItemOutcome::kFailed;
        out.error = absl::StrCat("target certificate ",
                                 item.target_certificate_id, " is deleted");
        continue;
      }
      if (t.has_new) {
        // An earlier item of this batch added the version this one replaces.
        for (NewVersion& prev : new_versions) {
          if (prev.certificate_id == item.target_certificate_id &&
              prev.version == t.current_version) {
            prev.status = "superseded";
          }
        }
      }
      nv.certificate_id = item.target_certificate_id;
      nv.version = ++t.version_count;
      t.current_version = nv.version;
      t.latest_item = static_cast<int>(i);
      t.has_new = true;
    } else {
      nv.certificate_id = NewCertificateId(gen);
      nv.version = 1;
      new_certs.push_back(static_cast<int>(new_versions.size()));
      changes.push_back(Change("certificate_created", nv.certificate_id, 1,
                               item.facts.not_after_us, sha));
    }
    changes.push_back(Change("version_added", nv.certificate_id, nv.version,
                             item.facts.not_after_us, sha));
    out.outcome = ImportItemOutcome::kImported;
    out.certificate_id = nv.certificate_id;
    out.version = nv.version;
    batch_sha[sha] = new_versions.size();
    new_versions.push_back(std::move(nv));
  }
  // Keys that later items brought to this batch's own new versions.
  for (size_t i = 0; i < items.size(); ++i) {
    ImportItemResult& out = result.items[i];
    if (out.outcome == ImportItemOutcome::kImported) {
      out.key_name =
          new_versions[batch_sha[items[i].facts.sha256_hex]].key_name;
    }
  }

  // Keys for stored versions (before targets take new current versions).
  for (const KeyUpdate& k : key_updates) {
    sql << "UPDATE certificate_versions SET key_name = :k WHERE "
           "sha256_hex = :s AND key_name = ''",
        soci::use(k.key_name), soci::use(k.sha256_hex);
    if (k.is_current) {
      sql << "UPDATE certificates SET has_key = 1 WHERE certificate_id = :id",
          soci::use(k.certificate_id);
    }
  }

  // Targets: their active versions become superseded.
  std::vector<std::string> updated_targets;
  for (const auto& [id, t] : targets) {
    if (t.has_new) updated_targets.push_back(id);
  }
  for (const std::vector<std::string>& chunk : Chunks(updated_targets)) {
    db::SqlParams p;
    db::ExecuteWithParams(
        sql,
        absl::StrCat("UPDATE certificate_versions SET status = 'superseded' "
                     "WHERE status = 'active' AND certificate_id IN ",
                     InList(p, chunk)),
        p);
  }

  // New certificates.
  {
    MultiInsert insert(sql, absl::StrCat("INSERT INTO certificates (",
                                         CertInsertColumns(d), ")"));
    for (int index : new_certs) {
      const NewVersion& nv = new_versions[index];
      const ImportItem& item = items[nv.item];
      CertificateRecord r;
      r.certificate_id = nv.certificate_id;
      r.display_name = item.display_name.empty()
                           ? DefaultDisplayName(item.facts)
                           : item.display_name;
      r.owner = item.owner;
      r.environments = item.environments;
      r.tags = item.tags;
      r.source = item.source;
      r.current_version = 1;
      r.version_count = 1;
      r.create_time = now;
      r.update_time = now;
      r.etag = NewEtag(gen);
      insert.Add(
          CertValues(d, insert.params(), r, &item.facts, !nv.key_name.empty()));
    }
    insert.Flush();
  }

  // Versions.
  {
    MultiInsert insert(sql, absl::StrCat("INSERT INTO certificate_versions (",
                                         kVersionInsertColumns, ")"));
    for (const NewVersion& nv : new_versions) {
      const ImportItem& item = items[nv.item];
      insert.Add(VersionValues(
          d, insert.params(), nv.certificate_id, nv.version, nv.status,
          item.der, item.details, item.facts, item.chain_sha256,
          item.chain_complete, nv.key_name, item.origin, now));
    }
    insert.Flush();
  }

  // Targets' current columns.
  MultiInsert sans(sql, kSansInsert);
  for (const std::string& id : updated_targets) {
    const Target& t = targets[id];
    const ImportItem& item = items[t.latest_item];
    const NewVersion& nv = new_versions[batch_sha[item.facts.sha256_hex]];
    SetCurrentVersion(sql, id, item.facts, !nv.key_name.empty(),
                      t.current_version, t.version_count, now, gen);
    DeleteWhereId(sql, "certificate_sans", id);
    InsertSans(sans, id, item.facts.sans);
  }

  // SANs, environments and tags of new certificates.
  {
    MultiInsert envs(sql, kEnvironmentsInsert);
    MultiInsert tags(sql, kTagsInsert);
    for (int index : new_certs) {
      const NewVersion& nv = new_versions[index];
      const ImportItem& item = items[nv.item];
      InsertSans(sans, nv.certificate_id, item.facts.sans);
      InsertEnvironments(envs, nv.certificate_id, item.environments);
      InsertTags(tags, nv.certificate_id, item.tags);
    }
    sans.Flush();
    envs.Flush();
    tags.Flush();
  }

  WriteChanges(sql, d, changes, actor, now);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// CreateCertificate, AddVersion.

absl::StatusOr<CertificateRecord> SqlInventoryStore::CreateCertificate(
    const CertificateRecord& record, absl::string_view actor, absl::Time now) {
  CertificateRecord r;
  r.display_name = record.display_name;
  r.owner = record.owner;
  r.environments = SortedUnique(record.environments);
  r.tags = record.tags;
  r.source = record.source.empty() ? "issued" : record.source;
  r.desired = record.desired;
  r.auto_renew = record.auto_renew;
  r.renew_before_days = record.renew_before_days;
  r.reuse_key = record.reuse_key;
  r.request_id = record.request_id;
  r.create_time = now;
  r.update_time = now;
  if (absl::Status s = CheckSource(r.source, "source"); !s.ok()) return s;
  if (absl::Status s = CheckMetadata(r, "certificate"); !s.ok()) return s;
  const Dialect d = db_.dialect();
  auto find_by_request =
      [&](soci::session& sql) -> absl::StatusOr<std::optional<CertRow>> {
    db::SqlParams p;
    absl::StatusOr<std::vector<CertRow>> rows = QueryCertRows(
        sql, d, absl::StrCat("WHERE c.request_id = ", p.Add(r.request_id)), p);
    if (!rows.ok()) return rows.status();
    if (rows->empty()) return std::optional<CertRow>();
    if (absl::Status s = LoadDetails(sql, d, *rows); !s.ok()) return s;
    return std::optional<CertRow>(std::move(rows->front()));
  };

  CertificateRecord out;
  absl::Status status = db_.Transact([&](soci::session& sql) -> absl::Status {
    if (!r.request_id.empty()) {
      absl::StatusOr<std::optional<CertRow>> found = find_by_request(sql);
      if (!found.ok()) return found.status();
      if (found->has_value()) {
        out = std::move((*found)->record);
        return absl::OkStatus();
      }
    }
    absl::BitGen gen;
    out = r;
    out.certificate_id = NewCertificateId(gen);
    out.etag = NewEtag(gen);
    db::SqlParams p;
    db::ExecuteWithParams(
        sql,
        absl::StrCat("INSERT INTO certificates (", CertInsertColumns(d),
                     ") VALUES ", CertValues(d, p, out, nullptr, false)),
        p);
    MultiInsert envs(sql, kEnvironmentsInsert);
    InsertEnvironments(envs, out.certificate_id, out.environments);
    envs.Flush();
    MultiInsert tags(sql, kTagsInsert);
    InsertTags(tags, out.certificate_id, out.tags);
    tags.Flush();
    WriteChanges(sql, d,
                 {Change("certificate_created", out.certificate_id, 0,
                         std::nullopt, "")},
                 actor, now);
    return absl::OkStatus();
  });
  if (status.code() == absl::StatusCode::kAlreadyExists &&
      !r.request_id.empty()) {
    // A concurrent call with the same request_id won; return its result.
    status = db_.Transact(
        [&](soci::session& sql) -> absl::Status {
          absl::StatusOr<std::optional<CertRow>> found = find_by_request(sql);
          if (!found.ok()) return found.status();
          if (!found->has_value()) {
            return absl::AbortedError(
                "certificate creation raced with another; retry");
          }
          out = std::move((*found)->record);
          return absl::OkStatus();
        },
        db::TxMode::kReadOnly);
  }
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<VersionRecord> SqlInventoryStore::AddVersion(
    absl::string_view certificate_id, const VersionRecord& version,
    absl::string_view actor, absl::Time now) {
  const std::string id(certificate_id);
  if (absl::Status s = CheckCertificateId(id, "certificate id"); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckFactsShape(version.facts, "version.facts");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckFactsText(version.facts, "version.facts");
      !s.ok()) {
    return s;
  }
  if (version.der.empty()) {
    return absl::InvalidArgumentError("version.der is empty");
  }
  for (size_t k = 0; k < version.chain_sha256.size(); ++k) {
    if (absl::Status s =
            CheckSha256(version.chain_sha256[k],
                        absl::StrCat("version.chain_sha256[", k, "]"));
        !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = CheckText(version.key_name, "version.key_name");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckText(version.origin, "version.origin"); !s.ok()) {
    return s;
  }
  const Dialect d = db_.dialect();
  VersionRecord out;
  absl::Status status = db_.Transact([&](soci::session& sql) -> absl::Status {
    int deleted = 0;
    long long count = 0;
    soci::indicator ind = soci::i_null;
    std::string query =
        "SELECT deleted, version_count FROM certificates WHERE "
        "certificate_id = :id";
    if (d == Dialect::kPostgres) query += " FOR UPDATE";
    sql << query, soci::into(deleted, ind), soci::into(count), soci::use(id);
    if (!sql.got_data()) return NoCertificate(id);
    if (deleted != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("certificate ", id, " is deleted"));
    }
    std::string other_id;
    long long other_version = 0;
    sql << "SELECT certificate_id, version FROM certificate_versions WHERE "
           "sha256_hex = :s",
        soci::into(other_id), soci::into(other_version),
        soci::use(version.facts.sha256_hex);
    if (sql.got_data()) {
      return absl::AlreadyExistsError(
          absl::StrCat("a certificate with SHA-256 ", version.facts.sha256_hex,
                       " is already stored as version ", other_version,
                       " of certificate ", other_id));
    }
    absl::BitGen gen;
    out.certificate_id = id;
    out.version = count + 1;
    out.status = "active";
    out.der = version.der;
    out.details = version.details;
    out.facts = version.facts;
    out.chain_sha256 = version.chain_sha256;
    out.chain_complete = version.chain_complete;
    out.key_name = version.key_name;
    out.origin = version.origin;
    out.create_time = absl::FromUnixMicros(Micros(now));
    sql << "UPDATE certificate_versions SET status = 'superseded' WHERE "
           "certificate_id = :id AND status = 'active'",
        soci::use(id);
    {
      db::SqlParams p;
      db::ExecuteWithParams(
          sql,
          absl::StrCat(
              "INSERT INTO certificate_versions (", kVersionInsertColumns,
              ") VALUES ",
              VersionValues(d, p, id, out.version, "active", out.der,
                            out.details, out.facts, out.chain_sha256,
                            out.chain_complete, out.key_name, out.origin, now)),
          p);
    }
    SetCurrentVersion(sql, id, out.facts, !out.key_name.empty(), out.version,
                      out.version, now, gen);
    DeleteWhereId(sql, "certificate_sans", id);
    MultiInsert sans(sql, kSansInsert);
    InsertSans(sans, id, out.facts.sans);
    sans.Flush();
    WriteChanges(sql, d,
                 {Change("version_added", id, out.version,
                         out.facts.not_after_us, out.facts.sha256_hex)},
                 actor, now);
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return out;
}

// ---------------------------------------------------------------------------
// Reads.

absl::StatusOr<CertificateRecord> SqlInventoryStore::GetCertificate(
    absl::string_view certificate_id) {
  const std::string id(certificate_id);
  if (absl::Status s = CheckCertificateId(id, "certificate id"); !s.ok()) {
    return s;
  }
  std::optional<CertRow> found;
  absl::Status s = db_.Transact(
      [&](soci::session& sql) -> absl::Status {
        absl::StatusOr<std::optional<CertRow>> row =
            LoadCertificate(sql, db_.dialect(), id, false);
        if (!row.ok()) return row.status();
        found = *std::move(row);
        return absl::OkStatus();
      },
      db::TxMode::kReadOnly);
  if (!s.ok()) return s;
  if (!found.has_value()) return NoCertificate(id);
  return std::move(found->record);
}

absl::StatusOr<std::optional<VersionRecord>>
SqlInventoryStore::FindVersionBySha256(absl::string_view sha256_hex) {
  const std::string sha = absl::AsciiStrToLower(sha256_hex);
  if (absl::Status s = CheckSha256(sha, "SHA-256"); !s.ok()) return s;
  std::vector<VersionRecord> found;
  absl::Status s = db_.Transact(
      [&](soci::session& sql) -> absl::Status {
        db::SqlParams p;
        absl::StatusOr<std::vector<VersionRecord>> v =
            QueryVersions(sql, db_.dialect(),
                          absl::StrCat("WHERE v.sha256_hex = ", p.Add(sha)), p);
        if (!v.ok()) return v.status();
        found = *std::move(v);
        return absl::OkStatus();
      },
      db::TxMode::kReadOnly);
  if (!s.ok()) return s;
  if (found.empty()) return std::optional<VersionRecord>();
  return std::optional<VersionRecord>(std::move(found.front()));
}

// The certificates matching `query`'s filter, counted up to
// kInventoryTotalSizeCap + 1.
absl::StatusOr<long long> CountMatches(soci::session& sql, Dialect d,
                                       const ListQuery& query, int64_t now_us) {
  db::SqlParams p;
  absl::StatusOr<std::string> where =
      CompileWhere(d, query.filter, query.show_deleted, now_us, p);
  if (!where.ok()) return where.status();
  long long total = 0;
  db::ReusableStatement st(
      sql, absl::StrCat(
               "SELECT COUNT(*) FROM (SELECT 1 FROM certificates c WHERE ",
               *where, " LIMIT ", Int(kInventoryTotalSizeCap + 1), ") capped"));
  st->exchange(soci::into(total));
  p.BindTo(*st);
  st.Bind();
  st->execute(true);
  return total;
}

absl::StatusOr<CertificatePage> SqlInventoryStore::ListCertificates(
    const ListQuery& query) {
  if (query.page_size < 1 || query.page_size > kMaxInventoryPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size ", query.page_size, " is outside [1, ",
                     kMaxInventoryPageSize, "]"));
  }
  std::vector<std::string> allowed;
  for (const OrderColumn& c : kOrderColumns) allowed.emplace_back(c.name);
  absl::StatusOr<std::vector<aip::OrderField>> order = aip::ParseOrderBy(
      query.order_by, allowed, {{.field = "not_after", .descending = false}});
  if (!order.ok()) return order.status();
  if (order->empty()) order->push_back({.field = "not_after"});

  std::vector<aip::KeysetColumn> keyset;
  std::vector<std::string> order_sql;
  for (const aip::OrderField& f : *order) {
    const OrderColumn* col = FindOrderColumn(f.field);
    if (col == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("order_by: unknown field ", Quote(f.field)));
    }
    keyset.push_back({.sql = std::string(col->sql),
                      .descending = f.descending,
                      .integer = col->integer});
    order_sql.push_back(
        absl::StrCat(col->sql, f.descending ? " DESC" : " ASC"));
  }
  // The unique tie-breaker, in the last field's direction so that a
  // single-field order walks one index in either direction.
  const bool tie_desc = order->back().descending;
  keyset.push_back(
      {.sql = "c.certificate_id", .descending = tie_desc, .integer = false});
  order_sql.push_back(
      absl::StrCat("c.certificate_id", tie_desc ? " DESC" : " ASC"));

  // A page token holds the keyset values of the last row, then the
  // total_size counted for the first page: later pages reuse it instead of
  // counting again.
  const std::string fingerprint = ListFingerprint(query);
  std::optional<aip::PageCursor> cursor;
  long long carried_total = 0;
  if (!query.page_token.empty()) {
    absl::StatusOr<aip::PageCursor> c =
        aip::DecodePageToken(fingerprint, query.page_token);
    if (!c.ok()) return c.status();
    if (c->values.size() != keyset.size() + 1 ||
        !absl::SimpleAtoi(c->values.back(), &carried_total) ||
        carried_total < 0 || carried_total > kInventoryTotalSizeCap + 1) {
      return absl::InvalidArgumentError(
          "page_token is malformed: not from a previous page of this query");
    }
    c->values.pop_back();
    cursor = *std::move(c);
  }
  const Dialect d = db_.dialect();
  const int64_t now_us = Micros(query.now);

  // Compile once up front so that a bad filter is INVALID_ARGUMENT before
  // any SQL runs.
  {
    db::SqlParams p;
    absl::StatusOr<std::string> where =
        CompileWhere(d, query.filter, query.show_deleted, now_us, p);
    if (!where.ok()) return where.status();
    if (cursor.has_value()) {
      absl::StatusOr<std::string> k = aip::KeysetCondition(keyset, *cursor, p);
      if (!k.ok()) return k.status();
    }
  }

  // The first page's capped count, over the whole filter. On PostgreSQL it
  // runs in its own read-only transaction on a second pooled session, in
  // another server process, beside the page query: with a core to spare,
  // the first page then costs the longer of the two instead of their sum (at
  // 1M certificates a SAN suffix match spends about 4.5 ms in each, see
  // docs/performance.md). The two snapshots may differ by writes committed
  // in between, which total_size, a count for display, tolerates (it is
  // kept above the rows the page saw); a page that holds every match counts
  // itself instead, and ignores the count. If no thread can be started, the
  // count runs in the page's transaction. The future's destructor waits, so
  // an early return below never leaves the count running on this frame's
  // variables. On SQLite the count runs in the
  // page's transaction: the work is in this process either way, and a
  // thread and a second connection (with a page cache of its own) cost the
  // inventory 18 % more CPU per List in gateway_bench.
  const bool first_page = !cursor.has_value();
  std::future<absl::StatusOr<long long>> counted;
  if (first_page && d == Dialect::kPostgres) {
    auto count_alone = [&]() -> absl::StatusOr<long long> {
      absl::StatusOr<long long> total;
      absl::Status cs = db_.Transact(
          [&](soci::session& sql) -> absl::Status {
            total = CountMatches(sql, d, query, now_us);
            return total.status();
          },
          db::TxMode::kReadOnly);
      if (!cs.ok()) return cs;
      return total;
    };
    try {
      counted = std::async(std::launch::async, count_alone);
    } catch (const std::exception&) {
      // No thread: `counted` stays empty and the page's transaction counts.
    }
  }
  std::optional<long long> counted_here;

  CertificatePage page;
  std::optional<aip::PageCursor> next;
  absl::Status s = db_.Transact(
      [&](soci::session& sql) -> absl::Status {
        page = CertificatePage();
        next.reset();
        counted_here.reset();
        if (first_page && !counted.valid()) {
          absl::StatusOr<long long> total = CountMatches(sql, d, query, now_us);
          if (!total.ok()) return total.status();
          counted_here = *total;
        }
        db::SqlParams p;
        absl::StatusOr<std::string> where =
            CompileWhere(d, query.filter, query.show_deleted, now_us, p);
        if (!where.ok()) return where.status();
        std::string cond = *where;
        if (cursor.has_value()) {
          absl::StatusOr<std::string> k =
              aip::KeysetCondition(keyset, *cursor, p);
          if (!k.ok()) return k.status();
          cond = absl::StrCat(cond, " AND ", *k);
        }
        absl::StatusOr<std::vector<CertRow>> rows =
            QueryCertRows(sql, d,
                          absl::StrCat("WHERE ", cond, " ORDER BY ",
                                       absl::StrJoin(order_sql, ", "),
                                       " LIMIT ", Int(query.page_size + 1)),
                          p);
        if (!rows.ok()) return rows.status();
        if (rows->size() > static_cast<size_t>(query.page_size)) {
          rows->resize(query.page_size);
          next.emplace();
          for (const aip::OrderField& f : *order) {
            next->values.push_back(CursorValue(f.field, rows->back()));
          }
          next->values.push_back(rows->back().record.certificate_id);
        }
        if (absl::Status ls = LoadDetails(sql, d, *rows); !ls.ok()) return ls;
        for (CertRow& row : *rows) {
          page.certificates.push_back(std::move(row.record));
        }
        return absl::OkStatus();
      },
      db::TxMode::kReadOnly);
  if (!s.ok()) return s;
  if (first_page) {
    absl::StatusOr<long long> total =
        counted.valid() ? counted.get() : *counted_here;
    const long long seen = static_cast<long long>(page.certificates.size());
    if (!next.has_value()) {
      page.total_size = seen;  // Every match is on this page.
    } else if (!total.ok()) {
      return total.status();
    } else {
      page.total_size = std::max(*total, seen + 1);
    }
  } else {
    page.total_size = carried_total;
  }
  if (next.has_value()) {
    next->values.push_back(Int(page.total_size));
    page.next_page_token = aip::EncodePageToken(fingerprint, *next);
  }
  return page;
}

absl::StatusOr<VersionPage> SqlInventoryStore::ListVersions(
    absl::string_view certificate_id, int page_size,
    absl::string_view page_token) {
  const std::string id(certificate_id);
  if (absl::Status s = CheckCertificateId(id, "certificate id"); !s.ok()) {
    return s;
  }
  if (page_size < 1 || page_size > kMaxInventoryPageSize) {
    return absl::InvalidArgumentError(absl::StrCat("page_size ", page_size,
                                                   " is outside [1, ",
                                                   kMaxInventoryPageSize, "]"));
  }
  const std::string fingerprint = absl::StrCat("versions|", id);
  long long before = std::numeric_limits<long long>::max();
  if (!page_token.empty()) {
    absl::StatusOr<aip::PageCursor> c =
        aip::DecodePageToken(fingerprint, page_token);
    if (!c.ok()) return c.status();
    if (c->values.size() != 1 || !absl::SimpleAtoi(c->values[0], &before)) {
      return absl::InvalidArgumentError(
          "page_token is malformed: not from a previous page of these "
          "versions");
    }
  }
  VersionPage page;
  absl::Status s = db_.Transact(
      [&](soci::session& sql) -> absl::Status {
        page = VersionPage();
        int exists = 0;
        sql << "SELECT 1 FROM certificates WHERE certificate_id = :id",
            soci::into(exists), soci::use(id);
        if (!sql.got_data()) return NoCertificate(id);
        db::SqlParams p;
        absl::StatusOr<std::vector<VersionRecord>> v = QueryVersions(
            sql, db_.dialect(),
            absl::StrCat("WHERE v.certificate_id = ", p.Add(id),
                         " AND v.version < ", p.Add(before),
                         " ORDER BY v.version DESC LIMIT ", Int(page_size + 1)),
            p);
        if (!v.ok()) return v.status();
        page.versions = *std::move(v);
        return absl::OkStatus();
      },
      db::TxMode::kReadOnly);
  if (!s.ok()) return s;
  if (page.versions.size() > static_cast<size_t>(page_size)) {
    page.versions.resize(page_size);
    page.next_page_token = aip::EncodePageToken(
        fingerprint, {.values = {Int(page.versions.back().version)}});
  }
  return page;
}

absl::StatusOr<VersionRecord> SqlInventoryStore::GetVersion(
    absl::string_view certificate_id, int64_t version) {
  const std::string id(certificate_id);
  if (absl::Status s = CheckCertificateId(id, "certificate id"); !s.ok()) {
    return s;
  }
  if (version < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("version ", version, " must be at least 1"));
  }
  std::vector<VersionRecord> found;
  absl::Status s = db_.Transact(
      [&](soci::session& sql) -> absl::Status {
        db::SqlParams p;
        absl::StatusOr<std::vector<VersionRecord>> v = QueryVersions(
            sql, db_.dialect(),
            absl::StrCat(
                "WHERE v.certificate_id = ", p.Add(id),
                " AND v.version = ", p.Add(static_cast<long long>(version))),
            p);
        if (!v.ok()) return v.status();
        found = *std::move(v);
        return absl::OkStatus();
      },
      db::TxMode::kReadOnly);
  if (!s.ok()) return s;
  if (found.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "version ", version, " of certificate ", id, " not found"));
  }
  return std::move(found.front());
}

// ---------------------------------------------------------------------------
// UpdateMetadata, DeleteCertificate, RevokeVersion.

absl::StatusOr<CertificateRecord> SqlInventoryStore::UpdateMetadata(
    absl::string_view certificate_id, const MetadataUpdate& update,
    absl::string_view actor, absl::Time now) {
  const std::string id(certificate_id);
  if (absl::Status s = CheckCertificateId(id, "certificate id"); !s.ok()) {
    return s;
  }
  static constexpr absl::string_view kFields[] = {
      "display_name", "owner",      "environments",      "tags",
      "desired",      "auto_renew", "renew_before_days", "reuse_key"};
  std::set<std::string> fields;
  for (const std::string& f : update.fields) {
    if (std::find(std::begin(kFields), std::end(kFields), f) ==
        std::end(kFields)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "update field ", Quote(f),
          " is unknown (known: ", absl::StrJoin(kFields, ", "), ")"));
    }
    fields.insert(f);
  }
  CertificateRecord values = update.values;
  values.environments = SortedUnique(values.environments);
  values.request_id.clear();
  if (absl::Status s = CheckMetadata(values, "certificate"); !s.ok()) return s;

  const Dialect d = db_.dialect();
  CertificateRecord out;
  absl::Status status = db_.Transact([&](soci::session& sql) -> absl::Status {
    absl::StatusOr<std::optional<CertRow>> row =
        LoadCertificate(sql, d, id, /*lock=*/true);
    if (!row.ok()) return row.status();
    if (!row->has_value()) return NoCertificate(id);
    CertRow& current = **row;
    CertificateRecord& r = current.record;
    if (r.delete_time.has_value()) {
      return absl::FailedPreconditionError(
          absl::StrCat("certificate ", id, " is deleted"));
    }
    if (!update.expected_etag.empty() && update.expected_etag != r.etag) {
      return absl::AbortedError(absl::StrCat(
          "certificate ", id,
          " was changed concurrently (etag mismatch); read it again and "
          "retry"));
    }
    std::vector<std::string> changed;
    db::SqlParams p;
    std::vector<std::string> sets;
    auto text = [&](const char* name, std::string& field,
                    const std::string& value) {
      if (fields.count(name) == 0 || field == value) return;
      changed.push_back(name);
      field = value;
      sets.push_back(absl::StrCat(name, " = ", p.Add(value)));
    };
    auto flag = [&](const char* name, bool& field, bool value) {
      if (fields.count(name) == 0 || field == value) return;
      changed.push_back(name);
      field = value;
      sets.push_back(absl::StrCat(name, " = ", value ? 1 : 0));
    };
    text("display_name", r.display_name, values.display_name);
    text("owner", r.owner, values.owner);
    if (fields.count("desired") && r.desired != values.desired) {
      changed.push_back("desired");
      r.desired = values.desired;
      sets.push_back(absl::StrCat(
          "desired = ", BytesIn(d, p.Add(absl::BytesToHexString(r.desired)))));
    }
    flag("auto_renew", r.auto_renew, values.auto_renew);
    if (fields.count("renew_before_days") &&
        r.renew_before_days != values.renew_before_days) {
      changed.push_back("renew_before_days");
      r.renew_before_days = values.renew_before_days;
      sets.push_back(
          absl::StrCat("renew_before_days = ", Int(r.renew_before_days)));
    }
    flag("reuse_key", r.reuse_key, values.reuse_key);
    const bool envs_changed =
        fields.count("environments") && r.environments != values.environments;
    if (envs_changed) {
      changed.push_back("environments");
      r.environments = values.environments;
    }
    const bool tags_changed = fields.count("tags") && r.tags != values.tags;
    if (tags_changed) {
      changed.push_back("tags");
      r.tags = values.tags;
    }
    if (changed.empty()) {
      out = std::move(r);
      return absl::OkStatus();
    }
    absl::BitGen gen;
    r.etag = NewEtag(gen);
    r.update_time = absl::FromUnixMicros(Micros(now));
    sets.push_back(absl::StrCat("etag = ", p.Add(r.etag)));
    sets.push_back(absl::StrCat("update_time_us = ", Int(Micros(now))));
    if (d == Dialect::kPostgres && (envs_changed || tags_changed)) {
      sets.push_back(ListAssignments(p, r.environments, r.tags));
    }
    db::ExecuteWithParams(
        sql,
        absl::StrCat("UPDATE certificates SET ", absl::StrJoin(sets, ", "),
                     " WHERE certificate_id = ", p.Add(id)),
        p);
    if (envs_changed) {
      DeleteWhereId(sql, "certificate_environments", id);
      MultiInsert envs(sql, kEnvironmentsInsert);
      InsertEnvironments(envs, id, r.environments);
      envs.Flush();
    }
    if (tags_changed) {
      DeleteWhereId(sql, "certificate_tags", id);
      MultiInsert tags(sql, kTagsInsert);
      InsertTags(tags, id, r.tags);
      tags.Flush();
    }
    WriteChanges(
        sql, d,
        {Change("certificate_updated", id, 0,
                ChangeNotAfter(r.current_version, current.not_after_us),
                current.sha256_hex, changed)},
        actor, now);
    out = std::move(r);
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<CertificateRecord> SqlInventoryStore::DeleteCertificate(
    absl::string_view certificate_id, absl::string_view expected_etag,
    absl::string_view actor, absl::Time now) {
  const std::string id(certificate_id);
  if (absl::Status s = CheckCertificateId(id, "certificate id"); !s.ok()) {
    return s;
  }
  const Dialect d = db_.dialect();
  CertificateRecord out;
  absl::Status status = db_.Transact([&](soci::session& sql) -> absl::Status {
    absl::StatusOr<std::optional<CertRow>> row =
        LoadCertificate(sql, d, id, /*lock=*/true);
    if (!row.ok()) return row.status();
    if (!row->has_value()) return NoCertificate(id);
    CertRow& current = **row;
    CertificateRecord& r = current.record;
    if (r.delete_time.has_value()) {
      return absl::FailedPreconditionError(
          absl::StrCat("certificate ", id, " is already deleted"));
    }
    if (!expected_etag.empty() && expected_etag != r.etag) {
      return absl::AbortedError(absl::StrCat(
          "certificate ", id,
          " was changed concurrently (etag mismatch); read it again and "
          "retry"));
    }
    absl::BitGen gen;
    r.etag = NewEtag(gen);
    r.update_time = absl::FromUnixMicros(Micros(now));
    r.delete_time = r.update_time;
    long long t = Micros(now);
    sql << "UPDATE certificates SET deleted = 1, delete_time_us = :t, "
           "update_time_us = :u, etag = :e WHERE certificate_id = :id",
        soci::use(t), soci::use(t), soci::use(r.etag), soci::use(id);
    WriteChanges(
        sql, d,
        {Change("certificate_deleted", id, 0,
                ChangeNotAfter(r.current_version, current.not_after_us),
                current.sha256_hex)},
        actor, now);
    out = std::move(r);
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<VersionRecord> SqlInventoryStore::RevokeVersion(
    absl::string_view certificate_id, int64_t version, absl::string_view reason,
    absl::Time revoke_time, absl::string_view actor, absl::Time now) {
  const std::string id(certificate_id);
  if (absl::Status s = CheckCertificateId(id, "certificate id"); !s.ok()) {
    return s;
  }
  if (version < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("version ", version, " must be at least 1"));
  }
  const std::string why = reason.empty() ? "unspecified" : std::string(reason);
  if (absl::Status s = CheckText(why, "reason"); !s.ok()) return s;
  const Dialect d = db_.dialect();
  VersionRecord out;
  absl::Status status = db_.Transact([&](soci::session& sql) -> absl::Status {
    absl::StatusOr<std::optional<CertRow>> row =
        LoadCertificate(sql, d, id, /*lock=*/true);
    if (!row.ok()) return row.status();
    if (!row->has_value()) return NoCertificate(id);
    const CertRow& cert = **row;
    db::SqlParams p;
    absl::StatusOr<std::vector<VersionRecord>> v = QueryVersions(
        sql, d,
        absl::StrCat(
            "WHERE v.certificate_id = ", p.Add(id),
            " AND v.version = ", p.Add(static_cast<long long>(version))),
        p);
    if (!v.ok()) return v.status();
    if (v->empty()) {
      return absl::NotFoundError(absl::StrCat(
          "version ", version, " of certificate ", id, " not found"));
    }
    out = std::move(v->front());
    if (out.status == "revoked") {
      return absl::FailedPreconditionError(absl::StrCat(
          "version ", version, " of certificate ", id, " is already revoked"));
    }
    out.status = "revoked";
    out.revoke_time = absl::FromUnixMicros(Micros(revoke_time));
    out.revocation_reason = why;
    long long t = Micros(revoke_time);
    long long vv = version;
    sql << "UPDATE certificate_versions SET status = 'revoked', "
           "revoke_time_us = :t, revocation_reason = :r WHERE "
           "certificate_id = :id AND version = :v",
        soci::use(t), soci::use(why), soci::use(id), soci::use(vv);
    if (cert.record.current_version == version) {
      absl::BitGen gen;
      std::string etag = NewEtag(gen);
      long long u = Micros(now);
      sql << "UPDATE certificates SET status = 'revoked', etag = :e, "
             "update_time_us = :u WHERE certificate_id = :id",
          soci::use(etag), soci::use(u), soci::use(id);
    }
    WriteChanges(
        sql, d,
        {Change("version_revoked", id, version,
                ChangeNotAfter(cert.record.current_version, cert.not_after_us),
                cert.sha256_hex)},
        actor, now);
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return out;
}

// ---------------------------------------------------------------------------
// CA certificates.

absl::StatusOr<std::vector<CaCertificateRecord>> SqlInventoryStore::QueryCas(
    absl::string_view where, db::SqlParams& params) {
  std::vector<CaCertificateRecord> out;
  absl::Status s = db_.Transact(
      [&](soci::session& sql) -> absl::Status {
        out.clear();
        struct {
          std::string sha, der_hex;
          FactsRow facts;
          long long create_us = 0;
          void Exchange(soci::statement& st) {
            st.exchange(soci::into(sha));
            st.exchange(soci::into(der_hex));
            facts.Exchange(st);
            st.exchange(soci::into(create_us));
          }
        } buf;
        return RunQuery(
            sql,
            absl::StrCat("SELECT sha256_hex, ", BytesOut(db_.dialect(), "der"),
                         ", ", kFactsColumns,
                         ", create_time_us FROM ca_certificates ", where,
                         " ORDER BY sha256_hex"),
            params, buf, [&]() -> absl::Status {
              const std::string row = absl::StrCat("CA certificate ", buf.sha);
              CaCertificateRecord r;
              r.sha256_hex = buf.sha;
              absl::StatusOr<std::string> der =
                  FromHex(buf.der_hex, "der", row);
              if (!der.ok()) return der.status();
              r.der = *std::move(der);
              absl::StatusOr<CertificateFacts> f =
                  buf.facts.ToFacts(buf.sha, row);
              if (!f.ok()) return f.status();
              r.facts = *std::move(f);
              r.create_time = absl::FromUnixMicros(buf.create_us);
              out.push_back(std::move(r));
              return absl::OkStatus();
            });
      },
      db::TxMode::kReadOnly);
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<CaCertificateRecord>>
SqlInventoryStore::FindCaBySubject(absl::string_view subject_dn) {
  if (absl::Status s = CheckText(subject_dn, "subject DN"); !s.ok()) return s;
  db::SqlParams p;
  std::string where =
      absl::StrCat("WHERE subject_dn = ", p.Add(std::string(subject_dn)));
  return QueryCas(where, p);
}

absl::StatusOr<CaCertificateRecord> SqlInventoryStore::GetCaCertificate(
    absl::string_view sha256_hex) {
  const std::string sha = absl::AsciiStrToLower(sha256_hex);
  if (absl::Status s = CheckSha256(sha, "SHA-256"); !s.ok()) return s;
  db::SqlParams p;
  std::string where = absl::StrCat("WHERE sha256_hex = ", p.Add(sha));
  absl::StatusOr<std::vector<CaCertificateRecord>> found = QueryCas(where, p);
  if (!found.ok()) return found.status();
  if (found->empty()) {
    return absl::NotFoundError(
        absl::StrCat("CA certificate with SHA-256 ", sha, " not found"));
  }
  return std::move(found->front());
}

// ---------------------------------------------------------------------------
// Stats.

absl::StatusOr<StatsRecord> SqlInventoryStore::Stats(absl::string_view filter,
                                                     absl::Time now) {
  const Dialect d = db_.dialect();
  const int64_t now_us = Micros(now);
  {
    db::SqlParams p;
    absl::StatusOr<std::string> where =
        CompileWhere(d, filter, false, now_us, p);
    if (!where.ok()) return where.status();
  }
  StatsRecord out;
  absl::Status s = db_.Transact(
      [&](soci::session& sql) -> absl::Status {
        out = StatsRecord();
        // One grouped scan over everything but environments. Time bounds
        // are integers computed here, written into the SQL.
        db::SqlParams p;
        absl::StatusOr<std::string> where =
            CompileWhere(d, filter, false, now_us, p);
        if (!where.ok()) return where.status();
        // Groups by plain columns and two comparisons, which the planner
        // estimates well (CASE expressions over not_after made PostgreSQL
        // expect a group per row and sort 1M rows on disk); the expiry
        // buckets are cumulative sums within each group.
        const std::string now_s = Int(now_us);
        auto day = [&](int n) { return Int(now_us + n * kMicrosPerDay); };
        auto at_most = [&](int n) {
          return absl::StrCat("SUM(CASE WHEN c.not_after_us <= ", day(n),
                              " THEN 1 ELSE 0 END)");
        };
        struct {
          std::string status, has_version, expired, issuer_cn, issuer_dn,
              algorithm, curve, signature, owner, source;
          int bits = 0;
          long long count = 0, within7 = 0, within30 = 0, within60 = 0,
                    within90 = 0;
          void Exchange(soci::statement& st) {
            st.exchange(soci::into(status));
            st.exchange(soci::into(has_version));
            st.exchange(soci::into(expired));
            st.exchange(soci::into(issuer_cn));
            st.exchange(soci::into(issuer_dn));
            st.exchange(soci::into(algorithm));
            st.exchange(soci::into(bits));
            st.exchange(soci::into(curve));
            st.exchange(soci::into(signature));
            st.exchange(soci::into(owner));
            st.exchange(soci::into(source));
            st.exchange(soci::into(count));
            st.exchange(soci::into(within7));
            st.exchange(soci::into(within30));
            st.exchange(soci::into(within60));
            st.exchange(soci::into(within90));
          }
        } buf;
        // A comparison reads back as "t"/"f" (PostgreSQL) or 1/0 (SQLite).
        auto truth = [](const std::string& v) { return v == "t" || v == "1"; };
        std::map<std::string, int64_t> by_status, by_issuer, by_key, by_sig,
            by_owner, by_source;
        int64_t buckets[6] = {0, 0, 0, 0, 0, 0};
        absl::Status qs = RunQuery(
            sql,
            absl::StrCat(
                "SELECT c.status, c.current_version > 0, c.not_after_us < ",
                now_s,
                ", c.issuer_cn, c.issuer_dn, c.key_algorithm, c.key_bits, "
                "c.key_curve, c.signature_algorithm, c.owner, c.source, "
                "COUNT(*), ",
                at_most(7), ", ", at_most(30), ", ", at_most(60), ", ",
                at_most(90), " FROM certificates c WHERE ", *where,
                " GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11"),
            p, buf, [&]() -> absl::Status {
              out.total += buf.count;
              by_owner[buf.owner] += buf.count;
              by_source[SourceName(buf.source)] += buf.count;
              if (!truth(buf.has_version)) return absl::OkStatus();
              const bool expired = truth(buf.expired);
              const std::string status =
                  buf.status == "active"
                      ? (expired ? "EXPIRED" : "ACTIVE")
                      : (buf.status == "revoked" ? "REVOKED" : "SUPERSEDED");
              by_status[status] += buf.count;
              by_issuer[buf.issuer_cn.empty() ? buf.issuer_dn
                                              : buf.issuer_cn] += buf.count;
              by_key[KeyName(buf.algorithm, buf.bits, buf.curve)] += buf.count;
              by_sig[buf.signature] += buf.count;
              const int64_t expired_count = expired ? buf.count : 0;
              buckets[0] += expired_count;
              buckets[1] += buf.within7 - expired_count;
              buckets[2] += buf.within30 - buf.within7;
              buckets[3] += buf.within60 - buf.within30;
              buckets[4] += buf.within90 - buf.within60;
              buckets[5] += buf.count - buf.within90;
              if (buf.algorithm == "RSA" && buf.bits < 2048) {
                out.weak_key_count += buf.count;
              }
              if (IsWeakSignature(buf.signature)) {
                out.weak_signature_count += buf.count;
              }
              return absl::OkStatus();
            });
        if (!qs.ok()) return qs;
        out.by_status = SortedCounts(by_status);
        std::vector<StatsCount> issuers = SortedCounts(by_issuer);
        if (issuers.size() > 50) {
          int64_t other = 0;
          for (size_t i = 50; i < issuers.size(); ++i)
            other += issuers[i].count;
          issuers.resize(50);
          issuers.push_back({"(other)", other});
        }
        out.by_issuer = std::move(issuers);
        out.by_key = SortedCounts(by_key);
        out.by_signature_algorithm = SortedCounts(by_sig);
        out.by_owner = SortedCounts(by_owner);
        out.by_source = SortedCounts(by_source);
        static constexpr absl::string_view kBuckets[] = {
            "expired", "<=7d", "<=30d", "<=60d", "<=90d", ">90d"};
        for (int i = 0; i < 6; ++i) {
          out.by_expiry.push_back({std::string(kBuckets[i]), buckets[i]});
        }

        db::SqlParams ep;
        absl::StatusOr<std::string> env_where =
            CompileWhere(d, filter, false, now_us, ep);
        if (!env_where.ok()) return env_where.status();
        struct {
          std::string env;
          long long count = 0;
          void Exchange(soci::statement& st) {
            st.exchange(soci::into(env));
            st.exchange(soci::into(count));
          }
        } ebuf;
        std::map<std::string, int64_t> by_env;
        qs = RunQuery(
            sql,
            absl::StrCat("SELECT e.environment, COUNT(*) FROM "
                         "certificate_environments e JOIN certificates c ON "
                         "c.certificate_id = e.certificate_id WHERE ",
                         *env_where, " GROUP BY e.environment"),
            ep, ebuf, [&]() -> absl::Status {
              by_env[ebuf.env] += ebuf.count;
              return absl::OkStatus();
            });
        if (!qs.ok()) return qs;
        out.by_environment = SortedCounts(by_env);
        return absl::OkStatus();
      },
      db::TxMode::kReadOnly);
  if (!s.ok()) return s;
  return out;
}

// ---------------------------------------------------------------------------
// Change feed.

absl::StatusOr<std::vector<ChangeRecord>> SqlInventoryStore::ChangesAfter(
    int64_t after_revision, int limit) {
  if (limit < 1 || limit > kMaxInventoryChangesLimit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "limit ", limit, " is outside [1, ", kMaxInventoryChangesLimit, "]"));
  }
  if (after_revision < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("after_revision ", after_revision, " is negative"));
  }
  std::vector<ChangeRecord> out;
  absl::Status s = db_.Transact(
      [&](soci::session& sql) -> absl::Status {
        out.clear();
        struct {
          long long revision = 0, version = 0, time_us = 0, not_after = 0;
          soci::indicator not_after_ind = soci::i_null;
          std::string kind, id, actor, fields, sha;
          void Exchange(soci::statement& st) {
            st.exchange(soci::into(revision));
            st.exchange(soci::into(kind));
            st.exchange(soci::into(id));
            st.exchange(soci::into(version));
            st.exchange(soci::into(time_us));
            st.exchange(soci::into(actor));
            st.exchange(soci::into(fields));
            st.exchange(soci::into(not_after, not_after_ind));
            st.exchange(soci::into(sha));
          }
        } buf;
        db::SqlParams p;
        return RunQuery(
            sql,
            absl::StrCat("SELECT revision, kind, certificate_id, version, "
                         "time_us, actor, changed_fields, not_after_us, "
                         "sha256_hex FROM changes WHERE revision > ",
                         p.Add(static_cast<long long>(after_revision)),
                         " ORDER BY revision LIMIT ", Int(limit)),
            p, buf, [&]() -> absl::Status {
              ChangeRecord c;
              c.revision = buf.revision;
              c.kind = buf.kind;
              c.certificate_id = buf.id;
              c.version = buf.version;
              c.time = absl::FromUnixMicros(buf.time_us);
              c.actor = buf.actor;
              if (!buf.fields.empty()) {
                c.changed_fields = absl::StrSplit(buf.fields, ',');
              }
              if (buf.not_after_ind == soci::i_ok)
                c.not_after_us = buf.not_after;
              c.sha256_hex = buf.sha;
              out.push_back(std::move(c));
              return absl::OkStatus();
            });
      },
      db::TxMode::kReadOnly);
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<int64_t> SqlInventoryStore::LatestRevision() {
  long long value = 0;
  absl::Status s = db_.Transact(
      [&](soci::session& sql) -> absl::Status {
        soci::indicator ind = soci::i_null;
        sql << "SELECT value FROM counters WHERE name = 'revision'",
            soci::into(value, ind);
        if (!sql.got_data()) {
          return absl::FailedPreconditionError(
              "the counters table has no 'revision' row; was the database "
              "migrated with InventoryMigrations()?");
        }
        return absl::OkStatus();
      },
      db::TxMode::kReadOnly);
  if (!s.ok()) return s;
  return static_cast<int64_t>(value);
}

}  // namespace

std::unique_ptr<InventoryStore> NewSqlInventoryStore(db::Database* database) {
  return std::make_unique<SqlInventoryStore>(database);
}

}  // namespace certplane::inventory
