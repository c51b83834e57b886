// certplane-admin: platform administration on the machine that runs it.
//
//   certplane-admin bootstrap --dir DIR [--host NAME]...
//       the platform CA and one mTLS certificate per service
//       (services/admin/bootstrap.h); safe to run on every start
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "services/admin/bootstrap.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] != "bootstrap") {
    std::cerr
        << "usage: certplane-admin bootstrap --dir DIR [--host NAME]...\n";
    return 2;
  }
  certplane::admin::BootstrapOptions options;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    std::string value;
    auto take = [&](const std::string& flag) {
      if (a == flag && i + 1 < args.size()) {
        value = args[++i];
        return true;
      }
      if (a.rfind(flag + "=", 0) == 0) {
        value = a.substr(flag.size() + 1);
        return true;
      }
      return false;
    };
    if (take("--dir")) {
      options.dir = value;
    } else if (take("--host")) {
      options.hosts.push_back(value);
    } else {
      std::cerr << "certplane-admin: unknown argument " << a << "\n";
      return 2;
    }
  }
  if (options.dir.empty()) {
    std::cerr << "certplane-admin bootstrap: --dir is required\n";
    return 2;
  }
  auto report = certplane::admin::Bootstrap(options);
  if (!report.ok()) {
    std::cerr << "certplane-admin bootstrap: " << report.status().message()
              << "\n";
    return 1;
  }
  for (const std::string& f : report->created)
    std::cout << "created " << f << "\n";
  for (const std::string& f : report->kept)
    std::cout << "kept    " << f << "\n";
  return 0;
}
