#include "libs/server/json_log.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"

namespace certplane::log {
namespace {

std::atomic<int> g_minimum_level{static_cast<int>(Level::kInfo)};

struct Sink {
  absl::Mutex mu;
  std::function<void(absl::string_view)> test_sink ABSL_GUARDED_BY(mu);
};

Sink& GetSink() {
  static Sink* const sink = new Sink;  // Never destroyed: usable at exit.
  return *sink;
}

// Length of the valid UTF-8 sequence starting at text[i], or 0.
size_t Utf8SequenceLength(absl::string_view text, size_t i) {
  const auto byte = [&](size_t k) {
    return static_cast<unsigned char>(text[k]);
  };
  unsigned char lead = byte(i);
  size_t length;
  uint32_t min_code_point;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
    min_code_point = 0x80;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    min_code_point = 0x800;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    min_code_point = 0x10000;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  uint32_t code_point = lead & (0x7F >> length);
  for (size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    code_point = (code_point << 6) | (byte(i + k) & 0x3F);
  }
  if (code_point < min_code_point || code_point > 0x10FFFF) return 0;
  if (code_point >= 0xD800 && code_point <= 0xDFFF) return 0;  // Surrogates.
  return length;
}

void WriteToStderr(absl::string_view line) {
  std::string out = absl::StrCat(line, "\n");
  absl::string_view rest = out;
  while (!rest.empty()) {
    ssize_t n = ::write(STDERR_FILENO, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // Nowhere left to report it.
    rest.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

absl::string_view LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarning:
      return "warning";
    case Level::kError:
      return "error";
  }
  return "info";
}

bool ParseLevel(absl::string_view name, Level* level) {
  std::string lower = absl::AsciiStrToLower(name);
  if (lower == "debug") {
    *level = Level::kDebug;
  } else if (lower == "info") {
    *level = Level::kInfo;
  } else if (lower == "warning" || lower == "warn") {
    *level = Level::kWarning;
  } else if (lower == "error") {
    *level = Level::kError;
  } else {
    return false;
  }
  return true;
}

std::string JsonQuote(absl::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back('"');
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        default:
          if (c < 0x20 || c == 0x7F) {
            absl::StrAppendFormat(&out, "\\u%04x", c);
          } else {
            out.push_back(static_cast<char>(c));
          }
      }
      ++i;
      continue;
    }
    size_t length = Utf8SequenceLength(text, i);
    if (length == 0) {
      out += "\\ufffd";
      ++i;
    } else {
      out.append(text.data() + i, length);
      i += length;
    }
  }
  out.push_back('"');
  return out;
}

Field::Field(absl::string_view key, absl::string_view value)
    : key_(key), json_value_(JsonQuote(value)) {}

Field::Field(absl::string_view key, const char* value)
    : Field(key, absl::string_view(value == nullptr ? "" : value)) {}

Field::Field(absl::string_view key, bool value)
    : key_(key), json_value_(value ? "true" : "false") {}

Field::Field(absl::string_view key, double value) : key_(key) {
  // JSON has no NaN or infinities; keep them readable as strings.
  if (!std::isfinite(value)) {
    json_value_ = JsonQuote(absl::StrCat(value));
    return;
  }
  // The shortest form that reads back to the same double (std::to_chars
  // finds it directly; trying precisions one by one cost every RPC's log
  // line up to 17 formats and parses).
  char buffer[64];
  auto [end, error] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  json_value_.assign(buffer, error == std::errc() ? end : buffer);
}

Field::Field(absl::string_view key, int64_t value, IntTag)
    : key_(key), json_value_(absl::StrCat(value)) {}

std::string FormatLine(Level level, absl::string_view message,
                       absl::Span<const Field> fields, absl::Time now) {
  std::string line = absl::StrCat(
      "{\"ts\":\"",
      absl::FormatTime("%Y-%m-%d%ET%H:%M:%E3SZ", now, absl::UTCTimeZone()),
      "\",\"level\":\"", LevelName(level), "\",\"msg\":", JsonQuote(message));
  for (const Field& field : fields) {
    absl::StrAppend(&line, ",", JsonQuote(field.key()), ":",
                    field.json_value());
  }
  line.push_back('}');
  return line;
}

void Log(Level level, absl::string_view message,
         std::initializer_list<Field> fields) {
  Log(level, message, absl::Span<const Field>(fields.begin(), fields.size()));
}

bool Enabled(Level level) {
  return static_cast<int>(level) >= g_minimum_level.load();
}

void Log(Level level, absl::string_view message,
         absl::Span<const Field> fields) {
  if (!Enabled(level)) return;
  std::string line = FormatLine(level, message, fields, absl::Now());
  Sink& sink = GetSink();
  absl::MutexLock lock(&sink.mu);
  if (sink.test_sink) {
    sink.test_sink(line);
  } else {
    WriteToStderr(line);
  }
}

void SetMinimumLevel(Level level) {
  g_minimum_level.store(static_cast<int>(level));
}

void SetSinkForTesting(std::function<void(absl::string_view line)> sink) {
  Sink& s = GetSink();
  absl::MutexLock lock(&s.mu);
  s.test_sink = std::move(sink);
}

}  // namespace certplane::log
