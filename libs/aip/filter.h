// AIP-160 filters, AIP-132 order_by and AIP-158 page tokens, compiled to SQL
// for a store that declares which fields may be filtered and how each maps
// to its tables.
//
//   aip::FieldSchema schema;
//   schema.Column("owner", aip::FieldType::kString, "c.owner")
//       .Column("not_after", aip::FieldType::kTimestamp, "c.not_after_us")
//       .Enum("status", "c.status", {"ACTIVE", "REVOKED"})
//       .Custom("san", [](const aip::Comparison& c, db::SqlParams& p)
//                          -> absl::StatusOr<std::string> { ... })
//       .Prefix("tags", ...);
//   db::SqlParams params;
//   ASSIGN_OR_RETURN(std::string where,
//                    aip::CompileFilter(request.filter(), schema, params));
//   // "SELECT ... WHERE " + where, then params.BindTo(statement).
//
// A FieldSchema is built once and then only read: its const methods and
// CompileFilter may run on many threads at once (each call with its own
// SqlParams). Nothing here throws; exceptions thrown by a Custom or Prefix
// compiler are returned as INTERNAL.
//
// Grammar (https://google.aip.dev/160), as certplane supports it:
//   filter     = [expression]
//   expression = sequence {"AND" sequence}
//   sequence   = factor {factor}          (juxtaposition means AND)
//   factor     = term {"OR" term}
//   term       = ["NOT" | "-"] simple
//   simple     = restriction | "(" expression ")"
//   restriction= field comparator value
//   comparator = "=" | "!=" | "<" | "<=" | ">" | ">=" | ":"
//   field      = name {"." name}
//   value      = string | number | true | false | bare-word
// Strings are double- or single-quoted with backslash escapes (\" \' \\ \n
// \t); a bare word (letters, digits, '_', '-', '.', '*', '+', and ':' after
// the first character) is taken as a string, so `not_after <
// 2027-01-01T00:00:00+02:00` needs no quotes. Field names are letters,
// digits, '_' and '-' in segments joined by '.'. Keywords AND, OR, NOT are
// upper case whole words ("ANDROID" is a field). Note that AIP-160 binds OR
// tighter than AND: `a = 1 OR b = 2 AND c = 3` is `(a = 1 OR b = 2) AND
// c = 3`.
//
// Values by field type:
//   kString    = and != compare exactly; < <= > >= compare as text; ":"
//              matches with "*" wildcards at the start and/or end (LIKE,
//              with '%' and '_' escaped), and without a wildcard is "=".
//              A "*" inside "=" is literal. Caveat: SQLite's LIKE ignores
//              ASCII case unless PRAGMA case_sensitive_like is on;
//              PostgreSQL's does not.
//   kInteger   decimal, optional sign; any comparator but ":".
//   kBoolean   true/false (any case); = and != only.
//   kTimestamp RFC 3339 ("2027-01-01T00:00:00Z", offsets allowed) or a date
//              "2027-01-01" (midnight UTC); compiled to int64 microseconds
//              since the Unix epoch; any comparator but ":".
//   kEnum      one of the declared values (input compared case-insensitively,
//              bound as declared); = and != only (":" is "=").
// Integers, booleans (1/0) and timestamps are bound as long long, which
// PostgreSQL also accepts for a BOOLEAN column. A restriction on a NULL
// column is false, and so is its negation (SQL's three-valued logic).
// Errors are INVALID_ARGUMENT with messages a person can act on, prefixed
// "filter: ", naming the field or the 1-based byte position:
//   filter: unknown field "ownr" at position 1 (known: common_name, owner,
//     tags.<key>, ...)
//   filter: expected a value after "<" at position 14, found the end of the
//     filter                                 (the position of the "<")
//   filter: "abc" is not an integer for field key_bits
//   filter: "yes" is not true or false for field revoked
//   filter: "GONE" is not a value of field status (one of: ACTIVE, REVOKED)
//   filter: "2027-13-01" is not a timestamp for field not_after (want ...)
//   filter: ":" applies only to string fields; key_bits is a integer field
//   filter: "<" does not apply to enum field status (use = or !=)
//   filter: unbalanced "(" at position 1
// Limits: filter at most 4096 bytes, parentheses nested at most 32 deep, at
// most 64 restrictions ("filter: longer than ...", "filter: parentheses
// nested deeper than ...", "filter: more than 64 restrictions"). Parsing is
// linear in the input and its recursion bounded by the nesting limit.
#ifndef CERTPLANE_LIBS_AIP_FILTER_H_
#define CERTPLANE_LIBS_AIP_FILTER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/db/sql_params.h"

namespace certplane::aip {

enum class FieldType { kString, kInteger, kBoolean, kTimestamp, kEnum };

enum class Comparator { kEq, kNe, kLt, kLe, kGt, kGe, kHas };

// "=", "!=", "<", "<=", ">", ">=", ":".
absl::string_view ComparatorSymbol(Comparator op);

// One restriction, as handed to a Custom or Prefix compiler.
struct Comparison {
  std::string field;  // As written: "san", "tags.team".
  // For Prefix fields, the part after "<prefix>.": "team". Empty otherwise.
  std::string key;
  Comparator op = Comparator::kEq;
  std::string value;  // Unquoted, unescaped text of the value.
  bool quoted = false;
};

// Turns a comparison into a SQL boolean expression, adding its parameters
// to `params` (each placeholder used once). Return INVALID_ARGUMENT
// (prefixed "filter: ") for a value or comparator the field does not
// support. The result is put in parentheses.
using CustomCompiler = std::function<absl::StatusOr<std::string>(
    const Comparison& comparison, db::SqlParams& params)>;

class FieldSchema {
 public:
  // A field stored in one column or SQL expression.
  FieldSchema& Column(std::string name, FieldType type, std::string sql);
  // An enumerated field: `values` are the accepted spellings as stored.
  FieldSchema& Enum(std::string name, std::string sql,
                    std::vector<std::string> values);
  // A field compiled by a callback (EXISTS subqueries, computed values).
  FieldSchema& Custom(std::string name, CustomCompiler compiler);
  // Every field "<prefix>.<key>" (for maps such as tags); the callback gets
  // the key in Comparison::key. "<prefix>" alone is not a field.
  FieldSchema& Prefix(std::string prefix, CustomCompiler compiler);

  // The declared field names (prefixes as "<prefix>.<key>"), for messages.
  std::vector<std::string> FieldNames() const;

 private:
  friend class Compiler;
  struct Field {
    FieldType type = FieldType::kString;
    std::string sql;
    std::vector<std::string> enum_values;
    CustomCompiler custom;  // Set for Custom fields.
  };
  std::map<std::string, Field> fields_;
  std::map<std::string, CustomCompiler> prefixes_;
};

// Compiles `filter` to a SQL boolean expression over the schema's SQL,
// binding every value through `params` (never spliced into the SQL). An
// empty or all-blank filter compiles to "1 = 1". On error `params` may hold
// values already added: discard it.
absl::StatusOr<std::string> CompileFilter(absl::string_view filter,
                                          const FieldSchema& schema,
                                          db::SqlParams& params);

// Parses an RFC 3339 timestamp ("2027-01-01T00:00:00Z", "...T02:00:00.5+02:00")
// or a YYYY-MM-DD date (midnight UTC) to microseconds since the Unix epoch.
// INVALID_ARGUMENT "<what>: ..." otherwise (blanks, missing offsets and
// impossible dates included).
absl::StatusOr<int64_t> ParseTimestampMicros(absl::string_view text,
                                             absl::string_view what);

// Escapes '%', '_' and '\' for a LIKE pattern used with ESCAPE '\'.
std::string EscapeLike(absl::string_view text);

// ---------------------------------------------------------------------------
// order_by (AIP-132): "field[ asc|desc], ..." over `allowed` fields.

struct OrderField {
  std::string field;
  bool descending = false;

  bool operator==(const OrderField&) const = default;
};

// INVALID_ARGUMENT ("order_by: ...") for an unknown or repeated field, a
// direction other than asc/desc (any case), an empty item, or more than
// 1024 bytes. An empty or all-blank order_by returns `default_order`.
absl::StatusOr<std::vector<OrderField>> ParseOrderBy(
    absl::string_view order_by, const std::vector<std::string>& allowed,
    std::vector<OrderField> default_order);

// ---------------------------------------------------------------------------
// Keyset page tokens (AIP-158): an opaque, versioned base64url encoding of
// the sort key of the last row returned, bound to a fingerprint of the
// request (filter, order_by, show_deleted, ...), so a token replayed with
// another request is refused.

struct PageCursor {
  // Values of the order fields (then the tie-breaking id) of the last row.
  std::vector<std::string> values;
};

// `request_fingerprint`: any string identifying the query (for example the
// filter and order_by joined); it is hashed into the token. The token also
// carries a checksum, so edited or truncated tokens are refused; it is not
// secret or signed (a hand-made cursor can only move where a page starts).
// Tokens longer than 4096 characters are refused, so keep cursor values
// short (sort keys and ids).
std::string EncodePageToken(absl::string_view request_fingerprint,
                            const PageCursor& cursor);

// INVALID_ARGUMENT "page_token is malformed (...)..." when it does not decode
// (an empty token included: callers treat "" as the first page), and
// "page_token does not match the request ..." when it was issued for
// another fingerprint.
absl::StatusOr<PageCursor> DecodePageToken(
    absl::string_view request_fingerprint, absl::string_view token);

// A keyset condition "rows after the cursor" for ORDER BY over `columns`
// (SQL expressions, each with its direction; the last one must be unique,
// such as the primary key). Values are bound through `params`;
// `columns[i].integer` says whether the cursor's value i is bound as an
// integer (else as text). The columns must not be
// NULL (wrap nullable ones in COALESCE) and the ORDER BY must list the same
// expressions and directions. The condition starts with a bound on the
// first column alone, which an index on it can seek to (a chain of ORs
// alone made PostgreSQL walk the index from its start on every later
// page); when all columns share one direction the rest is a row-value
// comparison, otherwise the lexicographic OR chain. Example for
// (not_after_us ASC, certificate_id ASC):
//   (not_after_us >= :p1 AND (not_after_us, certificate_id) > (:p2, :p3))
// and for (owner ASC, not_after_us DESC, certificate_id DESC):
//   (owner >= :p1 AND ((owner > :p2) OR (owner = :p3 AND not_after_us <
//   :p4) OR (owner = :p5 AND not_after_us = :p6 AND certificate_id < :p7)))
// INVALID_ARGUMENT "page_token is malformed ..." when the cursor does not
// fit the columns (count, or a non-integer for an integer column).
// Each placeholder appears once in the SQL (SOCI's PostgreSQL backend binds
// a repeated name only at its first occurrence), so a value used twice is
// added twice.
struct KeysetColumn {
  std::string sql;
  bool descending = false;
  bool integer = false;
};
absl::StatusOr<std::string> KeysetCondition(
    const std::vector<KeysetColumn>& columns, const PageCursor& cursor,
    db::SqlParams& params);

}  // namespace certplane::aip

#endif  // CERTPLANE_LIBS_AIP_FILTER_H_
