// certplane: the command line for people and scripts, through the gateway.
// See services/cli/commands.h (commands, exit codes) and docs/cli.md.
#include <iostream>
#include <string>
#include <vector>

#include "services/cli/commands.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  return certplane::cli::Run(args, std::cout, std::cerr);
}
