#include "libs/server/json_log.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace certplane::log {
namespace {

google::protobuf::Struct ParseJson(const std::string& line) {
  google::protobuf::Struct parsed;
  auto status = google::protobuf::util::JsonStringToMessage(line, &parsed);
  INFO(line);
  REQUIRE(status.ok());
  return parsed;
}

TEST_CASE("FormatLineWritesTimestampLevelMessageAndFieldsInOrder") {
  const absl::Time now = absl::FromUnixMillis(1796321630123);
  std::string line = FormatLine(Level::kWarning, "order approved",
                                {Field("order_id", "42"), Field("count", 3),
                                 Field("ok", true), Field("latency_ms", 1.5)},
                                now);
  CHECK(line ==
        "{\"ts\":\"2026-12-03T18:13:50.123Z\",\"level\":\"warning\","
        "\"msg\":\"order approved\",\"order_id\":\"42\",\"count\":3,"
        "\"ok\":true,\"latency_ms\":1.5}");
}

TEST_CASE("StringsThatLookLikeJsonStayInsideTheirField") {
  const std::string hostile =
      "x\",\"level\":\"error\"}\n{\"injected\":\"\\\t\x01\x7f";
  std::string line = FormatLine(Level::kInfo, hostile, {Field("peer", hostile)},
                                absl::UnixEpoch());
  CHECK(line.find('\n') == std::string::npos);
  google::protobuf::Struct parsed = ParseJson(line);
  CHECK(parsed.fields().at("msg").string_value() == hostile);
  CHECK(parsed.fields().at("peer").string_value() == hostile);
  CHECK(parsed.fields().at("level").string_value() == "info");
  CHECK(parsed.fields().count("injected") == 0);
}

TEST_CASE("JsonQuoteKeepsValidUtf8AndReplacesInvalidBytes") {
  CHECK(JsonQuote("caf\xc3\xa9 \xe2\x82\xac") ==
        "\"caf\xc3\xa9 \xe2\x82\xac\"");
  CHECK(JsonQuote("a\xff"
                  "b") == "\"a\\ufffdb\"");
  CHECK(JsonQuote("\xc3") == "\"\\ufffd\"");  // Truncated.
  CHECK(JsonQuote("\xed\xa0\x80") ==
        "\"\\ufffd\\ufffd\\ufffd\"");                    // Surrogate.
  CHECK(JsonQuote("\xc0\xaf") == "\"\\ufffd\\ufffd\"");  // Overlong '/'.
}

TEST_CASE("NonFiniteNumbersAreWrittenAsStrings") {
  std::string line =
      FormatLine(Level::kInfo, "m", {Field("v", 1.0 / 0.0)}, absl::UnixEpoch());
  CHECK(ParseJson(line).fields().at("v").string_value() == "inf");
}

TEST_CASE("LogSendsLinesAtOrAboveTheMinimumLevelToTheSink") {
  std::vector<std::string> lines;
  SetSinkForTesting([&](absl::string_view line) { lines.emplace_back(line); });
  SetMinimumLevel(Level::kInfo);
  Debug("hidden");
  Info("shown", {{"k", "v"}});
  Error("also shown");
  SetSinkForTesting({});
  REQUIRE(lines.size() == 2);
  CHECK(ParseJson(lines[0]).fields().at("k").string_value() == "v");
  CHECK(ParseJson(lines[1]).fields().at("level").string_value() == "error");
}

TEST_CASE("ParseLevelAcceptsKnownNamesOnly") {
  Level level = Level::kInfo;
  CHECK(ParseLevel("WARN", &level));
  CHECK(level == Level::kWarning);
  CHECK(ParseLevel("debug", &level));
  CHECK(level == Level::kDebug);
  CHECK_FALSE(ParseLevel("verbose", &level));
}

}  // namespace
}  // namespace certplane::log
