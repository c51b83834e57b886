#include "libs/db/sql_params.h"

#include <soci/soci.h>

#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "libs/db/statement_cache.h"

namespace certplane::db {

std::string SqlParams::Add(std::string value) {
  strings_.push_back(std::move(value));
  return Name(&strings_.back(), nullptr);
}

std::string SqlParams::Add(long long value) {
  ints_.push_back(value);
  return Name(nullptr, &ints_.back());
}

void SqlParams::BindTo(soci::statement& statement) {
  for (const Bound& b : bound_) {
    if (b.string_value != nullptr) {
      statement.exchange(soci::use(*b.string_value, b.name));
    } else {
      statement.exchange(soci::use(*b.int_value, b.name));
    }
  }
}

std::string SqlParams::Name(std::string* s, long long* i) {
  bound_.push_back({absl::StrCat("p", bound_.size() + 1), s, i});
  return absl::StrCat(":", bound_.back().name);
}

long long ExecuteWithParams(soci::session& session, const std::string& sql,
                            SqlParams& params) {
  ReusableStatement st(session, sql);
  params.BindTo(*st);
  st.Bind();
  st->execute(true);
  if (session.get_backend_name() == "sqlite3") {
    // SOCI 4.0's SQLite backend does not always report the count of a
    // statement it ran; ask SQLite directly (same connection, same
    // transaction).
    long long changed = 0;
    session << "SELECT changes()", soci::into(changed);
    return changed;
  }
  return st->get_affected_rows();
}

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

absl::StatusOr<std::string> DecodeHexColumn(absl::string_view hex,
                                            absl::string_view what) {
  if (hex.size() % 2 != 0) {
    return absl::DataLossError(absl::StrCat(what, " has odd hex length"));
  }
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = HexValue(hex[2 * i]);
    const int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return absl::DataLossError(absl::StrCat(what, " is not hex"));
    }
    out[i] = static_cast<char>((hi << 4) | lo);
  }
  return out;
}

long long TimeToMicros(absl::Time t) {
  if (t == absl::InfinitePast()) return INT64_MIN;
  if (t == absl::InfiniteFuture()) return INT64_MAX;
  return absl::ToUnixMicros(t);
}

absl::Time MicrosToTime(long long us) {
  if (us == INT64_MIN) return absl::InfinitePast();
  if (us == INT64_MAX) return absl::InfiniteFuture();
  return absl::FromUnixMicros(us);
}

}  // namespace certplane::db
