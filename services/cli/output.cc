#include "services/cli/output.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace certplane::cli {
namespace {

using google::protobuf::Value;

Value ToValue(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  Value value;
  (void)google::protobuf::util::JsonStringToMessage(json, &value);
  return value;
}

const Value* Find(const Value& root, absl::string_view path) {
  const Value* v = &root;
  for (absl::string_view part : absl::StrSplit(path, '.')) {
    if (v->kind_case() != Value::kStructValue) return nullptr;
    auto it = v->struct_value().fields().find(std::string(part));
    if (it == v->struct_value().fields().end()) return nullptr;
    v = &it->second;
  }
  return v;
}

std::string Number(double d) {
  if (std::floor(d) == d && std::fabs(d) < 1e15) {
    return absl::StrCat(static_cast<int64_t>(d));
  }
  return absl::StrCat(d);
}

std::string Cell(const Value* v) {
  if (v == nullptr) return "";
  switch (v->kind_case()) {
    case Value::kStringValue:
      return v->string_value();
    case Value::kNumberValue:
      return Number(v->number_value());
    case Value::kBoolValue:
      return v->bool_value() ? "true" : "false";
    case Value::kListValue: {
      std::vector<std::string> parts;
      for (const Value& item : v->list_value().values()) {
        parts.push_back(Cell(&item));
      }
      return absl::StrJoin(parts, ",");
    }
    case Value::kStructValue: {
      // Maps (tags) as k=v; other objects by their "value" or "display".
      const auto& fields = v->struct_value().fields();
      // A distinguished name without its display form: TYPE=value,...
      auto attributes = fields.find("attributes");
      if (attributes != fields.end() && fields.count("display") == 0 &&
          attributes->second.kind_case() == Value::kListValue) {
        std::vector<std::string> parts;
        for (const Value& a : attributes->second.list_value().values()) {
          parts.push_back(
              absl::StrCat(Cell(Find(a, "type")), "=", Cell(Find(a, "value"))));
        }
        return absl::StrJoin(parts, ",");
      }
      for (const char* key : {"display", "value", "name"}) {
        auto it = fields.find(key);
        if (it != fields.end()) return Cell(&it->second);
      }
      std::vector<std::string> parts;
      for (const auto& [k, item] : fields) {
        parts.push_back(absl::StrCat(k, "=", Cell(&item)));
      }
      std::sort(parts.begin(), parts.end());
      return absl::StrJoin(parts, ",");
    }
    default:
      return "";
  }
}

void PrintTable(const std::vector<Column>& columns,
                const std::vector<std::vector<std::string>>& rows,
                std::ostream& out) {
  std::vector<size_t> widths;
  for (const Column& c : columns) widths.push_back(c.header.size());
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], std::min<size_t>(row[i].size(), 60));
    }
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string text;
    for (size_t i = 0; i < cells.size(); ++i) {
      std::string cell = cells[i];
      if (cell.size() > 60) cell = cell.substr(0, 57) + "...";
      absl::StrAppend(&text, cell);
      if (i + 1 < cells.size()) {
        text.append(widths[i] - cell.size() + 2, ' ');
      }
    }
    out << std::string(absl::StripTrailingAsciiWhitespace(text)) << "\n";
  };
  std::vector<std::string> headers;
  for (const Column& c : columns) headers.push_back(c.header);
  line(headers);
  for (const auto& row : rows) line(row);
}

std::string YamlScalar(const Value& v) {
  switch (v.kind_case()) {
    case Value::kNullValue:
      return "null";
    case Value::kNumberValue:
      return Number(v.number_value());
    case Value::kBoolValue:
      return v.bool_value() ? "true" : "false";
    case Value::kStringValue: {
      // Double-quoted YAML strings share JSON's escapes.
      std::string json;
      (void)google::protobuf::util::MessageToJsonString(v, &json);
      return json;
    }
    default:
      return "";
  }
}

void Yaml(const Value& v, int indent, std::string& out) {
  const std::string pad(indent, ' ');
  if (v.kind_case() == Value::kStructValue) {
    if (v.struct_value().fields().empty()) {
      out += "{}\n";
      return;
    }
    std::vector<std::string> keys;
    for (const auto& [k, unused] : v.struct_value().fields()) keys.push_back(k);
    std::sort(keys.begin(), keys.end());
    bool first = true;
    for (const std::string& k : keys) {
      const Value& item = v.struct_value().fields().at(k);
      if (!first || indent > 0) out += pad;
      first = false;
      out += k + ":";
      if (item.kind_case() == Value::kStructValue &&
          !item.struct_value().fields().empty()) {
        out += "\n";
        Yaml(item, indent + 2, out);
      } else if (item.kind_case() == Value::kListValue &&
                 item.list_value().values_size() > 0) {
        out += "\n";
        Yaml(item, indent, out);
      } else {
        out += " ";
        Yaml(item, indent + 2, out);
      }
    }
    return;
  }
  if (v.kind_case() == Value::kListValue) {
    if (v.list_value().values().empty()) {
      out += "[]\n";
      return;
    }
    for (const Value& item : v.list_value().values()) {
      out += pad + "- ";
      if (item.kind_case() == Value::kStructValue &&
          !item.struct_value().fields().empty()) {
        // The first key follows "- "; the rest align under it.
        std::string nested;
        Yaml(item, indent + 2, nested);
        out += nested.substr(indent + 2);
      } else {
        Yaml(item, indent + 2, out);
      }
    }
    return;
  }
  out += YamlScalar(v) + "\n";
}

}  // namespace

absl::StatusOr<Format> ParseFormat(absl::string_view name) {
  if (name == "table" || name == "wide") return Format::kTable;
  if (name == "json") return Format::kJson;
  if (name == "yaml") return Format::kYaml;
  return absl::InvalidArgumentError(absl::StrCat(
      "output format \"", name, "\" is not one of table, json, yaml"));
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

std::string ToYaml(const google::protobuf::Message& message) {
  std::string out;
  Yaml(ToValue(message), 0, out);
  return out;
}

void PrintObject(const google::protobuf::Message& message, Format format,
                 const std::vector<Column>& columns, std::ostream& out) {
  if (format == Format::kJson) {
    out << ToJson(message);
    return;
  }
  if (format == Format::kYaml) {
    out << ToYaml(message);
    return;
  }
  Value v = ToValue(message);
  std::vector<std::string> row;
  for (const Column& c : columns) row.push_back(Cell(Find(v, c.path)));
  PrintTable(columns, {row}, out);
}

void PrintList(const google::protobuf::Message& response,
               absl::string_view items, Format format,
               const std::vector<Column>& columns, std::ostream& out) {
  if (format != Format::kTable) {
    PrintObject(response, format, columns, out);
    return;
  }
  Value v = ToValue(response);
  std::vector<std::vector<std::string>> rows;
  const Value* list = Find(v, items);
  if (list != nullptr && list->kind_case() == Value::kListValue) {
    for (const Value& item : list->list_value().values()) {
      std::vector<std::string> row;
      for (const Column& c : columns) row.push_back(Cell(Find(item, c.path)));
      rows.push_back(std::move(row));
    }
  }
  PrintTable(columns, rows, out);
}

}  // namespace certplane::cli
