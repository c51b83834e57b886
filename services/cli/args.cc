#include "services/cli/args.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace certplane::cli {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

absl::StatusOr<std::string> ReadToken(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read the token file ", path));
  }
  std::stringstream text;
  text << in.rdbuf();
  return std::string(absl::StripAsciiWhitespace(text.str()));
}

bool Truthy(absl::string_view v) {
  return v == "1" || v == "true" || v == "yes" || v == "on";
}

}  // namespace

std::string Args::Get(const std::string& name,
                      const std::string& fallback) const {
  auto it = flags.find(name);
  if (it == flags.end() || it->second.empty()) return fallback;
  return it->second.back();
}

std::vector<std::string> Args::All(const std::string& name) const {
  auto it = flags.find(name);
  return it == flags.end() ? std::vector<std::string>{} : it->second;
}

bool Args::Bool(const std::string& name) const {
  return Has(name) && Truthy(Get(name, "true"));
}

absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& argv,
                               const std::set<std::string>& booleans) {
  Args args;
  for (size_t i = 0; i < argv.size(); ++i) {
    absl::string_view a = argv[i];
    if (a == "--") {
      for (++i; i < argv.size(); ++i) args.positional.push_back(argv[i]);
      break;
    }
    std::string name;
    if (a == "-o") {
      name = "output";
    } else if (absl::ConsumePrefix(&a, "--") && !a.empty()) {
      size_t eq = a.find('=');
      if (eq != absl::string_view::npos) {
        args.flags[std::string(a.substr(0, eq))].push_back(
            std::string(a.substr(eq + 1)));
        continue;
      }
      name = std::string(a);
    } else {
      args.positional.push_back(argv[i]);
      continue;
    }
    if (booleans.count(name) > 0) {
      args.flags[name].push_back("true");
      continue;
    }
    if (i + 1 >= argv.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("flag --", name, " needs a value"));
    }
    args.flags[name].push_back(argv[++i]);
  }
  return args;
}

absl::Status CheckFlags(const Args& args,
                        const std::set<std::string>& allowed) {
  static const std::set<std::string> kGlobal = {
      "server",   "token",  "token-file", "ca-file",
      "insecure", "output", "timeout"};
  for (const auto& [name, values] : args.flags) {
    if (allowed.count(name) == 0 && kGlobal.count(name) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, " for this command"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Settings> ResolveSettings(const Args& args) {
  std::map<std::string, std::string> file;
  std::string config = Env("CERTPLANE_CONFIG");
  if (config.empty() && !Env("HOME").empty()) {
    config = Env("HOME") + "/.config/certplane/config";
  }
  if (std::ifstream in(config); in) {
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
      ++n;
      absl::string_view l = absl::StripAsciiWhitespace(line);
      if (l.empty() || l[0] == '#') continue;
      size_t eq = l.find('=');
      if (eq == absl::string_view::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat(config, " line ", n, ": expected \"key = value\""));
      }
      file[std::string(absl::StripAsciiWhitespace(l.substr(0, eq)))] =
          std::string(absl::StripAsciiWhitespace(l.substr(eq + 1)));
    }
  }
  auto pick = [&](const std::string& flag, const char* env,
                  const std::string& key) -> std::string {
    if (args.Has(flag)) return args.Get(flag);
    if (!Env(env).empty()) return Env(env);
    auto it = file.find(key);
    return it == file.end() ? "" : it->second;
  };
  Settings s;
  if (std::string v = pick("server", "CERTPLANE_SERVER", "server");
      !v.empty()) {
    s.server = v;
  }
  s.ca_file = pick("ca-file", "CERTPLANE_CA_FILE", "ca_file");
  s.insecure = args.Has("insecure")
                   ? args.Bool("insecure")
                   : Truthy(pick("insecure", "CERTPLANE_INSECURE", "insecure"));
  // A token given directly wins over a token file at the same level.
  if (args.Has("token")) {
    s.token = args.Get("token");
  } else if (args.Has("token-file")) {
    absl::StatusOr<std::string> t = ReadToken(args.Get("token-file"));
    if (!t.ok()) return t.status();
    s.token = *t;
  } else if (!Env("CERTPLANE_TOKEN").empty()) {
    s.token = Env("CERTPLANE_TOKEN");
  } else if (!Env("CERTPLANE_TOKEN_FILE").empty()) {
    absl::StatusOr<std::string> t = ReadToken(Env("CERTPLANE_TOKEN_FILE"));
    if (!t.ok()) return t.status();
    s.token = *t;
  } else if (file.count("token") > 0) {
    s.token = file["token"];
  } else if (file.count("token_file") > 0) {
    absl::StatusOr<std::string> t = ReadToken(file["token_file"]);
    if (!t.ok()) return t.status();
    s.token = *t;
  }
  s.output = args.Get("output", "table");
  if (args.Has("timeout")) {
    absl::StatusOr<absl::Duration> t = ParseDurationArg(args.Get("timeout"));
    if (!t.ok()) return t.status();
    s.timeout = *t;
  }
  return s;
}

absl::StatusOr<absl::Duration> ParseDurationArg(absl::string_view text) {
  absl::string_view t = text;
  int64_t n = 0;
  if (absl::ConsumeSuffix(&t, "d") && absl::SimpleAtoi(t, &n) && n > 0) {
    return absl::Hours(24 * n);
  }
  absl::Duration d;
  if (absl::ParseDuration(text, &d) && d > absl::ZeroDuration()) return d;
  return absl::InvalidArgumentError(
      absl::StrCat("\"", text, "\" is not a duration (90d, 12h, 30m, 45s)"));
}

}  // namespace certplane::cli
