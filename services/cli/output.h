// How the certplane CLI prints API messages: a table (default; chosen
// columns), JSON (protobuf's JSON mapping, indented) or YAML (the same
// data). Columns name fields by their JSON path ("currentVersion.details.
// notAfter"); repeated values are joined with ",".
//
// Pure functions over messages; thread-compatible.
#ifndef CERTPLANE_SERVICES_CLI_OUTPUT_H_
#define CERTPLANE_SERVICES_CLI_OUTPUT_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace certplane::cli {

enum class Format { kTable, kJson, kYaml };

absl::StatusOr<Format> ParseFormat(absl::string_view name);

struct Column {
  std::string header;
  std::string path;  // JSON path; "" prints nothing.
};

// One object: a table of its columns (one row), or the whole message.
void PrintObject(const google::protobuf::Message& message, Format format,
                 const std::vector<Column>& columns, std::ostream& out);

// A list response: table rows from the repeated field `items` (its JSON
// name), or the whole response as JSON/YAML.
void PrintList(const google::protobuf::Message& response,
               absl::string_view items, Format format,
               const std::vector<Column>& columns, std::ostream& out);

// The message as indented JSON / as YAML.
std::string ToJson(const google::protobuf::Message& message);
std::string ToYaml(const google::protobuf::Message& message);

}  // namespace certplane::cli

#endif  // CERTPLANE_SERVICES_CLI_OUTPUT_H_
