// certplane-admin: platform administration on the machine that runs it.
//
//   certplane-admin bootstrap --dir DIR [--host NAME]...
//       the platform CA and one mTLS certificate per service
//       (services/admin/bootstrap.h); safe to run on every start
//   certplane-admin health --address HOST:PORT [--ca-file F --cert-file F
//                          --key-file F] [--timeout-seconds N]
//       waits until the server reports SERVING (exit 0) or gives up (1)
//   certplane-admin health --address HOST:PORT [--ca-file F --cert-file F
//                          --key-file F] [--timeout-seconds N]
//       waits until the server reports SERVING (exit 0) or gives up (1)
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "services/admin/bootstrap.h"
#include "services/admin/health.h"

namespace {

int Health(const std::vector<std::string>& args) {
  certplane::admin::HealthOptions options;
  if (args.size() % 2 == 0) {
    std::cerr << "certplane-admin health: every flag needs a value\n";
    return 2;
  }
  for (size_t i = 1; i + 1 < args.size(); i += 2) {
    const std::string& flag = args[i];
    const std::string& value = args[i + 1];
    int seconds = 0;
    if (flag == "--address") {
      options.address = value;
    } else if (flag == "--ca-file") {
      options.ca_file = value;
    } else if (flag == "--cert-file") {
      options.cert_file = value;
    } else if (flag == "--key-file") {
      options.key_file = value;
    } else if (flag == "--timeout-seconds" &&
               absl::SimpleAtoi(value, &seconds) && seconds > 0) {
      options.timeout = absl::Seconds(seconds);
    } else {
      std::cerr << "certplane-admin health: bad argument " << flag << "\n";
      return 2;
    }
  }
  if (options.address.empty()) {
    std::cerr << "certplane-admin health: give --address HOST:PORT\n";
    return 2;
  }
  absl::Status s = certplane::admin::WaitForHealthy(options);
  if (!s.ok()) {
    std::cerr << "certplane-admin health: " << s.message() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || (args[0] != "bootstrap" && args[0] != "health")) {
    std::cerr << "usage: certplane-admin bootstrap --dir DIR [--host NAME]...\n"
                 "       certplane-admin health --address HOST:PORT "
                 "[--ca-file F --cert-file F --key-file F] "
                 "[--timeout-seconds N]\n";
    return 2;
  }
  if (args[0] == "health") return Health(args);
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
