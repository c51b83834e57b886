// Structured logs for certplane services: one JSON object per line on
// stderr, so log collectors can parse them without guessing.
//
//   certplane::log::Info("order approved", {{"order_id", id}, {"approver",
//   who}});
//   -> {"ts":"2026-12-03T18:13:50.123Z","level":"info","msg":"order approved",
//       "order_id":"42","approver":"alice"}
//
// Every line carries "ts" (RFC 3339 UTC, milliseconds), "level" and "msg",
// then the given fields in order. Strings are escaped per RFC 8259 (quotes,
// backslashes and control characters; invalid UTF-8 becomes U+FFFD), so a
// value can never break out of its field or the line. Field keys should not
// reuse "ts", "level" or "msg".
//
// NEVER log secret material: private keys, passwords, tokens, KEKs/DEKs or
// anything derived from them. libs/crypto's SecretBytes prints as
// "[redacted]"; do not unwrap it to log it.
//
// Thread-safe: lines from concurrent callers never interleave.
#ifndef CERTPLANE_LIBS_SERVER_JSON_LOG_H_
#define CERTPLANE_LIBS_SERVER_JSON_LOG_H_

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <type_traits>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace certplane::log {

enum class Level { kDebug, kInfo, kWarning, kError };

// "debug", "info", "warning", "error".
absl::string_view LevelName(Level level);
// Inverse of LevelName (also accepts "warn"); false when unknown.
bool ParseLevel(absl::string_view name, Level* level);

// One key/value of a log line; the value is rendered to JSON on creation.
class Field {
 public:
  Field(absl::string_view key, absl::string_view value);
  Field(absl::string_view key, const char* value);
  Field(absl::string_view key, const std::string& value)
      : Field(key, absl::string_view(value)) {}
  Field(absl::string_view key, bool value);
  Field(absl::string_view key, double value);
  template <typename Int,
            std::enable_if_t<
                std::is_integral_v<Int> && !std::is_same_v<Int, bool>, int> = 0>
  Field(absl::string_view key, Int value)
      : Field(key, static_cast<int64_t>(value), IntTag{}) {}

  const std::string& key() const { return key_; }
  // The value as JSON text (a quoted string, number, true or false).
  const std::string& json_value() const { return json_value_; }

 private:
  struct IntTag {};
  Field(absl::string_view key, int64_t value, IntTag);
  std::string key_;
  std::string json_value_;
};

// `text` as a JSON string literal, quotes included.
std::string JsonQuote(absl::string_view text);

// One log line (without the trailing newline).
std::string FormatLine(Level level, absl::string_view message,
                       absl::Span<const Field> fields, absl::Time now);

// Writes one line to the sink when `level` is at least the minimum level.
void Log(Level level, absl::string_view message,
         std::initializer_list<Field> fields = {});
void Log(Level level, absl::string_view message,
         absl::Span<const Field> fields);
inline void Debug(absl::string_view message,
                  std::initializer_list<Field> fields = {}) {
  Log(Level::kDebug, message, fields);
}
inline void Info(absl::string_view message,
                 std::initializer_list<Field> fields = {}) {
  Log(Level::kInfo, message, fields);
}
inline void Warning(absl::string_view message,
                    std::initializer_list<Field> fields = {}) {
  Log(Level::kWarning, message, fields);
}
inline void Error(absl::string_view message,
                  std::initializer_list<Field> fields = {}) {
  Log(Level::kError, message, fields);
}

// Lines below `level` are dropped. Default: kInfo.
void SetMinimumLevel(Level level);
// Whether a line at `level` would be written (skip building its fields).
bool Enabled(Level level);

// Replaces the stderr sink (tests capture lines with it); an empty function
// restores stderr. The sink receives each line without its newline and is
// called under the logger's lock.
void SetSinkForTesting(std::function<void(absl::string_view line)> sink);

}  // namespace certplane::log

#endif  // CERTPLANE_LIBS_SERVER_JSON_LOG_H_
