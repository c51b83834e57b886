#include "libs/aip/filter.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <set>
#include <string>
#include <utility>
#include <vector>

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
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "libs/aip/internal/filter_parser.h"
#include "libs/db/sql_params.h"

namespace certplane::aip {
namespace {

using internal::FilterNode;

// Text from the request quoted for a message: escaped, and cut at 64 bytes.
std::string Quote(absl::string_view text) {
  constexpr size_t kMax = 64;
  if (text.size() > kMax) {
    return absl::StrCat("\"", absl::CHexEscape(text.substr(0, kMax)), "...\"");
  }
  return absl::StrCat("\"", absl::CHexEscape(text), "\"");
}

absl::Status FilterError(absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("filter: ", message));
}

absl::string_view TypeName(FieldType type) {
  switch (type) {
    case FieldType::kString:
      return "string";
    case FieldType::kInteger:
      return "integer";
    case FieldType::kBoolean:
      return "boolean";
    case FieldType::kTimestamp:
      return "timestamp";
    case FieldType::kEnum:
      return "enum";
  }
  return "unknown";
}

// The SQL operator for a comparator other than ":".
absl::string_view SqlOperator(Comparator op) {
  switch (op) {
    case Comparator::kEq:
    case Comparator::kHas:
      return "=";
    case Comparator::kNe:
      return "<>";
    case Comparator::kLt:
      return "<";
    case Comparator::kLe:
      return "<=";
    case Comparator::kGt:
      return ">";
    case Comparator::kGe:
      return ">=";
  }
  return "=";
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// FNV-1a 64, continued from `h`: a stable hash (unlike absl::Hash, the same
// in every process and build), for page tokens.
constexpr uint64_t kFnvOffset = 14695981039346656037ull;
uint64_t Fnv1a64(absl::string_view data, uint64_t h = kFnvOffset) {
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

void AppendBigEndian(std::string& out, uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) {
    out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
  }
}

// Reads `bytes` bytes big-endian from `in` at `pos`; false past the end.
bool ReadBigEndian(absl::string_view in, size_t& pos, int bytes,
                   uint64_t& value) {
  if (in.size() - pos < static_cast<size_t>(bytes)) return false;
  value = 0;
  for (int i = 0; i < bytes; ++i) {
    value = (value << 8) | static_cast<unsigned char>(in[pos + i]);
  }
  pos += bytes;
  return true;
}

}  // namespace

absl::string_view ComparatorSymbol(Comparator op) {
  switch (op) {
    case Comparator::kEq:
      return "=";
    case Comparator::kNe:
      return "!=";
    case Comparator::kLt:
      return "<";
    case Comparator::kLe:
      return "<=";
    case Comparator::kGt:
      return ">";
    case Comparator::kGe:
      return ">=";
    case Comparator::kHas:
      return ":";
  }
  return "?";
}

// ---------------------------------------------------------------------------
// FieldSchema

FieldSchema& FieldSchema::Column(std::string name, FieldType type,
                                 std::string sql) {
  Field& field = fields_[std::move(name)];
  field = Field();
  field.type = type;
  field.sql = std::move(sql);
  return *this;
}

FieldSchema& FieldSchema::Enum(std::string name, std::string sql,
                               std::vector<std::string> values) {
  Field& field = fields_[std::move(name)];
  field = Field();
  field.type = FieldType::kEnum;
  field.sql = std::move(sql);
  field.enum_values = std::move(values);
  return *this;
}

FieldSchema& FieldSchema::Custom(std::string name, CustomCompiler compiler) {
  Field& field = fields_[std::move(name)];
  field = Field();
  field.custom = std::move(compiler);
  return *this;
}

FieldSchema& FieldSchema::Prefix(std::string prefix, CustomCompiler compiler) {
  prefixes_[std::move(prefix)] = std::move(compiler);
  return *this;
}

std::vector<std::string> FieldSchema::FieldNames() const {
  std::vector<std::string> names;
  names.reserve(fields_.size() + prefixes_.size());
  for (const auto& [name, field] : fields_) names.push_back(name);
  for (const auto& [prefix, compiler] : prefixes_) {
    names.push_back(absl::StrCat(prefix, ".<key>"));
  }
  std::sort(names.begin(), names.end());
  return names;
}

// ---------------------------------------------------------------------------
// Compiling a parsed filter.

// Walks the tree from internal::ParseFilter, resolving each restriction's
// field in the schema. Recursion is bounded by the parser's depth limit.
class Compiler {
 public:
  Compiler(const FieldSchema& schema, db::SqlParams& params)
      : schema_(schema), params_(params) {}

  absl::StatusOr<std::string> Compile(const FilterNode& node) {
    switch (node.kind) {
      case FilterNode::Kind::kRestriction:
        return CompileRestriction(node);
      case FilterNode::Kind::kNot: {
        absl::StatusOr<std::string> inner = Compile(node.children.front());
        if (!inner.ok()) return inner;
        return absl::StrCat("(NOT ", *inner, ")");
      }
      case FilterNode::Kind::kAnd:
      case FilterNode::Kind::kOr: {
        if (node.children.empty()) return std::string("1 = 1");
        std::vector<std::string> parts;
        for (const FilterNode& child : node.children) {
          absl::StatusOr<std::string> part = Compile(child);
          if (!part.ok()) return part;
          parts.push_back(*std::move(part));
        }
        if (parts.size() == 1) return parts.front();
        return absl::StrCat(
            "(",
            absl::StrJoin(
                parts, node.kind == FilterNode::Kind::kAnd ? " AND " : " OR "),
            ")");
      }
    }
    return absl::InternalError("filter: unknown node");
  }

 private:
  using Field = FieldSchema::Field;

  absl::StatusOr<std::string> CompileRestriction(const FilterNode& r) {
    Comparison comparison;
    comparison.field = r.field;
    comparison.op = r.op;
    comparison.value = r.value;
    comparison.quoted = r.quoted;

    auto field = schema_.fields_.find(r.field);
    if (field != schema_.fields_.end()) {
      if (field->second.custom) {
        return CallCustom(field->second.custom, comparison);
      }
      return CompileColumn(field->second, r);
    }
    // "<prefix>.<key>"; a prefix may itself contain dots.
    for (size_t dot = r.field.find('.'); dot != std::string::npos;
         dot = r.field.find('.', dot + 1)) {
      auto prefix = schema_.prefixes_.find(r.field.substr(0, dot));
      if (prefix != schema_.prefixes_.end()) {
        comparison.key = r.field.substr(dot + 1);
        return CallCustom(prefix->second, comparison);
      }
    }
    return FilterError(absl::StrCat(
        "unknown field ", Quote(r.field), " at position ", r.position,
        " (known: ", absl::StrJoin(schema_.FieldNames(), ", "), ")"));
  }

  absl::StatusOr<std::string> CallCustom(const CustomCompiler& compiler,
                                         const Comparison& comparison) {
    absl::StatusOr<std::string> sql;
    try {
      sql = compiler(comparison, params_);
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat(
          "filter: compiling field ", comparison.field, " failed: ", e.what()));
    }
    if (!sql.ok()) return sql;
    if (sql->empty()) {
      return absl::InternalError(absl::StrCat(
          "filter: compiling field ", comparison.field, " gave no SQL"));
    }
    return absl::StrCat("(", *sql, ")");
  }

  std::string Restriction(const Field& field, Comparator op,
                          std::string placeholder) {
    return absl::StrCat("(", field.sql, " ", SqlOperator(op), " ", placeholder,
                        ")");
  }

  absl::Status OnlyEquality(const Field& field, const FilterNode& r) {
    if (r.op == Comparator::kEq || r.op == Comparator::kNe) {
      return absl::OkStatus();
    }
    return FilterError(absl::StrCat(
        "\"", ComparatorSymbol(r.op), "\" does not apply to ",
        TypeName(field.type), " field ", r.field, " (use = or !=)"));
  }

  absl::Status NoHas(const Field& field, const FilterNode& r) {
    if (r.op != Comparator::kHas) return absl::OkStatus();
    return FilterError(absl::StrCat("\":\" applies only to string fields; ",
                                    r.field, " is a ", TypeName(field.type),
                                    " field (use =)"));
  }

  absl::StatusOr<std::string> CompileColumn(const Field& field,
                                            const FilterNode& r) {
    switch (field.type) {
      case FieldType::kString:
        return CompileString(field, r);
      case FieldType::kInteger: {
        if (absl::Status s = NoHas(field, r); !s.ok()) return s;
        int64_t value = 0;
        if (!absl::SimpleAtoi(r.value, &value)) {
          return FilterError(absl::StrCat(
              Quote(r.value), " is not an integer for field ", r.field));
        }
        return Restriction(field, r.op,
                           params_.Add(static_cast<long long>(value)));
      }
      case FieldType::kBoolean: {
        if (absl::Status s = NoHas(field, r); !s.ok()) return s;
        if (absl::Status s = OnlyEquality(field, r); !s.ok()) return s;
        bool value = false;
        if (absl::EqualsIgnoreCase(r.value, "true")) {
          value = true;
        } else if (!absl::EqualsIgnoreCase(r.value, "false")) {
          return FilterError(absl::StrCat(
              Quote(r.value), " is not true or false for field ", r.field));
        }
        return Restriction(field, r.op, params_.Add(value ? 1LL : 0LL));
      }
      case FieldType::kTimestamp: {
        if (absl::Status s = NoHas(field, r); !s.ok()) return s;
        absl::StatusOr<int64_t> micros = ParseTimestampMicros(r.value, r.field);
        if (!micros.ok()) {
          return FilterError(absl::StrCat(
              Quote(r.value), " is not a timestamp for field ", r.field,
              " (want RFC 3339 such as 2027-01-01T00:00:00Z, or a date such "
              "as 2027-01-01)"));
        }
        return Restriction(field, r.op,
                           params_.Add(static_cast<long long>(*micros)));
      }
      case FieldType::kEnum: {
        Comparator op = r.op == Comparator::kHas ? Comparator::kEq : r.op;
        if (absl::Status s = OnlyEquality(field, r);
            !s.ok() && r.op != Comparator::kHas) {
          return s;
        }
        for (const std::string& value : field.enum_values) {
          if (absl::EqualsIgnoreCase(value, r.value)) {
            return Restriction(field, op, params_.Add(value));
          }
        }
        return FilterError(absl::StrCat(
            Quote(r.value), " is not a value of field ", r.field,
            " (one of: ", absl::StrJoin(field.enum_values, ", "), ")"));
      }
    }
    return absl::InternalError("filter: unknown field type");
  }

  absl::StatusOr<std::string> CompileString(const Field& field,
                                            const FilterNode& r) {
    if (r.op != Comparator::kHas) {
      return Restriction(field, r.op, params_.Add(r.value));
    }
    absl::string_view body = r.value;
    bool leading = absl::ConsumePrefix(&body, "*");
    bool trailing = absl::ConsumeSuffix(&body, "*");
    if (!leading && !trailing) {
      return Restriction(field, Comparator::kEq, params_.Add(r.value));
    }
    std::string pattern =
        absl::StrCat(leading ? "%" : "", EscapeLike(body), trailing ? "%" : "");
    return absl::StrCat("(", field.sql, " LIKE ", params_.Add(pattern),
                        " ESCAPE '\\')");
  }

  const FieldSchema& schema_;
  db::SqlParams& params_;
};

absl::StatusOr<std::string> CompileFilter(absl::string_view filter,
                                          const FieldSchema& schema,
                                          db::SqlParams& params) {
  absl::StatusOr<FilterNode> tree = internal::ParseFilter(filter);
  if (!tree.ok()) return tree.status();
  return Compiler(schema, params).Compile(*tree);
}

// ---------------------------------------------------------------------------
// Values.

absl::StatusOr<int64_t> ParseTimestampMicros(absl::string_view text,
                                             absl::string_view what) {
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": ", Quote(text),
        " is not an RFC 3339 timestamp (2027-01-01T00:00:00Z) or a date "
        "(2027-01-01)"));
  };
  // absl::ParseTime accepts more than RFC 3339 (blanks, 1-digit months), so
  // check the shape first: YYYY-MM-DD, then nothing or "T..." without
  // blanks.
  if (text.size() < 10 || text.size() > 64) return bad();
  for (int i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (!IsDigit(text[i])) return bad();
  }
  if (text[4] != '-' || text[7] != '-') return bad();
  absl::Time time;
  std::string error;
  if (text.size() == 10) {
    if (!absl::ParseTime("%Y-%m-%d", text, absl::UTCTimeZone(), &time,
                         &error)) {
      return bad();
    }
    return absl::ToUnixMicros(time);
  }
  if (text[10] != 'T' && text[10] != 't') return bad();
  for (char c : text.substr(11)) {
    if (!IsDigit(c) && c != ':' && c != '.' && c != '+' && c != '-' &&
        c != 'Z' && c != 'z') {
      return bad();
    }
  }
  if (!absl::ParseTime(absl::RFC3339_full, text, &time, &error)) {
    return bad();
  }
  return absl::ToUnixMicros(time);
}

std::string EscapeLike(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '%' || c == '_' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

// ---------------------------------------------------------------------------
// order_by

absl::StatusOr<std::vector<OrderField>> ParseOrderBy(
    absl::string_view order_by, const std::vector<std::string>& allowed,
    std::vector<OrderField> default_order) {
  constexpr size_t kMaxOrderBy = 1024;
  auto error = [](absl::string_view message) {
    return absl::InvalidArgumentError(absl::StrCat("order_by: ", message));
  };
  if (order_by.size() > kMaxOrderBy) {
    return error(absl::StrCat("longer than ", kMaxOrderBy, " bytes"));
  }
  if (absl::StripAsciiWhitespace(order_by).empty()) return default_order;

  std::vector<OrderField> out;
  std::set<std::string> seen;
  for (absl::string_view item : absl::StrSplit(order_by, ',')) {
    std::vector<absl::string_view> words =
        absl::StrSplit(item, absl::ByAnyChar(" \t\n\r"), absl::SkipEmpty());
    if (words.empty()) {
      return error(
          "empty item; want \"field\" or \"field desc\" separated by commas");
    }
    if (words.size() > 2) {
      return error(
          absl::StrCat(Quote(absl::StripAsciiWhitespace(item)),
                       " is not \"field\", \"field asc\" or \"field desc\""));
    }
    OrderField field;
    field.field = std::string(words[0]);
    if (words.size() == 2) {
      if (absl::EqualsIgnoreCase(words[1], "desc")) {
        field.descending = true;
      } else if (!absl::EqualsIgnoreCase(words[1], "asc")) {
        return error(absl::StrCat("direction ", Quote(words[1]), " after ",
                                  Quote(words[0]), " is neither asc nor desc"));
      }
    }
    if (std::find(allowed.begin(), allowed.end(), field.field) ==
        allowed.end()) {
      return error(absl::StrCat("unknown field ", Quote(field.field),
                                " (known: ", absl::StrJoin(allowed, ", "),
                                ")"));
    }
    if (!seen.insert(field.field).second) {
      return error(absl::StrCat("field ", Quote(field.field),
                                " appears more than once"));
    }
    out.push_back(std::move(field));
  }
  return out;
}

// ---------------------------------------------------------------------------
// Page tokens.
//
// The token is base64url (no padding) of:
//   "T1"                   version
//   8 bytes                FNV-1a 64 of the request fingerprint
//   2 bytes                number of values
//   per value: 4 bytes length, then the bytes
//   8 bytes                FNV-1a 64 of everything above, salted
// all integers big-endian. The checksum catches corrupted or hand-edited
// tokens; it is not a secret (a forged cursor only moves the page start
// within rows the caller may list anyway).

namespace {

constexpr absl::string_view kTokenVersion = "T1";
constexpr size_t kMaxPageTokenChars = 4096;
constexpr absl::string_view kChecksumSalt = "certplane/aip/page_token";

uint64_t TokenChecksum(absl::string_view body) {
  return Fnv1a64(body, Fnv1a64(kChecksumSalt));
}

absl::Status MalformedToken(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(
      "page_token is malformed (", why,
      "); pass the next_page_token of a previous response unchanged, or none "
      "to start from the first page"));
}

}  // namespace

std::string EncodePageToken(absl::string_view request_fingerprint,
                            const PageCursor& cursor) {
  std::string raw(kTokenVersion);
  AppendBigEndian(raw, Fnv1a64(request_fingerprint), 8);
  AppendBigEndian(raw, cursor.values.size(), 2);
  for (const std::string& value : cursor.values) {
    AppendBigEndian(raw, value.size(), 4);
    raw.append(value);
  }
  AppendBigEndian(raw, TokenChecksum(raw), 8);
  return absl::WebSafeBase64Escape(raw);
}

absl::StatusOr<PageCursor> DecodePageToken(
    absl::string_view request_fingerprint, absl::string_view token) {
  if (token.empty()) return MalformedToken("empty");
  if (token.size() > kMaxPageTokenChars) {
    return MalformedToken(
        absl::StrCat("longer than ", kMaxPageTokenChars, " characters"));
  }
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw)) {
    return MalformedToken("not base64url");
  }
  constexpr size_t kMinSize = 2 + 8 + 2 + 8;
  if (raw.size() < kMinSize) return MalformedToken("too short");
  if (absl::string_view(raw).substr(0, 2) != kTokenVersion) {
    return MalformedToken("unknown version");
  }
  absl::string_view body = absl::string_view(raw).substr(0, raw.size() - 8);
  size_t pos = body.size();
  uint64_t checksum = 0;
  ReadBigEndian(raw, pos, 8, checksum);
  if (checksum != TokenChecksum(body)) {
    return MalformedToken("checksum mismatch");
  }

  pos = 2;
  uint64_t fingerprint = 0, count = 0;
  ReadBigEndian(body, pos, 8, fingerprint);
  ReadBigEndian(body, pos, 2, count);
  PageCursor cursor;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t length = 0;
    if (!ReadBigEndian(body, pos, 4, length) || body.size() - pos < length) {
      return MalformedToken("truncated");
    }
    cursor.values.emplace_back(body.substr(pos, length));
    pos += length;
  }
  if (pos != body.size()) return MalformedToken("trailing bytes");
  if (fingerprint != Fnv1a64(request_fingerprint)) {
    return absl::InvalidArgumentError(
        "page_token does not match the request: it was issued for a "
        "different filter, order_by or other list option; send the same "
        "options as the request that returned it, or no page_token to start "
        "over");
  }
  return cursor;
}

absl::StatusOr<std::string> KeysetCondition(
    const std::vector<KeysetColumn>& columns, const PageCursor& cursor,
    db::SqlParams& params) {
  if (columns.empty()) {
    return absl::InternalError("page_token: keyset over no columns");
  }
  if (cursor.values.size() != columns.size()) {
    return MalformedToken(absl::StrCat("holds ", cursor.values.size(),
                                       " values for ", columns.size(),
                                       " order columns"));
  }
  std::vector<long long> integers(columns.size());
  for (size_t i = 0; i < columns.size(); ++i) {
    if (!columns[i].integer) continue;
    int64_t value = 0;
    if (!absl::SimpleAtoi(cursor.values[i], &value)) {
      return MalformedToken(
          absl::StrCat("value ", i + 1, " is not an integer"));
    }
    integers[i] = static_cast<long long>(value);
  }
  auto bind = [&](size_t i) {
    return columns[i].integer ? params.Add(integers[i])
                              : params.Add(cursor.values[i]);
  };
  // Every row after the cursor is at or past it on the first column.
  const std::string first_bound = absl::StrCat(
      columns[0].sql, columns[0].descending ? " <= " : " >= ", bind(0));
  bool one_direction = true;
  for (const KeysetColumn& c : columns) {
    one_direction = one_direction && c.descending == columns[0].descending;
  }
  if (one_direction) {
    std::vector<std::string> sql, values;
    for (size_t i = 0; i < columns.size(); ++i) {
      sql.push_back(columns[i].sql);
      values.push_back(bind(i));
    }
    return absl::StrCat("(", first_bound, " AND (", absl::StrJoin(sql, ", "),
                        ")", columns[0].descending ? " < " : " > ", "(",
                        absl::StrJoin(values, ", "), "))");
  }
  // Rows after the cursor: for some i, equal on columns 0..i-1 and past it
  // on column i. Each use binds its own placeholder.
  std::vector<std::string> alternatives;
  for (size_t i = 0; i < columns.size(); ++i) {
    std::vector<std::string> terms;
    for (size_t j = 0; j < i; ++j) {
      terms.push_back(absl::StrCat(columns[j].sql, " = ", bind(j)));
    }
    terms.push_back(absl::StrCat(
        columns[i].sql, columns[i].descending ? " < " : " > ", bind(i)));
    alternatives.push_back(
        absl::StrCat("(", absl::StrJoin(terms, " AND "), ")"));
  }
  return absl::StrCat("(", first_bound, " AND (",
                      absl::StrJoin(alternatives, " OR "), "))");
}

}  // namespace certplane::aip
