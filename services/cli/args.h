// Command-line parsing and settings of the certplane CLI.
//
//   certplane [global flags] <noun> <verb> [arguments] [flags]
//
// Flags are --name=value or --name value; boolean flags stand alone
// (--dry-run); -o is --output. Repeatable flags collect every value.
// Global flags: --server, --token, --token-file, --ca-file, --insecure,
// --output/-o, --timeout. Settings come from flags, then the environment
// (CERTPLANE_SERVER, CERTPLANE_TOKEN, CERTPLANE_TOKEN_FILE,
// CERTPLANE_CA_FILE, CERTPLANE_INSECURE), then the config file
// ($CERTPLANE_CONFIG or ~/.config/certplane/config: "key = value" lines
// with the same keys: server, token, token_file, ca_file, insecure).
#ifndef CERTPLANE_SERVICES_CLI_ARGS_H_
#define CERTPLANE_SERVICES_CLI_ARGS_H_

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace certplane::cli {

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>> flags;

  bool Has(const std::string& name) const { return flags.count(name) > 0; }
  // The last value of `name`, or `fallback`.
  std::string Get(const std::string& name,
                  const std::string& fallback = "") const;
  std::vector<std::string> All(const std::string& name) const;
  bool Bool(const std::string& name) const;
};

// Splits argv[1..]. `booleans` are the flags that take no value.
// INVALID_ARGUMENT naming a flag that lacks its value.
absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& argv,
                               const std::set<std::string>& booleans);

// INVALID_ARGUMENT naming the first flag of `args` not in `allowed`.
absl::Status CheckFlags(const Args& args, const std::set<std::string>& allowed);

struct Settings {
  std::string server = "127.0.0.1:7001";
  std::string token;
  std::string ca_file;
  bool insecure = false;
  std::string output = "table";
  absl::Duration timeout = absl::Seconds(60);
};

// Flags over environment over config file over defaults.
absl::StatusOr<Settings> ResolveSettings(const Args& args);

// "90d", "12h", "30m", "45s" (or Go-style absl durations).
absl::StatusOr<absl::Duration> ParseDurationArg(absl::string_view text);

}  // namespace certplane::cli

#endif  // CERTPLANE_SERVICES_CLI_ARGS_H_
