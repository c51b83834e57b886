// The certplane CLI's commands: `certplane <noun> <verb>`, kubectl style,
// each one RPC (or a few) through the gateway. Run() is the whole program
// after main(): it parses, calls, prints, and returns the exit code.
//
// Exit codes (stable, for scripts):
//   0 success                        3 not found
//   1 any other server error         4 not authenticated or not allowed
//   2 usage error (flags, files)     5 cannot reach the server in time
//   6 audit verification failed
// Errors go to stderr as "error: <code>: <message>".
#ifndef CERTPLANE_SERVICES_CLI_COMMANDS_H_
#define CERTPLANE_SERVICES_CLI_COMMANDS_H_

#include <iosfwd>
#include <string>
#include <vector>

namespace certplane::cli {

int Run(const std::vector<std::string>& argv, std::ostream& out,
        std::ostream& err);

}  // namespace certplane::cli

#endif  // CERTPLANE_SERVICES_CLI_COMMANDS_H_
