#include "libs/aip/filter.h"

#include <soci/soci.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "libs/db/database.h"
#include "libs/db/sql_params.h"
#include "libs/testing/db_test_util.h"
#include "libs/testing/status_matchers.h"

namespace certplane::aip {
namespace {

using ::certplane::testing::ForEachBackend;
using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;

constexpr absl::StatusCode kInvalid = absl::StatusCode::kInvalidArgument;

// ---------------------------------------------------------------------------
// Schemas.

// Three integer columns whose SQL is their name, for checking structure.
FieldSchema AbcSchema() {
  FieldSchema schema;
  schema.Column("a", FieldType::kInteger, "a")
      .Column("b", FieldType::kInteger, "b")
      .Column("c", FieldType::kInteger, "c");
  return schema;
}

std::string Compile(absl::string_view filter, const FieldSchema& schema) {
  db::SqlParams params;
  return ValueOrDie(CompileFilter(filter, schema, params));
}

absl::Status CompileStatus(absl::string_view filter,
                           const FieldSchema& schema) {
  db::SqlParams params;
  return CompileFilter(filter, schema, params).status();
}

// san: EXISTS over the sans table. Supports "=" (and ":" as "=").
absl::StatusOr<std::string> CompileSan(const Comparison& c,
                                       db::SqlParams& params) {
  if (c.op != Comparator::kEq && c.op != Comparator::kHas) {
    return absl::InvalidArgumentError(absl::StrCat(
        "filter: san supports = and :, not ", ComparatorSymbol(c.op)));
  }
  return absl::StrCat(
      "EXISTS (SELECT 1 FROM sans s WHERE s.cert_id = c.id AND s.name = ",
      params.Add(c.value), ")");
}

// tags.<key>: "=" exact, ":" with a trailing "*" as a prefix match.
absl::StatusOr<std::string> CompileTag(const Comparison& c,
                                       db::SqlParams& params) {
  std::string match;
  if (c.op == Comparator::kEq) {
    match = absl::StrCat("t.tag_value = ", params.Add(c.value));
  } else if (c.op == Comparator::kHas) {
    absl::string_view value = c.value;
    if (absl::ConsumeSuffix(&value, "*")) {
      match = absl::StrCat("t.tag_value LIKE ",
                           params.Add(absl::StrCat(EscapeLike(value), "%")),
                           " ESCAPE '\\'");
    } else {
      match = absl::StrCat("t.tag_value = ", params.Add(c.value));
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "filter: tags support = and :, not ", ComparatorSymbol(c.op)));
  }
  return absl::StrCat(
      "EXISTS (SELECT 1 FROM tags t WHERE t.cert_id = c.id AND t.tag_key = ",
      params.Add(c.key), " AND ", match, ")");
}

FieldSchema CertSchema() {
  FieldSchema schema;
  schema.Column("owner", FieldType::kString, "c.owner")
      .Column("name", FieldType::kString, "c.name")
      .Column("key_bits", FieldType::kInteger, "c.key_bits")
      .Column("revoked", FieldType::kBoolean, "c.revoked")
      .Column("not_after", FieldType::kTimestamp, "c.not_after_us")
      .Enum("status", "c.status", {"ACTIVE", "REVOKED", "EXPIRED"})
      .Custom("san", CompileSan)
      .Prefix("tags", CompileTag);
  return schema;
}

// A schema whose fields record what the compiler was handed.
struct Probe {
  Comparison last;
  FieldSchema schema;
  Probe() {
    auto record = [this](const Comparison& c,
                         db::SqlParams& params) -> absl::StatusOr<std::string> {
      last = c;
      return absl::StrCat("x = ", params.Add(c.value));
    };
    schema.Custom("v", record).Prefix("tags", record);
  }
  Comparison Parse(absl::string_view filter) {
    last = Comparison();
    db::SqlParams params;
    REQUIRE_THAT(CompileFilter(filter, schema, params), IsOk());
    return last;
  }
};

// ---------------------------------------------------------------------------
// Syntax.

TEST_CASE("EmptyOrBlankFilterCompilesToTrue") {
  CHECK(Compile("", AbcSchema()) == "1 = 1");
  CHECK(Compile(" \t\n ", AbcSchema()) == "1 = 1");
}

TEST_CASE("CompilesEachComparatorToItsSqlOperator") {
  FieldSchema schema = AbcSchema();
  CHECK(Compile("a = 1", schema) == "(a = :p1)");
  CHECK(Compile("a != 1", schema) == "(a <> :p1)");
  CHECK(Compile("a < 1", schema) == "(a < :p1)");
  CHECK(Compile("a <= 1", schema) == "(a <= :p1)");
  CHECK(Compile("a > 1", schema) == "(a > :p1)");
  CHECK(Compile("a >= 1", schema) == "(a >= :p1)");
  CHECK(Compile("a>=1", schema) == "(a >= :p1)");
}

TEST_CASE("OrBindsTighterThanAnd") {
  FieldSchema schema = AbcSchema();
  CHECK(Compile("a = 1 OR b = 2 AND c = 3", schema) ==
        "(((a = :p1) OR (b = :p2)) AND (c = :p3))");
  CHECK(Compile("a = 1 AND b = 2 OR c = 3", schema) ==
        "((a = :p1) AND ((b = :p2) OR (c = :p3)))");
}

TEST_CASE("JuxtapositionMeansAnd") {
  FieldSchema schema = AbcSchema();
  CHECK(Compile("a = 1 b = 2", schema) == "((a = :p1) AND (b = :p2))");
  CHECK(Compile("a = 1 b = 2 OR c = 3", schema) ==
        "((a = :p1) AND ((b = :p2) OR (c = :p3)))");
  CHECK(Compile("a = 1 b = 2 AND c = 3", schema) ==
        "(((a = :p1) AND (b = :p2)) AND (c = :p3))");
}

TEST_CASE("NotAndMinusNegateTheFollowingTerm") {
  FieldSchema schema = AbcSchema();
  CHECK(Compile("NOT a = 1", schema) == "(NOT (a = :p1))");
  CHECK(Compile("-a = 1", schema) == "(NOT (a = :p1))");
  CHECK(Compile("NOT a = 1 OR b = 2", schema) ==
        "((NOT (a = :p1)) OR (b = :p2))");
  CHECK(Compile("NOT (a = 1 OR b = 2)", schema) ==
        "(NOT ((a = :p1) OR (b = :p2)))");
  CHECK(Compile("-(a = 1)", schema) == "(NOT (a = :p1))");
  CHECK(Compile("a = 1 -b = 2", schema) == "((a = :p1) AND (NOT (b = :p2)))");
}

TEST_CASE("ParenthesesOverridePrecedence") {
  FieldSchema schema = AbcSchema();
  CHECK(Compile("(a = 1 AND b = 2) OR c = 3", schema) ==
        "(((a = :p1) AND (b = :p2)) OR (c = :p3))");
  CHECK(Compile("((a = 1))", schema) == "(a = :p1)");
  CHECK(Compile("a = 1 AND (b = 2 OR (c = 3 AND a = 4))", schema) ==
        "((a = :p1) AND ((b = :p2) OR ((c = :p3) AND (a = :p4))))");
}

TEST_CASE("KeywordsAreUpperCaseWholeWords") {
  FieldSchema schema = AbcSchema();
  CHECK_THAT(CompileStatus("a = 1 and b = 2", schema),
             StatusIs(kInvalid, "keywords AND, OR and NOT are upper case"));
  FieldSchema android;
  android.Column("ANDROID", FieldType::kInteger, "x")
      .Column("ORBIT", FieldType::kInteger, "y")
      .Column("NOTE", FieldType::kInteger, "z");
  CHECK(Compile("ANDROID = 1 ORBIT = 2 NOTE = 3", android) ==
        "((x = :p1) AND (y = :p2) AND (z = :p3))");
}

TEST_CASE("ReadsDoubleQuotedStringsWithEscapes") {
  Probe probe;
  Comparison c = probe.Parse(R"(v = "a \"b\" \\ c\nd\te")");
  CHECK(c.value == "a \"b\" \\ c\nd\te");
  CHECK(c.quoted);
  CHECK(probe.Parse(R"(v = "")").value.empty());
  CHECK(probe.Parse(R"x(v = "it's AND (x)")x").value == "it's AND (x)");
}

TEST_CASE("ReadsSingleQuotedStrings") {
  Probe probe;
  CHECK(probe.Parse("v = 'say \"hi\"'").value == "say \"hi\"");
  CHECK(probe.Parse(R"(v = 'o\'brien')").value == "o'brien");
  CHECK(probe.Parse("v = 'a b'").quoted);
}

TEST_CASE("ReadsBareWordsAsStrings") {
  Probe probe;
  Comparison c = probe.Parse("v = www.example.com");
  CHECK(c.value == "www.example.com");
  CHECK_FALSE(c.quoted);
  CHECK(probe.Parse("v:*.example.com").value == "*.example.com");
  CHECK(probe.Parse("v = 2027-01-01T00:00:00+02:00").value ==
        "2027-01-01T00:00:00+02:00");
  CHECK(probe.Parse("v = -42").value == "-42");
  CHECK(probe.Parse("v = a:b").value == "a:b");
}

TEST_CASE("PrefixFieldsReceiveTheirKey") {
  Probe probe;
  Comparison c = probe.Parse("tags.team = payments");
  CHECK(c.field == "tags.team");
  CHECK(c.key == "team");
  CHECK(c.value == "payments");
  CHECK(probe.Parse("tags.app.kubernetes.io-name:web").key ==
        "app.kubernetes.io-name");
  CHECK(probe.Parse("tags.team:web").op == Comparator::kHas);
  CHECK_THAT(CompileStatus("tags = x", probe.schema),
             StatusIs(kInvalid, "unknown field \"tags\""));
}

// ---------------------------------------------------------------------------
// Errors.

TEST_CASE("UnknownFieldListsTheKnownOnes") {
  CHECK_THAT(CompileStatus("ownr = alice", CertSchema()),
             StatusIs(kInvalid,
                      "filter: unknown field \"ownr\" at position 1 (known: "
                      "key_bits, name, not_after, owner, revoked, san, "
                      "status, tags.<key>)"));
}

TEST_CASE("MissingValueNamesTheComparatorAndPosition") {
  FieldSchema schema = AbcSchema();
  CHECK_THAT(CompileStatus("a = 1 AND b <", schema),
             StatusIs(kInvalid,
                      "filter: expected a value after \"<\" at position 13"));
  CHECK_THAT(CompileStatus("(a = )", schema),
             StatusIs(kInvalid, "expected a value after \"=\" at position 4"));
  CHECK_THAT(CompileStatus("a = AND b = 1", schema),
             StatusIs(kInvalid, "expected a value after \"=\""));
}

TEST_CASE("MissingFieldOrComparatorIsInvalid") {
  FieldSchema schema = AbcSchema();
  CHECK_THAT(CompileStatus("a = 1 AND", schema),
             StatusIs(kInvalid, "expected a field name at position 10"));
  CHECK_THAT(CompileStatus("a = 1 OR OR b = 1", schema),
             StatusIs(kInvalid, "found keyword OR"));
  CHECK_THAT(CompileStatus("a 1", schema),
             StatusIs(kInvalid, "expected a comparator"));
  CHECK_THAT(CompileStatus("a = 1 & b = 2", schema),
             StatusIs(kInvalid, "expected a field name at position 7"));
  CHECK_THAT(CompileStatus("tags. = 1", schema),
             StatusIs(kInvalid, "ends with \".\""));
}

TEST_CASE("RejectsValuesThatDoNotFitTheFieldType") {
  FieldSchema schema = CertSchema();
  CHECK_THAT(CompileStatus("key_bits = abc", schema),
             StatusIs(kInvalid,
                      "filter: \"abc\" is not an integer for field key_bits"));
  CHECK_THAT(CompileStatus("key_bits = 99999999999999999999", schema),
             StatusIs(kInvalid, "is not an integer"));
  CHECK_THAT(CompileStatus("not_after > 2027-13-01", schema),
             StatusIs(kInvalid,
                      "filter: \"2027-13-01\" is not a timestamp "
                      "for field not_after"));
  CHECK_THAT(
      CompileStatus("revoked = yes", schema),
      StatusIs(kInvalid,
               "filter: \"yes\" is not true or false for field revoked"));
  CHECK_THAT(CompileStatus("status = GONE", schema),
             StatusIs(kInvalid,
                      "filter: \"GONE\" is not a value of field "
                      "status (one of: ACTIVE, REVOKED, EXPIRED)"));
}

TEST_CASE("RejectsComparatorsTheFieldTypeDoesNotSupport") {
  FieldSchema schema = CertSchema();
  CHECK_THAT(CompileStatus("key_bits:2048", schema),
             StatusIs(kInvalid,
                      "filter: \":\" applies only to string fields; "
                      "key_bits is a integer field"));
  CHECK_THAT(CompileStatus("not_after:2027-01-01", schema),
             StatusIs(kInvalid, "\":\" applies only to string fields"));
  CHECK_THAT(CompileStatus("revoked:true", schema),
             StatusIs(kInvalid, "\":\" applies only to string fields"));
  CHECK_THAT(CompileStatus("revoked < true", schema),
             StatusIs(kInvalid, "\"<\" does not apply to boolean field"));
  CHECK_THAT(CompileStatus("status >= ACTIVE", schema),
             StatusIs(kInvalid, "\">=\" does not apply to enum field status"));
  CHECK(Compile("status:active", schema) == "(c.status = :p1)");
  CHECK_THAT(CompileStatus("san > x", schema),
             StatusIs(kInvalid, "filter: san supports = and :"));
}

TEST_CASE("RejectsUnbalancedParentheses") {
  FieldSchema schema = AbcSchema();
  CHECK_THAT(CompileStatus("(a = 1", schema),
             StatusIs(kInvalid, "filter: unbalanced \"(\" at position 1"));
  CHECK_THAT(CompileStatus("a = 1 AND ((b = 2) OR c = 3", schema),
             StatusIs(kInvalid, "unbalanced \"(\" at position 11"));
  CHECK_THAT(CompileStatus("a = 1)", schema),
             StatusIs(kInvalid, "filter: unbalanced \")\" at position 6"));
  CHECK_THAT(CompileStatus("()", schema),
             StatusIs(kInvalid, "expected a field name at position 2"));
}

TEST_CASE("RejectsUnterminatedStringsAndUnknownEscapes") {
  FieldSchema schema = CertSchema();
  CHECK_THAT(CompileStatus("owner = \"alice", schema),
             StatusIs(kInvalid, "unterminated string starting at position 9"));
  CHECK_THAT(CompileStatus("owner = 'alice\\'", schema),
             StatusIs(kInvalid, "unterminated string"));
  CHECK_THAT(CompileStatus(R"(owner = "a\qb")", schema),
             StatusIs(kInvalid, "unknown escape \"\\\\q\" at position 11"));
}

TEST_CASE("LimitsNestingDepthTo32") {
  FieldSchema schema = AbcSchema();
  std::string ok = std::string(32, '(') + "a = 1" + std::string(32, ')');
  CHECK_THAT(CompileStatus(ok, schema), IsOk());
  std::string deep = std::string(33, '(') + "a = 1" + std::string(33, ')');
  CHECK_THAT(CompileStatus(deep, schema),
             StatusIs(kInvalid,
                      "filter: parentheses nested deeper than 32 "
                      "levels at position 33"));
  CHECK_THAT(CompileStatus(std::string(4000, '('), schema),
             StatusIs(kInvalid, "nested deeper than 32"));
}

TEST_CASE("LimitsFilterLengthTo4096Bytes") {
  FieldSchema schema = AbcSchema();
  CHECK_THAT(CompileStatus("a = " + std::string(4092, '1'), schema),
             StatusIs(kInvalid, "is not an integer"));  // Parsed, though.
  CHECK_THAT(CompileStatus("a = " + std::string(4093, '1'), schema),
             StatusIs(kInvalid, "filter: longer than 4096 bytes (4097)"));
}

TEST_CASE("LimitsRestrictionsTo64") {
  FieldSchema schema = AbcSchema();
  std::vector<std::string> terms(64, "a = 1");
  CHECK_THAT(CompileStatus(absl::StrJoin(terms, " OR "), schema), IsOk());
  terms.push_back("b = 2");
  CHECK_THAT(CompileStatus(absl::StrJoin(terms, " OR "), schema),
             StatusIs(kInvalid, "filter: more than 64 restrictions"));
}

TEST_CASE("ErrorsFromCustomCompilersPassThroughAndExceptionsAreCaught") {
  FieldSchema schema;
  schema
      .Custom(
          "bad",
          [](const Comparison&, db::SqlParams&) -> absl::StatusOr<std::string> {
            return absl::InvalidArgumentError("filter: bad is bad");
          })
      .Custom(
          "throws",
          [](const Comparison&, db::SqlParams&) -> absl::StatusOr<std::string> {
            throw std::runtime_error("boom");
          });
  CHECK_THAT(CompileStatus("bad = 1", schema),
             StatusIs(kInvalid, "filter: bad is bad"));
  CHECK_THAT(CompileStatus("throws = 1", schema),
             StatusIs(absl::StatusCode::kInternal, "boom"));
}

// ---------------------------------------------------------------------------
// Strings and wildcards.

TEST_CASE("EscapeLikeEscapesPercentUnderscoreAndBackslash") {
  CHECK(EscapeLike("plain") == "plain");
  CHECK(EscapeLike("100%_off\\x") == "100\\%\\_off\\\\x");
}

TEST_CASE("HasWithWildcardsCompilesToLikeAndWithoutToEquality") {
  FieldSchema schema = CertSchema();
  CHECK(Compile("name:*.example.com", schema) ==
        "(c.name LIKE :p1 ESCAPE '\\')");
  CHECK(Compile("name:www*", schema) == "(c.name LIKE :p1 ESCAPE '\\')");
  CHECK(Compile("name:www", schema) == "(c.name = :p1)");
  CHECK(Compile("name = \"*\"", schema) == "(c.name = :p1)");
  CHECK(Compile("owner != bob", schema) == "(c.owner <> :p1)");
}

TEST_CASE("ValuesAreNeverSplicedIntoTheSql") {
  FieldSchema schema = CertSchema();
  for (absl::string_view filter :
       {R"(owner = "x' OR 1=1 --")", R"(owner:"*x' OR 1=1 --*")",
        R"(san = "x' OR 1=1 --")", R"(tags.team = "x' OR 1=1 --")",
        R"(status = "ACTIVE' OR 1=1 --")"}) {
    db::SqlParams params;
    absl::StatusOr<std::string> sql = CompileFilter(filter, schema, params);
    if (!sql.ok()) {
      CHECK_THAT(sql, StatusIs(kInvalid));  // The enum refuses it.
      continue;
    }
    INFO(*sql);
    CHECK_FALSE(absl::StrContains(*sql, "1=1"));
    CHECK_FALSE(absl::StrContains(*sql, "x'"));
  }
}

// ---------------------------------------------------------------------------
// Timestamps.

TEST_CASE("ParsesRfc3339TimestampsWithOffsetsAndPlainDates") {
  constexpr int64_t k2027 = 1798761600000000;  // 2027-01-01T00:00:00Z.
  CHECK(ValueOrDie(ParseTimestampMicros("2027-01-01T00:00:00Z", "t")) == k2027);
  CHECK(ValueOrDie(ParseTimestampMicros("2027-01-01", "t")) == k2027);
  CHECK(ValueOrDie(ParseTimestampMicros("2027-01-01T02:00:00+02:00", "t")) ==
        k2027);
  CHECK(ValueOrDie(ParseTimestampMicros("2026-12-31T19:00:00-05:00", "t")) ==
        k2027);
  CHECK(ValueOrDie(ParseTimestampMicros("2027-01-01T00:00:00.25Z", "t")) ==
        k2027 + 250000);
  CHECK(ValueOrDie(ParseTimestampMicros("1970-01-01T00:00:00Z", "t")) == 0);
  CHECK(ValueOrDie(ParseTimestampMicros("1969-12-31", "t")) ==
        -86400LL * 1000000);
}

TEST_CASE("RejectsMalformedTimestampsNamingWhat") {
  for (absl::string_view bad :
       {"", "tomorrow", "2027-02-30", "2027-13-01", "2027-1-1", " 2027-01-01",
        "2027-01-01 ", "2027-01-01T00:00:00", "2027-01-01T25:00:00Z",
        "2027-01-01 00:00:00Z", "20270101", "2027-01-01T00:00:00Zjunk"}) {
    INFO(bad);
    CHECK_THAT(ParseTimestampMicros(bad, "field not_after"),
               StatusIs(kInvalid, "field not_after: "));
  }
}

// ---------------------------------------------------------------------------
// order_by.

TEST_CASE("ParsesOrderByWithDirections") {
  std::vector<std::string> allowed = {"not_after", "owner", "name"};
  std::vector<OrderField> fallback = {{"not_after", false}};
  auto got = ValueOrDie(
      ParseOrderBy("owner desc, not_after ASC,name", allowed, fallback));
  REQUIRE(got.size() == 3);
  CHECK(got[0] == OrderField{"owner", true});
  CHECK(got[1] == OrderField{"not_after", false});
  CHECK(got[2] == OrderField{"name", false});
}

TEST_CASE("EmptyOrderByGivesTheDefault") {
  std::vector<OrderField> fallback = {{"not_after", true}};
  auto got = ValueOrDie(ParseOrderBy("  ", {"not_after"}, fallback));
  REQUIRE(got.size() == 1);
  CHECK(got[0] == OrderField{"not_after", true});
}

TEST_CASE("RejectsUnknownRepeatedOrMalformedOrderBy") {
  std::vector<std::string> allowed = {"not_after", "owner"};
  CHECK_THAT(ParseOrderBy("ownr", allowed, {}),
             StatusIs(kInvalid,
                      "order_by: unknown field \"ownr\" (known: "
                      "not_after, owner)"));
  CHECK_THAT(
      ParseOrderBy("owner, owner desc", allowed, {}),
      StatusIs(kInvalid, "order_by: field \"owner\" appears more than once"));
  CHECK_THAT(ParseOrderBy("owner down", allowed, {}),
             StatusIs(kInvalid, "order_by: direction \"down\""));
  CHECK_THAT(ParseOrderBy("owner desc x", allowed, {}),
             StatusIs(kInvalid, "order_by: \"owner desc x\" is not"));
  CHECK_THAT(ParseOrderBy("owner,", allowed, {}),
             StatusIs(kInvalid, "order_by: empty item"));
  CHECK_THAT(ParseOrderBy(std::string(2000, 'a'), allowed, {}),
             StatusIs(kInvalid, "order_by: longer than"));
}

// ---------------------------------------------------------------------------
// Page tokens.

TEST_CASE("PageTokenRoundTripsTheCursor") {
  PageCursor cursor;
  cursor.values = {"1798761600000000", "", std::string("a|b\0c", 5), "c0ffee"};
  std::string token = EncodePageToken("filter=x;order_by=y", cursor);
  for (char c : token) {
    CHECK((absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
           c == '_'));
  }
  PageCursor back = ValueOrDie(DecodePageToken("filter=x;order_by=y", token));
  CHECK(back.values == cursor.values);
  CHECK(ValueOrDie(DecodePageToken("", EncodePageToken("", PageCursor())))
            .values.empty());
}

TEST_CASE("RefusesAPageTokenIssuedForAnotherRequest") {
  PageCursor cursor{{"5", "c1"}};
  std::string token = EncodePageToken("filter=a", cursor);
  CHECK_THAT(DecodePageToken("filter=b", token),
             StatusIs(kInvalid, "page_token does not match the request"));
}

TEST_CASE("RefusesATamperedPageToken") {
  PageCursor cursor{{"1798761600000000", "c0ffee"}};
  std::string token = EncodePageToken("f", cursor);
  for (size_t i = 0; i + 1 < token.size(); ++i) {
    std::string tampered = token;
    tampered[i] = tampered[i] == 'A' ? 'B' : 'A';
    INFO(i);
    CHECK_THAT(DecodePageToken("f", tampered),
               StatusIs(kInvalid, "page_token is malformed"));
  }
  CHECK_THAT(DecodePageToken("f", token.substr(0, token.size() - 4)),
             StatusIs(kInvalid, "page_token is malformed"));
  CHECK_THAT(DecodePageToken("f", token + "AAAA"),
             StatusIs(kInvalid, "page_token is malformed"));
}

TEST_CASE("RefusesGarbageEmptyAndOverlongPageTokens") {
  CHECK_THAT(DecodePageToken("f", ""),
             StatusIs(kInvalid, "page_token is malformed (empty)"));
  CHECK_THAT(DecodePageToken("f", "!!!not base64!!!"),
             StatusIs(kInvalid, "page_token is malformed (not base64url)"));
  CHECK_THAT(DecodePageToken("f", "AAAA"),
             StatusIs(kInvalid, "page_token is malformed (too short)"));
  CHECK_THAT(DecodePageToken("f", std::string(200, 'A')),
             StatusIs(kInvalid, "page_token is malformed"));
  CHECK_THAT(DecodePageToken("f", std::string(5000, 'A')),
             StatusIs(kInvalid, "page_token is malformed (longer than 4096"));
  PageCursor huge{{std::string(4000, 'x')}};
  CHECK_THAT(DecodePageToken("f", EncodePageToken("f", huge)),
             StatusIs(kInvalid, "page_token is malformed (longer than"));
}

// ---------------------------------------------------------------------------
// Keyset conditions.

TEST_CASE("KeysetConditionComparesLexicographicallyWithFreshPlaceholders") {
  db::SqlParams params;
  std::string sql =
      ValueOrDie(KeysetCondition({{"n", false, true}, {"id", false, false}},
                                 PageCursor{{"7", "k9"}}, params));
  CHECK(sql == "(n >= :p1 AND (n, id) > (:p2, :p3))");
  CHECK(params.size() == 3);

  db::SqlParams desc;
  sql = ValueOrDie(KeysetCondition(
      {{"a", true, false}, {"b", false, true}, {"id", true, false}},
      PageCursor{{"x", "2", "k"}}, desc));
  CHECK(sql ==
        "(a <= :p1 AND ((a < :p2) OR (a = :p3 AND b > :p4) OR "
        "(a = :p5 AND b = :p6 AND id < :p7)))");
}

TEST_CASE("KeysetConditionRejectsACursorThatDoesNotFitTheColumns") {
  db::SqlParams params;
  CHECK_THAT(KeysetCondition({{"n", false, true}, {"id", false, false}},
                             PageCursor{{"7"}}, params),
             StatusIs(kInvalid, "page_token is malformed"));
  CHECK_THAT(KeysetCondition({{"n", false, true}, {"id", false, false}},
                             PageCursor{{"seven", "k"}}, params),
             StatusIs(kInvalid, "page_token is malformed"));
  CHECK_THAT(KeysetCondition({}, PageCursor{}, params),
             StatusIs(absl::StatusCode::kInternal));
}

// ---------------------------------------------------------------------------
// Robustness.

TEST_CASE("AnyInputGivesOkOrInvalidArgument") {
  FieldSchema schema = CertSchema();
  std::mt19937 rng(20261203);
  const std::vector<std::string> pieces = {"owner",      "name",
                                           "key_bits",   "revoked",
                                           "not_after",  "status",
                                           "san",        "tags.team",
                                           "tags.",      "=",
                                           "!=",         "<",
                                           "<=",         ">",
                                           ">=",         ":",
                                           "(",          ")",
                                           "AND",        "OR",
                                           "NOT",        "-",
                                           " ",          "  ",
                                           "\"",         "'",
                                           "\\",         "*",
                                           "%",          "_",
                                           "2027-01-01", "2027-01-01T00:00:00Z",
                                           "true",       "false",
                                           "ACTIVE",     "42",
                                           "-7",         "x' OR 1=1 --",
                                           ".",          "\t",
                                           "\n",         std::string(1, '\0'),
                                           "\xff",       "é",
                                           ",",          "tags.a.b",
                                           "+02:00"};
  const std::vector<std::string> seeds = {
      "owner = alice AND (key_bits >= 2048 OR NOT revoked = true)",
      "name:*.example.com -status = REVOKED tags.team:pay*",
      "not_after < \"2027-01-01T00:00:00+02:00\" OR san = 'a\\'b'",
      "((owner = \"x\") AND (name != y)) OR key_bits < -1"};
  auto check = [&](const std::string& filter) {
    db::SqlParams params;
    absl::StatusOr<std::string> sql = CompileFilter(filter, schema, params);
    if (!sql.ok() && sql.status().code() != kInvalid) {
      FAIL("filter " << absl::CHexEscape(filter) << " gave " << sql.status());
    }
  };
  for (const std::string& seed : seeds) check(seed);
  for (int i = 0; i < 2000; ++i) {
    // Random sequences of grammar pieces.
    std::string filter;
    int n = std::uniform_int_distribution<int>(0, 40)(rng);
    for (int j = 0; j < n; ++j) {
      filter += pieces[rng() % pieces.size()];
      if (rng() % 2 == 0) filter += ' ';
    }
    check(filter);
  }
  for (int i = 0; i < 2000; ++i) {
    // Mutations of valid filters: insert, delete or replace random bytes.
    std::string filter = seeds[rng() % seeds.size()];
    int edits = std::uniform_int_distribution<int>(1, 6)(rng);
    for (int j = 0; j < edits; ++j) {
      size_t at = filter.empty() ? 0 : rng() % filter.size();
      char byte = static_cast<char>(rng() % 256);
      switch (rng() % 3) {
        case 0:
          filter.insert(filter.begin() + at, byte);
          break;
        case 1:
          if (!filter.empty()) filter.erase(at, 1);
          break;
        default:
          if (!filter.empty()) filter[at] = byte;
      }
    }
    check(filter);
  }
  for (int i = 0; i < 500; ++i) {
    // Random bytes.
    std::string filter(rng() % 200, '\0');
    for (char& c : filter) c = static_cast<char>(rng() % 256);
    check(filter);
  }
  // Pathological shapes.
  check(std::string(4096, '('));
  check(std::string(4096, ')'));
  check(std::string(4096, '-'));
  check(absl::StrJoin(std::vector<std::string>(1000, "NOT"), " "));
  check(std::string(4096, '"'));
  check("owner = \"" + std::string(4000, '\\'));
  check(std::string(2048, 'a') + std::string(2048, '.'));
}

TEST_CASE("AnyPageTokenGivesACursorOrInvalidArgument") {
  std::mt19937 rng(7);
  std::string valid = EncodePageToken("f", PageCursor{{"1", "abc"}});
  const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ ";
  for (int i = 0; i < 2000; ++i) {
    std::string token = valid;
    if (i % 2 == 0) {
      token.assign(rng() % 100, 'A');
      for (char& c : token) c = alphabet[rng() % alphabet.size()];
    } else {
      token[rng() % token.size()] = alphabet[rng() % alphabet.size()];
    }
    absl::StatusOr<PageCursor> cursor = DecodePageToken("f", token);
    if (!cursor.ok() && cursor.status().code() != kInvalid) {
      FAIL("token " << token << " gave " << cursor.status());
    }
  }
}

// ---------------------------------------------------------------------------
// End to end, on SQLite and PostgreSQL.

struct Cert {
  int id;
  std::string owner;
  std::string name;
  long long key_bits;
  bool revoked;
  std::string not_after;  // RFC 3339 or a date.
  std::string status;
  std::vector<std::string> sans;
  std::vector<std::pair<std::string, std::string>> tags;
};

const std::vector<Cert>& Certs() {
  static const auto* certs = new std::vector<Cert>{
      {1,
       "alice",
       "www.example.com",
       2048,
       false,
       "2027-01-01",
       "ACTIVE",
       {"www.example.com", "example.com"},
       {{"team", "payments"}}},
      {2,
       "bob",
       "api.example.com",
       4096,
       false,
       "2027-06-01T12:00:00Z",
       "ACTIVE",
       {"api.example.com"},
       {{"team", "platform"}, {"env", "prod"}}},
      {3,
       "alice",
       "100%_off.example",
       256,
       true,
       "2026-01-01",
       "REVOKED",
       {},
       {{"env", "production"}}},
      {4,
       "carol",
       "100xyoff.example",
       2048,
       false,
       "2028-01-01",
       "EXPIRED",
       {"mail.example.com"},
       {{"env", "staging"}}},
      {5,
       "o'brien",
       "x' OR 1=1 --",
       2048,
       false,
       "2027-01-01T01:00:00+01:00",
       "ACTIVE",
       {},
       {}},
      {6,
       "dave",
       "db.internal",
       4096,
       true,
       "2027-06-01T12:00:00Z",
       "REVOKED",
       {"db.internal"},
       {{"team", "payments"}, {"env", "prod"}}},
      {7,
       "erin",
       "cache.internal",
       256,
       false,
       "2027-03-15",
       "ACTIVE",
       {},
       {{"team", "pay%ments"}}},
      {8,
       "frank",
       "queue.internal",
       4096,
       false,
       "2027-06-01T12:00:00Z",
       "ACTIVE",
       {"queue.internal"},
       {}},
  };
  return *certs;
}

void CreateAndFill(db::Database& db) {
  std::string boolean =
      db.dialect() == db::Dialect::kPostgres ? "BOOLEAN" : "INTEGER";
  REQUIRE_THAT(db.Transact([&](soci::session& sql) {
    sql << "CREATE TABLE certs (id INTEGER PRIMARY KEY, owner TEXT NOT "
           "NULL, name TEXT NOT NULL, key_bits INTEGER NOT NULL, revoked " +
               boolean +
               " NOT NULL, not_after_us BIGINT NOT NULL, status TEXT NOT "
               "NULL)";
    sql << "CREATE TABLE sans (cert_id INTEGER NOT NULL, name TEXT NOT "
           "NULL)";
    sql << "CREATE TABLE tags (cert_id INTEGER NOT NULL, tag_key TEXT NOT "
           "NULL, tag_value TEXT NOT NULL)";
    for (const Cert& c : Certs()) {
      db::SqlParams p;
      std::vector<std::string> v = {
          p.Add(static_cast<long long>(c.id)),
          p.Add(c.owner),
          p.Add(c.name),
          p.Add(c.key_bits),
          p.Add(c.revoked ? 1LL : 0LL),
          p.Add(static_cast<long long>(
              ValueOrDie(ParseTimestampMicros(c.not_after, "not_after")))),
          p.Add(c.status)};
      CHECK(db::ExecuteWithParams(
                sql,
                absl::StrCat("INSERT INTO certs (id, owner, name, "
                             "key_bits, revoked, not_after_us, status) "
                             "VALUES (",
                             absl::StrJoin(v, ", "), ")"),
                p) == 1);
      for (const std::string& san : c.sans) {
        db::SqlParams q;
        std::string id = q.Add(static_cast<long long>(c.id));
        db::ExecuteWithParams(
            sql,
            absl::StrCat("INSERT INTO sans (cert_id, name) VALUES (", id, ", ",
                         q.Add(san), ")"),
            q);
      }
      for (const auto& [key, value] : c.tags) {
        db::SqlParams q;
        std::string id = q.Add(static_cast<long long>(c.id));
        std::string k = q.Add(key);
        db::ExecuteWithParams(
            sql,
            absl::StrCat("INSERT INTO tags (cert_id, tag_key, tag_value) "
                         "VALUES (",
                         id, ", ", k, ", ", q.Add(value), ")"),
            q);
      }
    }
    return absl::OkStatus();
  }),
               IsOk());
}

// The ids of the certs matching `filter`, ascending.
std::vector<int> Select(db::Database& db, absl::string_view filter) {
  FieldSchema schema = CertSchema();
  db::SqlParams params;
  std::string where = ValueOrDie(CompileFilter(filter, schema, params));
  std::vector<int> ids;
  REQUIRE_THAT(db.Transact(
                   [&](soci::session& sql) {
                     ids.clear();
                     int id = 0;
                     soci::statement st(sql);
                     st.exchange(soci::into(id));
                     params.BindTo(st);
                     st.alloc();
                     st.prepare("SELECT c.id FROM certs c WHERE " + where +
                                " ORDER BY c.id");
                     st.define_and_bind();
                     st.execute(false);
                     while (st.fetch()) ids.push_back(id);
                     return absl::OkStatus();
                   },
                   db::TxMode::kReadOnly),
               IsOk());
  return ids;
}

TEST_CASE("CompiledFiltersSelectTheRightRowsOnBothBackends") {
  ForEachBackend([](db::Database& db) {
    CreateAndFill(db);
    using V = std::vector<int>;
    CHECK(Select(db, "") == V{1, 2, 3, 4, 5, 6, 7, 8});
    CHECK(Select(db, "owner = alice") == V{1, 3});
    CHECK(Select(db, "owner != alice") == V{2, 4, 5, 6, 7, 8});
    CHECK(Select(db, "owner < carol") == V{1, 2, 3});
    // Quotes and SQL in values are data.
    CHECK(Select(db, R"(owner = "o'brien")") == V{5});
    CHECK(Select(db, R"(owner = 'o\'brien')") == V{5});
    CHECK(Select(db, R"(owner = "x' OR 1=1 --")").empty());
    CHECK(Select(db, R"(name = "x' OR 1=1 --")") == V{5});
    CHECK(Select(db, R"(name:"*' OR 1=1*")") == V{5});
    // Integers and booleans.
    CHECK(Select(db, "key_bits >= 2048 AND NOT revoked = true") ==
          V{1, 2, 4, 5, 8});
    CHECK(Select(db, "key_bits < 2048") == V{3, 7});
    CHECK(Select(db, "revoked = TRUE") == V{3, 6});
    CHECK(Select(db, "revoked != true") == V{1, 2, 4, 5, 7, 8});
    // Timestamps: dates, offsets (cert 5 is 2027-01-01T00:00:00Z too).
    CHECK(Select(db, "not_after = 2027-01-01") == V{1, 5});
    CHECK(Select(db, "not_after <= \"2027-01-01T01:00:00+01:00\"") ==
          V{1, 3, 5});
    CHECK(Select(db, "not_after > 2027-01-01 not_after < 2027-06-01") == V{7});
    CHECK(Select(db, "not_after >= 2027-06-01T12:00:00Z") == V{2, 4, 6, 8});
    // Enums, case-insensitive input.
    CHECK(Select(db, "status = revoked") == V{3, 6});
    CHECK(Select(db, "status != ACTIVE") == V{3, 4, 6});
    // OR binds tighter than AND: (bob OR carol) AND 2048.
    CHECK(Select(db, "owner = bob OR owner = carol AND key_bits = 2048") ==
          V{4});
    CHECK(Select(db, "owner = bob OR (owner = carol AND key_bits = 2048)") ==
          V{2, 4});
    // Wildcards: % and _ in the value are literal.
    CHECK(Select(db, R"(name:"100%_*")") == V{3});
    CHECK(Select(db, "name:100*") == V{3, 4});
    CHECK(Select(db, "name:*.example.com") == V{1, 2});
    CHECK(Select(db, "name:*internal*") == V{6, 7, 8});
    CHECK(Select(db, "name:*") == V{1, 2, 3, 4, 5, 6, 7, 8});
    CHECK(Select(db, "name = www*").empty());
    // Custom: an EXISTS subquery.
    CHECK(Select(db, "san = mail.example.com") == V{4});
    CHECK(Select(db, "san = example.com OR san = db.internal") == V{1, 6});
    CHECK(Select(db, "-san = api.example.com") == V{1, 3, 4, 5, 6, 7, 8});
    // Prefix: tags.<key>.
    CHECK(Select(db, "tags.team = payments") == V{1, 6});
    CHECK(Select(db, "tags.env:prod*") == V{2, 3, 6});
    CHECK(Select(db, "tags.env = prod tags.team = payments") == V{6});
    CHECK(Select(db, "NOT tags.team = payments") == V{2, 3, 4, 5, 7, 8});
    CHECK(Select(db, R"(tags.team:"pay%*")") == V{7});
    CHECK(Select(db, "tags.nothing = x").empty());
  });
}

// One keyset-paginated walk over all certs; returns the ids in page order.
std::vector<int> Walk(db::Database& db, const std::string& order_by,
                      int page_size, int& pages) {
  const std::vector<std::string> allowed = {"key_bits", "not_after", "owner"};
  std::vector<OrderField> order =
      ValueOrDie(ParseOrderBy(order_by, allowed, {{"not_after", false}}));
  auto column = [](const std::string& field) {
    if (field == "key_bits") return KeysetColumn{"c.key_bits", false, true};
    if (field == "not_after") {
      return KeysetColumn{"c.not_after_us", false, true};
    }
    return KeysetColumn{"c.owner", false, false};
  };
  std::vector<KeysetColumn> columns;
  for (const OrderField& f : order) {
    columns.push_back(column(f.field));
    columns.back().descending = f.descending;
  }
  // The tie-breaker runs in the direction of the last order field.
  columns.push_back({"c.id", order.back().descending, true});
  std::vector<std::string> order_sql;
  for (const KeysetColumn& c : columns) {
    order_sql.push_back(c.sql + (c.descending ? " DESC" : " ASC"));
  }
  std::string fingerprint = "order_by=" + order_by;

  std::vector<int> ids;
  std::string token;
  pages = 0;
  while (true) {
    db::SqlParams params;
    std::string where = "1 = 1";
    if (!token.empty()) {
      PageCursor cursor = ValueOrDie(DecodePageToken(fingerprint, token));
      where = ValueOrDie(KeysetCondition(columns, cursor, params));
    }
    std::string limit = params.Add(static_cast<long long>(page_size + 1));
    std::vector<std::vector<std::string>> rows;
    REQUIRE_THAT(
        db.Transact(
            [&](soci::session& sql) {
              rows.clear();
              int id = 0;
              long long key_bits = 0, not_after = 0;
              std::string owner;
              soci::statement st(sql);
              st.exchange(soci::into(id));
              st.exchange(soci::into(key_bits));
              st.exchange(soci::into(not_after));
              st.exchange(soci::into(owner));
              params.BindTo(st);
              st.alloc();
              st.prepare(absl::StrCat(
                  "SELECT c.id, c.key_bits, c.not_after_us, c.owner FROM "
                  "certs c WHERE ",
                  where, " ORDER BY ", absl::StrJoin(order_sql, ", "),
                  " LIMIT ", limit));
              st.define_and_bind();
              st.execute(false);
              while (st.fetch()) {
                rows.push_back({std::to_string(key_bits),
                                std::to_string(not_after), owner,
                                std::to_string(id)});
              }
              return absl::OkStatus();
            },
            db::TxMode::kReadOnly),
        IsOk());
    ++pages;
    REQUIRE(pages <= 20);
    bool more = static_cast<int>(rows.size()) > page_size;
    if (more) rows.pop_back();
    PageCursor last;
    for (const std::vector<std::string>& row : rows) {
      ids.push_back(std::stoi(row[3]));
      last.values.clear();
      for (const OrderField& f : order) {
        last.values.push_back(f.field == "key_bits"    ? row[0]
                              : f.field == "not_after" ? row[1]
                                                       : row[2]);
      }
      last.values.push_back(row[3]);
    }
    if (!more) break;
    token = EncodePageToken(fingerprint, last);
  }
  return ids;
}

TEST_CASE("KeysetPaginationVisitsEveryRowOnceInOrderOnBothBackends") {
  ForEachBackend([](db::Database& db) {
    CreateAndFill(db);
    using V = std::vector<int>;
    // Sort values repeat: key_bits 256 x2, 2048 x3, 4096 x3; not_after
    // 2027-06-01T12:00Z x3 and 2027-01-01 x2 (one written with an offset);
    // owner alice x2.
    struct Case {
      std::string order_by;
      V want;
    };
    for (const Case& c : std::vector<Case>{
             {"key_bits", V{3, 7, 1, 4, 5, 2, 6, 8}},
             {"key_bits desc", V{8, 6, 2, 5, 4, 1, 7, 3}},
             {"not_after", V{3, 1, 5, 7, 2, 6, 8, 4}},
             {"not_after desc", V{4, 8, 6, 2, 7, 5, 1, 3}},
             {"owner", V{1, 3, 2, 4, 6, 7, 8, 5}},
             {"key_bits desc, not_after", V{2, 6, 8, 1, 5, 4, 3, 7}},
             {"key_bits, not_after desc", V{7, 3, 4, 5, 1, 8, 6, 2}},
         }) {
      for (int page_size : {1, 2, 3, 8, 100}) {
        INFO(c.order_by << ", page size " << page_size);
        int pages = 0;
        V ids = Walk(db, c.order_by, page_size, pages);
        CHECK(ids == c.want);
        CHECK(std::set<int>(ids.begin(), ids.end()).size() == 8);
        CHECK(pages == (8 + page_size - 1) / page_size);
      }
    }
  });
}

}  // namespace
}  // namespace certplane::aip
